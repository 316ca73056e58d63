/*
 * A JavaScript stand-in for LMSTestSCODriver, the Java applet (common/LMSTest.jar, not in the public
 * repository) that drives every test SCO of the ADL SCORM 2004 4th Edition LMS conformance test suite.
 *
 * The harness (tests/conformance/cts.py) injects this file into every frame of the page, after a line
 * that sets `window.__CTS_CONFIG__ = {case, properties, learner: {id, name}, learner1: {...}}`. In the
 * test SCO pages it answers `document.getElementById("NNLMSTestSCODriver")` (and the other ids the pages
 * use) with the object below, so the pages' own code (resources/*.htm, common/lmsrtefunctions.js) runs
 * unchanged and calls it exactly as it called the applet:
 *
 *   evalID("<tc>!<act>")        the SCO reports which test case and activity the LMS launched; checked
 *                               against the next expected visit (the delivery order). Returns false once
 *                               any launch was wrong (the applet's answer was cumulative), which makes
 *                               the page stop ("Testing Stopped").
 *   getUITestQuestions()        the visit's UI inspection questions (UIQ), as text joined with "~"; the
 *                               page shows them as Yes/No radio buttons for the tester.
 *   evaluateUIResults("Y~N")    the tester's answers, checked against UIA.
 *   runCommands()               makes the visit's API calls through the page's own functions (doInitialize,
 *                               doGetValue, ... in lmsrtefunctions.js, which find window.API_1484_11 on the
 *                               player) and checks each return value and GetLastError.
 *   curUserInstructions()       the instruction for the tester after this visit (CUI), e.g. "Continue";
 *                               moves on to the next expected visit.
 *   completed(), writeToLog(), terminateTest(), failed(), alertFailure(), setSCOStatus(), getScoStatus(),
 *   testTerminate()             the rest of what the pages call.
 *
 * The .properties format, decoded as the CTS did (LMSTestCaseGenerator, LMSParser, Command,
 * TestCaseEvaluator and the Commands/UserInterface/Instructions resource bundles); docs/conformance-format.md
 * is the long version:
 *
 *   - Lines ending in "\" continue on the next line (joined as is); lines containing "####" are comments;
 *     every other line is key=value.
 *   - title, UserInterAct, start, purpose, RTDInit, seqInfo, TT, end: the test case's instructions.
 *   - Act<name>V<n>.commands.<i>, .UIQ, .UIA, .CUI: one expected visit. Consecutive lines with the same
 *     Act<name>V<n> prefix form one visit; the visits in file order are the delivery order the LMS must
 *     produce. <name> (e.g. "3", "2b") is compared with the act= parameter of the launched SCO.
 *   - A command is VERB->ELEMENT[!VALUE]->EXPECTED->ERRORCODE (fields split on "->"). VERB: I Initialize,
 *     T Terminate, C Commit, GET GetValue, SET SetValue, GES GetErrorString, GLE GetLastError,
 *     GeDi GetDiagnostic, COI compare the objective ids. ELEMENT is "~"-separated abbreviations looked up in
 *     COMMANDS below (c~OB~0~SS = cmi.objectives.0.success_status, a~n~r = adl.nav.request,
 *     a~n~rv~TY.c~tar~X = adl.nav.request_valid.choice.{target=X}); "&id&" in place of an index means the
 *     index whose .id is "id", found by reading the collection first. Values and expected values are
 *     looked up too (incomp = incomplete, t = true, N.c = continue); anything not in the table is literal.
 *   - UIQ: "~"-separated question keys (continue.enabled, toc.enabled.selectable@Activity 2, ...), UIA the
 *     expected Y/N answers. CUI: what the tester does next (Continue, Choice~Activity 3, Exit, ...).
 *
 * A command line whose verb the CTS does not know is skipped, as LMSParser.parseCommands skips it (no call, no
 * check), and listed apart in the state (`skipped`) so the report counts it; any other instruction that cannot
 * be decoded (a known verb with fields the CTS could not read, an unknown UI question or instruction) is a failed
 * check.
 *
 * Every check is recorded as {step, activity, call, expected, actual, ok, rule} in the driver's state,
 * which lives in sessionStorage (so it survives SCO frames coming and going and the player page being
 * relaunched); the harness reads it with window.__ctsDriverState().
 */
(function () {
  "use strict";

  const config = window.__CTS_CONFIG__;
  if (!config || window.__ctsDriverInstalled) return;
  window.__ctsDriverInstalled = true;

  const STORAGE_KEY = `cts-driver:${config.case}`;
  const MAX_SHOWN = 160; // longer values are shortened in the record (they are compared in full)

  // -- the CTS resource bundles -------------------------------------------------------------------

  // resources/org/adl/testsuite/rte/lms/util/resources/Commands.properties
  const COMMANDS = {
    I: "doInitialize", T: "doTerminate", C: "doCommit", GET: "doGetValue", SET: "doSetValue",
    GES: "doGetErrorString", GLE: "doGetLastError", GeDi: "doGetDiagnostic", COI: "compareObjIds",
    a: "adl", c: "cmi",
    V: "_version", CFLRNR: "comments_from_learner", CFLMS: "comments_from_lms", CHIL: "_children",
    CNT: "_count", COM: "comment", LOC: "location", TS: "timestamp", CS: "completion_status",
    CT: "completion_threshold", CDT: "credit", E: "entry", X: "exit", INTR: "interactions", ID: "id",
    TY: "type", OB: "objectives", CR: "correct_responses", P: "pattern", W: "weighting",
    LR: "learner_response", R: "result", LAT: "latency", D: "description", LD: "launch_data",
    LI: "learner_id", LN: "learner_name", LP: "learner_preference", AL: "audio_level", LANG: "language",
    DS: "delivery_speed", AC: "audio_captioning", MAXTA: "max_time_allowed", M: "mode", S: "score",
    SCA: "scaled", RW: "raw", MN: "min", MX: "max", SS: "success_status", PM: "progress_measure",
    SPS: "scaled_passing_score", ST: "session_time", SD: "suspend_data", TLA: "time_limit_action",
    TT: "total_time",
    n: "nav", r: "request", rv: "request_valid", tar: "{target=%s}",
    comp: "completed", incomp: "incomplete", notatt: "not attempted", pass: "passed", fail: "failed",
    unk: "unknown", "CDT.c": "credit", "CDT.n": "no-credit", "E.a": "ab-initio", "E.r": "resume", es: "",
    "X.t": "time-out", "X.s": "suspend", "X.l": "logout", "TY.tf": "true-false", "TY.c": "choice",
    "TY.f": "fill-in", "TY.lf": "long-fill-in", "TY.l": "likert", "TY.m": "matching",
    "TY.p": "performance", "TY.s": "sequencing", "TY.n": "numeric", "TY.o": "other", "R.c": "correct",
    "R.i": "incorrect", "R.u": "unanticipated", "R.n": "neutral", "M.b": "browse", "M.n": "normal",
    "M.r": "review", "TLA.em": "exit,message", "TLA.cm": "continue,message", "TLA.enm": "exit,no message",
    "TLA.cnm": "continue,no message", t: "true", f: "false", test: "test", ill: "illegal",
    less255: "A characterstring value less than 255 characters", emptyCS: "An empty characterstring value",
    WOV: "WriteOnceViolation", IlSt: "illegal_state", ivd: "invalid",
    "N.c": "continue", "N.p": "previous", "N.ea": "exitAll", "N.a": "abandon", "N.aa": "abandonAll",
    "N.sa": "suspendAll", "N.n": "_none_", DA: "data", STR: "store", "N.j": "jump",
  };

  // software_development/resources/.../UserInterface.properties
  const UI_QUESTIONS = {
    "continue.enabled": "Did the LMS provide an <b>enabled</b> UI device that corresponds to the <b>Continue</b> Navigation Event?",
    "continue.disabled": "Did the LMS provide a <b>disabled</b> UI device that corresponds to the <b>Continue</b> Navigation Event?",
    "previous.enabled": "Did the LMS provide an <b>enabled</b> UI device that corresponds to the <b>Previous</b> Navigation Event?",
    "previous.disabled": "Did the LMS provide a <b>disabled</b> UI device that corresponds to the <b>Previous</b> Navigation Event?",
    "toc.enabled": "Did the LMS provide an <b>enabled</b> Table of Contents?",
    "toc.enabled.selectable": "Did the LMS provide an enabled Table Of Contents that includes <b>%s</b> as selectable?",
    "toc.visible": "Did the LMS provide a <b>visible</b> (disabled or not) Table of Contents entry for <b>%s</b>?",
    "ui.visible": "Did the LMS provide an <b>enabled or disabled</b> UI device corresponding to the <b>%s</b> Navigation Event?",
    "click.button": "Click the button below to continue.",
  };

  // resources/.../Instructions.properties: the instructions shown to the tester after a visit (CUI).
  const INSTRUCTIONS = {
    APIt1: 'After the Status shows "Test Completed", please launch <b>API Implementation Test 1</b>.',
    APIt2: 'After the Status shows "Test Completed", please launch <b>API Implementation Test 2</b>.',
    DMIt1: 'After the Status shows "Test Completed", please launch <b>Data Model Implementation Test 1</b>.',
    DMIt2: 'After the Status shows "Test Completed", please launch <b>Data Model Implementation Test 2</b>.',
    DMIt3: 'After the Status shows "Test Completed", please launch <b>Data Model Implementation Test 3</b>.',
    DMIt4: 'After the Status shows "Test Completed", please launch <b>Data Model Implementation Test 4</b>.',
    DMBxAct: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package DMB and choose <b>Data Model Behavior Test 1</b> to continue the LMS Conformance Test.",
    DMBx: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package DMB to continue the LMS Conformance Test.",
    TRIGExitAll: "This SCO has completed. To proceed with the tests, please trigger an Exit All Navigation Event, the current learner attempt should end.  Please refer to the instructions in the LMS Test window.",
    Choice: "This SCO has completed. To proceed with the tests, please target <b>%s</b> for a Choice Navigation Event.",
    ChoiceExit: "This SCO has completed. To proceed with the tests, please target <b>%s</b> for a Choice Navigation Event. After triggering the Choice Navigation Event, the current learner attempt should end. Please refer to the instructions in the LMS Test window.",
    ContinueExitCM8: "This SCO has completed. To proceed with the tests, please trigger a <b>Continue</b> Navigation Event. After triggering the Continue Navigation Event, the current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package CM-08 after you log-out of the package.",
    Exit: 'After the Status shows "Test Completed", please exit the package/course and refer to the instructions in the LMS Test window.',
    ExitCM09ba: 'After the Status shows "Test Completed", please exit the package/course and <b>relaunch</b> LMS Test Content Package <b>CM-09ba</b> after you log-out of the package.',
    SuspendCM09ca: 'After the Status shows "Test Completed", please trigger a <b>Suspend All</b> Navigation Event and <b>relaunch</b> LMS Test Content Package <b>CM-09ca</b> after you log-out of the package.',
    Continue: "This SCO has completed. To proceed with the tests, please trigger a <b>Continue</b> Navigation Event.",
    Previous: "This SCO has completed. To proceed with the tests, please trigger a <b>Previous</b> Navigation Event.",
    OKEnd: "The current learner attempt should end.  Please refer to the instructions in the LMS Test window.",
    HasEnded: "The current learner attempt should have ended. ",
    RelaunchCM5: 'After the Status shows "Test Completed", please <b>relaunch</b> LMS Test Content Package <b>CM-05</b> after you log-out of the package.',
    RelaunchCM10: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package <b>CM-10</b> and then choose <b>Activity 4</b> to continue the LMS Conformance Test.",
    RelaunchCM11: 'After the Status shows "Test Completed", please exit the package/course. Please <b>relaunch</b> LMS Test Content Package <b>CM-11</b> after you log-out of the package.',
    RelaunchCM16: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package <b>CM-16</b> after you log-out of the package.",
    RelaunchOB3b: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package <b>OB-03b</b> after you log-out of the package.",
    RelaunchRU13e: 'After the Status shows "Test Completed", please <b>relaunch</b> LMS Test Content Package <b>RU-13e</b> after you log-out of the package.',
    RelaunchRU14a: 'After the Status shows "Test Completed", please <b>relaunch</b> LMS Test Content Package <b>RU-14a</b> after you log-out of the package.',
    RelaunchRU14b: 'After the Status shows "Test Completed", please <b>relaunch</b> LMS Test Content Package <b>RU-14b</b> after you log-out of the package.',
    RelaunchRU14c: 'After the Status shows "Test Completed", please <b>relaunch</b> LMS Test Content Package <b>RU-14c</b> after you log-out of the package.',
    RelaunchRU14d: 'After the Status shows "Test Completed", please <b>relaunch</b> LMS Test Content Package <b>RU-14d</b> after you log-out of the package.',
    AutoTest: "The automated portion of this test has completed. The current learner attempt and the Sequencing Session should end; please refer to the Test Instructions of the LMS Conformance Test.",
    RelaunchSX4a: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package <b>SX-04a</b> to continue the LMS Conformance Test.",
    RootSX4b: 'The current learner attempt should end and the current content will be removed, but the Sequencing Session will remain active. Please choose <b>the activity that corresponds to the root of "LMS Test Content Package SX-04b"</b> to continue the LMS Conformance Test.',
    LaunchDDMb: "The current learner attempt should end. Please <b>launch</b> LMS Test Content Package <b>DDMb</b> to continue the LMS Conformance Test.",
    ReLaunchDDMa: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package <b>DDMa</b> to continue the LMS Conformance Test.",
    ReLaunchDDMb: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package <b>DDMb</b> to continue the LMS Conformance Test.",
    launch: 'After the Status shows "Test Completed", please launch <b>%s</b>.',
    relaunch: 'After the Status shows "Test Completed", please exit the package/course and <b>relaunch</b> LMS Test Content Package <b>%s</b>.',
    exitlaunch: 'After the Status shows "Test Completed", please exit the package/course and <b>launch</b> LMS Test Content Package <b>%s</b>.',
    launchnchoose: 'After the Status shows "Test Completed", please exit the package/course, <b>launch</b> LMS Test Content Package <b>%s</b> and launch <b>%s</b> to continue the LMS Conformance Test.',
    relaunchnchoose: 'After the Status shows "Test Completed", please exit the package/course, <b>relaunch</b> LMS Test Content Package <b>%s</b> and launch <b>%s</b> to continue the LMS Conformance Test.',
    autoendrelaunch: "The current learner attempt should end. Please <b>relaunch</b> LMS Test Content Package <b>%s</b> to continue the LMS Conformance Test.",
    autoendlaunchnchoose: "The current learner attempt should end. Please <b>launch</b> LMS Test Content Package <b>%s</b> and then launch <b>%s</b> to continue the LMS Conformance Test.",
  };

  const INSTRUCTION_KEYS = ["UserInterAct", "start", "purpose", "RTDInit", "seqInfo", "TT", "end"];

  class DecodeError extends Error {}

  // The verbs LMSParser.parseCommands dispatches on; a line with any other first field is skipped by it.
  const KNOWN_VERBS = ["GET", "I", "C", "SET", "GES", "GeDi", "GLE", "T", "COI"];

  /** ResourceBundle.getString + String.format: a missing key answers the key itself. */
  function lookup(table, key, ...args) {
    if (!Object.prototype.hasOwnProperty.call(table, key)) return key;
    const format = table[key];
    let used = 0;
    const text = format.replace(/%s/g, () => {
      if (used >= args.length) throw new DecodeError(`"${key}" needs an argument ("${format}")`);
      return String(args[used++]);
    });
    return text;
  }
  const cmd = (key, ...args) => lookup(COMMANDS, key, ...args);

  /** java.lang.String.split for a literal separator: trailing empty strings are dropped. */
  function jsplit(text, separator) {
    const parts = text.split(separator);
    while (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
    return text === "" ? [""] : parts;
  }

  /** LMSTestCaseGenerator.doUnicode: \uXXXX escapes in command values. */
  function unescapeUnicode(value) {
    return value.replace(/\\u([0-9a-fA-F]{4})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
  }

  // -- reading a .properties test case (LMSTestCaseGenerator.createTC) --------------------------------

  function parseTestCase(text) {
    const errors = [];
    const instructions = {};
    const visits = [];
    let title = "";
    const lines = text.split(/\r\n|\r|\n/);
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    let current = null;
    for (let i = 0; i < lines.length; i++) {
      const lineNo = i + 1;
      let line = lines[i];
      if (line === "") {
        errors.push(`line ${lineNo}: an empty line (the CTS reader cannot read it)`);
        continue;
      }
      while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i];
      if (line.includes("####")) continue;
      const eq = line.indexOf("=");
      if (eq < 0) {
        errors.push(`line ${lineNo}: no "=" in ${JSON.stringify(line.slice(0, 60))}`);
        continue;
      }
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (key === "title") title = value;
      else if (INSTRUCTION_KEYS.includes(key)) instructions[key] = value;
      else if (key.includes("Act")) {
        const dot = key.indexOf(".");
        const prefix = dot < 0 ? key : key.slice(0, dot);
        const vAt = prefix.indexOf("V");
        if (dot < 0 || vAt < 3) {
          errors.push(`line ${lineNo}: cannot read the visit key ${JSON.stringify(key)}`);
          continue;
        }
        if (!current || current.key !== prefix) {
          current = { key: prefix, name: prefix.slice(3, vAt), uiq: "", uia: "", cui: "", commands: [] };
          visits.push(current);
        }
        if (key.includes("UIQ")) current.uiq = value;
        else if (key.includes("UIA")) current.uia = value;
        else if (key.includes("CUI")) current.cui = value;
        else if (key.includes("commands")) current.commands.push({ key, text: unescapeUnicode(value) });
        else errors.push(`line ${lineNo}: unknown visit entry ${JSON.stringify(key)}`);
      } else {
        errors.push(`line ${lineNo}: unknown key ${JSON.stringify(key)}`);
      }
    }
    if (!title) errors.push("no title= line (the test case name the SCOs report)");
    if (!visits.length) errors.push("no Act... visits");
    return { title, instructions, visits, errors };
  }

  // -- decoding one command (LMSParser) ------------------------------------------------------------

  function learnerValue(elementKey) {
    // LMSParser.getLearnerInfoForResultValue: the API test runs as learner 1, every other one as learner 2.
    const learner = config.case === "API" ? config.learner1 || config.learner : config.learner;
    return elementKey.includes("LN") ? learner.name : learner.id;
  }

  function getElement(key) {
    // LMSParser.parseGetCommandsDMParams; returns [element, interaction type expected or ""].
    if (!key.includes("~")) return [key, ""];
    const tokens = jsplit(key, "~");
    let type = "";
    if (tokens[1] === "INTR" && key.includes("!")) {
      for (let j = 0; j < tokens.length; j++) {
        if (tokens[j].includes("!")) {
          const split = jsplit(tokens[j], "!");
          type = cmd(split[1]);
          tokens[j] = split[0];
        }
      }
    }
    if (tokens.length === 6 && key.includes("a~n~r")) {
      return [`${cmd(tokens[0])}.${cmd(tokens[1])}.${cmd(tokens[2])}.${cmd(tokens[3])}.${cmd(tokens[4], tokens[5])}`, type];
    }
    if (tokens.length === 4 && key.includes("a~n~r")) {
      return [`${cmd(tokens[0])}.${cmd(tokens[1])}.${cmd(tokens[2])}.${cmd(tokens[3])}`, type];
    }
    return [tokens.map((t) => cmd(t)).join("."), type];
  }

  function finalSplit(tokens) {
    // LMSParser.setFinalSplitArray: the last token is "element!value".
    const last = tokens[tokens.length - 1];
    const bang = last.indexOf("!");
    if (bang < 0) throw new DecodeError(`no "!value" in ${JSON.stringify(last)}`);
    return [last.slice(0, bang), bang === last.length - 1 ? "" : last.slice(bang + 1)];
  }

  function setElement(key) {
    // LMSParser.parseSetCommandsDMParams: "element!value" with the element and the value decoded.
    const tokens = jsplit(key, "~");
    let param = cmd(tokens[0]);
    if (tokens.length === 2) {
      const [el, val] = finalSplit(tokens);
      param += `.${cmd(el)}!${cmd(val)}`;
    } else if (tokens.length === 3) {
      const [el, val] = finalSplit(tokens);
      param += `.${cmd(tokens[1])}.${cmd(el)}!${cmd(val)}`;
    } else if (tokens.length === 4) {
      const [el, val] = finalSplit(tokens);
      param += `.${cmd(tokens[1])}.${tokens[2]}.${cmd(el)}!${cmd(val)}`;
    } else if (tokens.length === 5) {
      if (key.includes("a~n~r")) {
        const parts = jsplit(tokens[2], "!");
        if (parts.length < 2) throw new DecodeError(`cannot read the navigation request in ${JSON.stringify(key)}`);
        param += `.${cmd(tokens[1])}.${cmd(parts[0])}!${cmd(parts[1], tokens[3])}${cmd(tokens[4])}`;
      } else {
        const parts = jsplit(tokens[4], "!");
        if (parts.length < 2) throw new DecodeError(`no "!value" in ${JSON.stringify(tokens[4])}`);
        param += `.${cmd(tokens[1])}.${cmd(tokens[2])}.${cmd(tokens[3])}.${cmd(parts[0])}!${cmd(parts[1])}`;
      }
    } else if (tokens.length === 6) {
      const [el, val] = finalSplit(tokens);
      param += `.${cmd(tokens[1])}.${cmd(tokens[2])}.${cmd(tokens[3])}.${cmd(tokens[4])}.${cmd(el)}!${cmd(val)}`;
    } else if (tokens.length > 6) {
      throw new DecodeError(`a SetValue element of ${tokens.length} parts: ${JSON.stringify(key)}`);
    }
    return param;
  }

  /**
   * One command line -> {fn, param, expected: {value, code, type}, objectives?} (fn is the page
   * function the applet called: doGetValue, doSetValue, ...), or {verb, skip: reason} for a line the CTS
   * skips: LMSParser.parseCommands compares the first "->" field with its verbs and has no else branch, so
   * an unknown verb (the "" of an empty command included) yields no command and no expected result. Throws
   * DecodeError for a known verb whose fields the CTS could not read (it would have thrown).
   */
  function decodeCommand(text) {
    const parts = jsplit(text, "->");
    if (parts.length === 0) throw new DecodeError("an empty command (no verb)");
    const verb = parts[0];
    if (!KNOWN_VERBS.includes(verb)) {
      const what = verb === "" ? "an empty command" : `unknown command verb ${shown(verb)}`;
      return { verb, skip: `${what}: skipped by the CTS (LMSParser.parseCommands)` };
    }
    const fn = cmd(verb);
    const last = parts.length - 1;
    if (verb === "GET" || verb === "I" || verb === "C") {
      if (parts.length < 2) throw new DecodeError("a GetValue/Initialize/Commit command without its fields");
      const [param, type] = getElement(parts[1]);
      let value = "";
      for (let i = 2; i < last; i++) {
        const word = parts[i];
        value = cmd(word) === "" && word !== "" ? word : cmd(word);
      }
      if (parts[1].includes("LN") || parts[1].includes("LI")) value = learnerValue(parts[1]);
      return { verb, fn, param, expected: { value, code: last >= 2 ? parts[last] : "", type } };
    }
    if (verb === "SET") {
      if (parts.length < 2) throw new DecodeError("a SetValue command without its fields");
      const param = setElement(parts[1]);
      let value = "";
      for (let i = 2; i < last; i++) value = cmd(parts[i]);
      return { verb, fn, param, expected: { value, code: last >= 2 ? parts[last] : "", type: "" } };
    }
    if (verb === "GES" || verb === "GeDi" || verb === "GLE") {
      if (parts.length < 4) throw new DecodeError(`${verb} needs 4 fields`);
      const param = verb === "GLE" ? "" : parts[1];
      return { verb, fn, param, expected: { value: parts[2], code: parts[3], type: "" } };
    }
    if (verb === "T") return { verb, fn, param: "", expected: { value: "", code: "", type: "" } };
    // COI: the objective ids the SCO must find in cmi.objectives.
    if (parts.length < 2) throw new DecodeError("COI without its list of objective ids");
    return { verb, fn, param: parts[1], objectives: jsplit(parts[1], ","), expected: { value: parts[1], code: "", type: "" } };
  }

  // -- comparing a returned value the way the CTS data model did (TestCaseEvaluator.evaluateRegularGet) --

  const REAL = /^cmi\.((completion_threshold|progress_measure|scaled_passing_score)|score\.(scaled|raw|min|max)|objectives\.\d+\.(score\.(scaled|raw|min|max)|progress_measure)|interactions\.\d+\.weighting|learner_preference\.(audio_level|delivery_speed|audio_captioning))$/;
  const DURATION = /^cmi\.(max_time_allowed|total_time|session_time|interactions\.\d+\.latency)$/;
  const TIME = /^cmi\.(comments_from_learner\.\d+|comments_from_lms\.\d+|interactions\.\d+)\.timestamp$/;
  const LOCALIZED = /^cmi\.((comments_from_learner|comments_from_lms)\.\d+\.comment|objectives\.\d+\.description|interactions\.\d+\.description|learner_name)$/;
  const SPM = [
    [/^cmi\.location$/, 1000], [/^cmi\.suspend_data$/, 64000], [/^cmi\.launch_data$/, 4000],
    [/^cmi\.(comments_from_learner|comments_from_lms)\.\d+\.comment$/, 4000],
    [/^cmi\.(comments_from_learner|comments_from_lms)\.\d+\.location$/, 250],
    [/^cmi\.(objectives|interactions)\.\d+\.id$/, 4000], [/^cmi\.interactions\.\d+\.objectives\.\d+\.id$/, 4000],
    [/\.description$/, 250], [/^adl\.data\.\d+\.store$/, 64000], [/^cmi\.learner_id$/, 4000],
  ];

  function durationSeconds(value) {
    // DurationValidator: validate, then Y = 31536000 s, M = 2628029 s, D = 86400 s; hundredths of a second.
    const m = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,2})?)S)?)?$/.exec(value);
    if (!m || value.endsWith("P") || value.endsWith("T") || value.length === 1) return null;
    const n = (x) => (x === undefined ? 0 : Number(x));
    const whole = n(m[1]) * 31536000 + n(m[2]) * 2628029 + n(m[3]) * 86400 + n(m[4]) * 3600 + n(m[5]) * 60;
    return whole + Math.floor(n(m[6]) * 100) / 100;
  }

  function timeFields(value) {
    // DateTimeValidator.compare: ISO 8601 date and time, compared without sub-seconds.
    const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d+)?)?)?)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(value);
    if (!m) return null;
    return [m[1], m[2] || "01", m[3] || "01", m[4] || "00", m[5] || "00", m[6] || "00", m[7] || ""].join("|");
  }

  function splitLang(value) {
    const m = /^\{lang=([^}]*)\}/.exec(value);
    return m ? [m[1].toLowerCase(), value.slice(m[0].length)] : ["en", value];
  }

  function splitDelimiters(value) {
    const found = { lang: "en", case_matters: "false", order_matters: "true" };
    let rest = value;
    for (;;) {
      const m = /^\{(lang|case_matters|order_matters)=([^}]*)\}/.exec(rest);
      if (!m) break;
      found[m[1]] = m[1] === "lang" ? m[2].toLowerCase() : m[2];
      rest = rest.slice(m[0].length);
    }
    return [found, rest];
  }

  function realValue(value) {
    return /^-?(\d+\.?\d*|\.\d+)$/.test(value) ? Number(value) : null;
  }

  function truncate(element, value) {
    for (const [pattern, spm] of SPM) if (pattern.test(element)) return value.slice(0, spm);
    return value;
  }

  /** DMElement.equals: the expected value set on the element, the returned one compared with it. */
  function sameValue(element, expected, returned, type) {
    if (returned === null || returned === undefined) return false;
    if (element.endsWith("._children")) {
      const a = expected.split(",").sort().join(",");
      const b = returned.split(",").sort().join(",");
      return a === b;
    }
    if (REAL.test(element)) {
      const a = realValue(expected);
      const b = realValue(returned);
      return a !== null && b !== null && a === b;
    }
    if (DURATION.test(element)) {
      const a = durationSeconds(expected);
      const b = durationSeconds(returned);
      return a !== null && b !== null && a === b;
    }
    if (TIME.test(element)) {
      const a = timeFields(expected);
      return a !== null && a === timeFields(returned);
    }
    if (LOCALIZED.test(element)) {
      const [la, ta] = splitLang(expected);
      const [lb, tb] = splitLang(returned);
      return la === lb && (ta === tb || truncate(element, ta) === tb);
    }
    if (/^cmi\.learner_preference\.language$/.test(element)) return expected.toLowerCase() === returned.toLowerCase();
    if (/^cmi\.interactions\.\d+\.(correct_responses\.\d+\.pattern|learner_response)$/.test(element)) {
      // Leading delimiters left out equal their defaults ({lang=en}{case_matters=false}{order_matters=true}).
      const [da, ra] = splitDelimiters(expected);
      const [db, rb] = splitDelimiters(returned);
      const same = ["lang", "case_matters", "order_matters"].every((name) => da[name] === db[name]);
      if (same && ra === rb) return true;
    }
    if (type === "matching" && /correct_responses\.\d+\.pattern$|learner_response$/.test(element)) {
      // Matching responses are sets of source[.]target pairs: the order of the pairs does not matter.
      const norm = (v) => v.split("[,]").sort().join("[,]");
      return norm(expected) === norm(returned);
    }
    return expected === returned || truncate(element, expected) === returned;
  }

  // -- the state ----------------------------------------------------------------------------------------
  //
  // The test case is parsed again in every frame (the harness gives every frame its text). What must
  // outlive a SCO frame, and a relaunch of the player page, is small and lives in sessionStorage: which
  // visit comes next, what was delivered, the events the harness acts on. The checks themselves go to
  // the harness as they are made, through the window.__ctsReport binding (DMI alone makes ~10 000).

  const testCase = parseTestCase(config.properties || "");

  function freshState() {
    return {
      case: config.case,
      title: testCase.title,
      instructions: testCase.instructions,
      visits: testCase.visits.map((v) => ({ key: v.key, name: v.name, uiq: v.uiq, uia: v.uia, cui: v.cui, commands: v.commands.length })),
      index: 0, // the visit the LMS must deliver next
      launchesOk: true,
      resultsOk: true,
      checks: testCase.errors.map((error) => ({ step: "decode", activity: null, call: "read the .properties file", expected: "a readable line", actual: error, ok: false, rule: "format" })),
      skipped: [], // command lines the CTS skips (unknown verb): {step, activity, text, reason}, not checks
      reported: 0, // checks handed to the harness so far
      delivered: [], // act= of every SCO that reported its launch, in order
      events: [], // for the harness: launch, ui, commands, instructions, completed, stopped, ...
      pendingUI: null,
      seq: 0,
    };
  }

  function load() {
    const raw = window.sessionStorage.getItem(STORAGE_KEY);
    return raw ? JSON.parse(raw) : freshState();
  }

  function save(state) {
    // Hand the new checks over, keep only the count.
    if (state.checks.length && typeof window.__ctsReport === "function") {
      state.reported += state.checks.length;
      window.__ctsReport(JSON.stringify(state.checks));
      state.checks = [];
    }
    window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  }

  // The state being changed by the driver call in progress: a page function that calls back into the
  // driver (writeToLog from inside a doGetValue) works on the same object, saved once at the end.
  let active = null;

  function update(mutate) {
    if (active) return mutate(active);
    active = load();
    try {
      return mutate(active);
    } finally {
      save(active);
      active = null;
    }
  }

  const shown = (value) => {
    if (value === null || value === undefined) return "(nothing)";
    const text = String(value);
    return text.length > MAX_SHOWN ? `${JSON.stringify(text.slice(0, MAX_SHOWN))}... (${text.length} chars)` : JSON.stringify(text);
  };

  function record(state, check) {
    state.checks.push(check);
    return check.ok;
  }

  function event(state, type, detail = {}) {
    state.seq += 1;
    state.events.push({ seq: state.seq, type, index: state.index, at: Date.now(), ...detail });
  }

  // The visit with its commands (from this frame's parse of the test case).
  const currentVisit = (state) => (state.index < testCase.visits.length ? testCase.visits[state.index] : null);

  // -- running one visit's commands (Command.evaluate) ------------------------------------------------

  function callPage(fn, a, b) {
    const f = window[fn];
    if (typeof f !== "function") throw new Error(`the SCO page has no ${fn}()`);
    const result = f.call(window, a, b);
    return result === null || result === undefined ? null : String(result);
  }

  function findIndex(collection, id) {
    // Command.findObjective / findData: read _count, then each .id, through the page's doGetValue.
    callPage("doGetValue", `${collection}._count`, "");
    const count = parseInt(String(window.lmsReturned), 10) || 0;
    for (let i = 0; i < count; i++) {
      callPage("doGetValue", `${collection}.${i}.id`, "");
      if (String(window.lmsReturned) === id) return i;
    }
    return -1;
  }

  function resolveIndex(element) {
    // Command.parseForIndex: "cmi.objectives.&obj1&.success_status" -> "cmi.objectives.2.success_status".
    if (!element.includes("&")) return element;
    const parts = element.split("&");
    if (parts[0].includes("data")) return parts[0] + findIndex("adl.data", parts[1]) + (parts[2] ?? "");
    if (parts[0].includes("objective")) return parts[0] + findIndex("cmi.objectives", parts[1]) + (parts[2] ?? "");
    return element;
  }

  const API_NAMES = {
    doInitialize: "Initialize", doTerminate: "Terminate", doCommit: "Commit", doGetValue: "GetValue",
    doSetValue: "SetValue", doGetErrorString: "GetErrorString", doGetLastError: "GetLastError",
    doGetDiagnostic: "GetDiagnostic", compareObjIds: "compare objective ids",
  };

  function describeCall(decoded, a, b) {
    const name = API_NAMES[decoded.fn] || decoded.fn;
    if (decoded.fn === "doSetValue") return `${name}(${shown(a)}, ${shown(b)})`;
    if (decoded.fn === "compareObjIds") return `${name}(cmi.objectives.n.id)`;
    return `${name}(${a === "" && decoded.fn !== "doGetValue" ? '""' : shown(a)})`;
  }

  function runOne(state, visit, entry) {
    const step = `${visit.key} ${entry.key.slice(entry.key.indexOf(".") + 1)}`;
    let decoded;
    try {
      decoded = decodeCommand(entry.text);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      return record(state, { step, activity: visit.name, call: entry.text, expected: "a command the CTS can decode", actual: `cannot decode: ${error.message}`, ok: false, rule: "decode" });
    }
    if (decoded.skip) {
      state.skipped.push({ step, activity: visit.name, text: shown(entry.text), reason: decoded.skip });
      return true;
    }
    const expected = decoded.expected;
    if (decoded.fn === "compareObjIds") {
      // Command.compareObjIds + TestCaseEvaluator.evaluateSpecialResult.
      callPage("doGetValue", "cmi.objectives._count", "");
      const count = parseInt(String(window.lmsReturned), 10);
      const ids = [];
      for (let i = 0; i < (Number.isNaN(count) ? 0 : count); i++) {
        callPage("doGetValue", `cmi.objectives.${i}.id`, "");
        ids.push(String(window.lmsReturned));
      }
      const ok = ids.length === decoded.objectives.length && ids.every((id) => decoded.objectives.includes(id));
      return record(state, { step, activity: visit.name, call: describeCall(decoded), expected: `the objectives ${decoded.objectives.join(", ")}`, actual: ids.length ? ids.join(", ") : "no objectives", ok, rule: "objective ids" });
    }
    let a = "";
    let b = "";
    const bang = decoded.param.indexOf("!");
    if (bang >= 0) {
      a = resolveIndex(decoded.param.slice(0, bang));
      b = bang === decoded.param.length - 1 ? "" : decoded.param.slice(bang + 1);
    } else {
      a = resolveIndex(decoded.param);
    }
    const call = describeCall(decoded, a, b);
    const want = `${shown(expected.value)} (error ${expected.code || "-"})`;
    if (a.includes("-1")) {
      const id = decoded.param.includes("&") ? decoded.param.slice(decoded.param.indexOf("&") + 1, decoded.param.lastIndexOf("&")) : "";
      return record(state, { step, activity: visit.name, call, expected: want, actual: `no objective with the id ${JSON.stringify(id)}`, ok: false, rule: "objective index" });
    }
    let returned;
    let code;
    try {
      returned = callPage(decoded.fn, a, b);
      code = callPage("doGetLastError", "", "");
    } catch (error) {
      return record(state, { step, activity: visit.name, call, expected: want, actual: `the call threw: ${error}`, ok: false, rule: "call" });
    }
    const got = `${shown(returned)} (error ${code})`;
    const verdict = evaluate(decoded, a, returned, code);
    return record(state, { step, activity: visit.name, call, expected: verdict.expected || want, actual: got, ok: verdict.ok, rule: verdict.rule });
  }

  /** TestCaseEvaluator.evaluateCurrentResult, branch for branch. */
  function evaluate(decoded, element, returned, code) {
    const { value, code: wantCode, type } = decoded.expected;
    const param = decoded.param;
    const codeOk = wantCode === code;
    const isGet = decoded.fn === "doGetValue";
    const regular = () => {
      if (param.includes("request_valid")) return ["true", "false", "unknown"].includes(returned);
      return sameValue(element, value, returned, type);
    };
    if (isGet && param.includes("learner_name")) {
      return { ok: codeOk, rule: "learner_name: only the error code" };
    }
    if (isGet && (param.includes("request_valid.choice") || param.includes("request_valid.jump"))) {
      return { ok: regular(), rule: "request_valid choice/jump: true, false or unknown", expected: `true, false or unknown (file says ${shown(value)})` };
    }
    if (isGet && !param.includes("_children") && param.includes("comments_from_lms")) {
      const n = Number(code);
      const ok = n === 0 || n === 301 || n === 403 || (param === "cmi.comments_from_lms" && n === 401);
      return { ok, rule: "comments_from_lms: a valid value or error code", expected: "error 0, 301 or 403" };
    }
    if (isGet && value !== "" && !param.includes("_count")) {
      if (param.includes("request_valid")) {
        return { ok: regular() && codeOk, rule: "request_valid: true, false or unknown", expected: `true, false or unknown (file says ${shown(value)}) (error ${wantCode})` };
      }
      return { ok: regular() && codeOk, rule: "value (data model comparison) and error code" };
    }
    if (isGet && param.includes("&") && param.includes(".id")) {
      const id = param.slice(param.indexOf("&") + 1, param.indexOf("&", param.indexOf("&") + 1));
      return { ok: id === returned && codeOk, rule: "objective id and error code", expected: `${shown(id)} (error ${wantCode})` };
    }
    if (isGet && returned !== null && returned.startsWith("{") && !param.includes("_count")) {
      return { ok: regular() && codeOk, rule: "value (data model comparison) and error code" };
    }
    if (decoded.fn === "doGetErrorString") {
      let ok;
      if (value === "less255") ok = returned !== null && returned.length < 255;
      else if (value === "emptyCS") ok = returned === "";
      else ok = returned === value;
      return { ok: ok && codeOk, rule: "error string and error code", expected: `${cmd(value) === value ? shown(value) : cmd(value)} (error ${wantCode})` };
    }
    if (decoded.fn === "doGetDiagnostic") {
      const ok = returned !== null && returned.length < 255;
      return { ok: ok && codeOk, rule: "diagnostic and error code", expected: `${cmd("less255")} (error ${wantCode})` };
    }
    return { ok: returned !== null && returned === value && codeOk, rule: "exact value and error code" };
  }

  // -- the object the SCO pages call ----------------------------------------------------------------

  function uiQuestion(key) {
    // LMSParser.getUIMessage
    if (key.includes("@")) {
      const [name, variable] = jsplit(key, "@");
      if (variable !== undefined && variable.includes(".")) {
        const dot = variable.indexOf(".");
        return [name + variable.slice(dot), variable.slice(0, dot)];
      }
      return [name, variable ?? ""];
    }
    return [key, null];
  }

  const driver = {
    evalID(id) {
      return update((state) => {
        const text = String(id);
        const bang = text.indexOf("!");
        const tc = bang < 0 ? text : text.slice(0, bang);
        const act = bang < 0 ? "" : text.slice(bang + 1);
        const visit = currentVisit(state);
        state.delivered.push(act);
        if (tc !== state.title) {
          record(state, { step: "launch", activity: act, call: `evalID(${JSON.stringify(text)})`, expected: `test case ${state.title}`, actual: `test case ${tc}`, ok: false, rule: "wrong package" });
          state.launchesOk = false;
          event(state, "stopped", { reason: "wrong package" });
          return false;
        }
        const expected = visit ? visit.name : "";
        const ok = expected === act;
        record(state, {
          step: "launch",
          activity: act,
          call: `delivery ${state.delivered.length}`,
          expected: visit ? `Activity ${expected} (${visit.key})` : "nothing (the test case has ended)",
          actual: `Activity ${act}`,
          ok,
          rule: "delivery order",
        });
        state.launchesOk = state.launchesOk && ok;
        event(state, "launch", { act, ok });
        if (!state.launchesOk) event(state, "stopped", { reason: "wrong activity" });
        return state.launchesOk;
      });
    },

    getUITestQuestions() {
      return update((state) => {
        const visit = currentVisit(state);
        if (!visit || !visit.uiq) {
          state.pendingUI = null;
          return "";
        }
        const keys = jsplit(visit.uiq, "~");
        const texts = [];
        for (const key of keys) {
          const [name, variable] = uiQuestion(key);
          if (!Object.prototype.hasOwnProperty.call(UI_QUESTIONS, name)) {
            record(state, { step: `${visit.key} UIQ`, activity: visit.name, call: `question ${JSON.stringify(key)}`, expected: "a known UI question", actual: "cannot decode", ok: false, rule: "decode" });
          }
          texts.push(variable === null ? lookup(UI_QUESTIONS, name) : lookup(UI_QUESTIONS, name, variable));
        }
        state.pendingUI = { visit: visit.key, index: state.index, keys, texts };
        event(state, "ui", { visit: visit.key, keys });
        return texts.join("~");
      });
    },

    evaluateUIResults(answers) {
      return update((state) => {
        const visit = currentVisit(state);
        const pending = state.pendingUI;
        state.pendingUI = null;
        if (!visit || !pending) return false;
        const expected = jsplit(visit.uia, "~");
        const given = jsplit(String(answers), "~");
        let ok = true;
        if (expected.length !== pending.keys.length || given.length !== pending.keys.length) {
          ok = record(state, { step: `${visit.key} UIA`, activity: visit.name, call: "UI inspection", expected: `${pending.keys.length} answers (UIA=${visit.uia})`, actual: String(answers), ok: false, rule: "decode" });
        } else {
          pending.keys.forEach((key, i) => {
            ok = record(state, { step: `${visit.key} UIQ ${i}`, activity: visit.name, call: `UI: ${key}`, expected: expected[i], actual: given[i], ok: expected[i] === given[i], rule: "UI inspection" }) && ok;
          });
        }
        event(state, "ui-answered", { visit: visit.key, answers: String(answers) });
        return ok;
      });
    },

    runCommands() {
      return update((state) => {
        const visit = currentVisit(state);
        if (!visit) return state.resultsOk;
        let ok = true;
        const began = Date.now();
        visit.commands.forEach((entry) => {
          ok = runOne(state, visit, entry) && ok;
        });
        state.resultsOk = state.resultsOk && ok;
        event(state, "commands", { visit: visit.key, ok, count: visit.commands.length, ms: Date.now() - began });
        return state.resultsOk;
      });
    },

    curUserInstructions() {
      return update((state) => {
        const visit = currentVisit(state);
        const cui = visit ? visit.cui : "";
        let text = "";
        if (cui) {
          const [name, ...args] = jsplit(cui, "~");
          if (!Object.prototype.hasOwnProperty.call(INSTRUCTIONS, name)) {
            record(state, { step: `${visit.key} CUI`, activity: visit.name, call: `instruction ${JSON.stringify(cui)}`, expected: "a known instruction", actual: "cannot decode", ok: false, rule: "decode" });
            text = cui;
          } else {
            try {
              text = lookup(INSTRUCTIONS, name, ...args);
            } catch (error) {
              record(state, { step: `${visit.key} CUI`, activity: visit.name, call: `instruction ${JSON.stringify(cui)}`, expected: "a known instruction", actual: String(error.message), ok: false, rule: "decode" });
              text = cui;
            }
          }
        }
        event(state, "instructions", { visit: visit ? visit.key : null, cui });
        state.index += 1;
        return text;
      });
    },

    completed() {
      update((state) => event(state, "completed", { done: state.index >= state.visits.length }));
    },
    writeToLog(log, type, message) {
      update((state) => {
        if (String(type) === "3" || String(type) === "4") {
          record(state, { step: "sco", activity: null, call: "the SCO's log", expected: "no failure", actual: String(message), ok: false, rule: "SCO report" });
        }
        event(state, "log", { log: String(log), type: String(type), message: String(message) });
      });
    },
    terminateTest() {
      update((state) => {
        record(state, { step: "sco", activity: null, call: "terminateTest()", expected: "the test goes on", actual: "the SCO terminated the test", ok: false, rule: "SCO report" });
        event(state, "stopped", { reason: "terminateTest" });
      });
    },
    failed() {
      update((state) => record(state, { step: "sco", activity: null, call: "failed()", expected: "no failure", actual: "the SCO reported a failure", ok: false, rule: "SCO report" }));
    },
    alertFailure() {
      update((state) => record(state, { step: "sco", activity: null, call: "alertFailure()", expected: "no failure", actual: "the LMS launched a resource that must never be launched", ok: false, rule: "SCO report" }));
    },
    testTerminate() {
      return true;
    },
    scoStatus: true,
    setSCOStatus(value) {
      this.scoStatus = value;
    },
    setScoStatus(value) {
      this.scoStatus = value;
    },
    getScoStatus() {
      return this.scoStatus;
    },
  };

  // The pages look the applet up by id (NNLMSTestSCODriver outside IE; SequencingTestFail.htm misspells
  // it NNLMSTestCODriver); answer those lookups with the stand-in.
  const DRIVER_IDS = new Set(["NNLMSTestSCODriver", "LMSTestSCODriver", "NNLMSTestCODriver", "LMSTestCODriver"]);
  const getElementById = Document.prototype.getElementById;
  Document.prototype.getElementById = function (id) {
    return DRIVER_IDS.has(id) ? driver : getElementById.call(this, id);
  };

  // For the harness (any frame, same origin): the state, and the decoder for unit tests.
  window.__ctsDriverState = () => {
    const raw = window.sessionStorage.getItem(STORAGE_KEY);
    if (raw) return JSON.parse(raw);
    // Nothing happened yet: hand over the decoding errors of the file now.
    const state = freshState();
    save(state);
    return state;
  };
  window.__ctsParseCase = (text) => {
    const parsed = parseTestCase(text);
    return {
      title: parsed.title,
      errors: parsed.errors,
      visits: parsed.visits.map((v) => ({
        key: v.key,
        name: v.name,
        cui: v.cui,
        uiq: v.uiq,
        commands: v.commands.map((c) => {
          try {
            const d = decodeCommand(c.text);
            if (d.skip) return { key: c.key, text: c.text.slice(0, 200), skipped: d.skip };
            return { key: c.key, fn: d.fn, param: d.param, expected: d.expected };
          } catch (error) {
            return { key: c.key, text: c.text.slice(0, 200), error: String(error.message) };
          }
        }),
      })),
    };
  };
  window.__ctsDecode = (text) => {
    try {
      return decodeCommand(text);
    } catch (error) {
      return { error: String(error.message) };
    }
  };
})();
