"""Resources of a manifest, and the href rules that turn them into launch URLs and package paths.

Packaging spec section 3: URL = manifest xml:base + resources xml:base + resource xml:base + href, then
the item's parameters. Hrefs are URI references while ZIP members are literal names, so `package_path`
maps an href to the member it names (query and fragment dropped, percent-decoded, normalised) and says
when it leaves the package, which an LMS must not serve.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

from lxml import etree

from appliance.core.scorm.manifest_xml import XML_BASE, cp_children, ext_attr, note
from appliance.core.scorm.model import Problem, Resource

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_EXTERNAL_SCHEMES = ("http:", "https:")


def is_external(href: str) -> bool:
    """An absolute http(s) URL: content served from elsewhere, kept as written."""
    return href.lower().startswith(_EXTERNAL_SCHEMES)


def package_path(href: str) -> str | None:
    """The package member an href names, or None when it is external or would leave the package.

    None covers http(s) URLs, other schemes (file:, javascript:, a Windows drive "C:"), absolute
    paths and `..` segments that climb above the package root.
    """
    if _SCHEME.match(href) or href.startswith(("/", "\\")):
        return None
    path = re.split(r"[?#]", href, maxsplit=1)[0]
    path = unquote(path).replace("\\", "/")
    if not path:
        return None
    normalised = posixpath.normpath(path)
    if normalised == ".." or normalised.startswith(("../", "/")):
        return None
    return normalised


def append_parameters(href: str, parameters: str | None) -> str:
    """Append an item's parameters to its resource href (spec section 3, step 3).

    Leading `?`/`&` are stripped and the rest joined with `&` or `?`, placed before any fragment. A
    value starting with `#` is a fragment: appended only when the href has none (the CAM wording;
    ADL's reference also skips it after a query, which loses the fragment for no reason).
    """
    if not parameters or not parameters.strip():
        return href
    params = parameters.strip()
    if params.startswith("#"):
        return href if "#" in href else href + params
    params = params.lstrip("?&")
    if not params:
        return href
    path, hash_mark, fragment = href.partition("#")
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}{params}{hash_mark}{fragment}"


def clean_base(value: str | None, where: str, notes: list[Problem]) -> str:
    """An xml:base value made safe to concatenate: forward slashes, trailing `/`.

    The spec requires a relative value ending in `/`; authoring tools sometimes omit the slash or use
    backslashes, and every LMS we know of still concatenates, so repair those with a warning.
    """
    if value is None or not value.strip():
        return ""
    base = value.strip()
    if "\\" in base:
        note(notes, "XML_BASE_REPAIRED", f"xml:base {value!r} on {where} uses backslashes", where=where, base=value)
        base = base.replace("\\", "/")
    if not base.endswith("/"):
        note(
            notes, "XML_BASE_REPAIRED", f"xml:base {value!r} on {where} does not end with '/'", where=where, base=value
        )
        base += "/"
    return base


def join_base(base: str, href: str) -> str:
    """Prefix a relative href with the combined xml:base; absolute http(s) hrefs stay as they are."""
    if is_external(href) or _SCHEME.match(href):
        return href
    return base + href


def collect_resources(root: etree._Element, notes: list[Problem]) -> tuple[list[Resource], list[str]]:
    """All resources, sub-manifests' included, and the identifiers of the sub-manifests.

    Sub-manifest resources are flattened (with their own xml:base chain) so that items pointing at
    them still launch; aggregating a whole sub-manifest as an item is not supported.
    """
    resources: list[Resource] = []
    sub_manifests: list[str] = []
    _collect(root, clean_base(root.get(XML_BASE), "manifest", notes), resources, sub_manifests, notes)
    return resources, sub_manifests


def _collect(
    manifest: etree._Element,
    base: str,
    resources: list[Resource],
    sub_manifests: list[str],
    notes: list[Problem],
) -> None:
    for container in cp_children(manifest, "resources"):
        container_base = base + clean_base(container.get(XML_BASE), "resources", notes)
        resources.extend(_resource(element, container_base, notes) for element in cp_children(container, "resource"))
    for sub in cp_children(manifest, "manifest"):
        sub_manifests.append(sub.get("identifier") or "")
        _collect(sub, base + clean_base(sub.get(XML_BASE), "sub-manifest", notes), resources, sub_manifests, notes)


def _resource(element: etree._Element, container_base: str, notes: list[Problem]) -> Resource:
    identifier = (element.get("identifier") or "").strip()
    if not identifier:
        note(
            notes, "MISSING_IDENTIFIER", "a <resource> has no identifier; nothing can reference it", element="resource"
        )
    base = container_base + clean_base(element.get(XML_BASE), f"resource {identifier!r}", notes)
    href = (element.get("href") or "").strip() or None
    files = [
        join_base(base, file_href)
        for file_href in ((file.get("href") or "").strip() for file in cp_children(element, "file"))
        if file_href
    ]
    dependencies = [
        ref for ref in ((dep.get("identifierref") or "").strip() for dep in cp_children(element, "dependency")) if ref
    ]
    return Resource(
        identifier=identifier,
        type=(element.get("type") or "").strip(),
        scorm_type=_scorm_type(element, identifier, notes),
        href=join_base(base, href) if href else None,
        base=base,
        files=files,
        dependencies=dependencies,
    )


def _scorm_type(element: etree._Element, identifier: str, notes: list[Problem]) -> str | None:
    """adlcp:scormType (2004) or adlcp:scormtype (1.2), lower-cased; None when absent or unknown."""
    value = ext_attr(element, "adlcp", "scormType")
    if value is None:
        return None
    normalised = value.strip().lower()
    if normalised in ("sco", "asset"):
        return normalised
    note(
        notes,
        "INVALID_VALUE",
        f"resource {identifier!r} has scormType {value!r}; expected 'sco' or 'asset'",
        resource=identifier,
        attribute="scormType",
        value=value,
    )
    return None


def resource_index(resources: list[Resource]) -> dict[str, Resource]:
    """Resources by identifier; the first wins on duplicates, as in document-order lookups elsewhere."""
    index: dict[str, Resource] = {}
    for resource in resources:
        index.setdefault(resource.identifier, resource)
    return index
