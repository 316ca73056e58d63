// The player: installs the SCORM API on this window before any content loads, then delivers SCOs
// in a same-origin frame and carries their data to the server.
//
// How values travel (docs/player.md, "How progress is saved"). SetValue only changes local values;
// Commit, Terminate, a 30 s timer, the page being hidden (`visibilitychange`) and the page going away
// (`pagehide`) send what changed (the timer, hiding and pagehide also take the values the SCO set but
// never committed). Each batch carries the session version (optimistic locking) and a per-page
// sequence number, so a replayed request is harmless. A 409 takes the server's version and resends the
// same batch, so the learner's newer values win.
//
// Transport: while the page lives, batches go one at a time by `fetch(..., {keepalive: true})`, so a
// batch already in flight when the page goes away still arrives (a plain fetch is cancelled with the
// page); a body over the browser's 64 KiB keepalive budget goes by plain fetch. Once the top window's
// `pagehide` has run (content frames unload after it, so their Finish/Terminate comes later), every
// batch goes by `sendBeacon`, which the browser delivers after the page is gone: each beacon carries
// everything not yet acknowledged (the batch in flight, earlier beacons, then newer changes, in that
// order), so beacons arriving in any order lose nothing, and a batch in flight is resent under its own
// sequence number (whichever copy arrives second is a replay).
//
// Outages: a batch that cannot be delivered (network error, server stopped or restarting, 429, 5xx)
// stays queued in the page and is retried with backoff (1 s doubling to 8 s, at once when the browser
// says it is online again); Commit keeps answering "true" to content, and the status line quietly says
// "Saving…" / "Offline". While the page is open it also sends a sign of life well within the session's
// time-to-live, so a tab left open does not expire under the learner.

import { createApi, RUNNING } from "./api.js";
import { expandRequestValid, expandToc, tocKey } from "./outline.js";

const boot = JSON.parse(document.getElementById("bootstrap").textContent);
const base = `/player/${boot.token}`;
const clientId = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
const TIMER_MS = 30000;
const RETRY_MS = [1000, 2000, 4000, 8000]; // backoff while the server cannot be reached
const KEEPALIVE_LIMIT = 60000; // bytes: keepalive bodies share the browser's 64 KiB in-flight budget
const SAVING_AFTER_MS = 1000; // "Saving…" appears only when a save takes longer than this

const el = (id) => document.getElementById(id);
const state = {
  version: null,
  seq: 0,
  unloading: false,
  current: null,
  ended: false,
  toc: null, // the table of contents as the engine's toc() gives it (expanded from the answer's compact form)
  controls: null,
  requestValid: null, // the last answer's adl.nav.request_valid values
  saving: "", // the save indicator: "", "saving" or "offline"
};
window.scormPlayer = state; // for tests and debugging

function message(text) {
  // A learner-facing notice (a refused save, the end of the course); the save indicator is separate.
  el("message").textContent = text || "";
}

async function post(path, body, { keepalive = false } = {}) {
  const text = JSON.stringify(body);
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: text,
    keepalive: keepalive && text.length < KEEPALIVE_LIMIT,
  });
  const data = await response.json().catch(() => ({}));
  return { status: response.status, data, retryAfter: Number(response.headers.get("Retry-After")) || 0 };
}

/** Whether an answer means "try again later" rather than "refused": the server stopping, restarting, busy. */
function transient(status) {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/** The quiet save indicator: "" (saved), "saving" or "offline". Never an alert: content keeps running. */
const saving = {
  shown: "",
  timer: null,
  set(value) {
    clearTimeout(this.timer);
    if (value === "saving" && this.shown !== "offline") {
      this.timer = setTimeout(() => this.show("saving"), SAVING_AFTER_MS);
      return;
    }
    this.show(value);
  },
  show(value) {
    this.shown = value;
    state.saving = value;
    const node = el("saving");
    if (!node) return;
    node.dataset.state = value;
    node.textContent =
      value === "offline"
        ? "Offline: your progress is kept in this page and is saved when the connection returns."
        : value === "saving"
          ? "Saving…"
          : "";
  },
};

/**
 * The journal: every batch handed to the network and not yet acknowledged, kept in this browser's
 * localStorage (per session) until the server answers it. A beacon is never answered, so its body stays
 * until the next page of this session starts: that page resends each entry under its own client id and
 * sequence number before it launches (the copy that arrives second is a replay, so nothing is applied
 * twice). This covers a reload whose new page would launch before the old page's beacon arrived, a
 * page closed while the server could not be reached, and a crash while a batch was queued.
 */
const journal = {
  prefix: `scorm-appliance:unsent:${boot.session_id}:`, // one key per page: two tabs never overwrite each other
  maxAgeMs: 7 * 24 * 3600 * 1000, // older entries are dropped unsent (the learner's data stays bounded)
  entries: [],
  add(body) {
    this.entries = this.entries.filter((e) => !(e.client_id === body.client_id && e.seq === body.seq));
    this.entries.push({ ...body, version: null, saved_at: Date.now() });
    this.store();
  },
  /** The server answered `seq` of this page: it and everything this page sent before it are done. */
  done(seq) {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.seq > seq);
    if (this.entries.length !== before) this.store();
  },
  store(key = this.prefix + clientId, entries = this.entries) {
    try {
      if (entries.length) localStorage.setItem(key, JSON.stringify(entries));
      else localStorage.removeItem(key);
    } catch {
      // storage full or disabled: the page's own queue and the beacon remain
    }
  },
  /** Earlier pages' entries of this session: {key: entries}, each page's oldest first. */
  earlier() {
    const found = {};
    try {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (!key || !key.startsWith(this.prefix)) continue;
        const entries = JSON.parse(localStorage.getItem(key) || "[]");
        if (Array.isArray(entries)) found[key] = entries;
      }
    } catch {
      // unreadable storage: nothing to resend
    }
    return found;
  },
  /** Resend what earlier pages of this session left unacknowledged, each under its own page id and seq. */
  async replay() {
    for (const [key, entries] of Object.entries(this.earlier())) {
      const left = [];
      for (const entry of entries) {
        if (!(Date.now() - (entry.saved_at || 0) < this.maxAgeMs)) continue;
        const { saved_at: _, ...body } = entry;
        let result = null;
        try {
          result = await post("/commit", body);
        } catch {
          result = null;
        }
        // Any answer but "later" settles it: applied, a replay of what already arrived, or refused for good.
        if (result === null || transient(result.status)) left.push(entry);
      }
      this.store(key, left);
    }
  },
};

/** Resolves after `ms`, or at once when the browser reports that it is online again. */
function pause(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      window.removeEventListener("online", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    window.addEventListener("online", done);
  });
}

const INTERACTION = /^cmi\.interactions\.(\d+)\.(.+)$/;

/** How many interaction records a flat CMI object holds. */
function interactionCount(cmi) {
  let count = 0;
  for (const name of Object.keys(cmi)) {
    const match = INTERACTION.exec(name);
    if (match) count = Math.max(count, Number(match[1]) + 1);
  }
  return count;
}

/**
 * Where the interaction records this page appends are stored. Interactions are a journal (a record per
 * answer), so when another page of the same session appended records meanwhile (the server answers
 * 409), this page's new records move after the stored ones as whole records, instead of being mixed
 * field by field into the other page's records at the same index. Without a conflict a record keeps
 * its own index; records that existed at launch are shared, and the later write wins.
 */
class InteractionSlots {
  constructor(launched) {
    this.launched = launched; // records stored when this SCO session began
    this.next = launched; // the server index the next new record takes
    this.slot = new Map(); // this page's record index -> the server's
    this.settled = new Set(); // records whose place the server has acknowledged
  }

  /** The changes with this page's new records at their server index (order kept: dependencies). */
  map(changes) {
    const mapped = {};
    for (const [name, value] of Object.entries(changes)) {
      const match = INTERACTION.exec(name);
      const local = match ? Number(match[1]) : -1;
      if (local < this.launched) {
        mapped[name] = value;
        continue;
      }
      if (!this.slot.has(local)) this.slot.set(local, this.next++);
      mapped[`cmi.interactions.${this.slot.get(local)}.${match[2]}`] = value;
    }
    return mapped;
  }

  fresh(changes) {
    const found = new Set();
    for (const name of Object.keys(changes)) {
      const match = INTERACTION.exec(name);
      if (match && Number(match[1]) >= this.launched && !this.settled.has(Number(match[1]))) found.add(Number(match[1]));
    }
    return [...found].sort((a, b) => a - b);
  }

  settle(changes) {
    for (const local of this.fresh(changes)) this.settled.add(local);
  }

  /** After a conflict: the batch's records not yet placed go after what is stored now. */
  rebase(stored, changes) {
    const records = this.fresh(changes);
    if (!records.length) return false;
    let next = interactionCount(stored);
    for (const [local, index] of this.slot) if (this.settled.has(local)) next = Math.max(next, index + 1);
    for (const local of records) this.slot.set(local, next++);
    this.next = next;
    return true;
  }
}

/** Delivers one SCO session's changes, one request at a time, in order. */
class Transport {
  constructor(activity, cmi = {}) {
    this.activity = activity;
    this.slots = new InteractionSlots(interactionCount(cmi));
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
    this.alive = false; // a sign of life is due: the next batch may be empty
    this.local = {}; // the batch in flight's changes as this page names them
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
    if (!hasChanges && !terminating && !(this.alive && !this.closed)) return null;
    this.alive = false;
    state.seq += 1;
    this.batch = {
      client_id: clientId,
      seq: state.seq,
      activity: this.activity,
      changes: this.slots.map(this.pending),
      terminate: terminating,
      nav_request: terminating ? this.navRequest : null,
    };
    this.local = this.pending; // the batch's changes as this page names them (see InteractionSlots)
    this.pending = {};
    if (terminating) this.closed = true;
    journal.add(this.batch);
    return this.batch;
  }

  /** An empty commit: the server pushes the session's expiry back (the page is still open). */
  heartbeat() {
    this.alive = true;
    this.flush();
  }

  flush() {
    if (!this.busy) this.busy = this.run().finally(() => (this.busy = null));
    return this.busy;
  }

  async run() {
    let failures = 0;
    for (;;) {
      const batch = this.nextBatch();
      if (!batch) {
        saving.set("");
        return;
      }
      if (state.unloading) {
        // The page went away while this batch waited: only a beacon leaves now (beacon() took the batch).
        this.beacon();
        return;
      }
      saving.set(failures ? "offline" : "saving");
      let result;
      try {
        result = await post("/commit", { ...batch, version: state.version, toc_key: tocKey() }, { keepalive: true });
      } catch {
        result = null; // the server cannot be reached: keep the batch and try again
      }
      if (result === null || transient(result.status)) {
        saving.set("offline");
        const wait = Math.max(RETRY_MS[Math.min(failures, RETRY_MS.length - 1)], (result?.retryAfter || 0) * 1000);
        failures += 1;
        await pause(wait);
        continue;
      }
      failures = 0;
      if (result.status === 409 && result.data.code === "VERSION_CONFLICT") {
        state.version = result.data.details.current_version;
        await this.rebase(batch);
        continue; // resend the same batch: our values are the newer ones
      }
      this.batch = null;
      this.slots.settle(this.local);
      journal.done(batch.seq);
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

  /** Another page committed: new interaction records of this batch go after the stored ones. */
  async rebase(batch) {
    if (!this.slots.fresh(this.local).length) return;
    try {
      const response = await fetch(`${base}/state?activity=${encodeURIComponent(this.activity)}`);
      if (!response.ok) return;
      const stored = await response.json();
      if (this.slots.rebase(stored.cmi || {}, this.local)) {
        batch.changes = this.slots.map(this.local);
        journal.add(batch);
      }
    } catch {
      // unreachable: the resend finds out, and the records keep their places
    }
  }

  beacon() {
    // The page is going away: send everything not yet acknowledged, unconditionally.
    let body;
    const batch = this.batch;
    const terminate = this.terminate && !this.acknowledged;
    const news = Object.keys(this.pending).length > 0 || (terminate && !this.beaconed?.terminate);
    // What earlier beacons carried is on its way already: a later one goes only with something new
    // (pagehide, visibilitychange and content handlers may each ask; a Terminate must travel once, or
    // its session_time would be counted again).
    if (this.beaconed && !news) return;
    if (batch && !this.beaconed && !Object.keys(this.pending).length && batch.terminate === terminate) {
      // Only the batch in flight is unacknowledged: the same seq makes the later of the two a replay
      // (applying a terminate batch twice would put its session_time back after it was consumed).
      body = { ...batch, version: null };
    } else {
      // Oldest first, so newer values win: the batch in flight, what earlier beacons carried, then what
      // changed since.
      const earlier = this.beaconed ? this.beaconed.changes : {};
      const changes = { ...(batch ? batch.changes : {}), ...earlier, ...this.slots.map(this.pending) };
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
    journal.add(body);
    navigator.sendBeacon(`${base}/commit`, new Blob([JSON.stringify(body)], { type: "text/plain" }));
    this.beaconed = body;
    this.pending = {};
  }
}

function applyState(data) {
  if (typeof data.version === "number") state.version = data.version;
  if (!data.controls) return; // a plain commit's answer: no player state
  state.controls = data.controls;
  state.toc = expandToc(data.toc); // first: it may bring the outline request_valid's positions refer to
  // adl.nav.request_valid for the SCO delivered with this answer (deliver() adds it to its CMI), or for the
  // one still running.
  state.requestValid = expandRequestValid(data.request_valid);
  if (state.requestValid && state.current && !data.delivery) {
    for (const [name, value] of Object.entries(state.requestValid)) state.current.runtime.model.values.set(name, value);
  }
  showControls(data);
}

function showControls(data) {
  if (!boot.multi_sco) return;
  el("toolbar").hidden = false;
  for (const name of ["previous", "continue", "suspendAll", "exitAll"]) {
    const button = el(`nav-${name}`);
    if (button) button.hidden = !data.controls[name];
  }
  renderToc(state.toc);
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
  const cmi = { ...(delivery.cmi || {}), ...(state.requestValid || {}) };
  const transport = new Transport(delivery.activity, cmi);
  const { API, API_1484_11, runtime } = createApi(boot.table, cmi, transport, {
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
  const result = await post("/navigate", { request, target, version: state.version, toc_key: tocKey() });
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

// The top window's pagehide runs before the content frames' unload handlers: from here on every batch,
// including a Finish/Terminate those handlers call, goes by beacon.
window.addEventListener("pagehide", () => {
  state.unloading = true;
  if (state.current) state.current.transport.collect();
});

// Hidden (another tab, the phone's home screen): a mobile browser may end the page later without any
// other event, so what the SCO set goes now, while requests still leave.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden" && state.current) state.current.transport.collect();
});

// Back after a bfcache restore: the page is live again.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) state.unloading = false;
});

/** A sign of life well within the session's time-to-live, so an open tab does not expire. */
function keepAlive(ttlSeconds) {
  if (!ttlSeconds) return;
  const every = Math.max(1000, Math.min(ttlSeconds * 250, 15 * 60 * 1000)); // a quarter of the TTL, at most 15 min
  setInterval(() => {
    if (state.ended || state.unloading || !state.current || state.current.done) return;
    state.current.transport.heartbeat();
  }, every);
}

async function start() {
  keepAlive(boot.ttl_seconds);
  await journal.replay(); // what earlier pages of this session could not be sure they delivered
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
