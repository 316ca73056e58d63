"""The console's integration pages through the test client: JWT settings, LTI platforms and keys, xAPI
credentials and forwarding, dispatches, and a cmi5 registration's AUs. Each action is checked through
the service functions the API uses (what the page did is what the API now shows), with its CSRF token,
and refused for another tenant."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.instance import Instance
from appliance.services.learning import sessions
from appliance.services.lms import dispatch
from appliance.services.lms.lti import keys, registrations
from appliance.services.lrs import credentials, forwarding_targets
from appliance.services.tenancy import tenants
from tests.faces.api.test_cmi5_sessions import not_applicable_course
from tests.faces.api.test_packages import build_zip, drain, manifest_12
from tests.faces.console.conftest import World, sign_in


@contextmanager
def offline(config: Config, clock: FixedClock) -> Iterator[Instance]:
    inst = Instance(config, clock)
    try:
        yield inst
    finally:
        inst.close()


def upload(client: TestClient, csrf: str, tenant_id: str, data: bytes) -> str:
    headers = {"Content-Type": "application/zip", "X-CSRF-Token": csrf, "Accept": "application/json"}
    made = client.post(f"/admin/t/{tenant_id}/packages/upload", content=data, headers=headers)
    assert made.status_code == 202, made.text
    drain(client)
    return str(made.json()["id"])


def test_jwt_settings_set_change_and_remove(
    app_client: TestClient, config: Config, clock: FixedClock, world: World, tmp_path: Path
) -> None:
    csrf = sign_in(app_client, "acme-admin")
    url = f"/admin/t/{world.acme}/jwt/"
    assert "accepts no JWTs" in app_client.get(url).text
    form = {"issuer": "https://idp.example.com", "audience": "scorm", "jwks_url": "https://idp.example.com/jwks"}
    assert app_client.post(url, data=form).status_code == 403  # no CSRF token
    saved = app_client.post(url, data={**form, "csrf_token": csrf, "role_prefix": "org:", "default_role": "read"})
    assert saved.status_code == 200 and "https://idp.example.com/jwks" in saved.text
    with offline(config, clock) as inst:
        jwt = tenants.get_tenant(inst, world.acme).jwt
    assert jwt is not None and jwt.issuer == "https://idp.example.com" and jwt.audience == "scorm"
    assert jwt.jwks_url == "https://idp.example.com/jwks" and jwt.role_prefix == "org:" and jwt.default_role == "read"
    assert jwt.claim == "org_id" and jwt.claim_value is None
    # A tenant admin may not name a file on the server; blank issuer is refused; another tenant is 404.
    keyset = tmp_path / "jwks.json"
    keyset.write_text(json.dumps({"keys": []}))
    file_form = {"issuer": "i", "audience": "a", "jwks_file": str(keyset), "csrf_token": csrf}
    assert app_client.post(url, data=file_form).status_code == 403
    refused = app_client.post(url, data={**form, "issuer": " ", "csrf_token": csrf})
    assert refused.status_code == 422 and "issuer" in refused.text
    assert app_client.post(f"/admin/t/{world.globex}/jwt/", data={**form, "csrf_token": csrf}).status_code == 404
    assert app_client.post(url, data={**form, "default_role": "emperor", "csrf_token": csrf}).status_code == 422
    private = app_client.post(url, data={**form, "jwks_url": "http://169.254.169.254/jwks", "csrf_token": csrf})
    assert private.status_code == 422 and "jwks_url" in private.text  # the outbound guard, before storing
    with offline(config, clock) as inst:
        assert tenants.get_tenant(inst, world.acme).jwt.jwks_url == form["jwks_url"]  # type: ignore[union-attr]
    removed = app_client.post(f"{url}remove", data={"csrf_token": csrf})
    assert removed.status_code == 200 and "accepts no JWTs" in removed.text
    # A superuser may give a file (tenants.set_jwt: exactly one of file and URL).
    app_client.cookies.clear()
    root = sign_in(app_client, "root")
    assert app_client.post(url, data=file_form | {"csrf_token": root}).status_code == 200
    with offline(config, clock) as inst:
        jwt = tenants.get_tenant(inst, world.acme).jwt
    assert jwt is not None and jwt.jwks_file == str(keyset) and jwt.jwks_url is None


def test_lti_register_change_remove_and_rotate(
    app_client: TestClient, config: Config, clock: FixedClock, world: World
) -> None:
    csrf = sign_in(app_client, "acme-admin")
    base = f"/admin/t/{world.acme}/lti"
    overview = app_client.get(f"{base}/").text
    assert f"/lti/{world.acme}/login" in overview and f"/lti/{world.acme}/jwks" in overview
    form = {
        "name": "Moodle",
        "issuer": "https://moodle.example.com",
        "client_id": "abc123",
        "deployment_ids": "1\n2",
        "jwks_url": "https://moodle.example.com/mod/lti/certs.php",
        "auth_url": "https://moodle.example.com/mod/lti/auth.php",
        "token_url": "https://moodle.example.com/mod/lti/token.php",
    }
    assert app_client.post(f"{base}/registrations", data=form).status_code == 403
    made = app_client.post(f"{base}/registrations", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert made.status_code == 303
    reg_id = made.headers["location"].rsplit("/", 1)[1]
    with offline(config, clock) as inst:
        reg = registrations.get_registration(inst, world.acme, reg_id)
    assert reg.issuer == form["issuer"] and reg.deployment_ids == ("1", "2")
    bad = app_client.post(f"{base}/registrations", data={**form, "jwks_url": "not a url", "csrf_token": csrf})
    assert bad.status_code == 422
    changed = app_client.post(
        f"{base}/registrations/{reg_id}", data={"name": "Moodle prod", "deployment_ids": "3", "csrf_token": csrf}
    )
    assert changed.status_code == 200 and "Moodle prod" in changed.text
    with offline(config, clock) as inst:
        reg = registrations.get_registration(inst, world.acme, reg_id)
        assert reg.name == "Moodle prod" and reg.deployment_ids == ("3",) and reg.client_id == "abc123"
        before = {k.kid for k in keys.published(inst, world.acme)}
    assert app_client.get(f"/admin/t/{world.globex}/lti/registrations/{reg_id}").status_code == 404
    assert app_client.post(f"{base}/keys/rotate", data={"csrf_token": csrf}).status_code == 200
    with offline(config, clock) as inst:
        after = keys.published(inst, world.acme)
    assert len({k.kid for k in after} - before) == 1 and sum(k.retired_at is None for k in after) == 1
    gone = app_client.post(f"{base}/registrations/{reg_id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 200 and "No platforms registered" in gone.text
    with offline(config, clock) as inst:
        assert registrations.list_registrations(inst, world.acme) == []


def test_xapi_credentials_and_forwarding(
    app_client: TestClient, config: Config, clock: FixedClock, world: World
) -> None:
    csrf = sign_in(app_client, "acme-admin")
    base = f"/admin/t/{world.acme}/xapi"
    made = app_client.post(f"{base}/credentials", data={"name": "lrs client", "scope": "read", "csrf_token": csrf})
    assert made.status_code == 201
    key = re.search(r'id="new-lrs-key">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    with offline(config, clock) as inst:
        cred = credentials.get_credential(inst, key, world.acme)
    assert cred.scope == "read" and not cred.revoked
    assert (
        app_client.post(f"/admin/t/{world.globex}/xapi/credentials/{key}/revoke", data={"csrf_token": csrf}).status_code
        == 404
    )
    revoked = app_client.post(f"{base}/credentials/{key}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 200
    assert re.search(rf"<code>{key}</code>.*?badge suspended\">revoked<", revoked.text, re.S)
    with offline(config, clock) as inst:
        assert credentials.get_credential(inst, key, world.acme).revoked
    # A forwarding target: created, shown, disabled, filtered log, deleted.
    form = {
        "name": "Warehouse",
        "endpoint": "https://lrs.example.com/xapi/",
        "username": "u",
        "password": "secret-pw",
        "version": "2.0.0",
        "verbs": "http://adlnet.gov/expapi/verbs/completed\nhttp://adlnet.gov/expapi/verbs/passed",
        "csrf_token": csrf,
    }
    created = app_client.post(f"{base}/forwarding", data=form, follow_redirects=False)
    assert created.status_code == 303
    target_id = created.headers["location"].rsplit("/", 1)[1]
    page = app_client.get(created.headers["location"]).text
    assert "secret-pw" not in page and "(password set)" in page and "Nothing sent yet" in page
    with offline(config, clock) as inst:
        acme = tenants.get_tenant(inst, world.acme)
        target = forwarding_targets.get_target(inst, acme, target_id)
    assert target["version"] == "2.0.0" and len(target["filters"]["verbs"]) == 2 and target["enabled"]
    off = app_client.post(f"{base}/forwarding/{target_id}/enabled", data={"enabled": "false", "csrf_token": csrf})
    assert off.status_code == 200 and 'id="target-state">disabled' in off.text
    assert app_client.get(f"{base}/forwarding/{target_id}?outcome=bogus").status_code == 422
    assert app_client.get(f"{base}/forwarding/{target_id}?outcome=failed").status_code == 200
    private = app_client.post(f"{base}/forwarding", data={**form, "endpoint": "http://10.0.0.5/xapi/"})
    assert private.status_code == 422  # the outbound guard, as for the API
    assert app_client.get(f"/admin/t/{world.globex}/xapi/forwarding/{target_id}").status_code == 404
    assert app_client.post(f"{base}/forwarding/{target_id}/delete", data={"csrf_token": csrf}).status_code == 200
    with offline(config, clock) as inst:
        assert forwarding_targets.list_targets(inst, acme, limit=None, cursor=None)["data"] == []


def test_dispatch_create_disable_download_delete(
    app_client: TestClient, config: Config, clock: FixedClock, world: World
) -> None:
    csrf = sign_in(app_client, "acme-admin")
    package_id = upload(app_client, csrf, world.acme, build_zip({"imsmanifest.xml": manifest_12(), "index.html": b"x"}))
    base = f"/admin/t/{world.acme}/dispatches"
    assert package_id in app_client.get(f"{base}/").text  # offered in the form
    form = {"package_id": package_id, "name": "Partner LMS", "learner_cap": "25", "expires_at": "2030-01-02T03:04"}
    assert app_client.post(f"{base}/", data=form).status_code == 403
    made = app_client.post(f"{base}/", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert made.status_code == 303
    dispatch_id = made.headers["location"].rsplit("/", 1)[1]
    with offline(config, clock) as inst:
        found = dispatch.get_dispatch(inst, world.acme, dispatch_id)
    assert found["learner_cap"] == 25 and found["expires_at"] == "2030-01-02T03:04:00Z" and found["enabled"]
    page = app_client.get(f"{base}/{dispatch_id}").text
    assert 'id="dispatch-counts"' in page and "Partner LMS" in page
    for fmt in ("1.2", "2004"):
        zipped = app_client.get(f"{base}/{dispatch_id}/package?format={fmt}")
        assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
            assert "imsmanifest.xml" in archive.namelist()
    assert app_client.get(f"{base}/{dispatch_id}/package?format=3").status_code == 422
    off = app_client.post(f"{base}/{dispatch_id}/enabled", data={"enabled": "false", "csrf_token": csrf})
    assert off.status_code == 200 and 'id="dispatch-state">disabled' in off.text
    cleared = app_client.post(
        f"{base}/{dispatch_id}/settings",
        data={"name": "Renamed", "learner_cap": "", "expires_at": "", "csrf_token": csrf},
    )
    assert cleared.status_code == 200
    with offline(config, clock) as inst:
        found = dispatch.get_dispatch(inst, world.acme, dispatch_id)
    assert not found["enabled"] and found["name"] == "Renamed" and found["learner_cap"] is None
    assert found["expires_at"] is None
    bad = app_client.post(f"{base}/", data={**form, "expires_at": "soon", "csrf_token": csrf})
    assert bad.status_code == 422
    assert app_client.post(f"{base}/", data={**form, "package_id": "pkg_nope", "csrf_token": csrf}).status_code == 404
    assert app_client.get(f"/admin/t/{world.globex}/dispatches/{dispatch_id}").status_code == 404
    assert app_client.post(f"{base}/{dispatch_id}/delete", data={"csrf_token": csrf}).status_code == 200
    with offline(config, clock) as inst:
        assert dispatch.list_dispatches(inst, world.acme) == []


def test_cmi5_registration_aus_waive_and_standard(
    app_client: TestClient, config: Config, clock: FixedClock, world: World
) -> None:
    csrf = sign_in(app_client, "acme-admin")
    package_id = upload(app_client, csrf, world.acme, not_applicable_course())
    listed = app_client.get(f"/admin/t/{world.acme}/packages/").text
    assert "<td>cmi5</td>" in listed
    shown = app_client.get(f"/admin/t/{world.acme}/packages/{package_id}").text
    assert "cmi5 ·" in shown and "AUs: 2, blocks: 1" in shown
    with offline(config, clock) as inst:
        acme = tenants.get_tenant(inst, world.acme)
        session_id = sessions.create_session(
            inst,
            acme,
            "http://testserver",
            package_id=package_id,
            learner_id="ada",
            learner_name="Ada",
            package_version=None,
            resume=False,
        )[0]["id"]
    url = f"/admin/t/{world.acme}/sessions/{session_id}"
    page = app_client.get(url).text
    aus = page.split("caption>Assignable units")[1].split("</table>")[0]
    assert "https://example.com/au/na" in aus and "https://example.com/au/done" in aus
    assert aus.count("Waive</button>") == 1  # the NotApplicable AU is satisfied already
    assert "course not satisfied yet" in page
    assert (
        app_client.post(
            f"{url}/cmi5/waive", data={"au": "https://example.com/au/done", "reason": "Nope", "csrf_token": csrf}
        ).status_code
        == 422
    )
    waived = app_client.post(
        f"{url}/cmi5/waive", data={"au": "https://example.com/au/done", "reason": "Administrative", "csrf_token": csrf}
    )
    assert waived.status_code == 200 and "waived (Administrative)" in waived.text and "course satisfied" in waived.text
    with offline(config, clock) as inst:
        shown = sessions.get_session(inst, acme, session_id, "http://testserver")
    assert shown["cmi5"]["satisfied"] and any(a["waived"] for a in shown["cmi5"]["aus"])
    assert (
        app_client.post(
            f"/admin/t/{world.globex}/sessions/{session_id}/cmi5/waive", data={"csrf_token": csrf}
        ).status_code
        == 404
    )
