"""Every setting of the appliance, with its default: the only code that knows setting names.

`Config` is built once (by the CLI from flags, the environment and the settings file, or by tests
directly) and passed to `create_app`. Nothing reads the environment at import time.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

ENV_PREFIX = "SCORM_APPLIANCE_"
SETTINGS_FILE = "settings.toml"
GIB = 1024**3
DURABILITY_LEVELS = ("normal", "full")  # docs/service.md, "Durability"


def default_data_dir() -> Path:
    """The platform's per-user data directory for the appliance."""
    return Path(platformdirs.user_data_dir("scorm-appliance", appauthor=False))


@dataclass(frozen=True)
class Config:
    """All settings. Each field is documented in docs/configuration.md (a test checks that)."""

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    log_level: str = "info"
    log_format: str = "text"
    shutdown_timeout_seconds: float = 30.0
    max_upload_bytes: int = 4 * GIB
    max_uncompressed_bytes: int = 8 * GIB
    max_package_files: int = 50_000
    max_compression_ratio: int = 200
    max_manifest_bytes: int = 16 * 1024 * 1024
    min_free_disk_bytes: int = 1 * GIB
    durability: str = "normal"
    database: str = "sqlite"  # or a postgresql:// URL (docs/scale-out.md, "Databases")
    database_schema: str = "appliance"
    database_pool_size: int = 8
    default_session_ttl_seconds: int = 86_400
    launch_token_ttl_seconds: int = 86_400
    job_concurrency: int = 2
    job_max_attempts: int = 5
    job_poll_seconds: float = 1.0
    job_lease_seconds: float = 60.0  # a claimed job's, webhook delivery's, forwarding target's lease
    job_stale_seconds: float = 600.0
    expiry_sweep_seconds: float = 300.0
    jwks_cache_seconds: float = 300.0
    jwt_max_lifetime_seconds: float = 86_400.0
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 10
    webhook_disable_after_seconds: float = 86_400.0
    webhook_dispatch_seconds: float = 1.0
    outbound_allow: tuple[str, ...] = ()
    xapi_forward_batch_size: int = 100
    xapi_forward_timeout_seconds: float = 30.0
    xapi_forward_max_retry_seconds: float = 300.0
    xapi_scorm_statements: bool = True
    xapi_scorm_home_page: str | None = None
    xapi_scorm_flush_seconds: float = 1.0
    usage_flush_seconds: float = 5.0
    max_request_header_bytes: int = 16 * 1024
    frame_ancestors: tuple[str, ...] = ("'self'",)
    content_origin: str | None = None
    learner_requests_per_minute: int = 600
    tenant_learner_requests_per_minute: int = 120_000
    auth_failures_per_minute: int = 20
    auth_block_seconds: float = 300.0
    sequencing_workers: int = 1
    redis_url: str | None = None  # docs/scale-out.md, "Rate limits and caches"
    # Package files: the data directory, or an s3:// bucket (docs/scale-out.md, "Files"). Unset S3
    # options take appliance.storage.files.config's defaults; `files_config()` checks them together.
    files: str = "local"
    files_endpoint: str | None = None
    files_region: str | None = None
    files_addressing_style: str | None = None
    files_access_key_id: str | None = None
    files_secret_access_key: str | None = field(default=None, repr=False)
    files_serve: str | None = None
    files_signed_url_seconds: int | None = None
    files_redirect_min_bytes: int | None = None
    orphan_files_grace_seconds: float = 86_400.0  # appliance.services.library.package_sweep

    def with_overrides(self, values: Mapping[str, Any]) -> Config:
        """Return a copy with the given settings replaced, each converted to the field's type."""
        known = {f.name: f for f in fields(self)}
        converted: dict[str, Any] = {}
        for name, raw in values.items():
            if raw is None:
                continue
            if name not in known:
                raise ValueError(f"unknown setting {name!r}")
            converted[name] = _convert(getattr(self, name), name, raw)
        return replace(self, **converted)


def _convert(current: Any, name: str, raw: Any) -> Any:
    if name == "data_dir":
        return Path(raw).expanduser()
    if name == "public_url":
        return str(raw).rstrip("/") or None
    if name == "durability":
        if str(raw).lower() not in DURABILITY_LEVELS:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY_LEVELS)}, not {raw!r}")
        return str(raw).lower()
    if name == "database":
        return database_setting(str(raw))
    if name == "database_schema" and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", str(raw)):
        raise ValueError(f"database_schema must be a lower-case SQL name (letters, digits, _), not {raw!r}")
    if name == "outbound_allow":
        return _allow_list(raw)
    if name == "frame_ancestors":
        return frame_ancestor_list(raw)
    if name == "redis_url":
        return str(raw).strip() or None
    if name.startswith("files"):
        return _files_value(name, raw)
    if name == "orphan_files_grace_seconds" and not float(raw) >= 3600:
        raise ValueError(f"orphan_files_grace_seconds must be at least 3600 (an hour), not {raw!r}")
    if name == "job_lease_seconds" and not float(raw) > 0:
        raise ValueError(f"job_lease_seconds must be more than 0, not {raw!r}")
    if name == "content_origin":
        from appliance.services.library.origins import normalise  # imported late, as outbound's: settings load first

        return normalise(str(raw)) if str(raw).strip() else None
    if isinstance(current, bool):
        return str(raw).lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    return str(raw)


_FILES_INTEGERS = ("files_signed_url_seconds", "files_redirect_min_bytes")


def _files_value(name: str, raw: Any) -> Any:
    """A `files*` setting as given (text, or an integer for the two counts); empty text is unset.
    Their meaning is checked together, by `files_config`, when the settings are loaded."""
    text = str(raw).strip()
    if name == "files":
        return text or "local"
    if not text:
        return None
    if name in _FILES_INTEGERS:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer, not {raw!r}") from None
    return text


def files_config(config: Config) -> Any:
    """The typed `files` config (`appliance.storage.files.config.FilesConfig`) of these settings;
    ValueError naming the setting for anything wrong, so a bad value stops the start."""
    from appliance.storage.files.config import SETTINGS, parse_files  # imported late: the settings load first

    given = {name: getattr(config, name) for name in SETTINGS if getattr(config, name) is not None}
    return parse_files(given, data_dir=Path(config.data_dir))


def database_setting(raw: str) -> str:
    """`database`: `sqlite` (the files in the data directory) or the PostgreSQL URL the appliance connects with."""
    value = raw.strip()
    if value.lower() == "sqlite":
        return "sqlite"
    if value.startswith(("postgresql://", "postgres://")):
        return value
    raise ValueError("database must be 'sqlite' or a postgresql:// URL")  # not echoed: it may hold a password


def _allow_list(raw: Any) -> tuple[str, ...]:
    """`outbound_allow`: a TOML list, or one string of entries separated by commas or spaces (env, flag).

    Each entry is checked here (appliance.services.delivery.outbound's syntax), so a typo stops the start, not a delivery.
    """
    from appliance.services.delivery.outbound import (
        parse_entry,  # imported late: the settings load before anything else
    )

    entries = [str(e).strip() for e in raw] if isinstance(raw, list | tuple) else str(raw).replace(",", " ").split()
    for entry in entries:
        parse_entry(entry)
    return tuple(e for e in entries if e)


# A CSP source an operator may let frame the player: an origin (scheme, host or `*.` subdomains, optional port).
_ORIGIN = re.compile(
    r"^https?://(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:(\d{1,5}|\*))?$"
)
_KEYWORDS = {"self": "'self'", "'self'": "'self'", "none": "'none'", "'none'": "'none'"}


def frame_ancestor_list(raw: Any) -> tuple[str, ...]:
    """`frame_ancestors`: a TOML list, or one string of entries separated by commas or spaces (env).

    Each entry becomes part of a `Content-Security-Policy` header, so anything but `'self'`, `'none'`
    (alone) or an origin such as `https://lms.example.org` stops the start with the entry named.
    """
    entries = [str(e).strip() for e in raw] if isinstance(raw, list | tuple) else str(raw).replace(",", " ").split()
    checked: list[str] = []
    for entry in (e for e in entries if e):
        keyword = _KEYWORDS.get(entry.lower())
        if keyword is None:
            origin = entry.lower().rstrip("/")
            match = _ORIGIN.fullmatch(origin)
            port = origin.rsplit(":", 1)[-1] if origin.count(":") == 2 else ""
            if match is None or (port.isdigit() and not 0 < int(port) < 65536):
                raise ValueError(
                    f"frame_ancestors: {entry!r} is not 'self', 'none' or an origin like https://lms.example.org"
                )
            keyword = origin
        if keyword not in checked:
            checked.append(keyword)
    if not checked:
        raise ValueError("frame_ancestors is empty: use 'none' to forbid framing the player")
    if "'none'" in checked and len(checked) > 1:
        raise ValueError("frame_ancestors: 'none' cannot be combined with other entries")
    return tuple(checked)


def setting_names() -> list[str]:
    """Every setting's name, in declaration order."""
    return [f.name for f in fields(Config)]


def env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """Settings given as SCORM_APPLIANCE_<NAME> environment variables."""
    found = {}
    for name in setting_names():
        key = ENV_PREFIX + name.upper()
        if key in environ:
            found[name] = environ[key]
    return found


def file_overrides(data_dir: Path) -> dict[str, Any]:
    """Settings from `settings.toml` in the data directory, if it exists."""
    path = data_dir / SETTINGS_FILE
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        values = tomllib.load(fh)
    values.pop("data_dir", None)  # the file lives in the data dir; it cannot move it
    return values


def load_config(cli_values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    """Build the Config: defaults, then the settings file, then the environment, then CLI flags."""
    environ = os.environ if environ is None else environ
    env = env_overrides(environ)
    data_dir_raw = cli_values.get("data_dir") or env.get("data_dir")
    base = Config() if data_dir_raw is None else Config(data_dir=Path(data_dir_raw).expanduser())
    config = base.with_overrides(file_overrides(base.data_dir))
    config = config.with_overrides({k: v for k, v in env.items() if k != "data_dir"})
    config = config.with_overrides({k: v for k, v in cli_values.items() if k != "data_dir"})
    files_config(config)  # the `files*` settings are checked together, before anything starts
    return config
