"""The shared data-model vectors and API state machine against the browser runtime, in headless Chromium.

The ES modules under appliance/faces/static/runtime are served over http from a thread (modules do not load
from file://); the tables built by appliance.core.scorm.elements are handed to the page, exactly as the
player receives them from the server (one per version and 1.2 suspend_data limit a vector names). All
vectors run in one page.evaluate call.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.core.scorm.elements import datamodel_table
from appliance.core.scorm.model import SCORM_VERSIONS
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS
from tests.vectors import launch_cmi, load_document, vector_id

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "appliance" / "faces" / "static"
DOCUMENT = load_document()
VECTORS = DOCUMENT["vectors"]

RUN_VECTORS_JS = """
async ({tables, vectors}) => {
  const { DataModel } = await import("/runtime/datamodel.js");
  const expand = (v) => (v !== null && typeof v === "object" ? v.repeat.repeat(v.count) : v);
  return vectors.map((v) => {
    const model = new DataModel(tables[v.table], v.cmi, { dataAccess: v.data_access ?? [] });
    for (const [element, value] of v.setup ?? []) {
      const code = model.setValue(element, value);
      if (code !== 0) return { setup: [element, value, code, model.diagnostic] };
    }
    if (v.op === "set") return { code: model.setValue(v.element, expand(v.value)), value: null };
    const [value, code] = model.getValue(v.element);
    return { code, value };
  });
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    """appliance/faces/static served on a free port of 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def page(static_url: str) -> Iterator[Any]:
    """A Chromium page on the static server's origin."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{static_url}/runtime/")
        yield page
        browser.close()


def _table_key(vector: dict[str, Any]) -> str:
    return f"{vector['version']}|{vector.get('suspend_data_limit')}"


@pytest.fixture(scope="module")
def tables() -> dict[str, Any]:
    """The table of each (version, suspend_data limit) the vectors use, built as the player gets it."""
    tables = {_table_key({"version": version}): datamodel_table(version) for version in SCORM_VERSIONS}
    for vector in VECTORS:
        limit = vector.get("suspend_data_limit")
        tables[_table_key(vector)] = datamodel_table(vector["version"], suspend_data_limit=limit)
    return tables


@pytest.fixture(scope="module")
def js_results(page: Any, tables: dict[str, Any]) -> list[dict[str, Any]]:
    """Every vector's outcome in the browser, from one evaluate call."""
    vectors = [{**vector, "cmi": launch_cmi(DOCUMENT, vector), "table": _table_key(vector)} for vector in VECTORS]
    return list(page.evaluate(RUN_VECTORS_JS, {"tables": tables, "vectors": vectors}))


@pytest.mark.parametrize("index", range(len(VECTORS)), ids=[vector_id(i, v) for i, v in enumerate(VECTORS)])
def test_vector_in_browser(js_results: list[dict[str, Any]], index: int) -> None:
    vector, result = VECTORS[index], js_results[index]
    assert "setup" not in result, f"setup write failed in the browser: {result.get('setup')}"
    assert result["code"] == vector["expected_error"]
    if vector["op"] == "get":
        assert result["value"] == vector["expected_value"]


API_JS = """
async ({table, cmi, calls, refuse}) => {
  const { createApi } = await import("/runtime/api.js");
  const commits = [];
  const transport = { commit: (changes, options) => { commits.push([changes, options]); return !refuse; } };
  const api = createApi(table, cmi, transport);
  const object = api.API ?? api.API_1484_11;
  const answers = calls.map(([name, ...args]) => [object[name](...args), object.GetLastError
    ? object.GetLastError() : object.LMSGetLastError()]);
  return { answers, commits, other: api.API === null ? "API" : "API_1484_11", otherValue: api[api.API === null ? "API" : "API_1484_11"] };
}
"""


def _run_api(page: Any, version: str, calls: list[list[Any]], *, refuse: bool = False) -> dict[str, Any]:
    args = {"table": datamodel_table(version), "cmi": {}, "calls": calls, "refuse": refuse}
    return dict(page.evaluate(API_JS, args))


def test_api_2004_state_machine_in_browser(page: Any) -> None:
    calls = [
        ["GetValue", "cmi.location"],
        ["SetValue", "cmi.location", "x"],
        ["Commit", ""],
        ["Terminate", ""],
        ["Initialize", "x"],
        ["Initialize", ""],
        ["Initialize", ""],
        ["SetValue", "cmi.location", "p3"],
        ["SetValue", "cmi.score.scaled", 0.5],
        ["GetValue", "cmi.location"],
        ["SetValue", "cmi.learner_id", "x"],
        ["GetErrorString", "404"],
        ["Commit", ""],
        ["Commit", "x"],
        ["Terminate", ""],
        ["Terminate", ""],
        ["GetValue", "cmi.location"],
        ["SetValue", "cmi.location", "x"],
        ["Commit", ""],
        ["Initialize", ""],
    ]
    result = _run_api(page, "2004 4th Edition", calls)
    assert result["answers"] == [
        ["", "122"],
        ["false", "132"],
        ["false", "142"],
        ["false", "112"],
        ["false", "201"],
        ["true", "0"],
        ["false", "103"],
        ["true", "0"],
        ["true", "0"],
        ["p3", "0"],
        ["false", "404"],
        ["Data Model Element Is Read Only", "404"],
        ["true", "0"],
        ["false", "201"],
        ["true", "0"],
        ["false", "113"],
        ["", "123"],
        ["false", "133"],
        ["false", "143"],
        ["false", "104"],
    ]
    assert result["commits"] == [
        [{"cmi.location": "p3", "cmi.score.scaled": "0.5"}, {"terminate": False}],
        [{}, {"terminate": True}],
    ]
    assert result["otherValue"] is None


def test_api_12_state_machine_in_browser(page: Any) -> None:
    calls = [
        ["LMSGetValue", "cmi.core.lesson_status"],
        ["LMSInitialize", ""],
        ["LMSInitialize", ""],
        ["LMSSetValue", "cmi.core.lesson_status", "passed"],
        ["LMSGetValue", "cmi.core.lesson_status"],
        ["LMSSetValue", "cmi.core.score.raw", "150"],
        ["LMSGetDiagnostic", ""],
        ["LMSFinish", ""],
        ["LMSGetValue", "cmi.core.lesson_status"],
        ["LMSInitialize", ""],
    ]
    result = _run_api(page, "1.2", calls)
    codes = [answer for answer in result["answers"]]
    assert codes[:6] == [["", "301"], ["true", "0"], ["false", "101"], ["true", "0"], ["passed", "0"], ["false", "405"]]
    assert "range" in codes[6][0]
    assert codes[7:] == [["true", "0"], ["", "301"], ["true", "0"]]
    assert result["commits"] == [[{"cmi.core.lesson_status": "passed"}, {"terminate": True}]]


def test_api_refused_commit_keeps_changes_in_browser(page: Any) -> None:
    calls = [["Initialize", ""], ["SetValue", "cmi.location", "a"], ["Commit", ""], ["Terminate", ""]]
    result = _run_api(page, "2004 3rd Edition", calls, refuse=True)
    assert result["answers"][2:] == [["false", "391"], ["false", "391"]]
    assert result["commits"][1] == [{"cmi.location": "a"}, {"terminate": True}]
