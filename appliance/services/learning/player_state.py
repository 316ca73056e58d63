"""The player state: what the player shows after a sequencing step (controls, the TOC, `request_valid`).

A module of its own because every step that sequences (launch, navigation, a Terminate) answers with it,
in the compact forms of `appliance.core.scorm.sequencing.outline`.
"""

from __future__ import annotations

from typing import Any

from appliance.core.scorm.model import SCORM_12
from appliance.core.scorm.sequencing import outline
from appliance.core.scorm.sequencing.engine import NavResult, SequencingEngine
from appliance.services.library.courses import Course


def player_state(
    course: Course, session: dict[str, Any], engine: SequencingEngine, nav: NavResult | None, toc_key: str | None
) -> dict[str, Any]:
    """What the player shows: controls, the TOC and `request_valid` (for the delivered or running SCO's
    model) in their compact forms (`sequencing.outline`: at 5,000 activities a few KB instead of 1.7 MB);
    the TOC's outline only when it differs from the one the player holds (`toc_key`)."""
    hidden: set[str] = set()
    if engine.current:
        item = course.item(engine.current)
        if item is not None and item.presentation is not None:
            hidden = set(item.presentation.hide_lms_ui)
    with engine.tracking.frozen():  # controls, TOC and request_valid from one look-ahead table
        controls = {name: allowed and name not in hidden for name, allowed in engine.available_controls().items()}
        return {
            "version": session["version"],
            "status": session["status"],
            "current": engine.current,
            "controls": controls,
            "toc": outline.toc_state(engine.tracking, toc_key),
            "request_valid": outline.request_valid_state(engine.tracking) if course.scorm_version != SCORM_12 else None,
            "ended": bool(nav and nav.ended),
            "suspended": bool(nav and nav.suspended),
            "exception": nav.exception if nav else None,
        }
