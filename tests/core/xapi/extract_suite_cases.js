// Extracts the ADL LRS conformance suite's template-driven statement cases (test/<dir>/configs/*.js,
// expanded with test/<dir>/templates/**.json exactly as the suite's helper.js does) into one JSON file,
// so the pure validation tests can replay every case without Node, npm or a server.
//
//   node tests/core/xapi/extract_suite_cases.js ../shared/suites/lrs-conformance-test-suite v1_0_3 out.json
"use strict";
const fs = require("fs");
const path = require("path");
const Module = require("module");

const [suite, directory, out] = process.argv.slice(2);
const testDir = path.resolve(suite, "test");
const configDir = path.join(testDir, directory, "configs");
const templateDir = path.join(testDir, directory, "templates");

// The configs only call helper.generateUUID; a fixed sequence keeps the output deterministic.
let counter = 0;
const helperStub = {
  generateUUID: () => `00000000-0000-4000-8000-${String(++counter).padStart(12, "0")}`,
};
// A fixed clock too: the "future date" cases are "now + 5 years" (2031 from this 2026 epoch).
const RealDate = Date;
const EPOCH = RealDate.UTC(2026, 0, 1);
global.Date = class extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(EPOCH);
    else super(...args);
  }
  static now() {
    return EPOCH;
  }
};
const realRequire = Module.prototype.require;
Module.prototype.require = function (id) {
  if (id.endsWith("helper.js")) return helperStub;
  return realRequire.apply(this, arguments);
};

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// The `extend` package's deep merge (jQuery semantics: arrays merged index by index).
function extend(target, src) {
  for (const key of Object.keys(src)) {
    const copy = src[key];
    const cur = target[key];
    if (cur === copy) continue;
    if (Array.isArray(copy)) {
      target[key] = extend(Array.isArray(cur) ? cur : [], copy);
    } else if (isPlainObject(copy)) {
      target[key] = extend(isPlainObject(cur) ? cur : {}, copy);
    } else if (copy !== undefined) {
      target[key] = copy;
    }
  }
  return target;
}

function clone(v) {
  return JSON.parse(JSON.stringify(v));
}

function mapping() {
  const m = {};
  for (const folder of fs.readdirSync(templateDir)) {
    m[folder] = {};
    for (const file of fs.readdirSync(path.join(templateDir, folder))) {
      if (file.indexOf(".json") <= 0) continue;
      const text = fs.readFileSync(path.join(templateDir, folder, file), "utf8");
      m[folder][file.substring(0, file.indexOf(".json"))] = JSON.parse(text);
    }
  }
  return m;
}

function convertTemplate(list) {
  const mapper = mapping();
  return list.map((item) => {
    const key = Object.keys(item)[0];
    const value = item[key];
    if (typeof value === "string" && value.indexOf("{{") === 0 && value.indexOf("}}") === value.length - 2) {
      let nested = mapper;
      for (const part of value.slice(2, -2).split(".")) {
        nested = nested[part];
        if (!nested) throw new Error("Not mapped: " + value);
      }
      return { [key]: clone(nested) };
    }
    return clone(item);
  });
}

function createTestObject(array) {
  let from = {};
  array.reverse().forEach((to, index) => {
    if (index === 0) {
      from = to;
      return;
    }
    extend(to[Object.keys(to)[0]], from);
    from = to;
  });
  return from;
}

const cases = [];
for (const file of fs.readdirSync(configDir).sort()) {
  if (!file.endsWith(".js")) continue;
  const config = require(path.join(configDir, file)).config();
  for (const group of config) {
    for (const test of group.config) {
      let data;
      if (test.templates) {
        const obj = createTestObject(convertTemplate(test.templates));
        data = obj[Object.keys(obj)[0]];
      } else {
        data = test.json;
      }
      cases.push({ file, group: group.name, name: test.name, expect: test.expect[0], statement: data });
    }
  }
}
// One case per line: small, and a suite change shows as a readable diff.
fs.writeFileSync(out, "[\n" + cases.map((c) => JSON.stringify(c)).join(",\n") + "\n]\n");
console.log(`${cases.length} cases → ${out}`);
