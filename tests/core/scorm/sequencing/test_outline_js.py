"""The player's JavaScript expansion of the compact TOC and request_valid (appliance/faces/static/runtime/outline.js)
against the engine's full forms, in headless Chromium.

Generated courses (the look-ahead tests' trees: choice/flow modes, rules, limits, selection and
randomization, invisible items) are driven through random steps; after each step the answer the server
would send — the outline only when its key changed, as for a player that holds the previous one — goes to
the page, and what the page expands must be exactly `engine.toc()` and `engine.request_valid()`.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from appliance.core.scorm.model import Item
from appliance.core.scorm.sequencing import outline
from tests.browser.test_runtime_vectors import page, static_url  # noqa: F401 - the page fixtures
from tests.core.scorm.sequencing.builders import cluster, engine, leaf, seq
from tests.core.scorm.sequencing.test_lookahead import _apply, items, sequencing, steps

pytestmark = pytest.mark.browser

EXPAND_JS = """
async (answers) => {
  const { expandToc, expandRequestValid, tocKey } = await import("/runtime/outline.js");
  return answers.map((a) => {
    const toc = expandToc(a.toc);
    return { toc, valid: expandRequestValid(a.request_valid), key: tocKey() };
  });
}
"""


def _answers(tree: list[Item], root: str | None, plan: list[tuple[str, int, int]]) -> tuple[list[Any], list[Any]]:
    """The answers a player holding the previous outline gets along the plan, and the engine's full forms."""
    answers: list[dict[str, Any]] = []
    expected: list[tuple[dict[str, Any], dict[str, str]]] = []
    held: str | None = None
    eng = engine(*tree, sequencing=root)

    def record() -> None:
        nonlocal held
        toc = outline.toc_state(eng.tracking, held)
        held = toc["key"]
        answers.append({"toc": toc, "request_valid": outline.request_valid_state(eng.tracking)})
        expected.append((eng.toc(), eng.request_valid()))

    record()
    eng.launch(now=1.0)
    record()
    for index, step in enumerate(plan):
        _apply(eng, step, now=2.0 + index)
        record()
    return answers, expected


def _assert_expanded(browser_page: Any, answers: list[Any], expected: list[Any]) -> None:
    expanded = browser_page.evaluate(EXPAND_JS, answers)
    for index, (got, (toc, valid)) in enumerate(zip(expanded, expected, strict=True)):
        assert got["key"] == answers[index]["toc"]["key"], index
        assert got["toc"] == toc, index
        assert got["valid"] == valid, index


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=items(), root=sequencing(True), plan=steps())
def test_the_player_expands_the_compact_forms_to_the_engines(
    page: Any,  # noqa: F811
    tree: list[Item],
    root: str | None,
    plan: list[tuple[str, int, int]],
) -> None:
    _assert_expanded(page, *_answers(tree, root, plan))


def test_a_reordered_cluster_and_an_outline_held_from_before(page: Any) -> None:  # noqa: F811
    """Randomization reorders a cluster on launch (a new outline, with `kids`); later answers without an
    outline are expanded from the one the page holds."""
    shuffle = seq(
        '<imsss:controlMode choice="true" flow="true"/>',
        '<imsss:randomizationControls randomizationTiming="onEachNewAttempt" reorderChildren="true"/>',
    )
    tree = [cluster("m", *(leaf(f"x{i}") for i in range(6)), sequencing=shuffle), leaf("z", isvisible=False)]
    plan = [("choice", 3, 0), ("terminate", 1, 0), ("nav", 2, 0)]
    answers, expected = _answers(tree, seq('<imsss:controlMode choice="true" flow="true"/>'), plan)
    assert answers[1]["toc"]["outline"]["kids"]  # reordered on launch
    assert any(answer["toc"]["outline"] is None for answer in answers[2:])  # then held
    _assert_expanded(page, answers, expected)
