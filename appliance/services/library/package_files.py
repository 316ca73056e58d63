"""Where a package's files are, in the instance's file store, and removing them exactly.

Two kinds of files, both in the tenant's space of `inst.files` (docs/scale-out.md, "Files"):

- a received upload waiting for its job: `uploads/<pkg>-<version>.zip` on the data directory (moved
  there when its version is recorded, as always); in an object store the upload was streamed to its
  key while it arrived, before its version number was known, so it is `uploads/incoming-<secret>.zip`
  and the processing job's payload names it (`upload`);
- a ready version's extracted files: the folder `packages/<pkg>/<version>/`, in either store.

The layout is formed here only, so the upload, the processing job and the deletes agree on it. The
deletes report what the store freed (`Deleted`), which is what the rows' sizes counted: the quota
(computed from the rows) and the store stay equal.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from appliance.instance import Instance
from appliance.storage.files.base import Deleted
from appliance.storage.files.local import LocalFileStore
from appliance.storage.files.serving import version_folder

__all__ = [
    "delete_package_files",
    "delete_tenant_files",
    "delete_version_files",
    "find_received_upload",
    "is_local",
    "upload_path",
    "upload_store_path",
    "version_folder",
    "version_present",
]

UPLOADS = "uploads"
INCOMING = f"{UPLOADS}/incoming-"  # an upload streamed into an object store, before its version existed
PACKAGES = "packages"


def is_local(inst: Instance) -> bool:
    """Whether the files are in the data directory (the default store), where today's paths apply."""
    return isinstance(inst.files, LocalFileStore)


def upload_path(inst: Instance, tenant_id: str, package_id: str, version: int) -> Path:
    """Where a received ZIP (or bare cmi5.xml: the job tells them apart by content) waits for its job
    in the data directory."""
    return inst.data.uploads_dir(tenant_id) / f"{package_id}-{version}.zip"


def upload_store_path(package_id: str, version: int) -> str:
    """The same file's path in the tenant's space of the store (the data directory's layout)."""
    return f"{UPLOADS}/{package_id}-{int(version)}.zip"


def delete_version_files(inst: Instance, tenant_id: str, package_id: str, version: int) -> Deleted:
    """Remove one version's extracted files; on the data directory the package's folder goes too once
    no other version has files in it (as before)."""
    freed = inst.files.delete_folder(tenant_id, version_folder(package_id, version))
    if is_local(inst):
        with contextlib.suppress(OSError):
            inst.data.package_dir(tenant_id, package_id).rmdir()  # only when empty
    return freed


def delete_package_files(inst: Instance, tenant_id: str, package_id: str) -> Deleted:
    """Remove every file of a package: its versions' folder, and any ZIP of it still waiting.

    On an object store a ZIP received for a version still processing has a name of its own
    (`uploads/incoming-…`): its job, finding the version gone, removes it (or, if that job was lost
    too, the orphaned-files sweep does: `package_sweep`)."""
    freed = inst.files.delete_folder(tenant_id, f"{PACKAGES}/{package_id}")
    files, size = freed.files, freed.bytes
    prefix = f"{UPLOADS}/{package_id}-"
    for leftover in inst.files.list(tenant_id, UPLOADS):
        if leftover.path.startswith(prefix) and leftover.path.endswith(".zip"):
            gone = inst.files.delete(tenant_id, leftover.path)
            files, size = files + gone.files, size + gone.bytes
    return Deleted(files, size)


def delete_tenant_files(inst: Instance, tenant_id: str) -> Deleted:
    """Remove every package file and upload of a deleted tenant from an object store. On the data
    directory the tenant's folder, database included, is removed whole by the tenant's delete."""
    if is_local(inst):
        return Deleted(0, 0)
    packages = inst.files.delete_folder(tenant_id, PACKAGES)
    uploads = inst.files.delete_folder(tenant_id, UPLOADS)
    return Deleted(packages.files + uploads.files, packages.bytes + uploads.bytes)


def find_received_upload(inst: Instance, tenant_id: str, size: int, sha256: str) -> str | None:
    """The path of an upload received into an object store, found by its size and SHA-256, for a
    version recorded `processing` whose job was never enqueued (the process died in between, so no
    payload names its key): the recovery sweep gives the job it enqueues this path. Rare, so reading
    the candidates of the same size in full is fine."""
    for item in inst.files.list(tenant_id, UPLOADS):
        if not item.path.startswith(INCOMING) or item.size != size:
            continue
        digest = hashlib.sha256()
        for chunk in inst.files.read(tenant_id, item.path):
            digest.update(chunk)
        if digest.hexdigest() == sha256:
            return item.path
    return None


def version_present(inst: Instance, tenant_id: str, package_id: str, version: int) -> bool:
    """Whether a version's files are in the store (a ready version whose folder is gone is broken)."""
    if is_local(inst):
        return inst.data.version_dir(tenant_id, package_id, version).is_dir()
    return next(iter(inst.files.list(tenant_id, version_folder(package_id, version))), None) is not None
