"""SCORM as xAPI in a real browser: real content played in headless Chromium through a real server, then
its statements read from the LRS with a credential the CLI issued (the server's own sweep stores them).

The content is the corpus's eXe quiz (see tests/e2e/test_player.py: five choice questions written as
interactions, the score, passed at 20 %, LMSFinish).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from playwright.sync_api import BrowserContext

from appliance.core.xapi.scorm_profile import NAMESPACE
from tests.e2e.browser import BROWSER_TESTS, Appliance, Player, wait_until

pytestmark = BROWSER_TESTS
V = "http://adlnet.gov/expapi/verbs/"


def test_a_quiz_played_in_the_browser_is_its_statements(appliance: Appliance, context: BrowserContext) -> None:
    cred = appliance.server.cli("lrs-credentials", "create", "--tenant", "Acme", "--scope", "read")
    basic = base64.b64encode(f"{cred['key']}:{cred['secret']}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "X-Experience-API-Version": "1.0.3"}
    session = appliance.new_session("totara-overview_test", learner="quiz-taker")
    player = Player(context, session["launch_url"])
    player.wait_running()
    sco = player.frame("/content/index.html")
    for number, value in enumerate(["0", "1", "0", "1", "0"]):  # key 0 = right: three right, two wrong
        sco.locator(f"input[name='key{number}b0'][value='{value}']").check()
    sco.locator("#quizForm0 input[type=submit], #quizForm0 [name=submitB]").first.click()
    player.page.wait_for_function("() => window.scormPlayer.ended === true")
    assert set(player.commit_statuses) == {200}

    registration = str(uuid.uuid5(NAMESPACE, session["id"]))
    with appliance.server.client(headers=headers) as lrs:

        def read() -> list[dict[str, Any]] | None:
            params = {"registration": registration, "ascending": "true"}
            found = lrs.get("/xapi/statements", params=params).json()["statements"]
            return found if any(s["verb"]["id"] == V + "terminated" for s in found) else None

        found = wait_until(read, timeout=15.0, what="the session's terminated statement")
    verbs = [s["verb"]["id"].removeprefix(V) for s in found]
    # The quiz commits its answers and status, then finishes: the SCO's results, the course's, the end.
    assert verbs == ["launched", "initialized", *["responded"] * 5, "completed", "passed", "passed", "terminated"]
    assert found[-2]["object"]["definition"]["type"] == "http://adlnet.gov/expapi/activities/course"
    answers = [s["result"] for s in found if s["verb"]["id"] == V + "responded"]
    assert [a["success"] for a in answers] == [True, False, True, False, True]
    assert [a["response"] for a in answers] == ["0", "1", "0", "1", "0"]
    terminated = found[-1]["result"]
    assert terminated["success"] is True and terminated["completion"] is True
    assert terminated["score"] == {"scaled": 0.6, "raw": 60.0, "max": 100.0}
    assert terminated["duration"].startswith("PT")
    assert {s["actor"]["account"]["name"] for s in found} == {"quiz-taker"}
    assert {s["actor"]["account"]["homePage"] for s in found} == {appliance.server.url}
