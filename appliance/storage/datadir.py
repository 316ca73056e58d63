"""The on-disk layout of a data directory, in one place.

<data_dir>/registry.db                    tenants, keys, settings, jobs
<data_dir>/settings.toml                  optional settings file
<data_dir>/tmp/                           uploads being received (emptied at a start no other process shares)
<data_dir>/tmp.lock                        held (shared) by every process that uses tmp/
<data_dir>/tenants/<tenant id>/tenant.db  the tenant's own database
<data_dir>/tenants/<tenant id>/packages/<package id>/<version>/   extracted package files
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no flock; one process per data directory is assumed there
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class DataDir:
    """Paths inside one data directory."""

    root: Path

    @property
    def registry_db(self) -> Path:
        """The registry database file."""
        return self.root / "registry.db"

    @property
    def tmp(self) -> Path:
        """Scratch space for uploads in flight; emptied at every start."""
        return self.root / "tmp"

    @property
    def tenants(self) -> Path:
        """The folder holding one folder per tenant."""
        return self.root / "tenants"

    def tenant_dir(self, tenant_id: str) -> Path:
        """One tenant's folder. Tenant ids are generated, never taken from a request path."""
        if "/" in tenant_id or "\\" in tenant_id or tenant_id.startswith("."):
            raise ValueError(f"bad tenant id {tenant_id!r}")
        return self.tenants / tenant_id

    def tenant_db(self, tenant_id: str) -> Path:
        """One tenant's database file."""
        return self.tenant_dir(tenant_id) / "tenant.db"

    def package_dir(self, tenant_id: str, package_id: str) -> Path:
        """Every version of one package."""
        return self.tenant_dir(tenant_id) / "packages" / package_id

    def version_dir(self, tenant_id: str, package_id: str, version: int) -> Path:
        """The extracted files of one package version."""
        return self.package_dir(tenant_id, package_id) / str(version)

    def uploads_dir(self, tenant_id: str) -> Path:
        """Received ZIPs waiting for (or being retried by) their processing job."""
        return self.tenant_dir(tenant_id) / "uploads"

    def ensure(self) -> None:
        """Create the layout if it is missing; safe while a server runs on the same directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.tenants.mkdir(exist_ok=True)
        self.tmp.mkdir(exist_ok=True)

    def clean_tmp(self) -> IO[bytes] | None:
        """Empty tmp/ at server start, when no other process is using this data directory: anything
        there is then an upload or extraction that a crash interrupted. Several workers may share one
        data directory (scale-out with shared files): each holds `tmp.lock` shared for as long as it
        runs, so a worker starting beside a live one finds the lock taken and leaves tmp/ alone (the
        crash's leftovers go at the next start with nobody else running).

        Returns the open lock file, held shared until it is closed (`release_tmp`); None without flock.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        lease = open(self.root / "tmp.lock", "ab")  # noqa: SIM115 - held for the process's life
        alone = True
        if fcntl is not None:
            try:
                fcntl.flock(lease.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                alone = False
        if alone and self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            lease.close()
            return None
        fcntl.flock(lease.fileno(), fcntl.LOCK_SH)  # others may start now; they will not empty tmp/
        return lease

    @staticmethod
    def release_tmp(lease: IO[bytes] | None) -> None:
        """Stop holding tmp/ (at shutdown): the next process to start alone empties it."""
        if lease is not None:
            with contextlib.suppress(OSError):
                lease.close()
