"""Every package of the shared corpus through the real upload route and processing job.

The ready ones must report the SCORM version, item count and SCO count that the corpus `index.json`
gives; the broken ones must fail with a specific contract code and details a user can act on. One app
and one tenant serve the whole module: every ZIP is uploaded, the job queue is drained once, and each
package is then checked in its own test. Without the corpus folder the tests skip with a message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from tests.conftest import CORPUS, TenantKey, make_tenant_key
from tests.faces.api.test_packages import API, files_under, make_client

# The corpus is uploaded and processed once per module, on SQLite files; processing itself runs on both
# backends in test_packages.
pytestmark = [
    pytest.mark.corpus,
    pytest.mark.sqlite_only(reason="reads one module-wide upload of the corpus, made on SQLite"),
]

PACKAGES = CORPUS / "packages"
NAMES = sorted(p.name for p in PACKAGES.glob("*.zip")) if PACKAGES.is_dir() else ["(corpus missing)"]

# index.json "version" -> the contract's scorm_version. A 2004 manifest without a schemaversion is read
# as the 4th Edition (the superset); "CAM 1.3" is how the 2nd Edition names itself.
INDEX_VERSIONS = {
    "SCORM 1.2": "1.2",
    "SCORM 2004 2nd Ed. (CAM 1.3)": "2004 2nd Edition",
    "SCORM 2004 3rd Ed.": "2004 3rd Edition",
    "SCORM 2004 4th Ed.": "2004 4th Edition",
    "SCORM 2004 (no/unknown schemaversion)": "2004 4th Edition",
}

# The corpus packages that cannot be made ready, with the failure each must report and why.
# Packages whose index entry lists `missing_launch_href` fail with MISSING_FILES naming those files.
BROKEN = {
    "emp-MalformedXml_SCORM12.zip": ("MANIFEST_INVALID", "not well-formed: mismatched tag at line 27"),
    "moodle-validscorm.zip": ("MANIFEST_INVALID", "only an XML declaration, no root element"),
    "moodle-badscorm.zip": ("MANIFEST_INVALID", "manifest in the one top folder, only an XML declaration"),
    "moodle-invalid.zip": ("MANIFEST_MISSING", "one empty test.htm and no manifest"),
    "moodle-validaicc.zip": ("UNSUPPORTED_VERSION", "an AICC course, not SCORM"),
    "moodle-singlescobasic_missingorg.zip": ("MANIFEST_INVALID", "empty <organizations/>: nothing to deliver"),
    "emp-MissingLaunchUrl_SCORM12.zip": ("NO_LAUNCHABLE_CONTENT", "the only SCO resource has no href"),
}


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Upload every corpus ZIP once, process them all, and collect each package (or the refusal)."""
    if not PACKAGES.is_dir():
        yield {}
        return
    config = Config(data_dir=tmp_path_factory.mktemp("corpus") / "data")
    who = make_tenant_key(config, "Corpus", plan="enterprise")  # no storage cap, a high rate limit
    with make_client(config) as client:
        uploaded: dict[str, Any] = {}
        for name in NAMES:
            response = client.post(
                API, content=(PACKAGES / name).read_bytes(), headers={**who.headers, "Content-Type": "application/zip"}
            )
            uploaded[name] = response
        drain_all(client)
        results: dict[str, Any] = {"config": config, "tenant": who, "client": client}
        for name, response in uploaded.items():
            if response.status_code != 202:
                results[name] = {"refused": response.status_code, "body": response.json()}
                continue
            results[name] = client.get(f"{API}/{response.json()['id']}", headers=who.headers).json()
        yield results


def drain_all(client: TestClient) -> None:
    scheduler = client.app.state.scheduler
    client.blocking_portal.call(scheduler.drain, 10_000)


def index() -> dict[str, dict[str, Any]]:
    return json.loads((CORPUS / "index.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", NAMES)
def test_corpus_package_through_the_upload_route(corpus: Path, corpus_results: dict[str, Any], name: str) -> None:
    entry = index()[name]
    package = corpus_results[name]
    assert "refused" not in package, package  # every corpus file is a ZIP: accepted for processing
    assert package["status"] in ("ready", "failed"), package  # nothing is left processing
    expected_code = (
        BROKEN[name][0] if name in BROKEN else ("MISSING_FILES" if entry.get("missing_launch_href") else None)
    )
    if expected_code is None:
        assert package["status"] == "ready", package["error"]
        assert package["error"] is None
        assert package["scorm_version"] == INDEX_VERSIONS[entry["version"]]
        assert package["item_count"] == entry["items"]
        assert package["sco_count"] == entry["sco_resources"]
        assert package["file_count"] > 0 and package["size_bytes"] > 0
        assert package["launch"]["items"], "a ready package has an item tree to launch"
        assert package["active_version"] == 1
        return
    why = BROKEN.get(name, ("", "launch files missing from the ZIP"))[1]
    assert package["status"] == "failed", why
    error = package["error"]
    assert error["code"] == expected_code, (why, error)
    assert error["message"]
    details = error["details"]
    if expected_code == "MISSING_FILES":
        assert details["missing"], error
        assert set(details["missing"]) <= set(entry["missing_launch_href"]), error
    elif expected_code == "MANIFEST_INVALID" and "error" in entry:  # XML not well-formed: say where
        assert {"line", "column"} <= set(details), error
    elif expected_code == "MANIFEST_MISSING":
        assert details["top_level"] == ["test.htm"], error
    elif expected_code == "UNSUPPORTED_VERSION":
        assert details["found"] == "AICC", error
    elif expected_code == "NO_LAUNCHABLE_CONTENT":
        assert error["message"]


def test_corpus_leaves_only_ready_packages_on_disk(corpus: Path, corpus_results: dict[str, Any]) -> None:
    config: Config = corpus_results["config"]
    who: TenantKey = corpus_results["tenant"]
    ready = {p["id"] for n, p in corpus_results.items() if n.endswith(".zip") and p.get("status") == "ready"}
    tenant_dir = config.data_dir / "tenants" / who.tenant_id
    assert {p.name for p in (tenant_dir / "packages").iterdir()} == ready
    assert files_under(tenant_dir / "uploads") == []
    assert files_under(config.data_dir / "tmp") == []
    listed = corpus_results["client"].get(f"{API}?status=ready&limit=500", headers=who.headers).json()["data"]
    assert {p["id"] for p in listed} == ready
    total = sum(p["size_bytes"] for p in listed)
    stored = sum(f.stat().st_size for f in (tenant_dir / "packages").rglob("*") if f.is_file())
    assert total == stored  # storage accounting is exact


def test_every_index_entry_has_a_package(corpus: Path) -> None:
    assert set(index()) == set(NAMES)
    assert set(BROKEN) <= set(NAMES)
