"""The on-disk layout of a data directory, in one place.

<data_dir>/registry.db                    tenants, keys, settings, jobs
<data_dir>/settings.toml                  optional settings file
<data_dir>/tmp/                           uploads being received (emptied at start)
<data_dir>/tenants/<tenant id>/tenant.db  the tenant's own database
<data_dir>/tenants/<tenant id>/packages/<package id>/<version>/   extracted package files
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path


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

    def clean_tmp(self) -> None:
        """Empty tmp/ at server start: anything there is an upload that a crash interrupted."""
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
