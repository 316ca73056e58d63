"""A real `serve` process with `files = "s3://…"` on moto's S3 server: a corpus course uploaded,
processed into the bucket, launched in headless Chromium (its pages, scripts and images from the
bucket through the player's content route), its files fetched with Range and ETag, then deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from tests.e2e.browser import Appliance, Player
from tests.e2e.conftest import ServerProcess
from tests.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3

COURSE = "totara-overview_test"  # an eXe Learning SCORM 1.2 quiz: loadPage() sets lesson_status
PREFIX = "e2e"


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    server = MotoS3.start()
    try:
        yield server
    finally:
        server.stop()


def tenant_objects(s3: MotoS3, bucket: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/tenants/"):
        found.update({item["Key"]: int(item["Size"]) for item in page.get("Contents", [])})
    return found


def test_a_course_served_from_s3_by_a_real_server(
    start_server: Callable[..., ServerProcess], s3: MotoS3, corpus: Path, context: BrowserContext
) -> None:
    bucket = s3.new_bucket()
    env = {
        "SCORM_APPLIANCE_FILES": f"s3://{bucket}/{PREFIX}",
        "SCORM_APPLIANCE_FILES_ENDPOINT": s3.endpoint_url,
        "SCORM_APPLIANCE_FILES_REGION": REGION,
        "SCORM_APPLIANCE_FILES_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "SCORM_APPLIANCE_FILES_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    }
    server = start_server(env=env)
    app = Appliance(server, corpus)
    try:
        session = app.new_session(COURSE)
        package_id = session["package_id"]
        stored = tenant_objects(s3, bucket)
        assert stored and all(f"/packages/{package_id}/1/" in key for key in stored)
        assert not list((server.data_dir / "tenants").glob("*/packages/*")), "no package file on the local disk"
        package = app.http.get(f"/api/v1/packages/{package_id}").json()
        assert package["size_bytes"] == sum(stored.values())

        player = Player(context, session["launch_url"])
        player.wait_running()
        sco = player.frame("/content/index.html")
        assert sco.evaluate("typeof getAPIHandle === 'function' && getAPIHandle() === window.parent.API")
        assert player.values()["cmi.core.lesson_status"] == "incomplete"
        player.wait_settled()

        url = session["launch_url"]
        content = f"{url[url.index('/player/') :]}/content/index.html"
        whole = app.http.get(content)
        assert whole.status_code == 200 and whole.headers["etag"]
        assert app.http.get(content, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
        part = app.http.get(content, headers={"Range": "bytes=10-19"})
        assert (part.status_code, part.content) == (206, whole.content[10:20])
        player.close()

        assert app.http.delete(f"/api/v1/packages/{package_id}").status_code == 204
        assert tenant_objects(s3, bucket) == {}
    finally:
        app.close()
        s3.drop_bucket(bucket)
