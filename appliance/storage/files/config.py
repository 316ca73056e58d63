"""The `files` setting: where package files live, parsed into a typed config.

    files = "local"                                    the data directory (default)
    files = "s3://bucket"                              one bucket per deployment ...
    files = "s3://bucket/appliance-prod"               ... optionally under a key prefix
    files = "s3://bucket/p?endpoint=http://127.0.0.1:9000&region=eu-west-1"

The S3 details have settings of their own, which win over the URL's query: `files_endpoint`,
`files_region`, `files_addressing_style` (`path`, `virtual` or `auto`), `files_access_key_id`,
`files_secret_access_key`, `files_signed_url_seconds`, `files_serve` and `files_redirect_min_bytes`.
Each is read from the settings file (a mapping) and then from `SCORM_APPLIANCE_<NAME>` environment
variables, the same order `appliance.config` uses. Credentials are never taken from the URL (URLs end
up in logs); without them boto3's own chain applies (AWS_* variables, ~/.aws, an instance role).

The settings are fields of `appliance.config.Config` (settings file, environment, as every setting);
`appliance.config.files_config` hands the ones given to `parse_files`, when the settings load and
when `Instance` opens its one store (`Instance.files`). `files_settings` reads a plain mapping and
the environment the same way, for tools without a Config.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from appliance.storage.files.base import FileStore, check_folder

ENV_PREFIX = "SCORM_APPLIANCE_"
SETTINGS = (
    "files",
    "files_endpoint",
    "files_region",
    "files_addressing_style",
    "files_access_key_id",
    "files_secret_access_key",
    "files_signed_url_seconds",
    "files_serve",
    "files_redirect_min_bytes",
)
SERVE_MODES = ("stream", "redirect")
ADDRESSING_STYLES = ("auto", "path", "virtual")
MAX_SIGNED_URL_SECONDS = 3600
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_QUERY_KEYS = {"endpoint": "files_endpoint", "region": "files_region", "addressing_style": "files_addressing_style"}


@dataclass(frozen=True)
class LocalFilesConfig:
    """Files in the data directory; `durable` follows the `durability` setting's fsyncs."""

    root: Path
    durable: bool = True


@dataclass(frozen=True)
class S3FilesConfig:
    """Files in one bucket of an S3-compatible store, keys under `prefix` ("" or ending in "/").

    `serve` is how content reaches the browser: `stream` relays every byte through the worker (what
    the local store does); `redirect` answers media files (image/audio/video) of at least
    `redirect_min_bytes` with a 302 to a presigned URL valid `signed_url_seconds`. Pages, scripts and
    data files are always streamed: a course's HTML must come from the player's origin to reach the
    SCORM API in its parent frame, and its XHRs would need CORS on the bucket.
    """

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: str = "auto"
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    signed_url_seconds: int = 60
    serve: str = "stream"
    redirect_min_bytes: int = 1024 * 1024
    max_connections: int = 64  # per worker: content streamed from the store, publish puts, uploads
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 60.0


FilesConfig = LocalFilesConfig | S3FilesConfig


def files_settings(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `files*` settings from a settings mapping, then the environment (which wins)."""
    environ = os.environ if environ is None else environ
    found = {name: values[name] for name in SETTINGS if values.get(name) is not None}
    for name in SETTINGS:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            found[name] = environ[key]
    return found


def parse_files(settings: Mapping[str, Any], *, data_dir: Path) -> FilesConfig:
    """A typed config from the `files*` settings; ValueError naming the setting for anything wrong.

    A local store fsyncs what it writes at either `durability` level, as package files are today
    (docs/service.md, "Package files"); `LocalFilesConfig(durable=False)` is for scratch stores.
    """
    raw = str(settings.get("files", "local") or "local").strip()
    if raw == "local":
        extra = sorted(name for name in settings if name != "files")
        if extra:
            raise ValueError(f"files is 'local': {', '.join(extra)} only apply to an s3:// URL")
        return LocalFilesConfig(root=Path(data_dir), durable=True)
    return _parse_s3(raw, settings)


def _parse_s3(raw: str, settings: Mapping[str, Any]) -> S3FilesConfig:
    url = urlsplit(raw)
    if url.scheme != "s3" or not url.netloc:
        raise ValueError(f"files must be 'local' or an s3://bucket[/prefix] URL, not {raw!r}")
    if url.username or url.password or "@" in url.netloc:
        raise ValueError("files: put credentials in files_access_key_id / files_secret_access_key, not the URL")
    bucket = url.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"files: {bucket!r} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')")
    try:
        prefix = check_folder(url.path.strip("/"))
    except Exception as exc:
        raise ValueError(f"files: the key prefix {url.path!r} is not a plain folder path") from exc
    merged: dict[str, Any] = {}
    for key, values in parse_qs(url.query, keep_blank_values=True, strict_parsing=bool(url.query)).items():
        if key not in _QUERY_KEYS:
            raise ValueError(f"files: unknown URL parameter {key!r} (endpoint, region, addressing_style)")
        merged[_QUERY_KEYS[key]] = values[-1]
    merged.update({k: v for k, v in settings.items() if k != "files"})
    return _s3_config(bucket, prefix + "/" if prefix else "", merged)


def _s3_config(bucket: str, prefix: str, values: Mapping[str, Any]) -> S3FilesConfig:
    endpoint = _text(values.get("files_endpoint"))
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ValueError(f"files_endpoint must be an http(s):// URL, not {endpoint!r}")
    style = _text(values.get("files_addressing_style")) or ("path" if endpoint else "auto")
    if style not in ADDRESSING_STYLES:
        raise ValueError(f"files_addressing_style must be one of {', '.join(ADDRESSING_STYLES)}, not {style!r}")
    serve = _text(values.get("files_serve")) or "stream"
    if serve not in SERVE_MODES:
        raise ValueError(f"files_serve must be one of {', '.join(SERVE_MODES)}, not {serve!r}")
    seconds = int(values.get("files_signed_url_seconds", 60))
    if not 1 <= seconds <= MAX_SIGNED_URL_SECONDS:
        raise ValueError(f"files_signed_url_seconds must be 1 to {MAX_SIGNED_URL_SECONDS}, not {seconds}")
    key_id, secret = _text(values.get("files_access_key_id")), _text(values.get("files_secret_access_key"))
    if (key_id is None) != (secret is None):
        raise ValueError("files_access_key_id and files_secret_access_key go together")
    min_bytes = int(values.get("files_redirect_min_bytes", 1024 * 1024))
    if min_bytes < 0:
        raise ValueError("files_redirect_min_bytes cannot be negative")
    return S3FilesConfig(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=endpoint.rstrip("/") if endpoint else None,
        region=_text(values.get("files_region")) or "us-east-1",
        addressing_style=style,
        access_key_id=key_id,
        secret_access_key=secret,
        signed_url_seconds=seconds,
        serve=serve,
        redirect_min_bytes=min_bytes,
    )


def _text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def open_file_store(config: FilesConfig) -> FileStore:
    """The store a config names; boto3 is imported only for S3 (it is in the `scale` extra)."""
    if isinstance(config, LocalFilesConfig):
        from appliance.storage.files.local import LocalFileStore

        return LocalFileStore(config.root, durable=config.durable)
    from appliance.storage.files.s3 import S3FileStore

    return S3FileStore(config)
