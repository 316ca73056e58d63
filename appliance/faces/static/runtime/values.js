// Checking one CMI value against its element spec: the browser mirror of appliance/core/scorm/values.py.
//
// A check answers [null, note] when the value is accepted (the note says when a 2004 value is longer
// than its SPM, which the appliance stores anyway) or [errorKey, diagnostic], where errorKey is a key
// of the table's "errors" map ("type", "range", "too_long"). Regexes come from the table, stored
// unanchored; they are applied here as whole-string matches, like Python's re.fullmatch.

const OK = Object.freeze([null, ""]);
const LANG_PREFIX = "{lang=";
const compiled = new Map();

/** Whole-string match of a named table pattern. */
export function matches(table, patternName, value) {
  const source = table.patterns[patternName];
  let regex = compiled.get(source);
  if (regex === undefined) {
    regex = new RegExp("^(?:" + source + ")$");
    compiled.set(source, regex);
  }
  return regex.test(value);
}

const languageSets = new Map();

/** A language_type (RFC 3066): the syntax, and a primary subtag of ISO 639 (or i, x, qaa-qtz). */
export function validLanguage(table, tag) {
  if (!matches(table, "language", tag)) return false;
  const primary = tag.split("-", 1)[0].toLowerCase();
  if (primary === "i" || primary === "x" || matches(table, "language_local", primary)) return true;
  let codes = languageSets.get(table.language_codes);
  if (codes === undefined) {
    codes = new Set(table.language_codes.split(" "));
    languageSets.set(table.language_codes, codes);
  }
  return codes.has(primary);
}

/** Length in code points, as Python's len() counts (JS .length counts UTF-16 units). */
export function codePointLength(text) {
  let size = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        size--;
        i++;
      }
    }
  }
  return size;
}

/** Check `value` for the element described by `spec`; see the header comment for the answer. */
export function checkValue(table, spec, value, interactionType = null) {
  if (spec.blank && value === "") return OK;
  const kind = spec.kind;
  if (kind === "localized") {
    const [ok, text] = splitLocalized(table, value);
    if (!ok) return ["type", "invalid {lang=...} prefix"];
    return lengthCheck(table, spec, text);
  }
  const tooLong = lengthCheck(table, spec, value);
  if (tooLong[0]) return tooLong;
  const result = checkKind(table, spec, kind, value, interactionType);
  return result[0] ? result : tooLong;
}

function checkKind(table, spec, kind, value, interactionType) {
  switch (kind) {
    case "string":
      return OK;
    case "pattern":
      return matches(table, spec.pattern, value) ? OK : ["type", `not a valid ${spec.pattern} value`];
    case "language":
      return validLanguage(table, value) ? OK : ["type", "not a language code (RFC 3066, ISO 639)"];
    case "number":
      if (!matches(table, spec.pattern, value)) return ["type", "not a number"];
      return rangeCheck(spec, Number(value));
    case "vocab": {
      const allowed = spec.settable ?? spec.vocab;
      return allowed.includes(value) ? OK : ["type", `not one of: ${allowed.join(", ")}`];
    }
    case "result":
    case "nav_request":
      if (spec.vocab.includes(value) || matches(table, spec.pattern, value)) return OK;
      return ["type", "not a valid token"];
    case "interaction":
      return checkInteraction(table, spec, value, interactionType);
    default:
      throw new Error(`unknown element kind ${kind}`);
  }
}

// 1.2: SPM is a hard limit (and max_chars bounds what has none). 2004: SPM is a minimum; store longer
// values up to max_chars.
function lengthCheck(table, spec, text) {
  const spm = spec.spm ?? null;
  const size = codePointLength(text);
  if (spm !== null && table.spm_is_limit) return size > spm ? ["too_long", `longer than ${spm} characters`] : OK;
  if (size > table.max_chars) {
    return ["too_long", `longer than the appliance limit of ${table.max_chars} characters`];
  }
  if (spm !== null && size > spm) return [null, `longer than the SPM of ${spm} characters; stored`];
  return OK;
}

function rangeCheck(spec, number) {
  const [low, high] = spec.range ?? [null, null];
  if ((low !== null && number < low) || (high !== null && number > high)) {
    return ["range", `out of range [${low}, ${high}]`];
  }
  return OK;
}

/** Split an optional {lang=xx} prefix; answers [prefix valid, text after it]. */
export function splitLocalized(table, value) {
  if (!value.startsWith(LANG_PREFIX)) return [true, value];
  const end = value.indexOf("}");
  if (end < 0 || !validLanguage(table, value.slice(LANG_PREFIX.length, end))) return [false, value];
  return [true, value.slice(end + 1)];
}

function checkInteraction(table, spec, value, interactionType) {
  const key = interactionType ?? "";
  const formats = Object.hasOwn(table.interaction_types, key) ? table.interaction_types[key] : undefined;
  if (formats === undefined) return ["type", "the interaction type is not set"];
  const problem = interactionProblem(table, formats[spec.role], value);
  return problem ? ["type", `not a valid ${interactionType} ${spec.role}: ${problem}`] : OK;
}

/** Why `value` does not fit an interaction format ("" if it fits). */
export function interactionProblem(table, fmt, value) {
  if (fmt.form === "vocab") return fmt.values.includes(value) ? "" : "not one of " + fmt.values.join(", ");
  let rest = value;
  if (fmt.delimiters && fmt.delimiters.length) {
    let problem;
    [rest, problem] = stripDelimiters(rest, fmt.delimiters);
    if (problem) return problem;
  }
  let items;
  if (fmt.form === "single") {
    items = [rest];
  } else {
    items = rest === "" ? [] : rest.split("[,]");
    if (items.length < (fmt.min ?? 0)) return `needs at least ${fmt.min} item(s)`;
    if (fmt.unique && new Set(items).size !== items.length) return "items must be unique";
  }
  for (const item of items) {
    const problem = itemProblem(table, fmt.item, item);
    if (problem) return problem;
  }
  return "";
}

// Remove leading {case_matters=..}/{order_matters=..}; anything else starting with "{" is data.
function stripDelimiters(value, allowed) {
  const seen = new Set();
  while (value.startsWith("{")) {
    const name = allowed.find((n) => value.startsWith("{" + n + "="));
    if (name === undefined) break;
    const end = value.indexOf("}");
    const flag = end >= 0 ? value.slice(name.length + 2, end) : "";
    if ((flag !== "true" && flag !== "false") || seen.has(name)) return [value, `bad {${name}=...} delimiter`];
    seen.add(name);
    value = value.slice(end + 1);
  }
  return [value, ""];
}

function itemProblem(table, itemKind, item) {
  switch (itemKind) {
    case "short_identifier":
      return matches(table, "short_identifier", item) ? "" : `bad identifier '${item}'`;
    case "localized":
      return splitLocalized(table, item)[0] ? "" : "bad {lang=...} prefix";
    case "real":
      return matches(table, "decimal", item) ? "" : "not a number";
    case "range":
      return rangeProblem(table, item);
    case "pair":
    case "step":
    case "step_pattern":
      return pairProblem(table, itemKind, item);
    default:
      return "";
  }
}

function pairProblem(table, itemKind, item) {
  const parts = item.split("[.]");
  if (parts.length !== 2) return `'${item}' must be two parts joined by [.]`;
  const [left, right] = parts;
  if (itemKind === "pair") {
    const ok = matches(table, "short_identifier", left) && matches(table, "short_identifier", right);
    return ok ? "" : `bad pair '${item}'`;
  }
  if (left === "" && right === "") return "a step needs a name or an answer";
  if (left !== "" && !matches(table, "short_identifier", left)) return `bad step name '${left}'`;
  if (itemKind === "step_pattern" && right.includes("[:]")) return rangeProblem(table, right);
  return "";
}

// A numeric value, or min[:]max with either bound optional and min <= max.
function rangeProblem(table, item) {
  if (!item.includes("[:]")) return matches(table, "decimal", item) ? "" : "not a number";
  const bounds = item.split("[:]");
  if (bounds.length !== 2 || bounds.some((b) => b !== "" && !matches(table, "decimal", b))) {
    return `bad range '${item}'`;
  }
  const [low, high] = bounds;
  if (low !== "" && high !== "" && Number(low) > Number(high)) return "range minimum is above its maximum";
  return "";
}

/**
 * The 2004 completion/success evaluation (rte-rules.md 5.2), or null when no threshold is defined.
 * `cmi` is a Map of element -> value.
 */
export function evaluatedStatus(spec, cmi) {
  const rule = spec.computed;
  if (!rule || !cmi.has(rule.threshold)) return null;
  const measure = cmi.get(rule.measure);
  if (measure === undefined || measure === "") return "unknown";
  return Number(measure) >= Number(cmi.get(rule.threshold)) ? rule.above : rule.below;
}
