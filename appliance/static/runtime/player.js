// The player: installs the SCORM API on this window before any content loads, then delivers SCOs
// in a same-origin frame and carries their data to the server.
//
// Commits are batched: SetValue only changes local values; Commit, Terminate, a 30 s timer and
// `pagehide` send what changed (the timer and pagehide also take the values the SCO set but never
// committed). Each batch carries the session version (optimistic locking) and a per-page sequence
// number, so a replayed request is harmless. A 409 takes the server's version and resends the same
// batch, so the learner's newer values win. On pagehide the batch goes by sendBeacon: a batch still
// in flight is resent under its own sequence number (whichever copy arrives second is a replay), and
// each beacon carries everything earlier beacons carried, so beacons arriving out of order lose nothing.

import { createApi, RUNNING } from "./api.js";

const boot = JSON.parse(document.getElementById("bootstrap").textContent);
const base = `/player/${boot.token}`;
const clientId = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
const TIMER_MS = 30000;

const el = (id) => document.getElementById(id);
const state = { version: null, seq: 0, unloading: false, current: null, ended: false, toc: null, controls: null };
window.scormPlayer = state; // for tests and debugging

function message(text) {
  el("message").textContent = text || "";
}

async function post(path, body) {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  return { status: response.status, data };
}

/** Delivers one SCO session's changes, one request at a time, in order. */
class Transport {
  constructor(activity) {
    this.activity = activity;
    this.pending = {}; // changed elements not yet in a batch
    this.batch = null; // the batch being sent: {seq, changes, terminate, nav_request}
    this.terminate = false; // the SCO called Terminate
    this.acknowledged = false; // the server has answered the Terminate batch: nothing is left to send
    this.navRequest = null; // a request from the player's controls, sent with Terminate
    this.contentRequest = null; // the adl.nav.request the SCO set in this session
    this.busy = null;
    this.closed = false;
    this.runtime = null; // the SCO session's ApiInstance, set by deliver()
    this.beaconed = null; // the last beacon's body: later beacons include its changes
    this.timer = setInterval(() => this.collect(), TIMER_MS);
  }

  /** The navigation request the Terminate carried: the learner's (a player control) or the content's own. */
  requested() {
    if (this.navRequest) return this.navRequest;
    return this.contentRequest && this.contentRequest !== "_none_" ? this.contentRequest : null;
  }

  /** Hand over what the running SCO set but has not committed (timer, pagehide), then send. */
  collect() {
    if (this.runtime && this.runtime.state === RUNNING) this.runtime.commitChanges(false);
    else if (state.unloading) this.beacon();
    else this.flush();
  }

  commit(changes, { terminate }) {
    if (Object.hasOwn(changes, "adl.nav.request")) this.contentRequest = changes["adl.nav.request"];
    Object.assign(this.pending, changes);
    if (terminate) this.terminate = true;
    if (state.unloading) this.beacon();
    else this.flush();
    return true;
  }

  nextBatch() {
    if (this.batch) return this.batch;
    const hasChanges = Object.keys(this.pending).length > 0;
    // Terminate goes to the server once, in one batch: after it nothing is sent for this SCO session
    // (a later flush, a timer tick or a navigation from the table of contents sends no empty commits).
    const terminating = this.terminate && !this.closed;
    if (!hasChanges && !terminating) return null;
    state.seq += 1;
    this.batch = {
      client_id: clientId,
      seq: state.seq,
      activity: this.activity,
      changes: this.pending,
      terminate: terminating,
      nav_request: terminating ? this.navRequest : null,
    };
    this.pending = {};
    if (terminating) this.closed = true;
    return this.batch;
  }

  flush() {
    if (!this.busy) this.busy = this.run().finally(() => (this.busy = null));
    return this.busy;
  }

  async run() {
    let delay = 1000;
    for (;;) {
      const batch = this.nextBatch();
      if (!batch) return;
      let result;
      try {
        result = await post("/commit", { ...batch, version: state.version });
      } catch {
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30000);
        continue;
      }
      if (result.status === 409 && result.data.code === "VERSION_CONFLICT") {
        state.version = result.data.details.current_version;
        continue; // resend the same batch: our values are the newer ones
      }
      this.batch = null;
      if (batch.terminate) {
        this.acknowledged = true;
        clearInterval(this.timer);
      }
      if (result.status !== 200) {
        message(result.data.error || "Your progress could not be saved.");
        if (result.status === 410) state.ended = true;
        console.warn("commit refused", result.data);
        if (batch.terminate) afterTerminate(this, null);
        continue;
      }
      applyState(result.data);
      if (batch.terminate) {
        afterTerminate(this, result.data);
        return;
      }
    }
  }

  beacon() {
    // The page is going away: send everything not yet acknowledged, unconditionally.
    let body;
    const batch = this.batch;
    const terminate = this.terminate && !this.acknowledged;
    if (batch && !this.beaconed && !Object.keys(this.pending).length && batch.terminate === terminate) {
      // Only the batch in flight is unacknowledged: the same seq makes the later of the two a replay
      // (applying a terminate batch twice would put its session_time back after it was consumed).
      body = { ...batch, version: null };
    } else {
      const earlier = this.beaconed ? this.beaconed.changes : {};
      const changes = { ...earlier, ...(batch ? batch.changes : {}), ...this.pending };
      if (!Object.keys(changes).length && !terminate) return;
      state.seq += 1;
      body = {
        client_id: clientId,
        seq: state.seq,
        activity: this.activity,
        changes,
        terminate,
        nav_request: terminate ? this.navRequest : null,
        version: null,
      };
      if (terminate) this.closed = true;
    }
    navigator.sendBeacon(`${base}/commit`, new Blob([JSON.stringify(body)], { type: "text/plain" }));
    this.beaconed = body;
    this.pending = {};
  }
}

function applyState(data) {
  if (typeof data.version === "number") state.version = data.version;
  if (data.request_valid && state.current) {
    for (const [name, value] of Object.entries(data.request_valid)) state.current.runtime.model.values.set(name, value);
  }
  if (data.controls) {
    state.controls = data.controls;
    state.toc = data.toc || null;
    showControls(data);
  }
}

function showControls(data) {
  if (!boot.multi_sco) return;
  el("toolbar").hidden = false;
  for (const name of ["previous", "continue", "suspendAll", "exitAll"]) {
    const button = el(`nav-${name}`);
    if (button) button.hidden = !data.controls[name];
  }
  renderToc(data.toc);
}

function renderToc(toc) {
  const aside = el("toc");
  if (!toc || !boot.multi_sco) return;
  aside.hidden = false;
  // The outline starts at the organization (the root activity): choosing it starts the course over from
  // the top, as far as the engine allows (it says whether the root, like any entry, is selectable).
  aside.replaceChildren(tocList([toc]));
}

function tocList(nodes) {
  const list = document.createElement("ul");
  list.append(...tocItems(nodes));
  return list;
}

function tocItems(nodes) {
  const items = [];
  for (const node of nodes) {
    // isvisible="false" leaves the item itself out of the outline, not its visible children: they take its
    // place (the engine already hides the whole subtree of a hiddenFromChoice item).
    if (node.visible === false) {
      items.push(...tocItems(node.children || []));
      continue;
    }
    const li = document.createElement("li");
    const label = document.createElement(node.selectable ? "button" : "span");
    label.textContent = node.title || node.id;
    label.dataset.activity = node.id;
    if (node.current) li.className = "current";
    if (node.selectable) label.addEventListener("click", () => requestNavigation("choice", node.id));
    li.append(label);
    const children = tocItems(node.children || []);
    if (children.length) {
      const list = document.createElement("ul");
      list.append(...children);
      li.append(list);
    }
    items.push(li);
  }
  return items;
}

function deliver(delivery) {
  const transport = new Transport(delivery.activity);
  const { API, API_1484_11, runtime } = createApi(boot.table, delivery.cmi, transport, {
    dataAccess: delivery.data_access || [],
  });
  // The API objects exist on this window before the frame's content can look for them.
  window.API = API;
  window.API_1484_11 = API_1484_11;
  transport.runtime = runtime;
  state.current = { activity: delivery.activity, runtime, transport };
  el("nav-title").textContent = delivery.title || "";
  const frame = document.createElement("iframe");
  frame.id = "content";
  frame.title = delivery.title || "Course content";
  frame.src = `${base}/content/${delivery.href}`;
  el("stage").replaceChildren(frame);
  message("");
}

function afterTerminate(transport, data) {
  const current = Boolean(state.current && state.current.transport === transport);
  if (current) state.current = { ...state.current, done: true };
  if (!data) return;
  if (data.delivery) deliver(data.delivery);
  else if (data.ended) finish(data);
  else if (!boot.multi_sco) finish({ ...data, ended: true });
  else if (current && transport.requested()) {
    // The SCO terminated with a navigation request and sequencing delivers nothing in its place (an
    // exit, an abandon, a request the engine refused): the content is over, so it leaves the screen,
    // and the learner goes on from the table of contents or the toolbar. Without a request the LMS
    // waits for the learner: the content stays, as it may still show its last page.
    el("stage").replaceChildren();
    const refused = data.exception && data.exception !== "NOT_CURRENT";
    message(refused ? "That is not possible now. Choose an activity to go on." : "Choose an activity to go on.");
  }
}

function finish(data) {
  state.ended = true;
  el("stage").replaceChildren();
  message(data.suspended ? "Your progress is saved. You can close this window." : "You have finished. You can close this window.");
}

/** A learner pressed a control: let the running SCO terminate, then ask the server. */
async function requestNavigation(request, target = null) {
  const current = state.current;
  const name = target ? `{target=${target}}${request}` : request;
  if (current && !current.done && current.runtime.state === RUNNING) {
    current.transport.navRequest = name;
    const frame = el("content");
    if (frame) {
      await new Promise((resolve) => {
        frame.addEventListener("load", resolve, { once: true });
        frame.src = "about:blank"; // the content's unload handler usually calls Terminate
      });
    }
    if (current.runtime.state === RUNNING) current.runtime.terminate("");
    await current.transport.flush();
    return;
  }
  if (current) await current.transport.flush();
  const result = await post("/navigate", { request, target, version: state.version });
  if (result.status !== 200) {
    message(result.data.error || "That is not possible now.");
    return;
  }
  applyState(result.data);
  if (result.data.delivery) deliver(result.data.delivery);
  else if (result.data.ended) finish(result.data);
  else if (result.data.exception) message("That is not possible now.");
}

for (const name of ["previous", "continue", "suspendAll", "exitAll"]) {
  el(`nav-${name}`).addEventListener("click", () => requestNavigation(name));
}

window.addEventListener("pagehide", () => {
  state.unloading = true;
  if (state.current) state.current.transport.collect();
});

async function start() {
  const result = await post("/launch", {});
  if (result.status !== 200) {
    message(result.data.error || "This course cannot be opened.");
    return;
  }
  applyState(result.data);
  if (result.data.delivery) deliver(result.data.delivery);
  else if (result.data.ended) finish(result.data);
  else message("Choose an activity to begin.");
}

start();
