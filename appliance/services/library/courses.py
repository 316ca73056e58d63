"""A ready package version as the run-time needs it: manifest, activity tree and items.

Parsing the stored manifest and building the activity tree is pure and deterministic, so the result is
cached per (tenant, package, version); version folders never change once ready.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from appliance.core.scorm.model import Item, Manifest
from appliance.core.scorm.sequencing.activity_tree import ActivityTree
from appliance.errors import NotFound, PackageNotReady
from appliance.instance import Instance
from appliance.services.library.package_files import version_present
from appliance.services.library.packages import ready_manifest

CACHE_SIZE = 64


@dataclass(frozen=True)
class Course:
    """One ready package version. Its files are the store's (`inst.files`), in the folder
    `package_files.version_folder(package_id, version)` of the tenant's space: the content route
    serves them from there (`storage/files/serving.py`), so the course carries no path of its own."""

    package_id: str
    version: int
    manifest: Manifest
    tree: ActivityTree
    items: dict[str, Item] = field(default_factory=dict)
    launchable: list[str] = field(default_factory=list)  # leaf activities with content, in tree order

    @property
    def scorm_version(self) -> str:
        """The SCORM version string of the package."""
        return self.manifest.scorm_version

    def item(self, activity_id: str) -> Item | None:
        """The manifest item behind an activity."""
        return self.items.get(activity_id)


_cache: OrderedDict[tuple[str, str, str, int], Course] = OrderedDict()
_lock = threading.Lock()


def _index(items: list[Item], into: dict[str, Item]) -> dict[str, Item]:
    for item in items:
        into[item.identifier] = item
        _index(item.children, into)
    return into


def load_course(inst: Instance, tenant_id: str, package_id: str, version: int) -> Course:
    """The course for a ready version; PackageNotReady when it is processing or failed."""
    key = (str(inst.data.root), tenant_id, package_id, version)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    manifest = ready_manifest(inst, tenant_id, package_id, version)
    if manifest is None:
        raise PackageNotReady(
            f"version {version} of package {package_id} is not ready", {"package_id": package_id, "version": version}
        )
    items: dict[str, Item] = {}
    for org in manifest.organizations:
        _index(org.items, items)
    tree = ActivityTree.from_manifest(manifest)
    course = Course(
        package_id=package_id,
        version=version,
        manifest=manifest,
        tree=tree,
        items=items,
        launchable=[a.id for a in tree.preorder if a.is_leaf and a.id in items and items[a.id].href],
    )
    if not version_present(inst, tenant_id, package_id, version):
        raise NotFound(f"the files of package {package_id} version {version} are missing")
    with _lock:
        _cache[key] = course
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return course


def forget(package_id: str) -> None:
    """Drop cached versions of a deleted package."""
    with _lock:
        for key in [k for k in _cache if k[2] == package_id]:
            del _cache[key]
