"""A small SCO of our own for the page-ending tests: one page, SCORM 1.2 or 2004, whose launch data
says in which handler it saves its state and calls Finish/Terminate.

`ending_package(version, modes)` builds a ZIP with one item per mode (the item's `datafromlms` /
`dataFromLMS` is the mode). The SCO finds its API as content does (walking `window.parent`), calls
Initialize, keeps what the LMS gave it in `window.sco` (entry, location, suspend data, total time,
launch data),
and offers `work(step)` (sets location and suspend data, no Commit), `commit()` and `end()` (exit =
suspend, session time, a last suspend-data marker, then Finish), and `answer(id, right)` (appends one
interaction record). Modes:

- `beforeunload`, `pagehide`, `unload`, `visibilitychange`: `end()` runs in that event of the SCO's page;
- `nested-<event>` (beforeunload, pagehide, unload, visibilitychange): a frame inside the SCO's page
  runs `end()` in that event of its own (the order in which nested frames unload is what these check);
- `never`: the SCO never calls Finish; what it set is only in the page.
"""

from __future__ import annotations

import io
import zipfile

from tests.core.scorm.manifests import NS_12, NS_2004, item, manifest, organization, resource

SESSION_TIME = {"1.2": "00:01:05", "2004": "PT1M5S"}
SESSION_SECONDS = 65.0
ENDED = "|ended"  # what end() appends to the suspend data

SCO_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Ending SCO</title></head>
<body><h1>Ending SCO</h1><p id="mode"></p>
<script>
function findApi(name) {
  let win = window;
  for (let i = 0; i < 10 && win; i++) {
    if (win[name]) return win[name];
    if (win.parent === win) break;
    win = win.parent;
  }
  return null;
}
const api04 = findApi("API_1484_11");
const api12 = api04 ? null : findApi("API");
const S = api04
  ? { init: () => api04.Initialize(""), get: (n) => api04.GetValue(n), set: (n, v) => api04.SetValue(n, v),
      commit: () => api04.Commit(""), finish: () => api04.Terminate(""),
      entry: "cmi.entry", location: "cmi.location", suspend: "cmi.suspend_data", exit: "cmi.exit",
      time: "cmi.session_time", launch: "cmi.launch_data", total: "cmi.total_time", timeValue: "PT1M5S" }
  : { init: () => api12.LMSInitialize(""), get: (n) => api12.LMSGetValue(n), set: (n, v) => api12.LMSSetValue(n, v),
      commit: () => api12.LMSCommit(""), finish: () => api12.LMSFinish(""),
      entry: "cmi.core.entry", location: "cmi.core.lesson_location", suspend: "cmi.suspend_data",
      exit: "cmi.core.exit", time: "cmi.core.session_time", launch: "cmi.launch_data", total: "cmi.core.total_time",
      timeValue: "00:01:05" };
const initialized = S.init();
window.sco = {
  initialized, entry: S.get(S.entry), location: S.get(S.location), suspend: S.get(S.suspend), mode: S.get(S.launch),
  total: S.get(S.total), results: [],
};
document.getElementById("mode").textContent = window.sco.mode;
window.work = (step) => { S.set(S.location, "page-" + step); S.set(S.suspend, "state-" + step); };
window.commit = () => S.commit();
// One answer appended as an interaction record: id, type, response and result (a whole record).
window.answer = (id, right) => {
  const n = S.get("cmi.interactions._count");
  const p = "cmi.interactions." + n + ".";
  S.set(p + "id", id);
  S.set(p + "type", "true-false");
  S.set(p + (api04 ? "learner_response" : "student_response"), api04 ? "true" : "t");
  S.set(p + "result", right ? "correct" : (api04 ? "incorrect" : "wrong"));
  return n;
};
let ended = false;
window.end = () => {
  if (ended) return;
  ended = true;
  const r = window.sco.results;
  r.push(S.set(S.exit, "suspend"));
  r.push(S.set(S.time, S.timeValue));
  r.push(S.set(S.suspend, S.get(S.suspend) + "|ended"));
  r.push(S.finish());
};
const mode = window.sco.mode;
if (mode === "visibilitychange") {
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") window.end(); });
} else if (["beforeunload", "pagehide", "unload"].includes(mode)) {
  window.addEventListener(mode, () => window.end());
} else if (mode.startsWith("nested-")) {
  const inner = document.createElement("iframe");
  inner.id = "inner";
  inner.src = "inner.html#" + mode.slice("nested-".length);
  document.body.append(inner);
}
</script></body></html>
"""

INNER_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Inner frame</title></head><body><p>inner</p>
<script>
const event = location.hash.slice(1);
if (event === "visibilitychange") {
  document.addEventListener(event, () => { if (document.visibilityState === "hidden") window.parent.end(); });
} else {
  window.addEventListener(event, () => window.parent.end());
}
window.ready = true;
</script></body></html>
"""


def ending_package(version: str, modes: list[str], *, flow: bool = True) -> bytes:
    """A ZIP with one SCO item per mode (SCORM `version` "1.2" or "2004"), the mode as its launch data."""
    if version == "1.2":
        body = "<adlcp:datafromlms>{}</adlcp:datafromlms>"
        namespaces, schemaversion, type_attr = NS_12, "1.2", "adlcp:scormtype"
    else:
        body = "<adlcp:dataFromLMS>{}</adlcp:dataFromLMS>"
        namespaces, schemaversion, type_attr = NS_2004, "2004 4th Edition", "adlcp:scormType"
    items = [item(f"item-{mode}", ref="sco", title=f"SCO {mode}", body=body.format(mode)) for mode in modes]
    sequencing = ""
    if version == "2004":
        sequencing = (
            f'<imsss:sequencing><imsss:controlMode choice="true" flow="{str(flow).lower()}"/></imsss:sequencing>'
        )
    xml = manifest(
        schemaversion=schemaversion,
        namespaces=namespaces,
        organizations=organization("org1", *items, body=sequencing),
        resources=resource("sco", "sco.html", type_attr=type_attr, files=["sco.html", "inner.html"]),
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", xml)
        archive.writestr("sco.html", SCO_HTML)
        archive.writestr("inner.html", INNER_HTML)
    return buffer.getvalue()
