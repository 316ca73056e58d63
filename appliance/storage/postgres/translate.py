"""SQLite's SQL, as the services write it, rewritten for PostgreSQL (the survey in this package's docstring).

The rewrite works on tokens (string literals, quoted names and comments are never touched inside), one
statement at a time, and is cached per statement text: the services' SQL is a few hundred constant
strings. What it cannot translate faithfully it refuses with `Untranslatable` rather than guess, so a
service that needs something new fails its PostgreSQL test instead of returning other rows.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from appliance.storage.postgres.catalog import Catalog

TENANT_COLUMN = "tenant_id"

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<comment>--[^\n]*|/\*.*?\*/)
    |(?P<str>'(?:[^']|'')*')
    |(?P<qident>"(?:[^"]|"")*")
    |(?P<param>\?\d*|[:@$][A-Za-z_]\w*)
    |(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
    |(?P<word>[A-Za-z_]\w*)
    |(?P<op><=|>=|<>|!=|==|\|\||<<|>>|.)""",
    re.VERBOSE | re.DOTALL,
)
# Functions and names with no faithful PostgreSQL spelling here: none is used by the services today.
_REFUSED_WORDS = {"rowid", "_rowid_", "oid", "glob", "regexp", "match"}
_REFUSED_CALLS = {
    "last_insert_rowid", "changes", "total_changes", "datetime", "julianday", "strftime", "date", "time",
    "unixepoch", "printf", "format", "iif", "instr", "randomblob", "hex", "typeof", "json_set", "json_each",
    "json_group_array", "json_group_object", "json_array", "json_object",
}  # fmt: skip
_CAST_TYPES = {"INTEGER": "bigint", "INT": "bigint", "REAL": "double precision", "TEXT": "text", "BLOB": "bytea"}
_ORDER_END = {"LIMIT", "OFFSET", "FOR", "WINDOW", "UNION", "EXCEPT", "INTERSECT", ")", ";"}
_IS_RIGHT_END = {"AND", "OR", ")", ",", ";", "THEN", "ELSE", "END", "WHEN", "ORDER", "GROUP", "LIMIT", "HAVING", "IS"}
_IS_RIGHT_END |= {"=", "==", "<>", "!=", "<", ">", "<=", ">=", "IN", "LIKE", "BETWEEN"}
_AGGREGATES = {"sum", "total", "avg", "max", "min"}
_COMPARISONS = {"=", "==", "<>", "!=", "<", ">", "<=", ">=", "IN", "IS", "LIKE", "BETWEEN", "AND", "OR", "NOT"}
_NOT_ALIAS = {"WHERE", "GROUP", "ORDER", "LIMIT", "JOIN", "LEFT", "INNER", "CROSS", "ON", "UNION", "HAVING",
              "WINDOW", "OFFSET", "EXCEPT", "INTERSECT", ")", ",", ";", None}  # fmt: skip
_BOOL_BEFORE = {"WHERE", "AND", "OR", "ON", "HAVING", "WHEN"}
_BOOL_AFTER = {"ORDER", "GROUP", "LIMIT", "AND", "OR", "HAVING", "THEN", ")", ";", None}


class Untranslatable(ValueError):
    """SQL the PostgreSQL backend does not translate (and will not guess at)."""


@dataclass(frozen=True)
class Translated:
    """A statement for psycopg: `%s` or `%(name)s` placeholders, `%` doubled elsewhere."""

    sql: str
    named: bool  # `:name` placeholders: the parameters are a mapping


class _Tokens:
    """The statement's tokens, with the significant ones (not space, not comments) indexed and their
    parentheses matched, for the rewrites below. Rewrites change token texts, never their number."""

    def __init__(self, sql: str) -> None:
        self.kinds: list[str] = []
        self.texts: list[str] = []
        for m in _TOKEN.finditer(sql):
            self.kinds.append(m.lastgroup or "op")
            self.texts.append(m.group())
        self.sig = [i for i, k in enumerate(self.kinds) if k not in ("ws", "comment")]
        self.match: dict[int, int] = {}  # position in sig of "(" <-> its ")"
        stack: list[int] = []
        for p, i in enumerate(self.sig):
            if self.texts[i] == "(":
                stack.append(p)
            elif self.texts[i] == ")":
                if not stack:
                    raise Untranslatable(f"unbalanced parentheses in {sql!r}")
                q = stack.pop()
                self.match[p], self.match[q] = q, p
        if stack:
            raise Untranslatable(f"unbalanced parentheses in {sql!r}")

    def word(self, p: int) -> str | None:
        """The upper-cased text of significant token `p` (None past either end)."""
        if 0 <= p < len(self.sig):
            return self.texts[self.sig[p]].upper()
        return None

    def kind(self, p: int) -> str | None:
        return self.kinds[self.sig[p]] if 0 <= p < len(self.sig) else None

    def set(self, p: int, text: str) -> None:
        self.texts[self.sig[p]] = text

    def get(self, p: int) -> str:
        return self.texts[self.sig[p]] if 0 <= p < len(self.sig) else ""

    def args(self, open_p: int) -> list[tuple[int, int]]:
        """The top-level arguments of the call whose "(" is at `open_p`, as (first, last) positions."""
        close, found, start, p = self.match[open_p], [], open_p + 1, open_p + 1
        while p < close:
            if self.get(p) == "(":
                p = self.match[p]
            elif self.get(p) == ",":
                found.append((start, p - 1))
                start = p + 1
            p += 1
        if start < close:
            found.append((start, close - 1))
        return found

    def depth_end(self, p: int, stops: set[str]) -> int:
        """The first position from `p` at this parenthesis depth whose word is in `stops` (or the end)."""
        while p < len(self.sig):
            w = self.word(p)
            if w == "(":
                p = self.match[p] + 1
                continue
            if w in stops:
                return p
            p += 1
        return p

    def text(self) -> str:
        return "".join(self.texts)


def _insert_target(t: _Tokens) -> tuple[int, str] | None:
    """The table name of an INSERT (position of the name and the name), past any OR IGNORE/REPLACE."""
    if t.word(0) not in ("INSERT", "REPLACE"):
        return None
    p = 1
    if t.word(p) in ("OR", ""):  # "" once `_insert_or` has taken the OR IGNORE away
        p += 2
    if t.word(p) != "INTO":
        raise Untranslatable("INSERT without INTO")
    return p + 1, t.get(p + 1).strip('"')


def _insert_or(t: _Tokens, catalog: Catalog) -> None:
    """INSERT OR IGNORE -> ON CONFLICT DO NOTHING; INSERT OR REPLACE (or REPLACE) -> ON CONFLICT (key) DO UPDATE."""
    target = _insert_target(t)
    if target is None:
        return
    verb = t.word(0) if t.word(0) == "REPLACE" else (t.word(2) if t.word(1) == "OR" else None)
    if verb is None:
        return
    if verb not in ("IGNORE", "REPLACE"):
        raise Untranslatable(f"INSERT OR {verb} has no PostgreSQL equivalent here")
    if t.word(0) == "REPLACE":
        t.set(0, "INSERT")
    else:
        t.set(1, "")
        t.set(2, "")
    name_p, name = target
    on = t.depth_end(name_p, {"ON"})
    if t.word(on + 1) == "CONFLICT":
        raise Untranslatable(f"INSERT OR {verb} with its own ON CONFLICT")
    end = t.depth_end(name_p + 1, {"RETURNING", ";"})
    if verb == "IGNORE":
        clause = " ON CONFLICT DO NOTHING"
    else:
        table = catalog.tables.get(name)
        if table is None:
            raise Untranslatable(f"INSERT OR REPLACE into {name!r}, a table the catalog does not know")
        if t.get(name_p + 1) == "(":
            cols = [t.get(a).strip('"') for a, _ in t.args(name_p + 1)]
        else:
            cols = [c.name for c in table.columns]
        keys = ((TENANT_COLUMN,) if catalog.tenant_owned else ()) + table.primary_key
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in keys)
        clause = f" ON CONFLICT ({', '.join(keys)}) " + (f"DO UPDATE SET {sets}" if sets else "DO NOTHING")
    if end < len(t.sig):
        t.set(end, clause + " " + t.get(end))
    else:
        t.set(len(t.sig) - 1, t.get(len(t.sig) - 1) + clause)


def _on_conflict(t: _Tokens, catalog: Catalog) -> None:
    """A conflict target of a tenant table gains tenant_id (its keys all start with it), and the DO
    UPDATE SET's bare column names name the existing row (PostgreSQL calls them ambiguous)."""
    target = _insert_target(t)
    if target is None:
        return
    table = catalog.tables.get(target[1])
    columns = {c.name for c in table.columns} if table else set()
    for p in range(len(t.sig) - 1):
        if t.word(p) != "ON" or t.word(p + 1) != "CONFLICT":
            continue
        q = p + 2 if t.word(p + 2) != "(" else t.match[p + 2] + 1
        if t.word(p + 2) == "(" and catalog.tenant_owned:
            t.set(p + 2, f"({TENANT_COLUMN}, ")
        if t.word(q) != "DO" or t.word(q + 1) != "UPDATE" or t.word(q + 2) != "SET":
            continue
        end = t.depth_end(q + 3, {"WHERE", "RETURNING", ";"})
        for r in range(q + 3, end):
            if t.kind(r) != "word" or t.get(r) not in columns or t.word(r - 1) == "." or t.word(r + 1) == "(":
                continue
            if t.word(r + 1) == "=" and t.word(r - 1) in ("SET", ","):
                continue  # an assignment's target
            t.set(r, f"{target[1]}.{t.get(r)}")


def _is_distinct(t: _Tokens) -> None:
    """`a IS b` / `a IS NOT b` with b not NULL: SQLite's null-safe comparison, IS [NOT] DISTINCT FROM.
    Beside json_extract (text on PostgreSQL), the other side is compared as text."""
    for p in range(len(t.sig)):
        if t.word(p) != "IS":
            continue
        q = p + 1
        negated = t.word(q) == "NOT"
        if negated:
            q += 1
        if t.word(q) in ("NULL", "TRUE", "FALSE", "DISTINCT", None):
            continue
        t.set(p, "IS DISTINCT FROM" if negated else "IS NOT DISTINCT FROM")
        if negated:
            t.set(p + 1, "")
        left_json = t.word(p - 1) == ")" and t.word(t.match[p - 1] - 1) == "JSON_EXTRACT"
        if left_json:  # IS binds as loosely as `=`: the other side runs to the next comparison or AND/OR
            last = t.depth_end(q, _IS_RIGHT_END) - 1
            t.set(q, "(" + t.get(q))
            t.set(last, t.get(last) + ")::text")


def _json_path(literal: str) -> str:
    """'$.a.b[0]' -> '{a,b,0}' (a path of #>>)."""
    path = literal[1:-1].replace("''", "'")
    if not path.startswith("$"):
        raise Untranslatable(f"json path {literal} does not start with $")
    parts = re.findall(r"\.([A-Za-z_]\w*)|\[(\d+)\]", path[1:])
    if "".join(f".{a}" if a else f"[{b}]" for a, b in parts) != path[1:]:
        raise Untranslatable(f"json path {literal} is not a plain key/index path")
    return "'{" + ",".join(a or b for a, b in parts) + "}'"


def _is_condition(t: _Tokens, first: int, last: int) -> bool:
    """Whether the expression from `first` to `last` is a comparison (boolean on PostgreSQL)."""
    p = first
    while p <= last:
        if t.word(p) == "(":
            p = t.match[p] + 1
            continue
        if t.word(p) in _COMPARISONS:
            return True
        p += 1
    return False


def _cross_join_on(t: _Tokens) -> None:
    """SQLite's `CROSS JOIN t ON …` (a join order the planner keeps) is a plain JOIN … ON on PostgreSQL."""
    for p in range(len(t.sig) - 1):
        if t.word(p) == "CROSS" and t.word(p + 1) == "JOIN" and "ON" in (t.word(p + 3), t.word(p + 4)):
            t.set(p, "")


def _functions(t: _Tokens) -> None:
    """max/min of several values, total, ifnull, json_extract and CAST as PostgreSQL spells them."""
    for p in range(len(t.sig) - 1):
        if t.kind(p) != "word" or t.word(p + 1) != "(" or t.word(p - 1) == ".":
            continue
        name = t.word(p).lower()
        if name in _REFUSED_CALLS:
            raise Untranslatable(f"SQLite's {name}() is not translated for PostgreSQL")
        args = t.args(p + 1)
        close = t.match[p + 1]
        if name in _AGGREGATES and len(args) == 1 and _is_condition(t, *args[0]):
            t.set(args[0][0], "(" + t.get(args[0][0]))  # sum(status = 'passed'): SQLite adds its 0/1
            t.set(args[0][1], t.get(args[0][1]) + ")::int")
        if name in ("max", "min") and len(args) > 1:
            t.set(p, "GREATEST" if name == "max" else "LEAST")
        elif name == "total":
            t.set(p, "(coalesce(sum")
            t.set(close, "), 0))::double precision")
        elif name == "ifnull":
            t.set(p, "coalesce")
        elif name == "json_extract":
            if len(args) != 2 or args[1][0] != args[1][1] or t.kind(args[1][0]) != "str":
                raise Untranslatable("json_extract takes a column and one literal path here")
            t.set(p, "(")
            t.set(args[0][0], "(" + t.get(args[0][0]))
            t.set(args[1][0] - 1, ")::jsonb #>>")
            t.set(args[1][0], _json_path(t.get(args[1][0])))
            t.set(close, "))")
        elif name == "cast":
            as_p, type_p = args[0][1] - 1, args[0][1]
            kind = t.word(type_p) or ""
            if t.word(as_p) != "AS" or kind not in _CAST_TYPES:
                raise Untranslatable("CAST to a type other than INTEGER, REAL, TEXT or BLOB")
            t.set(type_p, _CAST_TYPES[kind])
            if kind in ("INTEGER", "INT"):  # SQLite truncates toward zero; PostgreSQL would round
                t.set(p + 1, "(trunc(")
                t.set(as_p - 1, t.get(as_p - 1) + ")")


def _literals(t: _Tokens) -> None:
    """`WHERE 1` (a condition always true) is boolean on PostgreSQL; `LIMIT -1` is LIMIT ALL; `==` is `=`;
    LIKE is ILIKE."""
    for p in range(len(t.sig)):
        w = t.word(p)
        if w in _BOOL_BEFORE and t.get(p + 1) in ("0", "1") and t.word(p + 2) in _BOOL_AFTER and not _simple_case(t, p):
            t.set(p + 1, "true" if t.get(p + 1) == "1" else "false")
        elif w == "LIMIT" and t.word(p + 1) == "-" and t.word(p + 2) == "1":
            t.set(p + 1, "ALL")
            t.set(p + 2, "")
        elif w == "==":
            t.set(p, "=")
        elif w == "LIKE":  # SQLite's LIKE ignores ASCII case; ILIKE on COLLATE "C" text folds ASCII only too
            t.set(p, "ILIKE")
        elif t.kind(p) == "word" and w.lower() in _REFUSED_WORDS and t.word(p + 1) != "(":
            raise Untranslatable(f"SQLite's {w.lower()} is not translated for PostgreSQL")


def _simple_case(t: _Tokens, p: int) -> bool:
    """Whether the WHEN at `p` belongs to `CASE x WHEN v …`, where v is a value compared, not a condition."""
    if t.word(p) != "WHEN":
        return False
    q = p - 1
    while q >= 0 and t.word(q) != "CASE":
        q = t.match[q] - 1 if t.word(q) == ")" else q - 1
    return q >= 0 and t.word(q + 1) != "WHEN"


def _truthiness(t: _Tokens, catalog: Catalog) -> None:
    """An integer column standing alone as a condition (`WHEN active_pinned THEN`, `WHERE NOT enabled`) is
    true when not 0 in SQLite; PostgreSQL wants a boolean: `(col <> 0)`."""
    for p in range(len(t.sig)):
        if (t.word(p) not in _BOOL_BEFORE and t.word(p) != "NOT") or _simple_case(t, p):
            continue
        last = p + 1
        if t.kind(last) != "word":
            continue
        while t.word(last + 1) == "." and t.kind(last + 2) == "word":
            last += 2
        if t.word(last + 1) not in _BOOL_AFTER or t.word(p + 1) in ("TRUE", "FALSE", "NULL"):
            continue
        if t.get(last) in catalog.integer_columns:
            t.set(p + 1, "(" + t.get(p + 1))
            t.set(last, t.get(last) + " <> 0)")


def _subquery_aliases(t: _Tokens) -> None:
    """A subquery in FROM or JOIN needs a name on PostgreSQL 15 (SQLite does without)."""
    n = 0
    for p in range(len(t.sig)):
        if t.word(p) == "(" and t.word(p - 1) in ("FROM", "JOIN", ",") and t.word(p + 1) in ("SELECT", "WITH"):
            close = t.match[p]
            if t.word(p - 1) == "," and not _in_from(t, p):
                continue
            if t.word(close + 1) in _NOT_ALIAS:
                n += 1
                t.set(close, f") AS _subquery{n}")


def _in_from(t: _Tokens, p: int) -> bool:
    """Whether position `p` is in a FROM list (a comma there separates tables, not select items)."""
    q = p - 1
    while q >= 0:
        w = t.word(q)
        if w == ")":
            q = t.match[q] - 1
            continue
        if w in ("FROM", "JOIN"):
            return True
        if w in ("SELECT", "(", "WHERE", "SET", "VALUES", "BY"):
            return False
        q -= 1
    return False


def _order_by(t: _Tokens, catalog: Catalog) -> None:
    """SQLite sorts NULL first ascending (last descending), PostgreSQL the other way: say so on each
    ORDER BY term that can be NULL. A term that is a column NOT NULL in every table is left as it is, so
    the planner still walks the primary key or an index for it."""
    for p in range(len(t.sig) - 1):
        if t.word(p) != "ORDER" or t.word(p + 1) != "BY":
            continue
        end = t.depth_end(p + 2, _ORDER_END)
        start = p + 2
        while start < end:
            stop = min(t.depth_end(start, {","}), end)
            last = stop - 1
            direction = t.word(last)
            body_end = last - 1 if direction in ("ASC", "DESC") else last
            simple = all(t.kind(q) == "word" or t.get(q) == "." for q in range(start, body_end + 1))
            name = t.get(body_end)
            never_null = simple and name in catalog.column_names and name not in catalog.nullable_columns
            if not never_null and "NULLS" not in {t.word(q) for q in range(start, stop)}:
                t.set(last, t.get(last) + (" NULLS LAST" if direction == "DESC" else " NULLS FIRST"))
            start = stop + 1


def _placeholders(t: _Tokens) -> bool:
    """`?` -> %s, `:name` -> %(name)s; a literal `%` is doubled (psycopg formats the whole text)."""
    named = positional = False
    for i, kind in enumerate(t.kinds):
        text = t.texts[i]
        if kind == "param":
            if text == "?":
                t.texts[i], positional = "%s", True
            elif text[0] == "?":
                raise Untranslatable("numbered ?NNN parameters are not translated")
            else:
                t.texts[i], named = f"%({text[1:]})s", True
        elif "%" in text:
            t.texts[i] = text.replace("%", "%%")
    if named and positional:
        raise Untranslatable("a statement mixes ? and :name parameters")
    return named


@functools.lru_cache(maxsize=4096)
def translate(sql: str, catalog: Catalog) -> Translated:
    """`sql`, written for SQLite against `catalog`'s tables, as a psycopg statement for PostgreSQL."""
    t = _Tokens(sql)
    if not t.sig:
        return Translated(sql, False)
    if t.word(0) == "PRAGMA":
        raise Untranslatable("PRAGMA is SQLite's own (the adapter answers the harmless ones)")
    _insert_or(t, catalog)
    _on_conflict(t, catalog)
    _is_distinct(t)
    _functions(t)
    _literals(t)
    _truthiness(t, catalog)
    _subquery_aliases(t)
    _cross_join_on(t)
    _order_by(t, catalog)
    named = _placeholders(t)
    return Translated(t.text(), named)
