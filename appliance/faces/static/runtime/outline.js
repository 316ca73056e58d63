// The table of contents and adl.nav.request_valid from the server's compact forms; mirrors
// appliance/core/scorm/sequencing/outline.py (expand_toc, expand_request_valid), which tests compare with the
// engine's full forms.
//
// An answer's `toc` is {key, outline, current, selectable, hidden, status}: the outline (every activity's
// id and title in preorder, the tree's shape, the static isvisible="false" positions) comes only when it
// differs from the one this page holds — the page sends its `key` back with every request (`tocKey()`) —
// and the rest is what the sequencing state decides, by preorder position. `request_valid` is {continue,
// previous, choice, jump}, the last two as [start, stop) ranges of positions whose request is valid.

const PREFIX = "adl.nav.request_valid.";
const UNTOUCHED = Object.freeze({
  completion: "unknown",
  success: "unknown",
  measure: null,
  attempted: false,
  attempts: 0,
  active: false,
  suspended: false,
  disabled: false,
});

let held = null; // {key, ids, titles, invisible, children, leaf}

/** The key of the outline this page holds (null before the first answer). */
export function tocKey() {
  return held ? held.key : null;
}

function flags(runs, size) {
  const values = new Array(size).fill(false);
  for (const [start, stop] of runs || []) values.fill(true, start, stop);
  return values;
}

function hold(outline) {
  const size = outline.ids.length;
  const children = Array.from({ length: size }, () => []);
  outline.parents.forEach((parent, index) => {
    if (parent >= 0) children[parent].push(index);
  });
  const leaf = children.map((kids) => kids.length === 0);
  for (const [index, kids] of Object.entries(outline.kids || {})) children[Number(index)] = kids;
  held = {
    key: outline.key,
    ids: outline.ids,
    titles: outline.titles,
    invisible: new Set(outline.invisible || []),
    children,
    leaf,
  };
}

/** The TOC tree as the engine's `toc()` gives it ({id, title, leaf, visible, selectable, current, status,
 * children}), or null when the answer has none or names an outline this page does not hold. */
export function expandToc(toc) {
  if (!toc) return null;
  if (toc.outline) hold(toc.outline);
  if (!held || held.key !== toc.key) return null;
  const { ids, titles, invisible, children, leaf } = held;
  const selectable = flags(toc.selectable, ids.length);
  const hiddenHere = new Set(toc.hidden || []);
  const statuses = toc.status || {};
  const node = (index, hidden) => {
    const hide = hidden || hiddenHere.has(index);
    return {
      id: ids[index],
      title: titles[index],
      leaf: leaf[index],
      visible: !invisible.has(index) && !hide,
      selectable: selectable[index],
      current: toc.current === index,
      status: statuses[String(index)] || { ...UNTOUCHED },
      children: children[index].map((child) => node(child, hide)),
    };
  };
  return node(0, false);
}

/** Every adl.nav.request_valid.* value ({element: "true" | "false"}), or null without an answer or outline. */
export function expandRequestValid(compact) {
  if (!compact || !held) return null;
  const values = { [`${PREFIX}continue`]: compact.continue, [`${PREFIX}previous`]: compact.previous };
  const choice = flags(compact.choice, held.ids.length);
  const jump = flags(compact.jump, held.ids.length);
  held.ids.forEach((id, index) => {
    values[`${PREFIX}choice.{target=${id}}`] = choice[index] ? "true" : "false";
    values[`${PREFIX}jump.{target=${id}}`] = jump[index] ? "true" : "false";
  });
  return values;
}
