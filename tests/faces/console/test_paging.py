"""Every console list pages past 100 rows on its service's cursor (previous and next links), and the
Pager's links keep the list's filters; the sessions page's learner search is the service's."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.console.paging import MAX_TRAIL, PAGE_SIZE, Pager
from appliance.instance import Instance
from appliance.services.delivery import webhook_deliveries, webhooks
from appliance.services.learning import sessions
from appliance.services.lms import dispatch
from appliance.services.lms.lti import registrations
from appliance.services.lrs import credentials, forwarding_targets
from appliance.services.tenancy import apikeys, tenants
from tests.faces.api.test_packages import build_zip, drain, manifest_12
from tests.faces.console.conftest import World, sign_in

ROWS = PAGE_SIZE + 7  # more than one page, fewer than three
_LINK = re.compile(r'<a href="([^"]*)" rel="(next|prev|first)"')


@contextmanager
def offline(config: Config, clock: FixedClock) -> Iterator[Instance]:
    inst = Instance(config, clock)
    try:
        yield inst
    finally:
        inst.close()


def links(page: str, label: str | None = None) -> dict[str, str]:
    """The links of a page's pager (the one named `label`, when the page has two), by rel."""
    if label is not None:
        found = re.search(rf'<nav class="pager" aria-label="{re.escape(label)}">(.*?)</nav>', page, re.S)
        page = found.group(1) if found else ""
    return {rel: html.unescape(href) for href, rel in _LINK.findall(page)}


def walk(client: TestClient, url: str, ids: list[str], label: str | None = None) -> None:
    """Page 1 shows the first PAGE_SIZE ids, Next the rest; Previous comes back to page 1, and no id
    shows on both pages."""
    first = client.get(url)
    assert first.status_code == 200, first.text
    on_first = [i for i in ids if i in first.text]
    assert len(on_first) == PAGE_SIZE and "Page 1" in first.text, (url, len(on_first))
    assert set(links(first.text, label)) == {"next"}
    second = client.get(url.split("?")[0] + links(first.text, label)["next"])
    assert second.status_code == 200, second.text
    on_second = [i for i in ids if i in second.text]
    assert sorted(on_first + on_second) == sorted(ids), url
    assert not set(on_first) & set(on_second)
    assert "Page 2" in second.text and set(links(second.text, label)) == {"prev", "first"}
    back = client.get(url.split("?")[0] + links(second.text, label)["prev"])
    assert [i for i in ids if i in back.text] == on_first


def test_pager_links_keep_filters_and_walk_back() -> None:
    one = Pager.of(None, None).with_result({"next_cursor": "c2"}, status="failed", learner=None)
    assert one.first and one.number == 1 and one.previous_url is None
    assert one.next_url == "?status=failed&cursor=c2"
    three = Pager.of("c3", "c2").with_result({"next_cursor": "c4"}, status="failed")
    assert three.number == 3
    assert three.previous_url == "?status=failed&cursor=c2"
    assert three.next_url == "?status=failed&cursor=c4&back=c2.c3"
    assert Pager.of("c2", None).previous_url == "?"  # page 2 goes back to the first page
    deep = Pager.of("z", ".".join(f"c{n}" for n in range(MAX_TRAIL + 5)))
    assert len(deep.back) == MAX_TRAIL and deep.number is None  # the trail stays bounded
    assert Pager.of(None, "c1.c2").back == ()  # no trail without a cursor
    lrs = Pager.of("a", "b", "lrs_").with_result({"next_cursor": "c"})
    assert lrs.next_url == "?lrs_cursor=c&lrs_back=b.a"


def test_keys_tenants_webhooks_credentials_targets_pages(
    app_client: TestClient, config: Config, clock: FixedClock, world: World
) -> None:
    with offline(config, clock) as inst:
        acme = tenants.get_tenant(inst, world.acme)
        key_ids = [apikeys.create_key(inst, acme.id, f"k{n}")[0].id for n in range(ROWS)]
        tenant_ids = [world.acme, world.globex] + [tenants.create_tenant(inst, f"t{n}").id for n in range(ROWS - 2)]
        hook_ids = [
            webhooks.create_webhook(inst, acme, url=f"https://example.com/h{n}", events=["*"])["id"]
            for n in range(ROWS)
        ]
        delivery_ids = [webhook_deliveries.send_test(inst, acme, hook_ids[0])["id"] for _ in range(ROWS)]
        cred_ids = [credentials.create_credential(inst, acme.id, f"c{n}", "all")[0].id for n in range(ROWS)]
        target_ids = [
            forwarding_targets.create_target(inst, acme, endpoint=f"https://lrs{n}.example.com/xapi/")["id"]
            for n in range(ROWS)
        ]
        reg_ids = [
            registrations.create_registration(
                inst,
                acme.id,
                issuer=f"https://lms{n}.example.com",
                client_id=f"client-{n}",
                deployment_ids=["d1"],
                jwks_url=f"https://lms{n}.example.com/jwks",
                auth_url=f"https://lms{n}.example.com/auth",
                token_url=f"https://lms{n}.example.com/token",
            ).id
            for n in range(ROWS)
        ]
    sign_in(app_client, "root")
    base = f"/admin/t/{world.acme}"
    walk(app_client, f"{base}/keys/", key_ids)
    walk(app_client, "/admin/tenants", tenant_ids)
    walk(app_client, f"{base}/webhooks/", hook_ids)
    walk(app_client, f"{base}/webhooks/{hook_ids[0]}?status=pending", delivery_ids)
    walk(app_client, f"{base}/lti/", reg_ids)
    # The xAPI page has two lists, each with its own cursor (the credentials' is `lrs_cursor`).
    walk(app_client, f"{base}/xapi/", target_ids, "Pages of forwarding targets")
    walk(app_client, f"{base}/xapi/", cred_ids, "Pages of LRS credentials")
    assert "lrs_cursor=" in links(app_client.get(f"{base}/xapi/").text, "Pages of LRS credentials")["next"]


@pytest.fixture
def package_id(app_client: TestClient, world: World) -> str:
    csrf = sign_in(app_client, "acme-admin")
    data = build_zip({"imsmanifest.xml": manifest_12(), "index.html": b"x"})
    headers = {"Content-Type": "application/zip", "X-CSRF-Token": csrf, "Accept": "application/json"}
    made = app_client.post(f"/admin/t/{world.acme}/packages/upload", content=data, headers=headers)
    assert made.status_code == 202, made.text
    drain(app_client)
    return str(made.json()["id"])


def _sessions(
    config: Config, clock: FixedClock, world: World, package_id: str, make: Callable[[int], str]
) -> list[str]:
    with offline(config, clock) as inst:
        acme = tenants.get_tenant(inst, world.acme)
        return [
            sessions.create_session(
                inst,
                acme,
                "http://testserver",
                package_id=package_id,
                learner_id=make(n),
                learner_name=f"Learner Number {n}",
                package_version=None,
                resume=False,
            )[0]["id"]
            for n in range(ROWS)
        ]


def test_sessions_and_dispatches_pages(
    app_client: TestClient, config: Config, clock: FixedClock, world: World, package_id: str
) -> None:
    ids = _sessions(config, clock, world, package_id, lambda n: f"emp-{n:04d}")
    base = f"/admin/t/{world.acme}"
    walk(app_client, f"{base}/sessions/", ids)
    walk(app_client, f"{base}/sessions/?learner=EMP-&status=not_started", ids)  # filters kept in the links
    first = app_client.get(f"{base}/sessions/?learner=EMP-").text
    assert "learner=EMP-" in links(first)["next"]
    # The search: part of the id, part of the name, any case.
    found = app_client.get(f"{base}/sessions/?learner=emp-0042").text
    assert sum(i in found for i in ids) == 1 and ids[42] in found
    found = app_client.get(f"{base}/sessions/?learner=number%2010").text  # "Number 10", "Number 100" …
    assert {i for i in ids if i in found} == {ids[n] for n in (10, *range(100, ROWS))}
    assert "No sessions match" in app_client.get(f"{base}/sessions/?learner=nobody").text
    with offline(config, clock) as inst:
        dispatch_ids = [dispatch.create_dispatch(inst, world.acme, package_id=package_id)["id"] for _ in range(ROWS)]
    walk(app_client, f"{base}/dispatches/", dispatch_ids)


def test_packages_page(app_client: TestClient, world: World) -> None:
    csrf = sign_in(app_client, "acme-admin")
    data = build_zip({"imsmanifest.xml": manifest_12(), "index.html": b"x"})
    headers = {"Content-Type": "application/zip", "X-CSRF-Token": csrf, "Accept": "application/json"}
    ids = []
    for _ in range(ROWS):
        made = app_client.post(f"/admin/t/{world.acme}/packages/upload", content=data, headers=headers)
        assert made.status_code == 202, made.text
        ids.append(made.json()["id"])
    walk(app_client, f"/admin/t/{world.acme}/packages/", ids)
