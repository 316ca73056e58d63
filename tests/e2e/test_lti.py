"""The LTI 1.3 tool against a real platform (tests/lti_platform.py), end to end.

A real `serve` process, with `outbound_allow` admitting 127.0.0.0/8 (the platform's JWKS, token and AGS
endpoints) and `frame_ancestors` admitting the platform's origin. The platform's pages are served on
`localhost` and the tool on `127.0.0.1`, so the tool runs in a cross-site iframe, as it does in an LMS:
the launch must work without any cookie. In headless Chromium: the platform's course page → the tool's
OIDC login initiation → the platform's authorisation endpoint → the signed id_token posted to the tool →
the player, where the golf SCORM 1.2 and 2004 packages are played to the end → the platform's AGS
endpoint receives the score and completion. Deep Linking returns a signed response that the platform
verifies against the tool's JWKS. Forged, replayed and expired id_tokens are refused with clear errors.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import BrowserContext, Frame, Page

from appliance.services.lms.lti.launch import learner_id
from tests.e2e.browser import BROWSER_TESTS, WAIT_MS, Appliance, wait_until
from tests.e2e.conftest import ServerProcess
from tests.e2e.databases import Databases
from tests.e2e.test_player import BASIC_CALLS, answer_quiz, golf_next
from tests.lti_platform import INSTRUCTOR, LtiPlatform, Message

pytestmark = BROWSER_TESTS


@pytest.fixture(scope="module")
def platform() -> Iterator[LtiPlatform]:
    lms = LtiPlatform().start()
    yield lms
    lms.close()


@pytest.fixture(scope="module")
def tool(
    platform: LtiPlatform, tmp_path_factory: pytest.TempPathFactory, corpus: Path, databases: Databases
) -> Iterator[Appliance]:
    """The appliance, with the platform registered through the CLI and the tool registered in the platform."""
    env = {
        "SCORM_APPLIANCE_OUTBOUND_ALLOW": "127.0.0.0/8",
        "SCORM_APPLIANCE_FRAME_ANCESTORS": f"'self' {platform.browser}",
    }
    server = ServerProcess(tmp_path_factory.mktemp("lti") / "data", env=env, databases=databases)
    try:
        server.start()
        app = Appliance(server, corpus)
        reg = platform.registration()
        added = server.cli(
            "lti",
            "add",
            "--tenant",
            "Acme",
            "--issuer",
            reg["issuer"],
            "--client-id",
            reg["client_id"],
            "--deployment-id",
            reg["deployment_ids"][0],
            "--jwks-url",
            reg["jwks_url"],
            "--auth-url",
            reg["auth_url"],
            "--token-url",
            reg["token_url"],
        )
        assert added["client_id"] == platform.client_id
        urls = app.http.get("/api/v1/lti/tool").json()
        platform.register_tool(urls["login_url"], urls["launch_url"], urls["jwks_url"])
        yield app
        app.close()
    finally:
        server.close()


class Frames:
    """What answer_quiz needs of a player: finding a frame of the page by URL."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def frame(self, url_part: str) -> Frame:
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            for frame in self.page.frames:
                if url_part in frame.url:
                    frame.wait_for_load_state("load")
                    return frame
            self.page.wait_for_timeout(50)
        raise AssertionError(f"no frame with {url_part!r}: {[f.url for f in self.page.frames]}")


def open_course(context: BrowserContext, url: str) -> tuple[Page, Frame]:
    """The platform's course page, and the tool's player in its iframe once the launch landed there."""
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(url)
    player = Frames(page).frame("/player/")
    assert player.parent_frame == page.main_frame  # in the platform's iframe
    player.wait_for_function(
        "() => { const c = window.scormPlayer && window.scormPlayer.current; return c && c.runtime.state === 'running'; }"
    )
    return page, player


def scores_of(platform: LtiPlatform, user: str) -> list[dict[str, Any]]:
    return [s for s in platform.scores if s["userId"] == user]


@pytest.mark.parametrize("edition", ["1.2", "2004"])
def test_launch_plays_the_golf_package_and_posts_the_grade(
    platform: LtiPlatform, tool: Appliance, context: BrowserContext, edition: str
) -> None:
    spec = BASIC_CALLS[edition]
    package_id = tool.package(spec["package"])
    # the platform serves both backends' tools (module scope): each run has a link of its own
    user, link = f"user-{uuid.uuid4().hex[:8]}", f"link-{edition}-{uuid.uuid4().hex[:8]}"
    message = Message("LtiResourceLinkRequest", user, link_id=link, custom={"package_id": package_id})
    page, player = open_course(context, platform.course_page(message))
    assert urlsplit(player.url).netloc == urlsplit(tool.server.url).netloc  # the player, on the tool's origin

    frames = Frames(page)
    launch = frames.frame("/content/shared/launchpage.html")
    golf_next(launch, spec["pages"] - 1)
    wrong = 2 if edition == "2004" else 6
    score, _ = answer_quiz(frames, wrong)  # type: ignore[arg-type]
    launch.locator("#butExit").click()
    player.wait_for_function("() => window.scormPlayer.ended === true")

    # The session is the platform user's: learner id from (iss, sub), name from the id_token.
    found = tool.http.get("/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, user)}).json()["data"]
    assert [s["package_id"] for s in found] == [package_id]
    session = found[0]
    expected_status = "passed" if edition == "2004" else "failed"
    assert session["status"] == expected_status and session["learner"]["name"] == "Ada Lovelace"

    # AGS: a line item for the link was created in the context's container, and the score posted to it.
    def final() -> dict[str, Any] | None:
        posted = scores_of(platform, user)
        return posted[-1] if posted and posted[-1]["gradingProgress"] == "FullyGraded" else None

    posted = wait_until(final, 30.0, what="the platform to receive the grade")
    item = next(i for i in platform.lineitems if i["resourceLinkId"] == link)
    assert item["scoreMaximum"] == 100 and item["resourceId"] == package_id
    assert posted["lineitem"] == item["id"]
    assert posted["activityProgress"] == "Completed"
    assert (posted["scoreGiven"], posted["scoreMaximum"]) == (float(score), 100.0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", posted["timestamp"])
    # The token endpoint verified the tool's signed assertion and granted exactly the AGS scopes asked.
    assert platform.token_requests and all(r["grant_type"] == "client_credentials" for r in platform.token_requests)
    # No cookie anywhere on the launch path (the launch worked in a cross-site iframe without one).
    assert context.cookies() == []
    assert platform.auth_errors == []


def test_deep_linking_returns_a_signed_link_that_launches_the_package(
    platform: LtiPlatform, tool: Appliance, context: BrowserContext
) -> None:
    package_id = tool.package(BASIC_CALLS["2004"]["package"])
    title = tool.http.get(f"/api/v1/packages/{package_id}").json()["title"]
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(platform.course_page(Message("LtiDeepLinkingRequest", "teacher-1", roles=[INSTRUCTOR])))
    picker = Frames(page).frame("/lti/")
    assert picker.locator("h1").inner_text() == "Choose a course to add"
    pick_url = picker.locator("form").get_attribute("action")
    assert pick_url is not None and "/deep-link/" in pick_url
    picker.locator(f"button[value='{package_id}']").click()
    returned = Frames(page).frame("/deep-link-return")
    assert returned.locator("#added").inner_text() == f"Added: {title}"
    assert platform.deep_link_errors == []
    response = platform.deep_link_responses[-1]
    (item,) = response["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["custom"] == {"package_id": package_id}
    assert item["lineItem"]["scoreMaximum"] == 100
    assert response["aud"] == [platform.issuer]

    # The platform now has the link; a learner's launch of it plays the chosen package.
    user = f"user-{uuid.uuid4().hex[:8]}"
    message = Message("LtiResourceLinkRequest", user, link_id="link-deep", custom=item["custom"])
    _, player = open_course(context, platform.course_page(message))
    assert player.evaluate("() => window.scormPlayer.current.activity") == "item_1"
    found = tool.http.get("/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, user)}).json()["data"]
    assert [s["package_id"] for s in found] == [package_id]

    # A teacher's pick is single-use: posting it again is refused.
    again = httpx.post(pick_url, data={"package_id": package_id}, trust_env=False)
    assert again.status_code == 401 and again.json()["details"]["reason"] == "replayed"


# -- refusals, over plain HTTP: the tool's answers to bad id_tokens ------------------------------------------


def begin_login(platform: LtiPlatform, message: Message) -> tuple[str, dict[str, str]]:
    """Run the login initiation; (the platform authorisation URL, its query: state, nonce, ...)."""
    hint = urlsplit(platform.course_page(message)).query.removeprefix("hint=")
    answer = httpx.get(platform.tool_login, params=platform.login_query(hint), trust_env=False)
    assert answer.status_code == 302, answer.text
    assert "set-cookie" not in answer.headers
    location = answer.headers["location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def post_launch(platform: LtiPlatform, id_token: str, state: str) -> httpx.Response:
    return httpx.post(platform.tool_launch, data={"id_token": id_token, "state": state}, trust_env=False)


def refused(response: httpx.Response, reason: str) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error", "code", "details"} and body["code"] == "UNAUTHORIZED"
    assert body["details"]["reason"] == reason, body
    return str(body["error"])


def platform_form(location: str) -> dict[str, str]:
    """What the platform's authorisation endpoint auto-posts (its id_token and the state)."""
    page = httpx.get(location.replace("localhost", "127.0.0.1"), trust_env=False)
    assert page.status_code == 200, page.text
    return dict(re.findall(r'name="(id_token|state)" value="([^"]+)"', page.text))


def test_forged_replayed_and_expired_id_tokens_are_refused(platform: LtiPlatform, tool: Appliance) -> None:
    package_id = tool.package(BASIC_CALLS["2004"]["package"])
    message = Message("LtiResourceLinkRequest", "user-refusals", link_id="link-r", custom={"package_id": package_id})

    # Forged: the platform's kid, but signed by another key.
    _, query = begin_login(platform, message)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = platform.id_token(platform.claims(message, query["nonce"]), key=forger)
    assert "signature does not verify" in refused(post_launch(platform, forged, query["state"]), "signature")
    unknown = platform.id_token(platform.claims(message, query["nonce"]), key=forger, kid="someone-else")
    assert "key the platform's JWKS does not hold" in refused(
        post_launch(platform, unknown, query["state"]), "unknown_key"
    )

    # Expired: issued an hour ago, expired 55 minutes ago.
    old = platform.id_token(platform.claims(message, query["nonce"], now=time.time() - 3600))
    assert "expired" in refused(post_launch(platform, old, query["state"]), "expired")

    # Someone else's nonce, another deployment, another audience.
    other_nonce = platform.id_token(platform.claims(message, "not-this-login"))
    refused(post_launch(platform, other_nonce, query["state"]), "nonce")
    claims = platform.claims(message, query["nonce"])
    claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] = "deployment-unknown"
    refused(post_launch(platform, platform.id_token(claims), query["state"]), "deployment")
    claims = platform.claims(message, query["nonce"]) | {"aud": "another-tool", "azp": "another-tool"}
    refused(post_launch(platform, platform.id_token(claims), query["state"]), "audience")
    claims = platform.claims(message, query["nonce"])
    claims["https://purl.imsglobal.org/spec/lti/claim/version"] = "1.1"
    refused(post_launch(platform, platform.id_token(claims), query["state"]), "version")

    # The genuine token of this login is still accepted once (nothing above consumed the state) ...
    genuine = platform.id_token(platform.claims(message, query["nonce"]))
    first = post_launch(platform, genuine, query["state"])
    assert first.status_code == 302 and "/player/" in first.headers["location"]
    assert "set-cookie" not in first.headers
    # ... and replayed, refused.
    assert "replay refused" in refused(post_launch(platform, genuine, query["state"]), "replayed")

    # A whole platform round trip, replayed.
    location, _ = begin_login(platform, message)
    form = platform_form(location)
    assert post_launch(platform, form["id_token"], form["state"]).status_code == 302
    refused(post_launch(platform, form["id_token"], form["state"]), "replayed")
    # A state the tool never issued.
    refused(post_launch(platform, form["id_token"], "made-up-state"), "unknown_state")

    # The launches above resumed one session: the learner's incomplete one.
    found = tool.http.get("/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, "user-refusals")})
    assert len(found.json()["data"]) == 1


def test_an_unregistered_platform_and_a_link_without_package_are_refused(
    platform: LtiPlatform, tool: Appliance
) -> None:
    answer = httpx.get(
        platform.tool_login,
        params={"iss": "https://unknown.example", "login_hint": "u", "client_id": "x"},
        trust_env=False,
    )
    assert answer.status_code == 401 and "not registered" in answer.json()["error"]
    message = Message("LtiResourceLinkRequest", "user-nopkg", link_id="link-n")
    _, query = begin_login(platform, message)
    answer = post_launch(platform, platform.id_token(platform.claims(message, query["nonce"])), query["state"])
    assert answer.status_code == 422 and "custom parameter package_id" in answer.json()["error"]
    # A learner may not use Deep Linking.
    learner_dl = Message("LtiDeepLinkingRequest", "user-dl")
    _, query = begin_login(platform, learner_dl)
    answer = post_launch(platform, platform.id_token(platform.claims(learner_dl, query["nonce"])), query["state"])
    assert answer.status_code == 403


def test_a_refused_launch_is_a_readable_page_in_the_platforms_frame(
    platform: LtiPlatform, tool: Appliance, context: BrowserContext
) -> None:
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(platform.course_page(Message("LtiResourceLinkRequest", "user-np", link_id="link-np")))
    tool_frame = Frames(page).frame("/lti/")
    tool_frame.locator("#error").wait_for()
    assert tool_frame.locator("h1").inner_text() == "The course could not be opened"
    assert "names no package" in tool_frame.locator("#error").inner_text()


CMI5_COURSES = Path(__file__).resolve().parents[2].parent / "shared" / "suites" / "catapult" / "course_examples"


@pytest.mark.cmi5
@pytest.mark.skipif(not CMI5_COURSES.is_dir(), reason=f"the cmi5 example courses are not in {CMI5_COURSES}")
def test_a_cmi5_course_launches_in_the_platforms_frame_and_posts_the_grade(
    platform: LtiPlatform, tool: Appliance, context: BrowserContext
) -> None:
    """A link to CATAPULT's mastery-score course: the launch starts a cmi5 registration, the player sends
    the platform's frame to the AU (OwnWindow), whose own cmi5 library talks to the appliance's LRS; the
    passed quiz reaches the gradebook."""
    with (CMI5_COURSES / "masteryscore_framed.zip").open("rb") as fh:
        uploaded = tool.http.post(
            "/api/v1/packages", files={"file": ("masteryscore_framed.zip", fh, "application/zip")}
        )
    assert uploaded.status_code == 202, uploaded.text
    package_id = uploaded.json()["id"]
    wait_until(
        lambda: tool.http.get(f"/api/v1/packages/{package_id}").json()["status"] == "ready", 60.0, what="the course"
    )
    user, cmi5_link = f"user-{uuid.uuid4().hex[:8]}", f"link-cmi5-{uuid.uuid4().hex[:8]}"
    message = Message("LtiResourceLinkRequest", user, link_id=cmi5_link, custom={"package_id": package_id})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(platform.course_page(message))
    au = Frames(page).frame("/content/")  # the AU, in the platform's iframe
    assert au.parent_frame == page.main_frame and "registration=" in au.url
    # The course's start-up is over once it has shown its first page (after its cmi5 initialized and the
    # LaunchData it needs for every statement): going to the quiz before would race it.
    au.wait_for_function("() => typeof course !== 'undefined' && course.pageViewedState.some(Boolean)")
    au.evaluate("() => course.gotoPage(course.pageList.length - 1)")  # the quiz, the last page
    au.wait_for_selector("#q0")
    au.click("text=(Select correct answers)")
    au.click("text=Submit Answers")

    def graded() -> dict[str, Any] | None:
        posted = scores_of(platform, user)
        return posted[-1] if posted and posted[-1]["gradingProgress"] == "FullyGraded" else None

    posted = wait_until(graded, 30.0, what="the platform to receive the cmi5 course's grade")
    (session,) = tool.http.get("/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, user)}).json()[
        "data"
    ]
    assert session["cmi5"]["registration"] and session["status"] == "passed"
    assert posted["scoreGiven"] == pytest.approx(session["score"]["scaled"] * 100)
    assert posted["activityProgress"] == "Completed"
    assert next(i for i in platform.lineitems if i["resourceLinkId"] == cmi5_link)["resourceId"] == package_id
    assert context.cookies() == []
    page.close()
