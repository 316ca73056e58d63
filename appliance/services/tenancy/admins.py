"""Admin console accounts: passwords, server-side sessions, CSRF tokens, lockout and tenant scope.

The console (appliance.faces.console) and the `scorm-appliance admins` commands (appliance.faces.cli.admins) are
both clients of this module; nothing else reads the `admins` and `admin_sessions` tables.

Passwords are hashed with scrypt from the standard library (`hashlib.scrypt`, OpenSSL's): a
memory-hard KDF, which is what a password hash needs (a GPU guesser pays for memory per guess), and it
needs no compiled dependency the way argon2 would (argon2-cffi), so the wheel and the single-file
zipapp keep installing everywhere Python does. The parameters (N=2^14, r=8, p=1: 16 MiB and some
50 ms per hash) are stored in the hash, so they can be raised later without breaking old hashes.

A session is a random token in an HttpOnly cookie; the registry keeps only its SHA-256 (a leaked
registry yields no live session), with an idle expiry (moved on by every request) and an absolute
one (never moved). Its CSRF token is the synchronizer kind: random per session, stored with it, sent
back by every form and script, compared in constant time.

Lockout is per account (in the registry, so it survives a restart: `LOCK_AFTER` failures in a row lock
the account for `LOCK_SECONDS`) and per address (appliance.services.tenancy.ratelimit.AuthFailureLimiter,
held by the console: in memory, or in Redis shared by every worker when `redis_url` is set). A locked
account's login is refused even with the right password, so a guesser learns nothing from the answer.

Tenant scope: a tenant admin's every tenant lookup goes through `scoped_tenant`, the one place that
decides; another tenant is NotFound (not Forbidden: its existence is none of their business).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

import apsw
import msgspec

from appliance.errors import ApplianceError, Forbidden, NotFound, Unauthorized, ValidationFailed
from appliance.ids import base32, sha256_hex
from appliance.instance import Instance
from appliance.services.tenancy.tenants import Tenant, find_tenant, get_tenant
from appliance.storage.sqlite.connection import one, rows

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # scrypt of a megabyte "password" is a cheap denial of service
IDLE_SECONDS = 30 * 60  # a session unused this long is over
ABSOLUTE_SECONDS = 12 * 3600  # and every session is over this long after login
LOCK_AFTER = 5  # failed logins in a row that lock an account
LOCK_SECONDS = 15 * 60
_USERNAME = re.compile(r"^[A-Za-z0-9._@\-]{1,64}$")


class LoginRefused(ApplianceError):
    """A login that did not succeed (wrong password, unknown account, locked): one message for all."""

    code = "UNAUTHORIZED"


class Admin(msgspec.Struct):
    """An account's public record (never its password hash)."""

    id: str
    username: str
    tenant_id: str | None
    created_at: float
    last_login_at: float | None
    locked_until: float | None

    @property
    def superuser(self) -> bool:
        """Whether the account sees every tenant and the server's own pages (no tenant of its own)."""
        return self.tenant_id is None


class ConsoleSession(msgspec.Struct):
    """A live session: who, its CSRF token, and when it ends."""

    id: str  # the hash of the cookie's token
    admin: Admin
    csrf_token: str
    expires_at: float


# -- passwords ---------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` (salt and hash in base64) of `password`."""
    check_password(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(
        [
            "scrypt",
            str(SCRYPT_N),
            str(SCRYPT_R),
            str(SCRYPT_P),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (constant-time comparison of the digests)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt" or len(password) > MAX_PASSWORD_CHARS:
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want), maxmem=2**26
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A hash to verify against when the account does not exist, so that a login for an unknown name costs
# the same scrypt as one for a known name (no timing tells which names exist). Made on first use.
_dummy_hash: str | None = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def check_password(password: str) -> str:
    """A new password: at least MIN_PASSWORD_CHARS characters (and not absurdly long)."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ValidationFailed(
            f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters",
            {"errors": [{"field": "password", "min_length": MIN_PASSWORD_CHARS}]},
        )
    return password


# -- accounts ----------------------------------------------------------------------------------------


def _from_row(row: dict[str, Any]) -> Admin:
    return Admin(
        id=row["id"],
        username=row["username"],
        tenant_id=row["tenant_id"],
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        locked_until=row["locked_until"],
    )


def create_admin(inst: Instance, username: str, password: str, tenant_ref: str | None = None) -> Admin:
    """A superuser (no tenant) or a tenant admin (`tenant_ref`: the tenant's id or name)."""
    if not _USERNAME.match(username):
        raise ValidationFailed("a username is 1 to 64 letters, digits or . _ @ -", {"errors": [{"field": "username"}]})
    tenant_id = get_tenant(inst, tenant_ref).id if tenant_ref else None
    stored = hash_password(password)
    now = inst.clock.now()
    admin_id = "adm_" + base32(secrets.token_bytes(15))

    def insert(conn: apsw.Connection) -> dict[str, Any]:
        if one(conn, "SELECT id FROM admins WHERE username = ?", (username,)):
            raise ValidationFailed(f"an admin named {username!r} exists", {"errors": [{"field": "username"}]})
        conn.execute(
            "INSERT INTO admins (id, username, password_hash, tenant_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (admin_id, username, stored, tenant_id, now, now),
        )
        return one(conn, "SELECT * FROM admins WHERE id = ?", (admin_id,)) or {}

    return _from_row(inst.registry.write_sync(insert))


def list_admins(inst: Instance) -> list[Admin]:
    """Every account, by username."""
    return [_from_row(r) for r in inst.registry.read_sync(lambda c: rows(c, "SELECT * FROM admins ORDER BY username"))]


def get_admin(inst: Instance, ref: str) -> Admin:
    """An account by id or username, or NotFound."""
    row = inst.registry.read_sync(lambda c: one(c, "SELECT * FROM admins WHERE id = ? OR username = ?", (ref, ref)))
    if row is None:
        raise NotFound(f"no admin {ref!r}")
    return _from_row(row)


def delete_admin(inst: Instance, ref: str) -> Admin:
    """Delete an account; its sessions end with it (ON DELETE CASCADE)."""
    admin = get_admin(inst, ref)
    inst.registry.write_sync(lambda c: c.execute("DELETE FROM admins WHERE id = ?", (admin.id,)))
    return admin


def set_password(inst: Instance, ref: str, password: str) -> Admin:
    """A new password; unlocks the account and ends its sessions (whoever held one needs the new one)."""
    admin = get_admin(inst, ref)
    stored = hash_password(password)
    now = inst.clock.now()

    def update(conn: apsw.Connection) -> None:
        conn.execute(
            "UPDATE admins SET password_hash = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE id = ?",
            (stored, now, admin.id),
        )
        conn.execute("DELETE FROM admin_sessions WHERE admin_id = ?", (admin.id,))

    inst.registry.write_sync(update)
    return get_admin(inst, admin.id)


def admin_json(admin: Admin) -> dict[str, Any]:
    """An account as the CLI's --json prints it."""
    from appliance.clock import rfc3339

    return {
        "id": admin.id,
        "username": admin.username,
        "role": "superuser" if admin.superuser else "tenant",
        "tenant_id": admin.tenant_id,
        "created_at": rfc3339(admin.created_at),
        "last_login_at": rfc3339(admin.last_login_at),
        "locked_until": rfc3339(admin.locked_until),
    }


# -- login and sessions --------------------------------------------------------------------------------


def login(inst: Instance, username: str, password: str, address: str) -> tuple[ConsoleSession, str]:
    """Check the password and open a session; returns it and the cookie's token (never stored).

    Every refusal is the same LoginRefused, whether the name is unknown, the password wrong or the
    account locked (then `details.locked` is not given either: a guesser must not learn it works).
    """
    now = inst.clock.now()
    row = inst.registry.read_sync(lambda c: one(c, "SELECT * FROM admins WHERE username = ?", (username,)))
    ok = verify_password(password, row["password_hash"] if row else _dummy())
    if row is None:
        raise LoginRefused("wrong username or password")
    if row["locked_until"] is not None and row["locked_until"] > now:
        raise LoginRefused("wrong username or password")
    if not ok:
        _note_failure(inst, row["id"], now)
        raise LoginRefused("wrong username or password")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session_id = sha256_hex(token)

    def open_session(conn: apsw.Connection) -> None:
        conn.execute(
            "UPDATE admins SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?", (now, row["id"])
        )
        conn.execute("DELETE FROM admin_sessions WHERE expires_at <= ? OR last_seen_at <= ?", (now, now - IDLE_SECONDS))
        conn.execute(
            "INSERT INTO admin_sessions (id, admin_id, csrf_token, address, created_at, last_seen_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, row["id"], csrf, address, now, now, now + ABSOLUTE_SECONDS),
        )

    inst.registry.write_sync(open_session)
    admin = get_admin(inst, row["id"])
    return ConsoleSession(id=session_id, admin=admin, csrf_token=csrf, expires_at=now + ABSOLUTE_SECONDS), token


def _note_failure(inst: Instance, admin_id: str, now: float) -> None:
    """One more failure in a row; the LOCK_AFTER-th locks the account for LOCK_SECONDS."""

    def note(conn: apsw.Connection) -> None:
        conn.execute("UPDATE admins SET failed_logins = failed_logins + 1 WHERE id = ?", (admin_id,))
        conn.execute(
            "UPDATE admins SET locked_until = ?, failed_logins = 0 WHERE id = ? AND failed_logins >= ?",
            (now + LOCK_SECONDS, admin_id, LOCK_AFTER),
        )

    inst.registry.write_sync(note)


def session_for(inst: Instance, token: str) -> ConsoleSession:
    """The live session of a cookie's token (its idle expiry moved on), else Unauthorized."""
    now = inst.clock.now()
    session_id = sha256_hex(token)

    def touch(conn: apsw.Connection) -> dict[str, Any] | None:
        found = one(
            conn,
            "SELECT s.id AS sid, s.csrf_token, s.expires_at, s.last_seen_at, a.* FROM admin_sessions s "
            "JOIN admins a ON a.id = s.admin_id WHERE s.id = ?",
            (session_id,),
        )
        if found is None:
            return None
        if found["expires_at"] <= now or found["last_seen_at"] + IDLE_SECONDS <= now:
            conn.execute("DELETE FROM admin_sessions WHERE id = ?", (session_id,))
            return None
        if now - found["last_seen_at"] >= 5:  # a page's burst of requests writes once
            conn.execute("UPDATE admin_sessions SET last_seen_at = ? WHERE id = ?", (now, session_id))
        return found

    row = inst.registry.write_sync(touch)
    if row is None:
        raise Unauthorized("not signed in, or the session has ended")
    return ConsoleSession(
        id=row["sid"], admin=_from_row(row), csrf_token=row["csrf_token"], expires_at=row["expires_at"]
    )


def logout(inst: Instance, session: ConsoleSession) -> None:
    """End the session at once."""
    inst.registry.write_sync(lambda c: c.execute("DELETE FROM admin_sessions WHERE id = ?", (session.id,)))


def csrf_ok(session: ConsoleSession, presented: str | None) -> bool:
    """Whether `presented` is the session's CSRF token (constant-time)."""
    return bool(presented) and hmac.compare_digest(presented.encode(), session.csrf_token.encode())  # type: ignore[union-attr]


# -- tenant scope ---------------------------------------------------------------------------------------


def scoped_tenant(inst: Instance, admin: Admin, ref: str) -> Tenant:
    """The tenant `ref` names, if `admin` may see it: the one place the console's tenant scope is decided.

    A tenant admin asking for another tenant gets NotFound, exactly as for a tenant that does not exist.
    """
    tenant = inst.registry.read_sync(lambda c: find_tenant(c, ref))
    if tenant is None or (admin.tenant_id is not None and tenant.id != admin.tenant_id):
        raise NotFound(f"no tenant {ref!r}")
    return tenant


def visible_tenants(inst: Instance, admin: Admin) -> list[Tenant]:
    """Every tenant for a superuser; a tenant admin's own one only."""
    from appliance.services.tenancy.tenants import list_tenants

    return [t for t in list_tenants(inst) if admin.tenant_id is None or t.id == admin.tenant_id]


def require_superuser(admin: Admin) -> None:
    """Server-wide actions (tenants' creation, plans, backups, logs, settings) are a superuser's."""
    if not admin.superuser:
        raise Forbidden("this needs a superuser")
