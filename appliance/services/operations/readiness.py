"""Readiness per dependency: what `GET /api/v1/ready` answers (appliance.faces.api.system).

A worker is ready when every dependency it needs for requests answers now, each within a bound:

- **database**: the registry answers a query (SQLite), or one of the pool's connections does within
  2 seconds (PostgreSQL): `Instance.database_problem`.
- **redis**, when `redis_url` is set: a PING within the 0.25 s socket timeout of every Redis call
  (appliance.storage.redis_state). The rate limits fail open to memory without Redis, so requests would
  still be served; but the limits then hold per worker, not for all together, which is a degraded
  deployment an operator should see, and a load balancer can take such a worker out of rotation.
- **files**, when `files` is an `s3://` bucket: a HeadBucket, with a client of its own (2 s to connect and
  to read, no retries: the store's own client retries and waits up to a minute, right for a transfer and
  wrong for a probe). It proves the endpoint answers and the credentials may reach the bucket.

The checks run at the same time (the route gathers them), so the answer takes as long as the slowest.
A failure is reported by its kind only (an exception's class, or S3's error code): the route is
unauthenticated, so the cause's detail (hosts, roles) goes to the server log.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from appliance.instance import Instance
from appliance.storage.files.config import S3FilesConfig

log = logging.getLogger("appliance.readiness")

FILES_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    """The outcome of one dependency's check: its name, whether it answered, and what the body shows."""

    name: str  # "database" | "redis" | "files"
    ok: bool
    detail: dict[str, str] = field(default_factory=dict)  # e.g. the backend; "error" when not ok

    def json(self) -> dict[str, str]:
        """The check in the body: its detail, `status` (`ok` or `unavailable`), then `error` if any."""
        body = {k: v for k, v in self.detail.items() if k != "error"}
        body["status"] = "ok" if self.ok else "unavailable"
        if "error" in self.detail:
            body["error"] = self.detail["error"]
        return body


def check_database(inst: Instance) -> Check:
    """The database backend's own check (Instance.database_problem), named by its backend."""
    problem = inst.database_problem()
    detail = {"backend": inst.backend}
    if problem is not None:
        detail["error"] = problem
    return Check("database", problem is None, detail)


def check_redis(url: str) -> Check:
    """A PING on the process's Redis client (its short timeouts); the breaker of the limits is left alone."""
    from appliance.storage.redis_state import shared  # the embedded default never imports redis

    try:
        shared(url).ping()
    except Exception as exc:  # any failure means "not ready"
        log.warning("Redis not ready: %s", exc)
        return Check("redis", False, {"error": type(exc).__name__})
    return Check("redis", True)


_probes: dict[S3FilesConfig, Any] = {}
_probes_lock = threading.Lock()


def _probe_client(config: S3FilesConfig) -> Any:
    """A boto3 client for probes only: short timeouts, one attempt (made once per process and config)."""
    with _probes_lock:
        client = _probes.get(config)
        if client is None:
            import boto3  # the `scale` extra; only with files = "s3://…"
            from botocore.config import Config as BotoConfig

            boto_config = BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": config.addressing_style},
                connect_timeout=FILES_TIMEOUT_SECONDS,
                read_timeout=FILES_TIMEOUT_SECONDS,
                retries={"total_max_attempts": 1},
            )
            client = _probes[config] = boto3.session.Session().client(
                "s3",
                endpoint_url=config.endpoint_url,
                region_name=config.region,
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key,
                config=boto_config,
            )
        return client


def check_files(config: S3FilesConfig) -> Check:
    """HeadBucket on the configured bucket: the endpoint answers and the credentials reach the bucket."""
    from botocore.exceptions import ClientError

    detail = {"backend": "s3"}
    try:
        _probe_client(config).head_bucket(Bucket=config.bucket)
    except ClientError as exc:  # the store answered, and refused: no such bucket, access denied…
        code = str(exc.response.get("Error", {}).get("Code", "")) or "ClientError"
        log.warning("object store not ready: %s", exc)
        return Check("files", False, {**detail, "error": code})
    except Exception as exc:  # unreachable, timed out, no credentials
        log.warning("object store not ready: %s", exc)
        return Check("files", False, {**detail, "error": type(exc).__name__})
    return Check("files", True, detail)


def dependencies(inst: Instance) -> list[tuple[str, Any, tuple[Any, ...]]]:
    """The checks this instance's configuration needs: (name, function, arguments), the database first."""
    found: list[tuple[str, Any, tuple[Any, ...]]] = [("database", check_database, (inst,))]
    if inst.config.redis_url:
        found.append(("redis", check_redis, (inst.config.redis_url,)))
    files = inst.files_config
    if isinstance(files, S3FilesConfig):
        found.append(("files", check_files, (files,)))
    return found


def not_ready_message(checks: list[Check]) -> str:
    """`not ready: Redis does not answer`, `not ready: the database and the object store do not answer`."""
    names = {"database": "the database", "redis": "Redis", "files": "the object store"}
    down = [names.get(c.name, c.name) for c in checks if not c.ok]
    verb = "does" if len(down) == 1 else "do"
    listed = down[0] if len(down) == 1 else ", ".join(down[:-1]) + " and " + down[-1]
    return f"not ready: {listed} {verb} not answer"
