"""The driver itself: it decodes every instruction of the suite, and it catches a broken LMS.

The decoding test reads all 188 `.properties` files with driver.js in Chromium (no server). The fault
tests run a few test cases twice on the real server: once as they are, once with the runtime broken on
purpose in the browser (GetLastError answering the wrong code; the player launching the wrong activity),
and require the broken run to fail on exactly the kind of check the fault breaks. The skipping test runs
CM-01 with lines added to its instructions: a line whose verb the CTS's parser does not know is skipped and
counted, as the CTS skips it, while a known verb with a bad field or a wrong expectation still fails.
"""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Route

from tests.conformance import cts
from tests.conformance.conftest import CHROMIUM, CHROMIUM_ARGS, CtsServer, require_corpus_and_browser, with_browser

pytestmark = [pytest.mark.conformance, pytest.mark.e2e, pytest.mark.browser, pytest.mark.corpus]

# The one command line of the suite with a verb the CTS does not know: DMI.properties lacks the "GET->" of this
# command. LMSParser.parseCommands has no branch for it, so the CTS never evaluated it: skipped here too, and
# counted apart. No line of the suite is undecodable.
SKIPPED_BY_THE_CTS = {("DMI", "Act3V2.commands.47")}


def all_cases() -> list[str]:
    with zipfile.ZipFile(cts.PROPERTIES_ZIP) as archive:
        return sorted(
            n[len("TestCases/") : -len(".properties")] for n in archive.namelist() if n.endswith(".properties")
        )


def test_every_instruction_of_the_suite_decodes() -> None:
    require_corpus_and_browser()
    from playwright.sync_api import sync_playwright

    config = {"case": "decode", "properties": "", "learner": {"id": "L2", "name": "Learner Two"}}
    driver = f"window.__CTS_CONFIG__ = {json.dumps(config)};\n{cts.DRIVER_JS.read_text('utf-8')}"
    undecodable: set[tuple[str, str]] = set()
    skipped: set[tuple[str, str]] = set()
    visits = commands = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.add_init_script(driver)
            page.goto("about:blank")
            for case in all_cases():
                parsed = page.evaluate("(text) => window.__ctsParseCase(text)", cts.read_properties(case))
                assert parsed["errors"] == [], (case, parsed["errors"])
                assert parsed["title"] == case
                visits += len(parsed["visits"])
                for visit in parsed["visits"]:
                    for command in visit["commands"]:
                        commands += 1
                        if "error" in command:
                            undecodable.add((case, command["key"]))
                        if "skipped" in command:
                            skipped.add((case, command["key"]))
            sample = page.evaluate("(text) => window.__ctsParseCase(text)", cts.read_properties("CM-01"))
            examples = {
                t: page.evaluate("(t) => window.__ctsDecode(t)", t)
                for t in (
                    "I->->t->0",
                    "SET->c~CS!incomp->t->0",
                    "SET->a~n~r!tar~activity_3~TY.c->t->0",
                    "GET->a~n~rv~TY.c~tar~activity_12->t->0",
                    "GET->c~OB~&obj1&~S~SCA->0.6->0",
                    "GES->402->less255->0",
                    "COI->PRIMARYOBJ,obj1",
                    "c~INTR~6~CR~0~P!TY.m->x->0",
                    "",
                    "GLE->0",
                    "SET->c~CS->t->0",
                    "->",
                )
            }
        finally:
            browser.close()
    assert undecodable == set()
    assert skipped == SKIPPED_BY_THE_CTS
    assert visits == 842 and commands == 11_870  # every visit and command of the 188 files
    # The visits of CM-01 in file order are the delivery order; the last one tells the tester to exit.
    assert [v["key"] for v in sample["visits"]] == [
        "Act1V1", "Act2V1", "Act3V1", "Act2V2", "Act3V2", "Act2V3", "Act1V2"
    ]  # fmt: skip
    assert sample["visits"][0]["uiq"].startswith("continue.disabled~")
    assert sample["visits"][-1]["cui"] == "Exit"
    assert examples["I->->t->0"] | {"param": ""} == {
        "verb": "I", "fn": "doInitialize", "param": "", "expected": {"value": "true", "code": "0", "type": ""}
    }  # fmt: skip
    assert examples["SET->c~CS!incomp->t->0"]["param"] == "cmi.completion_status!incomplete"
    assert examples["SET->a~n~r!tar~activity_3~TY.c->t->0"]["param"] == "adl.nav.request!{target=activity_3}choice"
    assert examples["GET->a~n~rv~TY.c~tar~activity_12->t->0"]["param"] == (
        "adl.nav.request_valid.choice.{target=activity_12}"
    )
    assert examples["GET->c~OB~&obj1&~S~SCA->0.6->0"]["param"] == "cmi.objectives.&obj1&.score.scaled"
    assert examples["GES->402->less255->0"]["expected"] == {"value": "less255", "code": "0", "type": ""}
    assert examples["COI->PRIMARYOBJ,obj1"]["objectives"] == ["PRIMARYOBJ", "obj1"]
    # An unknown verb, and an empty command (verb ""), are skipped as parseCommands skips them; a known verb
    # whose fields the CTS could not read (it would have thrown) is a decoding failure, never a skip.
    assert "unknown command verb" in examples["c~INTR~6~CR~0~P!TY.m->x->0"]["skip"]
    assert "fn" not in examples["c~INTR~6~CR~0~P!TY.m->x->0"]
    assert "an empty command" in examples[""]["skip"]
    assert "4 fields" in examples["GLE->0"]["error"]
    assert "!value" in examples["SET->c~CS->t->0"]["error"]
    assert "no verb" in examples["->"]["error"]


# -- a deliberately broken runtime ---------------------------------------------------------------------------

# GetLastError lies: "0" after a failed call, "101" after a successful one.
WRONG_ERROR_CODE = """(() => {
  if (window !== window.top) return;
  let api = null;
  Object.defineProperty(window, "API_1484_11", {
    configurable: true,
    get() { return api; },
    set(value) {
      api = value && { ...value, GetLastError: () => (value.GetLastError() === "0" ? "101" : "0") };
    },
  });
})();"""


async def wrong_error_code(context: BrowserContext) -> None:
    await context.add_init_script(script=WRONG_ERROR_CODE)


async def wrong_activity(context: BrowserContext) -> None:
    """The player launches activity 3 when sequencing delivers activity 2, and the other way round."""

    async def swap(route: Route) -> None:
        response = await route.fetch()
        body = await response.json()
        delivery = body.get("delivery") if isinstance(body, dict) else None
        if delivery:
            href = delivery["href"]
            delivery["href"] = href.replace("act=2", "act=@").replace("act=3", "act=2").replace("act=@", "act=3")
        await route.fulfill(response=response, json=body)

    for endpoint in ("launch", "commit", "navigate"):
        await context.route(f"**/player/*/{endpoint}", swap)


Hook = Callable[[BrowserContext], Awaitable[None]]


def run(server: CtsServer, cases: list[str], hook: Hook | None) -> dict[str, cts.CaseResult]:
    async def work(appliance: cts.Appliance, browser: Browser) -> dict[str, Any]:
        return await cts.run_cases(appliance, browser, cases, workers=2, hook=hook)

    return asyncio.run(with_browser(server, work))


@pytest.mark.parametrize(
    ("fault", "cases", "broken_rule"),
    [
        (wrong_error_code, ["CM-01", "OB-01a"], "error code"),
        (wrong_activity, ["CM-01", "SX-02"], "delivery order"),
    ],
    ids=["GetLastError answers the wrong code", "the player launches the wrong activity"],
)
def test_the_driver_catches_a_broken_runtime(
    cts_server: CtsServer, fault: Hook, cases: list[str], broken_rule: str
) -> None:
    clean = run(cts_server, cases, None)
    broken = run(cts_server, cases, fault)
    for case in cases:
        result = broken[case]
        assert not result.passed, f"{case} passed on a broken runtime"
        # What is skipped depends on the instructions alone: no fault turns a check into a skipped line.
        assert result.skipped == [] and clean[case].skipped == []
        caught = [c for c in result.failures if broken_rule in c.rule]
        assert caught, f"{case}: no failed '{broken_rule}' check: {result.summary()}"
        # The clean run has no failure of that kind: the fault is what the driver caught.
        assert not [c for c in clean[case].failures if broken_rule in c.rule], clean[case].summary()


# -- lines the CTS skips, and lines it does not ----------------------------------------------------------------

# Added to CM-01's first visit, after its Initialize and first GetValue.
EXTRA_LINES = {
    "Act1V1.commands.1a": "GETX->c~LOC->->0",  # unknown verb: skipped
    "Act1V1.commands.1b": "",  # empty command (verb ""): skipped
    "Act1V1.commands.1c": "GET->c~MAXTA->P1Y->0",  # known verb, wrong expected value: a failed check
    "Act1V1.commands.1d": "SET->c~CS->t->0",  # known verb, no "!value" (the CTS could not read it): failed
}


def with_extra_lines(text: str) -> str:
    anchor = "Act1V1.commands.1="
    start = text.index(anchor)
    end = text.index("\n", start) + 1
    added = "".join(f"{key}={value}\n" for key, value in EXTRA_LINES.items())
    return text[:end] + added + text[end:]


def test_unknown_verbs_are_skipped_and_counted_known_verbs_still_fail(cts_server: CtsServer) -> None:
    edited = with_extra_lines(cts.read_properties("CM-01"))

    async def work(appliance: cts.Appliance, browser: Browser) -> dict[str, Any]:
        return await cts.run_cases(appliance, browser, ["CM-01"], workers=1, properties={"CM-01": edited})

    result = asyncio.run(with_browser(cts_server, work))["CM-01"]
    assert [(s.step, s.activity) for s in result.skipped] == [("Act1V1 commands.1a", "1"), ("Act1V1 commands.1b", "1")]
    assert "unknown command verb" in result.skipped[0].reason and "GETX" in result.skipped[0].text
    assert "an empty command" in result.skipped[1].reason
    # The skipped lines made no check; the two lines with a known verb were evaluated and failed, nothing else.
    assert not any("commands.1a" in c.step or "commands.1b" in c.step for c in result.checks)
    failed = {c.step: c.rule for c in result.failures}
    assert failed == {
        "Act1V1 commands.1c": "value (data model comparison) and error code",
        "Act1V1 commands.1d": "decode",
    }
    assert not result.passed
    assert result.delivered == result.expected_order  # the case itself ran to its end
