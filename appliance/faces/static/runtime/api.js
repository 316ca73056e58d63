// The SCORM API objects content talks to: the browser mirror of appliance/core/scorm/rte.py.
//
// createApi(table, initialCmi, transport) builds window.API (SCORM 1.2) or window.API_1484_11
// (SCORM 2004) for one SCO session. Every call answers synchronously with SCORM strings. Commit and
// Terminate hand the elements changed since the last accepted commit to transport.commit(changes,
// {terminate}); the transport owns delivery from then on (queue, retry, sendBeacon on unload). It
// may return false (or throw) to refuse, which fails the call with the commit-failure code and keeps
// the changes for the next commit; any other answer (true, undefined, a Promise) counts as accepted.

import { DataModel } from "./datamodel.js";

export const NOT_INITIALIZED = "not_initialized";
export const RUNNING = "running";
export const TERMINATED = "terminated";

// Content often calls LMSInitialize() without its "" argument; missing arguments count as "".
function text(argument) {
  return argument === undefined || argument === null ? "" : String(argument);
}

/** One API instance for one SCO session: Not Initialized -> Running -> Terminated. */
export class ApiInstance {
  constructor(table, cmi = {}, { committer = null, dataAccess = [] } = {}) {
    this.model = new DataModel(table, cmi, { dataAccess });
    this.table = table;
    this.rules = table.rte;
    this.state = NOT_INITIALIZED;
    // Elements written since the last accepted commit, in first-write order (a Set keeps insertion
    // order): replaying them in that order, as the server does, meets the dependencies they met here.
    this.changed = new Set();
    this.committer = committer;
    this.lastError = 0;
    this.lastDiagnostic = "";
  }

  /** The current CMI values as a plain object. */
  get cmi() {
    return this.model.cmi;
  }

  result(code, answer, diagnostic = "") {
    this.lastError = code;
    this.lastDiagnostic = diagnostic;
    return answer;
  }

  // The code for `call` in the current state (0 when the call is allowed).
  stateError(call) {
    return Number(this.rules[call][this.state] ?? 0);
  }

  getLastError() {
    return String(this.lastError);
  }

  getErrorString(code) {
    return this.table.error_strings[text(code)] ?? "";
  }

  getDiagnostic(code = "") {
    const wanted = text(code);
    if (wanted === "" || wanted === String(this.lastError)) {
      return this.lastDiagnostic || this.getErrorString(String(this.lastError));
    }
    return this.getErrorString(wanted);
  }

  initialize(argument) {
    const code = this.stateError("initialize");
    if (code) return this.result(code, "false", `Initialize is not allowed in state ${this.state}`);
    if (text(argument) !== "") return this.result(this.rules.argument, "false", "the argument must be an empty string");
    this.state = RUNNING;
    return this.result(0, "true");
  }

  terminate(argument) {
    const code = this.stateError("terminate");
    if (code) return this.result(code, "false", `Terminate is not allowed in state ${this.state}`);
    if (text(argument) !== "") return this.result(this.rules.argument, "false", "the argument must be an empty string");
    if (!this.commitChanges(true)) {
      return this.result(this.rules.terminate_failure, "false", "the data could not be stored");
    }
    this.state = this.rules.after_terminate;
    return this.result(0, "true");
  }

  commit(argument) {
    const code = this.stateError("commit");
    if (code) return this.result(code, "false", `Commit is not allowed in state ${this.state}`);
    if (text(argument) !== "") return this.result(this.rules.argument, "false", "the argument must be an empty string");
    if (!this.commitChanges(false)) return this.result(this.rules.commit_failure, "false", "the data could not be stored");
    return this.result(0, "true");
  }

  commitChanges(terminate) {
    const changes = {};
    for (const name of this.changed) {
      if (this.model.values.has(name)) changes[name] = this.model.values.get(name);
    }
    if (this.committer !== null) {
      let accepted;
      try {
        accepted = this.committer(changes, terminate);
      } catch {
        accepted = false;
      }
      if (accepted === false) return false;
    }
    this.changed.clear();
    return true;
  }

  getValue(element) {
    const code = this.stateError("get");
    if (code) return this.result(code, "", `GetValue is not allowed in state ${this.state}`);
    const [value, error] = this.model.getValue(text(element));
    return this.result(error, value, this.model.diagnostic);
  }

  setValue(element, value) {
    const code = this.stateError("set");
    if (code) return this.result(code, "false", `SetValue is not allowed in state ${this.state}`);
    const name = text(element);
    const error = this.model.setValue(name, text(value));
    if (error) return this.result(error, "false", this.model.diagnostic);
    this.changed.add(name);
    return this.result(0, "true", this.model.diagnostic);
  }
}

/**
 * Build the API objects for one SCO session.
 * @param {object} table  datamodel_table(scorm_version) from the server
 * @param {object} initialCmi  element -> value at launch
 * @param {{commit: function(object, {terminate: boolean}): *}} transport
 * @param {{dataAccess?: Array<[boolean, boolean]>}} options  adl.data read/write rights (4th Edition)
 * @returns {{API: object|null, API_1484_11: object|null, runtime: ApiInstance}}
 *   only the object of the table's SCORM version is set; the player puts it on window.
 */
export function createApi(table, initialCmi, transport, options = {}) {
  const committer = (changes, terminate) => transport.commit(changes, { terminate });
  const runtime = new ApiInstance(table, initialCmi, { committer, dataAccess: options.dataAccess ?? [] });
  const common = (prefix) => ({
    [`${prefix}GetValue`]: (element) => runtime.getValue(element),
    [`${prefix}SetValue`]: (element, value) => runtime.setValue(element, value),
    [`${prefix}Commit`]: (argument) => runtime.commit(argument),
    [`${prefix}GetLastError`]: () => runtime.getLastError(),
    [`${prefix}GetErrorString`]: (code) => runtime.getErrorString(code),
    [`${prefix}GetDiagnostic`]: (code) => runtime.getDiagnostic(code),
  });
  if (table.family === "1.2") {
    const API = {
      LMSInitialize: (argument) => runtime.initialize(argument),
      LMSFinish: (argument) => runtime.terminate(argument),
      ...common("LMS"),
    };
    return { API, API_1484_11: null, runtime };
  }
  const API_1484_11 = {
    version: "1.0", // IEEE 1484.11.2: the version of the API implementation (read by the ADL API test)
    Initialize: (argument) => runtime.initialize(argument),
    Terminate: (argument) => runtime.terminate(argument),
    ...common(""),
  };
  return { API: null, API_1484_11, runtime };
}
