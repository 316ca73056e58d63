// The SCORM run-time data model over CMI values: the browser mirror of appliance/core/scorm/datamodel.py.
//
// DataModel answers GetValue/SetValue with the exact SCORM error codes. It hard-codes no element:
// every rule comes from the table the server builds with appliance.core.scorm.elements.datamodel_table()
// and hands to the player. Keep this file and datamodel.py in step; tests/vectors/cmi_vectors.json
// runs the same cases against both.
//
// Check order (errors.md, ADL): empty name -> name resolution (401) -> keywords -> access (RO/WO) ->
// collection rules (index: canonical, in range; fixed arrays; record limit; new record needs its id) ->
// dependencies (408) -> write-once and uniqueness -> value format (type, range) -> uniqueness of
// correct-response patterns.

import { checkValue, evaluatedStatus } from "./values.js";

const KEYWORDS = ["_children", "_count", "_version"];
const INDEX = /^(?:0|[1-9][0-9]*)$/;
// Any run of digits is an index position ("cmi.interactions.01.id" names an interaction record); only
// the canonical form (INDEX) addresses one: a leading zero is a bad index (351/301, as ADL's DMI expects).
const DIGITS = /^[0-9]+$/;
const knownByTable = new WeakMap();

class Failure {
  constructor(key, diagnostic) {
    this.key = key;
    this.diagnostic = diagnostic;
  }
}

// Every element template plus every container above one (cmi, cmi.core, cmi.interactions.n, ...).
function knownNames(table) {
  let known = knownByTable.get(table);
  if (known !== undefined) return known;
  known = new Set([
    ...Object.keys(table.targets),
    ...Object.keys(table.children),
    ...Object.keys(table.arrays),
  ]);
  for (const name of Object.keys(table.elements)) {
    const parts = name.split(".");
    for (let i = 1; i <= parts.length; i++) known.add(parts.slice(0, i).join("."));
  }
  knownByTable.set(table, known);
  return known;
}

/** Record counts of every array that has records, derived from the concrete element names. */
export function countRecords(names) {
  const counts = new Map();
  for (const name of names) {
    const parts = name.split(".");
    parts.forEach((part, i) => {
      if (i && INDEX.test(part)) {
        const path = parts.slice(0, i).join(".");
        counts.set(path, Math.max(counts.get(path) ?? 0, Number(part) + 1));
      }
    });
  }
  return counts;
}

/** Fill the "n" segments of a template with indices, outermost first. */
export function instantiate(template, indices) {
  let next = 0;
  return template
    .split(".")
    .map((part) => (part === "n" ? String(indices[next++]) : part))
    .join(".");
}

function templateOf(parts) {
  return parts.map((part, i) => (i && DIGITS.test(part) ? "n" : part)).join(".");
}

// The first index segment of a name written with a leading zero ("01"), if any.
function leadingZero(parts) {
  return parts.slice(1).find((part) => DIGITS.test(part) && !INDEX.test(part)) ?? null;
}

/**
 * GetValue/SetValue over one SCO's CMI values. `cmi` is a plain object of element -> string value
 * (copied). `dataAccess` gives [readSharedData, writeSharedData] per adl.data record (4th Edition).
 */
export class DataModel {
  constructor(table, cmi = {}, { dataAccess = [] } = {}) {
    this.table = table;
    this.values = new Map(Object.entries(cmi ?? {}).map(([k, v]) => [k, String(v)]));
    this.dataAccess = dataAccess.map(([read, write]) => [Boolean(read), Boolean(write)]);
    this.diagnostic = "";
    this.known = knownNames(table);
    this.counts = countRecords(this.values.keys());
  }

  /** The current values as a plain object. */
  get cmi() {
    return Object.fromEntries(this.values);
  }

  /** Number of records of a concrete array ("cmi.interactions.0.objectives"). */
  count(arrayPath) {
    return this.counts.get(arrayPath) ?? 0;
  }

  /** GetValue: [value, 0] or ["", error code]. */
  getValue(element) {
    this.diagnostic = "";
    try {
      return [this.get(String(element)), 0];
    } catch (failure) {
      return ["", this.code(failure)];
    }
  }

  /** SetValue: 0 when stored, else the error code (and nothing changes). */
  setValue(element, value) {
    this.diagnostic = "";
    try {
      this.set(String(element), String(value));
    } catch (failure) {
      return this.code(failure);
    }
    return 0;
  }

  code(failure) {
    if (!(failure instanceof Failure)) throw failure;
    this.diagnostic = failure.diagnostic;
    return Number(this.table.errors[failure.key]);
  }

  // ------------------------------------------------------------------------------------- GetValue
  get(element) {
    if (element === "") throw new Failure("empty_get", "the element name is empty");
    const target = this.target(element);
    if (target !== null) return this.values.get(element) ?? target.default;
    const parts = element.split(".");
    if (KEYWORDS.includes(parts[parts.length - 1])) return this.keyword(element, parts, false);
    const ref = this.resolve(element, parts);
    if (ref.spec.access === "WO" || !this.sharedAccess(ref, 0)) {
      throw new Failure("write_only", `${element} is write-only`);
    }
    this.checkGetIndexes(ref.arrays, parts);
    const computed = evaluatedStatus(ref.spec, this.values);
    if (computed !== null) return computed;
    const value = this.values.get(element);
    if (value !== undefined && !(value === "" && ref.spec.empty_unset)) return value;
    if ("default" in ref.spec) return String(ref.spec.default);
    throw new Failure("not_initialized_value", `${element} has not been set`);
  }

  checkGetIndexes(arrays, parts) {
    const bad = leadingZero(parts);
    if (bad !== null) throw new Failure("get_index", `index ${bad} of ${parts.join(".")} has a leading zero`);
    for (const [path, index] of arrays) {
      if (index >= this.count(path)) {
        throw new Failure("get_index", `${path} has ${this.count(path)} record(s); index ${index} is out of range`);
      }
    }
  }

  // Elements with a {target=ID} suffix (IDs may contain dots, so they are matched first).
  target(element) {
    for (const [name, spec] of Object.entries(this.table.targets)) {
      if (element === name || element.startsWith(name + ".")) {
        const suffix = element.slice(name.length + 1);
        if (!new RegExp("^(?:" + this.table.patterns.target_suffix + ")$").test(suffix)) {
          throw new Failure("missing_target", `${name} needs a .{target=ID} suffix`);
        }
        return spec;
      }
    }
    return null;
  }

  keyword(element, parts, setting) {
    const keyword = parts[parts.length - 1];
    const parent = parts.slice(0, -1).join(".");
    if (this.table.undefined.includes(element)) throw new Failure("undefined", `${element} is not defined`);
    const template = parts
      .slice(0, -1)
      .map((p) => (DIGITS.test(p) ? "n" : p))
      .join(".");
    if (!this.known.has(template)) throw new Failure("undefined", `${parent} is not a data model element`);
    if (setting) throw new Failure("set_keyword", `${keyword} is a read-only keyword`);
    this.checkGetIndexes(this.arrayLevels(parts.slice(0, -1)), parts.slice(0, -1));
    if (keyword === "_version") {
      if (parent !== "cmi") throw new Failure("no_version", "only cmi has _version");
      return String(this.table.data_model_version);
    }
    if (keyword === "_children") {
      if (!(template in this.table.children)) throw new Failure("no_children", `${parent} has no children`);
      return String(this.table.children[template]);
    }
    if (!(template in this.table.arrays)) throw new Failure("no_count", `${parent} is not an array`);
    return String(this.count(parent));
  }

  arrayLevels(parts) {
    const levels = [];
    parts.forEach((part, i) => {
      if (i && DIGITS.test(part)) {
        levels.push([parts.slice(0, i).join("."), Number(part), templateOf(parts.slice(0, i))]);
      }
    });
    return levels;
  }

  resolve(element, parts) {
    const template = templateOf(parts);
    const spec = Object.hasOwn(this.table.elements, template) ? this.table.elements[template] : undefined;
    if (spec === undefined || parts.includes("n")) {
      if (this.known.has(template) && !parts.includes("n")) {
        throw new Failure("container", `${element} is a container, not an element`);
      }
      throw new Failure("undefined", `${element} is not a data model element`);
    }
    const arrays = this.arrayLevels(parts);
    return { name: element, parts, template, spec, indices: arrays.map((level) => level[1]), arrays };
  }

  // adl.data readSharedData (which=0) / writeSharedData (which=1) of the record's store (its id is
  // always readable, as the conformance suite's DMI expects).
  sharedAccess(ref, which) {
    if (ref.template !== "adl.data.n.store" || !ref.indices.length) return true;
    const index = ref.indices[0];
    return index >= this.dataAccess.length || this.dataAccess[index][which];
  }

  // ------------------------------------------------------------------------------------- SetValue
  set(element, value) {
    if (element === "") throw new Failure("empty_set", "the element name is empty");
    for (const name of Object.keys(this.table.targets)) {
      if (element === name || element.startsWith(name + ".")) {
        throw new Failure("read_only", `${element} is read-only`);
      }
    }
    const parts = element.split(".");
    if (KEYWORDS.includes(parts[parts.length - 1])) this.keyword(element, parts, true);
    const ref = this.resolve(element, parts);
    if (ref.spec.access === "RO" || !this.sharedAccess(ref, 1)) {
      throw new Failure("read_only", `${element} is read-only`);
    }
    const created = this.checkSetIndexes(ref);
    this.checkDependencies(ref);
    this.checkIdentity(ref, value);
    const interactionType = this.interactionType(ref);
    const isPattern = ref.spec.role === "pattern";
    if (isPattern) this.checkPatternLimit(ref, interactionType, created);
    const [error, note] = checkValue(this.table, ref.spec, value, interactionType);
    if (error) throw new Failure(error, `${element}: ${note}`);
    if (isPattern) this.checkUniquePattern(ref, interactionType, value);
    this.diagnostic = note;
    this.values.set(element, value);
    for (const path of created) this.counts.set(path, this.count(path) + 1);
  }

  // Arrays are packed: index == _count appends a record (not to a fixed array), anything beyond fails.
  checkSetIndexes(ref) {
    const bad = leadingZero(ref.parts);
    if (bad !== null) throw new Failure("set_index", `index ${bad} of ${ref.name} has a leading zero`);
    const created = [];
    for (const [path, index, template] of ref.arrays) {
      const count = this.count(path);
      if (index > count) throw new Failure("set_index", `${path} has ${count} record(s); set index ${count} first`);
      if (index < count) continue;
      const array = this.table.arrays[template];
      if (array.fixed) throw new Failure("set_index", `${path} has ${count} record(s), all from the LMS`);
      if (count >= (array.max_records ?? count + 1)) {
        throw new Failure("max_records", `${path} is limited to ${count} records`);
      }
      const idField = array.id_field;
      if (idField && ref.template.slice(template.length + 3) !== idField) {
        throw new Failure("new_record", `set ${path}.${index}.${idField} first`);
      }
      created.push(path);
    }
    return created;
  }

  checkDependencies(ref) {
    for (const dependency of ref.spec.depends ?? []) {
      const needed = instantiate(dependency, ref.indices);
      if (!this.values.has(needed)) throw new Failure("dependency", `set ${needed} first`);
    }
  }

  // Write-once ids keep their value; unique ids differ from every sibling record's.
  checkIdentity(ref, value) {
    const old = this.values.get(ref.name);
    if (ref.spec.write_once && old !== undefined && old !== value) {
      throw new Failure("write_once", `${ref.name} is already '${old}' and cannot change`);
    }
    if (ref.spec.unique) {
      const [path, index, template] = ref.arrays[ref.arrays.length - 1];
      if (this.siblings(path, index, ref.template.slice(template.length + 3)).includes(value)) {
        throw new Failure("not_unique", `'${value}' is already used in ${path}`);
      }
    }
  }

  // The values of `child` in the other records of the array at `path`.
  siblings(path, index, child) {
    const found = [];
    for (let i = 0; i < this.count(path); i++) {
      const key = `${path}.${i}.${child}`;
      if (i !== index && this.values.has(key)) found.push(this.values.get(key));
    }
    return found;
  }

  interactionType(ref) {
    const typeOf = ref.spec.type_of;
    return typeOf ? (this.values.get(instantiate(typeOf, ref.indices)) ?? null) : null;
  }

  formats(interactionType) {
    const types = this.table.interaction_types;
    return interactionType !== null && Object.hasOwn(types, interactionType) ? types[interactionType] : {};
  }

  checkPatternLimit(ref, interactionType, created) {
    const formats = this.formats(interactionType);
    const path = ref.arrays[ref.arrays.length - 1][0];
    const limit = formats.max_patterns;
    if (limit !== undefined && limit !== null && created.includes(path) && this.count(path) >= limit) {
      throw new Failure("max_records", `a ${interactionType} interaction has at most ${limit} pattern(s)`);
    }
  }

  checkUniquePattern(ref, interactionType, value) {
    const formats = this.formats(interactionType);
    const [path, index] = ref.arrays[ref.arrays.length - 1];
    if (formats.unique_patterns && this.siblings(path, index, "pattern").includes(value)) {
      throw new Failure("not_unique", `pattern '${value}' is already a correct response`);
    }
  }
}
