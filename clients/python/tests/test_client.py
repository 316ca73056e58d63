"""The Python client against a real appliance (see conftest.py for what the environment provides)."""

from __future__ import annotations

import io
import os
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from scorm_appliance_client import (
    AsyncClient,
    Client,
    CmiValidationError,
    InvalidPackage,
    NotFound,
    Package,
    PackageFailed,
    PackageNotReady,
    RateLimited,
    Session,
    Unauthorized,
    ValidationError,
    VersionConflict,
    WebhookVerificationError,
    apaginate,
    paginate,
    verify_webhook,
)


def learner() -> str:
    return f"py-{uuid.uuid4().hex[:10]}"


SCORE = {
    "cmi.score.raw": "80",
    "cmi.score.min": "0",
    "cmi.score.max": "100",
    "cmi.score.scaled": "0.8",
    "cmi.completion_status": "completed",
    "cmi.success_status": "passed",
}


def test_upload_streams_a_file_and_waits_until_ready(client: Client, course_zip: Path) -> None:
    uploaded = client.upload_package(course_zip, title="Uploaded from a path")
    assert uploaded.status == "processing" and uploaded.id.startswith("pkg_")
    ready = client.wait_until_ready(uploaded.id, timeout=60)
    assert ready.status == "ready" and ready.title == "Uploaded from a path"
    assert ready.scorm_version and ready.scorm_version.startswith("2004")
    assert client.rate_limit is not None and client.rate_limit.limit > 0
    with course_zip.open("rb") as handle:  # a binary file works as well as a path
        version = client.upload_package_version(ready.id, handle)
    assert version.latest_version == 2
    assert [v.version for v in client.list_package_versions(ready.id).data] == [1, 2]
    assert client.get_package_version(ready.id, 1).status == "ready"
    assert client.update_package(ready.id, title="Renamed").title == "Renamed"
    assert client.validate_package(course_zip)["valid"] is True
    assert any(p.id == ready.id for p in paginate(client.list_packages, limit=1))
    client.delete_package(ready.id)
    with pytest.raises(NotFound):
        client.get_package(ready.id)


def test_an_upload_that_is_not_a_zip_is_refused(client: Client) -> None:
    with pytest.raises(InvalidPackage) as info:
        client.upload_package(io.BytesIO(b"not a zip at all"))
    assert info.value.status == 422 and info.value.request_id


def test_session_create_resume_launch_read(client: Client, ready_package: Package) -> None:
    who = learner()
    session = client.create_session(ready_package.id, who, learner_name="Ann Learner")
    assert session.status == "not_started" and session.learner.id == who
    assert session.launch_url and "/player/" in session.launch_url
    again = client.create_session(ready_package.id, who)
    assert again.id == session.id  # resumed, not a second registration
    fresh = client.create_session(ready_package.id, who, resume=False)
    assert fresh.id != session.id
    launch = client.launch_session(session.id)
    assert launch.session_id == session.id and launch.launch_url.startswith(client.base_url)
    listed = client.list_sessions(package_id=ready_package.id, learner_id=who)
    assert {s.id for s in listed.data} == {session.id, fresh.id}
    searched = client.list_sessions(learner=who[2:].upper())  # a part of the learner id, case ignored
    assert {s.id for s in searched.data} == {session.id, fresh.id}
    client.delete_session(fresh.id)
    with pytest.raises(NotFound):
        client.get_session(fresh.id)


def test_patch_with_optimistic_locking_and_the_retry_helper(client: Client, ready_package: Package) -> None:
    session = client.create_session(ready_package.id, learner())
    updated = client.update_session(session.id, version=session.version, cmi=SCORE)
    assert updated.status == "passed" and updated.score.scaled == 0.8 and updated.version == session.version + 1
    with pytest.raises(VersionConflict) as info:
        client.update_session(session.id, version=session.version, cmi={"cmi.location": "2"})
    assert info.value.current_version == updated.version
    with pytest.raises(CmiValidationError) as bad:
        client.update_session(session.id, version=updated.version, cmi={"cmi.score.scaled": "7"})
    assert bad.value.errors[0]["element"] == "cmi.score.scaled"

    seen: list[int] = []

    def change(current: Session) -> dict[str, str]:
        seen.append(current.version)
        if len(seen) == 1:  # someone else writes between our read and our PATCH: a real 409 follows
            client.update_session(session.id, version=current.version, cmi={"cmi.location": "elsewhere"})
        assert current.cmi is not None
        return {"cmi.location": current.cmi.get("cmi.location", "") + "+mine"}

    result = client.update_session_with_retry(session.id, change)
    assert len(seen) == 2 and seen[1] == seen[0] + 1
    assert client.get_session(session.id, include_cmi=True).cmi["cmi.location"] == "elsewhere+mine"
    assert result.version == seen[1] + 1


def test_analytics(client: Client, ready_package: Package) -> None:
    session = client.create_session(ready_package.id, learner())
    client.update_session(session.id, version=session.version, cmi=SCORE)
    report = client.package_analytics(ready_package.id)
    assert report.passed >= 1 and report.score["count"] >= 1
    summary = client.analytics_summary(days=7)
    assert summary.sessions_by_status["passed"] >= 1 and summary.pass_rate is not None
    csv = client.package_analytics_csv(ready_package.id, section="sessions_by_status")
    assert "passed" in csv


def test_typed_errors(url: str, client: Client, ready_package: Package) -> None:
    with pytest.raises(NotFound) as missing:
        client.get_session("ses_doesnotexist")
    assert missing.value.code == "NOT_FOUND" and missing.value.status == 404
    with pytest.raises(ValidationError) as invalid:
        client.list_packages(limit=100000)
    assert invalid.value.errors
    with Client(url, "sak_not_a_real_key") as stranger, pytest.raises(Unauthorized):
        stranger.get_tenant()
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:  # a ZIP without imsmanifest.xml
        archive.writestr("index.html", "<p>no manifest</p>")
    broken.seek(0)
    failed = client.upload_package(broken)
    with pytest.raises(PackageFailed) as info:
        client.wait_until_ready(failed.id, timeout=60)
    assert info.value.code == "MANIFEST_MISSING"
    with pytest.raises(PackageNotReady) as not_ready:
        client.create_session(failed.id, learner())
    assert not_ready.value.status == 409


def test_webhooks_crud_and_signature_verification(client: Client, vector: dict[str, Any]) -> None:
    hook = client.create_webhook("https://lms.example.org/hooks", ["session.*", "package.ready"], description="LMS")
    assert hook.secret and hook.secret.startswith("whsec_")
    assert client.get_webhook(hook.id).secret is None
    assert client.update_webhook(hook.id, description="renamed").description == "renamed"
    assert any(h.id == hook.id for h in paginate(client.list_webhooks))
    delivery = client.test_webhook(hook.id)
    assert delivery.event_type == "ping"
    assert client.get_delivery(hook.id, delivery.id).id == delivery.id
    assert any(d.id == delivery.id for d in client.list_deliveries(hook.id).data)
    assert client.retry_delivery(hook.id, delivery.id).id == delivery.id
    client.delete_webhook(hook.id)
    with pytest.raises(NotFound):
        client.get_webhook(hook.id)

    # A request the server's own signing code signed verifies; any change to it does not.
    headers, body, secret = vector["headers"], vector["body"].encode(), vector["secret"]
    now = int(headers["webhook-timestamp"])
    event = verify_webhook(secret, headers, body, now=now)
    assert event.type == "ping" and event.id == headers["webhook-id"]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body + b" ", now=now)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, {**headers, "webhook-id": "evt_other"}, body, now=now)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body, now=now + 3600)  # a replay an hour later
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, {k.upper(): v for k, v in headers.items() if k != "webhook-signature"}, body, now=now)


def test_xapi_credentials(client: Client) -> None:
    credential = client.create_xapi_credential(name="Python suite", scope="read")
    assert credential.key == credential.id and credential.secret and credential.endpoint.endswith("/xapi/")
    assert client.get_xapi_credential(credential.id).secret is None
    assert any(c.id == credential.id for c in paginate(client.list_xapi_credentials))
    assert client.revoke_xapi_credential(credential.id).status == "revoked"


def test_retry_after_is_honoured(url: str) -> None:
    """The limited tenant's minute runs out; a 429 raises RateLimited, and retries sleep Retry-After."""
    limited = os.environ["SCORM_APPLIANCE_LIMITED_KEY"]
    with Client(url, limited, max_retries=0) as c:
        refused: RateLimited | None = None
        for _ in range(20):
            try:
                c.get_usage()
            except RateLimited as exc:
                refused = exc
                break
        assert refused is not None and 0 < refused.retry_after <= 60
        assert refused.headers["retry-after"] == str(int(refused.retry_after))
    slept: list[float] = []
    with Client(url, limited, max_retries=2, sleep=slept.append) as c, pytest.raises(RateLimited) as final:
        c.get_usage()
    assert len(slept) == 2 and all(0 < s <= 60 for s in slept)
    assert abs(slept[-1] - final.value.retry_after) <= 1


async def test_the_async_client_does_the_same(url: str, key: str, course_zip: Path) -> None:
    async with AsyncClient(url, key) as client:
        package = await client.wait_until_ready((await client.upload_package(course_zip)).id, timeout=60)
        session = await client.create_session(package.id, learner(), learner_name="Async")
        with pytest.raises(VersionConflict):
            await client.update_session(session.id, version=session.version + 5, cmi=SCORE)
        done = await client.update_session_with_retry(session.id, lambda s: SCORE)
        assert done.status == "passed"
        assert (await client.launch_session(session.id)).launch_url
        ids = [s.id async for s in apaginate(client.list_sessions, package_id=package.id, limit=1)]
        assert ids == [session.id]
        assert (await client.package_analytics(package.id)).passed == 1
        await client.delete_package(package.id)


def test_async_and_sync_clients_offer_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")}

    assert public(Client) - {"close"} == public(AsyncClient) - {"aclose"}


def test_wait_until_ready_backs_off(client: Client, key: str, course_zip: Path) -> None:
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        time.sleep(seconds)

    with Client(client.base_url, key, sleep=sleep) as c:
        start = time.monotonic()
        c.wait_until_ready(c.upload_package(course_zip).id, timeout=60, initial_delay=0.001)
        assert time.monotonic() - start < 60
    assert delays == sorted(delays)
    if len(delays) > 1:
        assert delays[1] == 2 * delays[0]
