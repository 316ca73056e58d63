"""The SCORM run-time data model over a flat dict of CMI values; mirrored by static/runtime/datamodel.js.

`DataModel` answers GetValue/SetValue for one SCORM version with the exact error codes of errors.md.
It knows nothing about API state (rte.py) or the end of a session (attempt.py). The CMI values are a
plain `dict[str, str]` of concrete element names ("cmi.interactions.0.id"); an absent key is an unset
element. All element rules come from the table in elements.py, which the browser receives too.

Check order (errors.md, ADL): empty name -> name resolution (401) -> keywords -> access (RO/WO) ->
collection rules (index: canonical, in range; fixed arrays; record limit; new record needs its id) ->
dependencies (408) -> write-once and uniqueness -> value format (type, range) -> uniqueness of
correct-response patterns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from appliance.core.scorm.elements import shared_table
from appliance.core.scorm.launch import initial_cmi
from appliance.core.scorm.values import check_value, evaluated_status

T = TypeVar("T")
KEYWORDS = ("_children", "_count", "_version")
_INDEX = re.compile(r"0|[1-9][0-9]*")
# Any run of digits is an index position ("cmi.interactions.01.id" names an interaction record); only
# the canonical form (_INDEX) addresses one: a leading zero is a bad index (351/301, as ADL's DMI expects).
_DIGITS = re.compile(r"[0-9]+")


_CACHED_NAMES = 8192  # per cached function
_CACHED_NAME_CHARS = 200  # longer names (no real element is) are worked out each time, never kept


def _per_name(fn: Callable[..., T]) -> Callable[..., T]:
    """Cache a pure function whose last argument is an element name, for names of real length.

    Content and API clients choose the names: caching only short ones bounds what the caches can hold.
    """
    cached = functools.lru_cache(maxsize=_CACHED_NAMES)(fn)

    @functools.wraps(fn)
    def lookup(*args: Any) -> T:
        return cached(*args) if len(args[-1]) <= _CACHED_NAME_CHARS else fn(*args)

    lookup.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return lookup


class CmiError(msgspec.Struct, frozen=True):
    """One rejected write of a programmatic CMI update (the API's CMI_VALIDATION_ERROR details)."""

    element: str
    value: str
    scorm_error_code: int
    message: str


class _Failure(Exception):
    """Internal: a data-model check failed with `key` (a key of the table's "errors" map)."""

    def __init__(self, key: str, diagnostic: str) -> None:
        super().__init__(diagnostic)
        self.key = key
        self.diagnostic = diagnostic


class _Ref(msgspec.Struct, frozen=True):
    """A resolved element name: its template ("n" for indexes), spec and array levels. Shared between
    calls (see `_resolution`), so never changed."""

    name: str
    template: str
    spec: dict[str, Any]
    indices: tuple[int, ...]
    # (concrete array path, index into it, array template) from the outermost array inwards.
    arrays: tuple[tuple[str, int, str], ...]
    needs: tuple[str, ...]  # the concrete elements its `depends` names (set them first: 408)
    type_element: str | None  # the interaction's type element, for responses and patterns
    # From the spec, for SetValue's checks: a shared data store (its access is per record), ids that
    # are write-once or unique among their array's records, a correct-response pattern.
    store: bool
    write_once: bool
    unique: bool
    pattern: bool


@_per_name
def _resolution(scorm_version: str, element: str) -> _Ref | tuple[str, str]:
    """The element a concrete name addresses, or the (failure key, diagnostic) when it names none.

    Pure, and every GetValue/SetValue asks it about a small set of recurring names: cached.
    """
    table = shared_table(scorm_version)
    parts = element.split(".")
    template, levels = _template_of(element)
    spec = table["elements"].get(template)
    if spec is None or "n" in parts:
        if template in _known_names(scorm_version) and "n" not in parts:
            return "container", f"{element} is a container, not an element"
        return "undefined", f"{element} is not a data model element"
    indices = tuple(index for _, index, _ in levels)
    type_of = spec.get("type_of")
    return _Ref(
        element,
        template,
        spec,
        indices,
        levels,
        tuple(instantiate(dependency, indices) for dependency in spec.get("depends", ())),
        instantiate(type_of, indices) if type_of else None,
        store=template == "adl.data.n.store" and bool(indices),
        write_once=bool(spec.get("write_once")),
        unique=bool(spec.get("unique")),
        pattern=spec.get("role") == "pattern",
    )


@functools.cache
def _known_names(scorm_version: str) -> frozenset[str]:
    """Every element template plus every container above one (cmi, cmi.core, cmi.interactions.n, ...)."""
    table = shared_table(scorm_version)
    names: set[str] = set(table["targets"]) | set(table["children"]) | set(table["arrays"])
    for name in table["elements"]:
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(names)


def count_records(cmi: Iterable[str]) -> dict[str, int]:
    """Record counts of every array that has records, derived from the concrete element names."""
    counts: dict[str, int] = {}
    for name in cmi:
        for path, records in _records_implied(name):
            if counts.get(path, 0) < records:
                counts[path] = records
    return counts


@_per_name
def _records_implied(name: str) -> tuple[tuple[str, int], ...]:
    """(array path, records it must at least have) for each index in a concrete name; cached, since
    every commit counts the records of the same recurring names."""
    parts = name.split(".")
    return tuple((".".join(parts[:i]), int(part) + 1) for i, part in enumerate(parts) if i and _INDEX.fullmatch(part))


@functools.lru_cache(maxsize=8)
def _target_prefixes(scorm_version: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The {target=ID} element names of a version, and the prefixes of their suffixed forms."""
    targets = shared_table(scorm_version)["targets"]
    return frozenset(targets), tuple(name + "." for name in targets)


def instantiate(template: str, indices: Sequence[int]) -> str:
    """Fill the "n" segments of a template with indices, outermost first."""
    numbers = iter(indices)
    return ".".join(str(next(numbers)) if part == "n" else part for part in template.split("."))


@_per_name
def _template_of(element: str) -> tuple[str, tuple[tuple[str, int, str], ...]]:
    """An element name's template ("n" for indexes) and its array levels, outermost first.

    Pure and called for every GetValue/SetValue with a small set of recurring names, so it is cached.
    """
    parts = element.split(".")
    template = ".".join("n" if i and _DIGITS.fullmatch(p) else p for i, p in enumerate(parts))
    levels = []
    for i, part in enumerate(parts):
        if i and _DIGITS.fullmatch(part):
            prefix = ".".join("n" if _DIGITS.fullmatch(p) else p for p in parts[:i])
            levels.append((".".join(parts[:i]), int(part), prefix))
    return template, tuple(levels)


@_per_name
def _leading_zero(element: str) -> str | None:
    """The first index segment of a name written with a leading zero ("01"), if any."""
    return next((p for p in element.split(".")[1:] if _DIGITS.fullmatch(p) and not _INDEX.fullmatch(p)), None)


class DataModel:
    """GetValue/SetValue over one SCO's CMI values, for one SCORM version.

    The dict passed in is copied; read `cmi` for the current values. `diagnostic` explains the
    last failed call (or an accepted value longer than its 2004 SPM). `data_access` gives
    (readSharedData, writeSharedData) per `adl.data` record (4th Edition); missing means allowed.
    `suspend_data_limit` is 1.2 cmi.suspend_data's limit (elements.datamodel_table; None: the spec's).
    """

    def __init__(
        self,
        scorm_version: str,
        cmi: Mapping[str, str] | None = None,
        *,
        data_access: Sequence[Sequence[bool]] = (),
        suspend_data_limit: int | None = None,
    ) -> None:
        self.scorm_version = scorm_version
        self.table = shared_table(scorm_version, suspend_data_limit)
        # Names resolve against the version's table (cached per name); values are checked against this
        # model's own table, whose limits may differ (1.2 suspend_data).
        self._elements = self.table["elements"]
        self.cmi: dict[str, str] = dict(cmi or {})
        self.data_access = [(bool(read), bool(write)) for read, write in data_access]
        self.diagnostic = ""
        self._known = _known_names(scorm_version)
        self._counts = count_records(self.cmi)

    def count(self, array_path: str) -> int:
        """Number of records of a concrete array ("cmi.interactions.0.objectives")."""
        return self._counts.get(array_path, 0)

    def get_value(self, element: str) -> tuple[str, int]:
        """GetValue: (value, 0) or ("", error code)."""
        self.diagnostic = ""
        try:
            return self._get(element), 0
        except _Failure as failure:
            return "", self._code(failure)

    def set_value(self, element: str, value: str) -> int:
        """SetValue: 0 when stored, else the error code (and nothing changes)."""
        self.diagnostic = ""
        try:
            self._set(element, value)
        except _Failure as failure:
            return self._code(failure)
        return 0

    def _code(self, failure: _Failure) -> int:
        self.diagnostic = failure.diagnostic
        return int(self.table["errors"][failure.key])

    # ------------------------------------------------------------------------------------ GetValue
    def _get(self, element: str) -> str:
        if element == "":
            raise _Failure("empty_get", "the element name is empty")
        target = self._target(element)
        if target is not None:
            return self.cmi.get(element, target["default"])
        parts = element.split(".")
        if parts[-1] in KEYWORDS:
            return self._keyword(element, parts, setting=False)
        ref = self._resolve(element)
        if ref.spec["access"] == "WO" or not self._shared_access(ref, 0):
            raise _Failure("write_only", f"{element} is write-only")
        self._check_get_indexes(ref.arrays, element)
        value = self.cmi.get(element)
        computed = evaluated_status(ref.spec, self.cmi)
        if computed is not None:
            return computed
        if value is not None and not (value == "" and ref.spec.get("empty_unset")):
            return value
        if "default" in ref.spec:
            return str(ref.spec["default"])
        raise _Failure("not_initialized_value", f"{element} has not been set")

    def _check_get_indexes(self, arrays: Sequence[tuple[str, int, str]], element: str) -> None:
        bad = _leading_zero(element)
        if bad is not None:
            raise _Failure("get_index", f"index {bad} of {element} has a leading zero")
        for path, index, _ in arrays:
            if index >= self.count(path):
                raise _Failure("get_index", f"{path} has {self.count(path)} record(s); index {index} is out of range")

    def _target(self, element: str) -> dict[str, Any] | None:
        """Elements with a {target=ID} suffix (IDs may contain dots, so they are matched first)."""
        for name, spec in self.table["targets"].items():
            if element == name or element.startswith(name + "."):
                suffix = element[len(name) + 1 :]
                if not re.fullmatch(self.table["patterns"]["target_suffix"], suffix):
                    raise _Failure("missing_target", f"{name} needs a .{{target=ID}} suffix")
                return dict(spec)
        return None

    def _keyword(self, element: str, parts: list[str], *, setting: bool) -> str:
        keyword, parent = parts[-1], ".".join(parts[:-1])
        if element in self.table["undefined"]:
            raise _Failure("undefined", f"{element} is not defined")
        template = ".".join("n" if _DIGITS.fullmatch(p) else p for p in parts[:-1])
        if template not in self._known:
            raise _Failure("undefined", f"{parent} is not a data model element")
        if setting:
            raise _Failure("set_keyword", f"{keyword} is a read-only keyword")
        self._check_get_indexes(_template_of(parent)[1], parent)
        if keyword == "_version":
            if parent != "cmi":
                raise _Failure("no_version", "only cmi has _version")
            return str(self.table["data_model_version"])
        if keyword == "_children":
            if template not in self.table["children"]:
                raise _Failure("no_children", f"{parent} has no children")
            return str(self.table["children"][template])
        if template not in self.table["arrays"]:
            raise _Failure("no_count", f"{parent} is not an array")
        return str(self.count(parent))

    def _resolve(self, element: str) -> _Ref:
        found = _resolution(self.scorm_version, element)
        if isinstance(found, tuple):
            raise _Failure(*found)
        return found

    def _shared_access(self, ref: _Ref, which: int) -> bool:
        """adl.data readSharedData (which=0) / writeSharedData (which=1) of the record's store (its id is
        always readable, as the conformance suite's DMI expects)."""
        if not ref.store:
            return True
        index = ref.indices[0]
        return index >= len(self.data_access) or self.data_access[index][which]

    # ------------------------------------------------------------------------------------ SetValue
    def _set(self, element: str, value: str) -> None:
        ref = _set_plan(self.scorm_version, element)
        if isinstance(ref, tuple):
            raise _Failure(*ref)
        if ref.store and not self._shared_access(ref, 1):
            raise _Failure("read_only", f"{element} is read-only")
        created = self._check_set_indexes(ref) if ref.arrays else []  # (an index segment makes an array level)
        self._check_dependencies(ref)
        if ref.write_once or ref.unique:
            self._check_identity(ref, value)
        interaction_type = self._interaction_type(ref)
        if ref.pattern:
            self._check_pattern_limit(ref, interaction_type, created)
        error, note = check_value(self.table, self._elements[ref.template], value, interaction_type)
        if error:
            raise _Failure(error, f"{element}: {note}")
        if ref.pattern:
            self._check_unique_pattern(ref, interaction_type, value)
        self.diagnostic = note
        self.cmi[element] = value
        for path in created:
            self._counts[path] = self.count(path) + 1

    def _check_set_indexes(self, ref: _Ref) -> list[str]:
        """Arrays are packed: index == _count appends a record (not to a fixed array), anything beyond fails."""
        bad = _leading_zero(ref.name)
        if bad is not None:
            raise _Failure("set_index", f"index {bad} of {ref.name} has a leading zero")
        created = []
        for path, index, template in ref.arrays:
            count = self.count(path)
            if index > count:
                raise _Failure("set_index", f"{path} has {count} record(s); set index {count} first")
            if index < count:
                continue
            array = self.table["arrays"][template]
            if array.get("fixed"):
                raise _Failure("set_index", f"{path} has {count} record(s), all from the LMS")
            if count >= array.get("max_records", count + 1):
                raise _Failure("max_records", f"{path} is limited to {count} records")
            id_field = array.get("id_field")
            if id_field and ref.template[len(template) + 3 :] != id_field:
                raise _Failure("new_record", f"set {path}.{index}.{id_field} first")
            created.append(path)
        return created

    def _check_dependencies(self, ref: _Ref) -> None:
        for needed in ref.needs:
            if needed not in self.cmi:
                raise _Failure("dependency", f"set {needed} first")

    def _check_identity(self, ref: _Ref, value: str) -> None:
        """Write-once ids keep their value; unique ids differ from every sibling record's."""
        old = self.cmi.get(ref.name)
        if ref.write_once and old is not None and old != value:
            raise _Failure("write_once", f"{ref.name} is already {old!r} and cannot change")
        if ref.unique:
            path, index, template = ref.arrays[-1]
            if value in self._siblings(path, index, ref.template[len(template) + 3 :]):
                raise _Failure("not_unique", f"{value!r} is already used in {path}")

    def _siblings(self, path: str, index: int, child: str) -> list[str]:
        """The values of `child` in the other records of the array at `path`."""
        keys = (f"{path}.{i}.{child}" for i in range(self.count(path)) if i != index)
        return [self.cmi[key] for key in keys if key in self.cmi]

    def _interaction_type(self, ref: _Ref) -> str | None:
        return self.cmi.get(ref.type_element) if ref.type_element else None

    def _check_pattern_limit(self, ref: _Ref, interaction_type: str | None, created: list[str]) -> None:
        formats = self.table["interaction_types"].get(interaction_type or "", {})
        path = ref.arrays[-1][0]
        limit = formats.get("max_patterns")
        if limit is not None and path in created and self.count(path) >= limit:
            raise _Failure("max_records", f"a {interaction_type} interaction has at most {limit} pattern(s)")

    def _check_unique_pattern(self, ref: _Ref, interaction_type: str | None, value: str) -> None:
        formats = self.table["interaction_types"].get(interaction_type or "", {})
        path, index, template = ref.arrays[-1]
        if formats.get("unique_patterns") and value in self._siblings(path, index, "pattern"):
            raise _Failure("not_unique", f"pattern {value!r} is already a correct response")


@_per_name
def _set_plan(scorm_version: str, element: str) -> _Ref | tuple[str, str]:
    """SetValue's checks of the name alone, in their order: empty, read-only {target=ID} element,
    keyword, undefined or container, read-only. The element, or the (failure key, diagnostic).

    Every commit sets a small set of recurring names: cached (shared access, indexes, dependencies and
    the value are checked on each call)."""
    if element == "":
        return "empty_set", "the element name is empty"
    targets, prefixes = _target_prefixes(scorm_version)
    if element in targets or element.startswith(prefixes):
        return "read_only", f"{element} is read-only"
    parts = element.split(".")
    if parts[-1] in KEYWORDS:
        try:
            DataModel(scorm_version)._keyword(element, parts, setting=True)
        except _Failure as failure:
            return failure.key, failure.diagnostic
    ref = _resolution(scorm_version, element)
    if not isinstance(ref, tuple) and ref.spec["access"] == "RO":
        return "read_only", f"{element} is read-only"
    return ref


def apply_patch(
    scorm_version: str,
    current: Mapping[str, str],
    patch: Mapping[str, str],
    *,
    data_access: Sequence[Sequence[bool]] = (),
    suspend_data_limit: int | None = None,
) -> tuple[dict[str, str], list[CmiError]]:
    """Apply a programmatic CMI update (PATCH /sessions/{id}) as a SCO would, in order.

    Every write goes through SetValue's rules (read-only elements are refused, arrays must be filled
    in order, ...). All errors are collected; when there is any, the returned dict equals `current`.
    """
    model = DataModel(scorm_version, current, data_access=data_access, suspend_data_limit=suspend_data_limit)
    errors: list[CmiError] = []
    for element, value in patch.items():
        if not isinstance(value, str):
            errors.append(CmiError(element, repr(value), int(model.table["errors"]["type"]), "values must be strings"))
            continue
        code = model.set_value(element, value)
        if code:
            text = model.table["error_strings"].get(str(code), "")
            errors.append(CmiError(element, value, code, f"{text}: {model.diagnostic}"))
    return (dict(current) if errors else model.cmi), errors


def validate_patch(
    scorm_version: str,
    current: Mapping[str, str],
    patch: Mapping[str, str],
    *,
    data_access: Sequence[Sequence[bool]] = (),
    suspend_data_limit: int | None = None,
) -> list[CmiError]:
    """The errors `apply_patch` would report (empty when the whole patch is acceptable)."""
    return apply_patch(scorm_version, current, patch, data_access=data_access, suspend_data_limit=suspend_data_limit)[1]


__all__ = [
    "CmiError",
    "DataModel",
    "apply_patch",
    "count_records",
    "initial_cmi",
    "instantiate",
    "validate_patch",
]
