"""Roles: what an API key or a JWT user may do inside its tenant, without any HTTP types.

Four roles, from most to least powerful for managing a tenant:

- `admin`: every tenant route, webhooks included (the behaviour of every key before roles existed);
- `member`: packages, sessions and reports, read and write; no webhooks;
- `read`: the GET routes a member has (packages, sessions, reports, usage); nothing that changes data;
- `learner`: create (or resume) a session and get a launch URL for it, nothing else. A JWT user with
  this role may only do so for the learner id that equals its own `sub`.

Every route names the roles it admits (`opt={"roles": ...}` on the route or its controller, read by
`appliance.faces.api.deps.provide_principal`); without one, GET admits `READERS` and every other method
`WRITERS`, so a new route is never open to more than members by accident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from appliance.errors import Forbidden, ValidationFailed

ADMIN, MEMBER, READ, LEARNER = "admin", "member", "read", "learner"
ROLES = (ADMIN, MEMBER, READ, LEARNER)  # also the order of precedence when a token carries several

ADMINS = frozenset({ADMIN})
WRITERS = frozenset({ADMIN, MEMBER})
READERS = frozenset({ADMIN, MEMBER, READ})
SESSION_STARTERS = frozenset({ADMIN, MEMBER, LEARNER})
EVERYONE = frozenset(ROLES)

DEFAULT_KEY_ROLE = ADMIN  # keys made before roles existed, or without --role, keep doing everything
DEFAULT_JWT_ROLE = LEARNER  # a browser user's token without a role claim gets the least power
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def check_role_name(role: str, field: str = "role") -> str:
    """`role` if it is one of ROLES, else VALIDATION_ERROR naming the choices."""
    if role not in ROLES:
        raise ValidationFailed(
            f"unknown role {role!r}; choose one of {', '.join(ROLES)}",
            {"errors": [{"field": field, "message": f"one of {', '.join(ROLES)}"}], "roles": list(ROLES)},
        )
    return role


def allowed_roles(opt: Mapping[str, Any], method: str) -> frozenset[str]:
    """The roles a route admits: its `roles` option, else by method (reads for GET, writers otherwise)."""
    declared = opt.get("roles")
    if declared is not None:
        return frozenset(declared)
    return READERS if method.upper() in READ_METHODS else WRITERS


def require_role(role: str, allowed: frozenset[str]) -> None:
    """Forbidden unless `role` is admitted; the details say which roles would be."""
    if role not in allowed:
        needed = [r for r in ROLES if r in allowed]
        raise Forbidden(
            f"the role {role!r} may not do this; it needs one of: {', '.join(needed)}",
            {"role": role, "allowed_roles": needed},
        )


def role_from_claims(claims: Mapping[str, Any], claim: str, prefix: str, default: str) -> str:
    """The role a verified JWT grants: the most powerful role named in its `claim`, else `default`.

    The claim may be a string (several roles separated by spaces, as OAuth's `scope`) or a list of
    strings (as Keycloak's roles). With a `prefix` (e.g. `org:` for Clerk's `org_role`), only values
    that start with it count, and the rest must be a role name; without one, values must equal a role
    name exactly. Values that name no role are ignored, so other applications' roles grant nothing here.
    """
    raw = claims.get(claim)
    values: Iterable[Any]
    if isinstance(raw, str):
        values = raw.split()
    elif isinstance(raw, list):
        values = raw
    else:
        return default
    named = {v.removeprefix(prefix) for v in values if isinstance(v, str) and v.startswith(prefix)}
    return next((role for role in ROLES if role in named), default)


def bound_learner(role: str, kind: str, subject: str | None) -> str | None:
    """The only learner id a caller may start sessions for: a learner JWT's own `sub`; None means any.

    A learner-role API key belongs to a server (a kiosk, a portal's back end) that starts sessions for
    many learners, so it is not bound.
    """
    return subject if role == LEARNER and kind == "jwt" else None
