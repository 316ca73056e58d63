"""A small simulator for the ADL SCORM 2004 4th Ed. conformance (CTS) sequencing test cases.

Each `<case>.properties` lists, in order, the activity visits the LMS must deliver (`Act3V2` = activity 3,
second visit) with the API calls the test SCO makes (`SET->c~SS!pass->t->0`, ...) and what the tester clicks
in the LMS UI afterwards (`CUI=Continue`). This module replays a case against `SequencingEngine`: it checks
the delivery order, the adl.nav.request_valid answers the SCO asks for and the UI questions about enabled
controls. It plays the run-time's part minimally (completion/success evaluation against thresholds).

Only what the sequencing engine decides is checked; data-model GETs are ignored. Cases that need UI
actions this simulator does not model are reported as unsupported rather than failed.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.core.scorm.model import Manifest
from appliance.core.scorm.sequencing.engine import NavResult, SequencingEngine

CORPUS = Path(__file__).resolve().parents[5] / "shared" / "scorm-corpus"
PACKAGES = CORPUS / "packages"
PROPERTIES_ZIP = CORPUS / "extras" / "adlcts4-TestCases-properties.zip"

_VISIT = re.compile(r"^Act(\d+)V(\d+)\.(.+)$")
_VOCAB = {
    "comp": "completed",
    "incomp": "incomplete",
    "unk": "unknown",
    "notatt": "not attempted",
    "pass": "passed",
    "fail": "failed",
    "M.n": "normal",
    "X.s": "suspend",
    "X.t": "time-out",
    "X.l": "logout",
}
_NAV = {"N.c": "continue", "N.p": "previous", "N.ea": "exitAll", "N.sa": "suspendAll", "N.a": "abandon"}
_NAV |= {"N.aa": "abandonAll", "N.e": "exit"}
_FIELDS = {"CS": "completion_status", "SS": "success_status", "PM": "progress_measure", "ID": "id"}
_FIELDS |= {"S~SCA": "score.scaled", "S~RW": "score.raw", "S~MN": "score.min", "S~MX": "score.max"}
# Instructions (Instructions.properties) that relaunch the package without the word "relaunch" in their key, and
# the activity some of them then tell the tester to choose ("... relaunch CM-10 and then choose Activity 4").
_RELAUNCHES = {"DMBx", "DMBxAct"}
_CHOOSE_AFTER_RELAUNCH = {"RelaunchCM10": "Activity 4", "DMBxAct": "Data Model Behavior Test 1"}


class Unsupported(Exception):
    """The case needs something the simulator does not model."""


@dataclass
class Visit:
    activity: int
    visit: int
    commands: list[str] = field(default_factory=list)
    cui: str | None = None
    questions: list[tuple[str, str]] = field(default_factory=list)


def read_properties(case: str) -> list[tuple[str, str]]:
    """The (key, value) lines of a case in file order (keys repeat in some files, so no dict)."""
    with zipfile.ZipFile(PROPERTIES_ZIP) as archive:
        text = archive.read(f"TestCases/{case}.properties").decode("utf-8", "replace")
    lines: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        lines.append((key.strip(), value.strip()))
    return lines


def visits(lines: list[tuple[str, str]]) -> list[Visit]:
    """Visits in file order (the expected delivery order)."""
    props = dict(lines)
    ordered: dict[tuple[int, int], Visit] = {}
    for key, value in lines:
        match = _VISIT.match(key)
        if match is None:
            if key.startswith("Act"):
                raise Unsupported(f"visit key {key}")
            continue
        act, visit, rest = int(match.group(1)), int(match.group(2)), match.group(3)
        entry = ordered.get((act, visit))
        if entry is None:
            entry = ordered[(act, visit)] = Visit(act, visit)
        elif rest == "commands.0" and entry.commands:
            raise Unsupported(f"visit Act{act}V{visit} is scripted twice (the tester acts while the SCO runs)")
        if rest.startswith("commands."):
            entry.commands.append(value)
        elif rest == "CUI":
            entry.cui = value
        elif rest == "UIQ":
            answers = props.get(f"Act{act}V{visit}.UIA", "").split("~")
            entry.questions = list(zip(value.split("~"), answers, strict=False))
    return list(ordered.values())


def load_manifest(case: str) -> Manifest:
    from appliance.core.scorm.manifest import parse_manifest

    with zipfile.ZipFile(PACKAGES / f"adlcts4-{case}.zip") as archive:
        return parse_manifest(archive.read("imsmanifest.xml"))


class Simulator:
    """Replays one CTS case; `problems` collects every mismatch."""

    def __init__(self, case: str, global_objectives: dict[str, dict[str, Any]] | None = None) -> None:
        self.case = case
        self.lines = read_properties(case)
        self.props = dict(self.lines)
        manifest = load_manifest(case)
        engine = SequencingEngine.from_manifest(manifest)
        if engine.tree.objectives_global_to_system and global_objectives is not None:
            engine = SequencingEngine.from_manifest(manifest, global_objectives=global_objectives)
        self.engine = engine  # objectivesGlobalToSystem="false": the course keeps its own store
        self.by_number = self._activity_numbers()
        self.problems: list[str] = []
        self.clock = 1000.0

    def _activity_numbers(self) -> dict[int, str]:
        numbers: dict[int, str] = {}
        for act in self.engine.tree.preorder:
            match = re.search(r"act=(\d+)", act.parameters or "")
            if match:
                numbers.setdefault(int(match.group(1)), act.id)
        for act in self.engine.tree.preorder:  # activity_N wins: parameters are sometimes copied
            match = re.fullmatch(r"activity_(\d+)", act.id)
            if match and act.is_leaf:
                numbers[int(match.group(1))] = act.id
        return numbers

    def _by_title(self, title: str) -> str:
        if "corresponds to the root" in title:
            return self.engine.tree.root.id
        for act in self.engine.tree.preorder:
            if act.title.strip() == title.strip():
                return act.id
        raise Unsupported(f"no activity titled {title!r}")

    def _tick(self) -> float:
        self.clock += 10.0
        return self.clock

    def run(self) -> list[str]:
        expected = visits(self.lines)
        start = self.props.get("start", ".")
        if start == ".":
            result = self.engine.launch(now=self._tick())
        else:
            result = self.engine.navigate("choice", self._by_title(start), now=self._tick())
        for index, visit in enumerate(expected):
            want = self.by_number.get(visit.activity)
            if result.delivered != want:
                self.problems.append(
                    f"visit {index} Act{visit.activity}V{visit.visit}: expected {want}, got {result.delivered} "
                    f"(ended={result.ended}, exception={result.exception})"
                )
                return self.problems
            result = self._play(visit)
        if not result.ended:
            self.problems.append(f"session did not end: {result}")
        return self.problems

    def _play(self, visit: Visit) -> NavResult:
        act_id = self.by_number[visit.activity]
        overrides = self.engine.initial_cmi_overrides(act_id)
        self._check_questions(visit)
        cmi = {k: v for k, v in overrides.items() if re.match(r"^cmi\.objectives\.\d+\.id$", k)}
        nav = "_none_"
        for command in visit.commands:
            nav = self._command(command, cmi, overrides, nav)
        self._evaluate(cmi, overrides)
        cui = visit.cui or ""
        ui_nav = self._ui_request(cui)
        if ui_nav is not None:
            # The tester pressed an LMS button while the SCO ran: it replaces the SCO's pending request.
            result = self.engine.terminate(act_id, cmi, ui_nav, now=self._tick())
            if cui.startswith(("Suspend", "Exit")) and cui not in ("Exit",):
                return self.engine.launch(now=self._tick())
            return result
        result = self.engine.terminate(act_id, cmi, nav, now=self._tick())
        if result.delivered or (result.ended and not _is_relaunch(cui)):
            return result
        return self._click(visit.cui, result)

    def _ui_request(self, cui: str) -> str | None:
        """LMS UI actions taken while the SCO is still running, as navigation requests."""
        if cui in ("Continue", "Previous"):
            return cui.lower()
        if cui.startswith("Choice~"):
            return "{target=" + self._by_title(cui.split("~", 1)[1]) + "}choice"
        if cui.startswith("Suspend"):
            return "suspendAll"
        if cui.startswith("Exit") and cui != "Exit":
            return "exitAll"
        return None

    def _click(self, cui: str | None, previous: NavResult) -> NavResult:
        if cui is None:
            return previous
        if cui in ("Continue", "Previous"):
            return self.engine.navigate(cui.lower(), now=self._tick())
        if cui in ("Exit", "HasEnded"):
            return self.engine.navigate("exitAll", now=self._tick())
        if _is_relaunch(cui):
            if not previous.ended:
                self.engine.navigate("exitAll", now=self._tick())
            result = self.engine.launch(now=self._tick())
            choose = _CHOOSE_AFTER_RELAUNCH.get(cui)
            if choose is not None and result.delivered is None and not result.ended:
                # Nothing was launched by itself (no flow from the root): the tester chooses as told.
                return self.engine.navigate("choice", self._by_title(choose), now=self._tick())
            return result
        if cui.startswith("Choice~"):
            return self.engine.navigate("choice", self._by_title(cui.split("~", 1)[1]), now=self._tick())
        raise Unsupported(f"UI action {cui!r}")

    def _check_questions(self, visit: Visit) -> None:
        controls = self.engine.available_controls()
        for question, answer in visit.questions:
            name, _, rest = question.partition(".")
            if name in ("continue", "previous"):
                enabled = controls[name]
                says_enabled = (rest == "enabled") == (answer == "Y")
                if enabled != says_enabled:
                    self.problems.append(f"Act{visit.activity}V{visit.visit}: {question}={answer}, engine {enabled}")
            elif question.startswith("toc.enabled.selectable@"):
                target = self._by_title(question.split("@", 1)[1])
                valid = self.engine.request_valid()[f"adl.nav.request_valid.choice.{{target={target}}}"] == "true"
                if valid != (answer == "Y"):
                    self.problems.append(f"Act{visit.activity}V{visit.visit}: {question}={answer}, engine {valid}")

    def _command(self, command: str, cmi: dict[str, str], overrides: dict[str, str], nav: str) -> str:
        parts = command.split("->")
        verb, args = parts[0], parts[1] if len(parts) > 1 else ""
        expected = parts[2] if len(parts) > 2 else ""
        if verb == "SET":
            element, _, value = args.partition("!")
            if element == "a~n~r":
                return self._nav_value(value)
            name = self._element(element, cmi, overrides)
            if name is not None:
                cmi[name] = _VOCAB.get(value, value)
        elif verb == "GET" and args.startswith("a~n~rv~"):
            self._check_valid(args[len("a~n~rv~") :], expected)
        return nav

    def _nav_value(self, value: str) -> str:
        if value.startswith("tar~"):
            _, target, kind = value.split("~", 2)
            return f"{{target={target}}}" + ("jump" if kind == "N.j" else "choice")
        return _NAV.get(value, value)

    def _element(self, element: str, cmi: dict[str, str], overrides: dict[str, str]) -> str | None:
        if element.startswith("c~OB~"):
            return self._objective_element(element[len("c~OB~") :], cmi, overrides)
        key = element[2:] if element.startswith("c~") else None
        if key == "X":
            return "cmi.exit"
        return f"cmi.{_FIELDS[key]}" if key in _FIELDS else None

    def _objective_element(self, rest: str, cmi: dict[str, str], overrides: dict[str, str]) -> str | None:
        if rest.startswith("&"):
            obj_id, _, field_code = rest[1:].partition("&~")
            index = self._objective_index(obj_id, cmi, overrides)
        else:
            number, _, field_code = rest.partition("~")
            if not number.isdigit():
                return None
            index = int(number)
        name = _FIELDS.get(field_code)
        return f"cmi.objectives.{index}.{name}" if name else None

    @staticmethod
    def _objective_index(obj_id: str, cmi: dict[str, str], overrides: dict[str, str]) -> int:
        known = {**overrides, **cmi}
        for key, value in known.items():
            match = re.match(r"^cmi\.objectives\.(\d+)\.id$", key)
            if match and value == obj_id:
                return int(match.group(1))
        indexes = [int(m.group(1)) for k in known if (m := re.match(r"^cmi\.objectives\.(\d+)\.", k))]
        index = max(indexes, default=-1) + 1
        cmi[f"cmi.objectives.{index}.id"] = obj_id
        return index

    def _check_valid(self, rest: str, expected: str) -> None:
        if rest in ("N.c", "N.p"):
            key = "continue" if rest == "N.c" else "previous"
        else:
            kind, _, target = rest.partition("~tar~")
            key = f"{'jump' if kind == 'N.j' else 'choice'}.{{target={target}}}"
        valid = self.engine.request_valid().get(f"adl.nav.request_valid.{key}", "false")
        if (valid == "true") != (expected == "t"):
            self.problems.append(f"request_valid.{key}: expected {expected}, engine {valid}")

    @staticmethod
    def _evaluate(cmi: dict[str, str], overrides: dict[str, str]) -> None:
        """The run-time's completion/success evaluation at Terminate (rte-rules.md 5.2)."""
        threshold = overrides.get("cmi.completion_threshold")
        if threshold is not None and ("cmi.progress_measure" in cmi or "cmi.completion_status" in cmi):
            measure = cmi.get("cmi.progress_measure")
            status = (
                "unknown" if measure is None else ("completed" if float(measure) >= float(threshold) else "incomplete")
            )
            cmi["cmi.completion_status"] = status
        passing = overrides.get("cmi.scaled_passing_score")
        if passing is not None and ("cmi.score.scaled" in cmi or "cmi.success_status" in cmi):
            scaled = cmi.get("cmi.score.scaled")
            status = "unknown" if scaled is None else ("passed" if float(scaled) >= float(passing) else "failed")
            cmi["cmi.success_status"] = status
        for key in [k for k, v in cmi.items() if k.endswith(".completion_status") and v == "not attempted"]:
            cmi[key] = "incomplete"


def _is_relaunch(cui: str) -> bool:
    """The instruction tells the tester to relaunch the package (after the attempt ended, or exiting first)."""
    return cui.lower().startswith("relaunch") or cui in _RELAUNCHES


def run_case(case: str, global_objectives: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Replay a case; raises Unsupported when it needs UI actions the simulator does not model.

    Global objectives are system-wide by default, and some cases (CO-07b after CO-07a, ...) rely on what an
    earlier case of the suite left there: pass the same dict through a run of cases to model one learner."""
    return Simulator(case, global_objectives).run()


def available_cases() -> list[str]:
    if not PROPERTIES_ZIP.exists():
        return []
    with zipfile.ZipFile(PROPERTIES_ZIP) as archive:
        names = [Path(n).stem for n in archive.namelist() if n.endswith(".properties")]
    return sorted(n for n in names if (PACKAGES / f"adlcts4-{n}.zip").exists())


if __name__ == "__main__":  # pragma: no cover - a development aid: python -m tests.core.scorm.sequencing.cts
    import sys

    shared: dict[str, dict[str, Any]] = {}
    for name in sys.argv[1:] or available_cases():
        try:
            found = run_case(name, shared)
        except Unsupported as exc:
            print(f"{name}: unsupported ({exc})")
            continue
        except Exception as exc:  # report and carry on
            print(f"{name}: ERROR {type(exc).__name__}: {exc}")
            continue
        print(f"{name}: {'ok' if not found else 'FAIL'}")
        for problem in found:
            print("    " + problem)
