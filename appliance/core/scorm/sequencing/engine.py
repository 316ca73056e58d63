"""The Overall Sequencing Process (OP.1) and `SequencingEngine`, the facade the server uses.

The engine is pure: no I/O and no clock. The server rebuilds it per request from the stored manifest plus
`dump_state()` (JSON-serialisable), passes the learner's global objectives and shared data stores in and reads
them back after each call (they are scoped per learner, and per course when the organization says so), and
passes the current time into every call that may start or end an attempt.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.core.scorm.model import Manifest
from appliance.core.scorm.sequencing import lookahead, runtime
from appliance.core.scorm.sequencing.activity_tree import Activity, ActivityTree
from appliance.core.scorm.sequencing.delivery import content_delivery, delivery_request_error
from appliance.core.scorm.sequencing.navigation import NAV_REQUESTS, navigation_request
from appliance.core.scorm.sequencing.selection import prepare_clusters
from appliance.core.scorm.sequencing.sequencing_request import sequencing_request
from appliance.core.scorm.sequencing.termination import termination_request
from appliance.core.scorm.sequencing.tracking import Tracking, TreeState

NOT_CURRENT = "NOT_CURRENT"  # terminate() for an activity whose attempt is no longer the open one
_TARGETED = re.compile(r"^\{target=(?P<target>[^}]*)\}(?P<request>choice|jump)$")


@dataclass
class NavResult:
    """The outcome of one navigation request.

    `delivered` is the activity to launch now (None: nothing to launch). `ended` means the sequencing session
    is over (the player leaves the course; `suspended` says it was suspended, so the next launch should use
    `resumeAll`). `exception` is the SN process code when the request was refused or sequencing stopped.
    `new_attempt` is False when the delivered activity resumes a suspended attempt (cmi.entry = resume).
    """

    request: str
    target: str | None = None
    delivered: str | None = None
    ended: bool = False
    suspended: bool = False
    exception: str | None = None
    new_attempt: bool = False
    attempt: int = 0
    current: str | None = None


def parse_nav_request(value: str | None) -> tuple[str, str | None]:
    """`adl.nav.request` vocabulary to (request, target): `{target=ID}choice` -> ("choice", "ID")."""
    if not value:
        return "_none_", None
    match = _TARGETED.match(value.strip())
    if match:
        return match.group("request"), match.group("target")
    return value.strip(), None


def _end_session(t: Tracking, result: NavResult) -> NavResult:
    """The session is over: forget the current activity so the next launch starts (or resumes) afresh."""
    result.ended = True
    result.suspended = t.suspended_activity is not None
    t.current = None
    return result


def overall_sequencing(t: Tracking, request: str, target_id: str | None = None) -> NavResult:
    """OP.1: navigation -> termination -> sequencing -> delivery, stopping at the first exception."""
    result = NavResult(request=request, target=target_id)
    target = t.tree.get(target_id)
    if request not in NAV_REQUESTS:
        result.exception = "NB.2.1-13"
        return result
    if request in ("choice", "jump") and target is None:
        result.exception = "NB.2.1-11"
        return result
    if t.current is None:
        prepare_clusters(t, t.rng)
    nav = navigation_request(t, request, target)
    if nav.exception:
        result.exception = nav.exception
        return result
    sequencing, seq_target = nav.sequencing, nav.target
    if nav.termination:
        term = termination_request(t, nav.termination)
        if term.exception:
            result.exception = term.exception
            return result
        if term.sequencing:
            sequencing = term.sequencing
    if sequencing is not None:
        _sequence(t, sequencing, seq_target, result)
    result.current = t.state.current
    return result


def _sequence(t: Tracking, request: str, target: Activity | None, result: NavResult) -> None:
    outcome = sequencing_request(t, request, target)
    if outcome.end_session:
        _end_session(t, result)
        return
    if outcome.exception:
        result.exception = outcome.exception
        return
    if outcome.deliver is None:
        return
    error = delivery_request_error(t, outcome.deliver)
    if error:
        result.exception = error
        return
    delivered = content_delivery(t, outcome.deliver)
    if isinstance(delivered, str):
        result.exception = delivered
        return
    result.delivered = delivered.activity.id
    result.new_attempt = delivered.new_attempt
    result.attempt = delivered.attempt


class SequencingEngine:
    """One learner's sequencing session on one package: the facade over the SN processes."""

    def __init__(
        self,
        tree: ActivityTree,
        state: Mapping[str, Any] | None = None,
        *,
        global_objectives: dict[str, dict[str, Any]] | None = None,
        shared_data: dict[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        tree_state = TreeState.from_dict(dict(state)) if state else TreeState()
        self.tree = tree
        self.tracking = Tracking(tree, tree_state, global_objectives, rng=rng)
        self.shared_data: dict[str, str] = shared_data if shared_data is not None else {}

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        state: Mapping[str, Any] | None = None,
        *,
        global_objectives: dict[str, dict[str, Any]] | None = None,
        shared_data: dict[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> SequencingEngine:
        """Build the engine for the manifest's default organization, optionally restoring `dump_state()`."""
        return cls(
            ActivityTree.from_manifest(manifest),
            state,
            global_objectives=global_objectives,
            shared_data=shared_data,
            rng=rng,
        )

    # -- state ------------------------------------------------------------------------------------------

    @property
    def global_objectives(self) -> dict[str, dict[str, Any]]:
        """Global objective records by targetObjectiveID (fields: satisfied, measure, completed, ...)."""
        return self.tracking.globals

    @property
    def current(self) -> str | None:
        return self.tracking.state.current

    @property
    def suspended_activity(self) -> str | None:
        return self.tracking.state.suspended_activity

    def dump_state(self) -> dict[str, Any]:
        """The whole per-learner tree state as JSON-serialisable data (without globals/shared data)."""
        return self.tracking.state.to_dict()

    def _clock(self, now: float | None) -> None:
        if now is not None:
            self.tracking.now = now

    # -- navigation -------------------------------------------------------------------------------------

    def navigate(self, request: str, target: str | None = None, now: float | None = None) -> NavResult:
        """Process a navigation request from the LMS UI or the content (`{target=ID}choice` also accepted)."""
        self._clock(now)
        parsed, parsed_target = parse_nav_request(request)
        result = overall_sequencing(self.tracking, parsed, target if target is not None else parsed_target)
        if result.ended and not result.suspended and not self.tree.shared_data_global_to_system:
            self.shared_data.clear()  # course-scoped shared data lives for one attempt on the course
        return result

    def launch(self, now: float | None = None) -> NavResult:
        """The LMS's course-launch policy: resume a suspended session, else `start`. When `start` cannot
        flow into the course (the organization has no `flow`), the learner chooses from the table of
        contents — nothing is delivered — unless the course has a single activity to choose, which is
        then opened (the ADL reference LMS behaves the same, and its conformance suite expects it). A
        running activity is simply delivered again."""
        self._clock(now)
        cur = self.tracking.current
        if cur is not None:
            active = self.tracking.st(cur).active and cur.is_leaf
            return NavResult(request="_none_", delivered=cur.id if active else None, current=cur.id)
        if self.tracking.suspended_activity is not None:
            return self.navigate("resumeAll")
        result = self.navigate("start")
        if result.delivered or result.ended:
            return result
        leaves = [act for act in self.tree.preorder if act.is_leaf]
        if len(leaves) == 1 and lookahead.choice_valid(self.tracking, leaves[0]):
            return self.navigate("choice", leaves[0].id)
        return result

    def report_runtime(self, activity_id: str, cmi_values: Mapping[str, str], now: float | None = None) -> bool:
        """Feed a SCO's run-time data (see `runtime` for the contract) into the tracking model."""
        self._clock(now)
        act = self.tree.get(activity_id)
        if act is None:
            return False
        runtime.report_shared_data(act, cmi_values, self.shared_data)
        return runtime.report(self.tracking, act, cmi_values)

    def terminate(
        self,
        activity_id: str,
        cmi_values: Mapping[str, str],
        nav_request: str | None = None,
        now: float | None = None,
    ) -> NavResult:
        """The SCO called Terminate: record its data, then process its pending navigation request.

        `cmi.exit` = time-out or logout forces exitAll; suspendAll suspends the SCO's attempt. With `_none_`
        the activity stays current and active until the learner (the LMS UI) makes a request. For an activity
        that is not the current open attempt (the LMS UI already navigated away) nothing happens and the
        result carries `exception=NOT_CURRENT`.
        """
        self._clock(now)
        request, target = parse_nav_request(nav_request)
        act = self.tree.get(activity_id)
        if act is None or self.tracking.current is not act or not self.tracking.st(act).active:
            # The LMS already moved on (a UI request ended this attempt): the SCO's own request is ignored.
            return NavResult(request=request, target=target, exception=NOT_CURRENT, current=self.current)
        exit_value = cmi_values.get("cmi.exit", cmi_values.get("cmi.core.exit"))
        if request not in ("abandon", "abandonAll"):
            self.report_runtime(activity_id, cmi_values)
        if exit_value in ("time-out", "logout"):
            request, target = "exitAll", None
        elif request == "suspendAll":
            self.tracking.st(act).suspended = True
        return self.navigate(request, target)

    # -- look-ahead and presentation --------------------------------------------------------------------

    def request_valid(self) -> dict[str, str]:
        """adl.nav.request_valid.* answers ("true"/"false"), keyed by the full element name."""
        return lookahead.request_valid(self.tracking)

    def available_controls(self) -> dict[str, bool]:
        """Navigation controls to show: previous, continue, exit, exitAll, abandon, ... and choice (a TOC)."""
        return lookahead.available_controls(self.tracking)

    def toc(self) -> dict[str, Any]:
        """Table of contents tree: id, title, visible, selectable, current, status, children."""
        return lookahead.toc(self.tracking)

    def initial_cmi_overrides(self, activity_id: str) -> dict[str, str]:
        """CMI values sequencing supplies before the SCO's Initialize (objectives, thresholds, limits, adl.data)."""
        act = self.tree.get(activity_id)
        if act is None:
            return {}
        return runtime.initial_values(self.tracking, act, self.shared_data)
