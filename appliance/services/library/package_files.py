"""Where a package's files are: the received ZIP waiting for its job, and each version's extracted files.

One place for the layout, so the upload, the processing job and the deletes agree on it.
"""

from __future__ import annotations

from pathlib import Path

from appliance.instance import Instance


def upload_path(inst: Instance, tenant_id: str, package_id: str, version: int) -> Path:
    """Where a received ZIP (or bare cmi5.xml: the job tells them apart by content) waits for its job."""
    return inst.data.uploads_dir(tenant_id) / f"{package_id}-{version}.zip"
