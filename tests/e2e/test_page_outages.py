"""The learner keeps working while the server is away: stopped, restarting, or the session's expiry passing.

Each test has a server of its own (it is stopped and started again on the same port and data), our
ending SCO (tests/e2e/ending_sco.py) in headless Chromium, and reads the stored CMI back over the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from tests.e2e.browser import BROWSER_TESTS, Appliance, Player
from tests.e2e.conftest import ServerProcess
from tests.e2e.test_page_endings import NAMES, new_session, open_sco, sco_seen

pytestmark = BROWSER_TESTS

OUTAGE_SECONDS = 20


@pytest.fixture
def own(start_server: Callable[..., ServerProcess], corpus: Path) -> Iterator[Appliance]:
    appliance = Appliance(start_server(), corpus)
    yield appliance
    appliance.close()


def saving(player: Player) -> str:
    """The player's save indicator: "", "saving" or "offline"."""
    return player.page.evaluate("() => window.scormPlayer.saving")


def stored(appliance: Appliance, session_id: str) -> dict[str, str]:
    return appliance.session(session_id)["cmi"]


@pytest.mark.parametrize("version", ["1.2", "2004"])
def test_server_stopped_for_20_s_while_the_learner_works(own: Appliance, context: BrowserContext, version: str) -> None:
    names = NAMES[version]
    session = new_session(own, version, ["unload"])
    player, frame = open_sco(context, session["launch_url"], "unload")
    frame.evaluate("() => { work(1); commit(); }")
    player.wait_settled()
    own.server.stop()
    started = time.monotonic()
    # The learner goes on: every Commit is accepted by the page ("true"), nothing is alerted.
    assert frame.evaluate("() => { work(2); return commit(); }") == "true"
    player.page.wait_for_function("() => window.scormPlayer.saving === 'offline'")
    assert "Offline" in player.page.locator("#saving").inner_text()
    player.page.wait_for_timeout(5000)
    assert frame.evaluate("() => { work(3); return commit(); }") == "true"
    player.page.wait_for_timeout(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)) * 1000)
    own.server.start()
    player.wait_settled()  # the queued batches went through after the restart (backoff at most 8 s)
    player.page.wait_for_function("() => window.scormPlayer.saving === ''")
    cmi = stored(own, session["id"])
    assert (cmi[names["location"]], cmi["cmi.suspend_data"]) == ("page-3", "state-3")
    assert player.error_dialogs() == []
    assert player.message() == ""
    # And the page goes on as before: the next commit is stored at once.
    frame.evaluate("() => { work(4); commit(); }")
    player.wait_settled()
    assert stored(own, session["id"])[names["location"]] == "page-4"
    player.close()


def test_server_restarted_between_two_commits(own: Appliance, context: BrowserContext) -> None:
    session = new_session(own, "2004", ["unload"])
    player, frame = open_sco(context, session["launch_url"], "unload")
    frame.evaluate("() => { work(1); commit(); }")
    player.wait_settled()
    own.server.restart()
    frame.evaluate("() => { work(2); commit(); }")
    player.wait_settled()
    cmi = stored(own, session["id"])
    assert (cmi["cmi.location"], cmi["cmi.suspend_data"]) == ("page-2", "state-2")
    assert player.commit_statuses and all(status == 200 for status in player.commit_statuses)
    player.close()


@pytest.mark.parametrize("version", ["1.2", "2004"])
def test_page_closed_while_offline_is_saved_by_the_next_launch(
    own: Appliance, context: BrowserContext, version: str
) -> None:
    """The learner closes the tab while the server is away: the beacon is lost, but what the page could
    not deliver is in its journal, and the next page of the session sends it before it launches."""
    names = NAMES[version]
    session = new_session(own, version, ["unload"])
    player, frame = open_sco(context, session["launch_url"], "unload")
    frame.evaluate("() => { work(1); commit(); }")
    player.wait_settled()
    launch_url = own.launch_url(session["id"])  # handed out before the outage, as an LMS would have
    own.server.stop()
    frame.evaluate("() => { work(2); commit(); }")
    player.page.wait_for_function("() => window.scormPlayer.saving === 'offline'")
    player.close(run_before_unload=True)  # its unload handler suspends and finishes: nothing arrives
    own.server.start()
    assert stored(own, session["id"])[names["location"]] == "page-1"
    again, frame = open_sco(context, launch_url, "unload")
    seen = sco_seen(frame)
    assert (seen["entry"], seen["location"], seen["suspend"]) == ("resume", "page-2", "state-2|ended")
    cmi = stored(own, session["id"])
    assert cmi[names["location"]] == "page-2"
    assert again.page.evaluate("() => Object.keys(localStorage).filter((k) => k.startsWith('scorm-appliance:'))") == []
    again.close()


def test_tab_left_open_past_the_session_ttl_keeps_saving(
    start_server: Callable[..., ServerProcess], corpus: Path, context: BrowserContext
) -> None:
    """An open page sends a sign of life within the session's time-to-live, so the session does not
    expire under a learner who is reading a long page. (The API accepts a TTL of 60 s at least; the
    default for new tenants is a setting, and 4 s keeps this test short.)"""
    ttl = 4
    server = start_server(env={"SCORM_APPLIANCE_DEFAULT_SESSION_TTL_SECONDS": str(ttl)})
    own = Appliance(server, corpus, rate=False)  # `quotas set` refuses a tenant whose TTL is under 60 s
    try:
        session = new_session(own, "2004", ["unload"])
        player, frame = open_sco(context, session["launch_url"], "unload")
        frame.evaluate("() => { work(1); commit(); }")
        player.wait_settled()
        player.page.wait_for_timeout(3 * ttl * 1000)
        assert own.session(session["id"])["status"] != "expired"
        frame.evaluate("() => { work(2); commit(); }")
        player.wait_settled()
        assert player.commit_statuses[-1] == 200
        assert stored(own, session["id"])["cmi.location"] == "page-2"
        assert player.message() == ""
        player.close()
    finally:
        own.close()
