"""A cmi5 course structure as a package: its report (warnings, capabilities, counts), its JSON, its refusal.

The package service (appliance.services.library.package_analysis, appliance.services.library.packages) treats a cmi5 package like a
SCORM one: the same upload route, job, versions and failure shape. This module is the cmi5 side of
that, pure and without I/O: what a parsed `Course` contributes to the package JSON, and how a
`CourseStructureError` (every problem found) becomes the one `{code, message, details}` error a
failed package shows, with the contract's codes (MANIFEST_INVALID, MISSING_FILES) on top and each
cmi5 problem, with its own code and `details.where`, in `details.problems`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from appliance.core.cmi5.course_structure import FILENAME, Au, Course, CourseStructureError, Problem
from appliance.core.scorm.model import Problem as PackageProblem
from appliance.core.scorm.validation import Capability, ValidationReport
from appliance.errors import ApplianceError

STANDARD = "cmi5"
MAX_PROBLEMS = 100  # listed in a refusal's details; `problem_count` says how many there were
MAX_LISTED_AUS = 50  # AUs named in one warning's details; `count` says how many there are
LAUNCH_UNAVAILABLE = "CMI5_LAUNCH_UNAVAILABLE"


class Cmi5LaunchUnavailable(ApplianceError):
    """A SCORM path (the SCORM player's course, migrating SCORM sessions) asked of a cmi5 version."""

    code = LAUNCH_UNAVAILABLE


def launch_unavailable(package_id: str, version: int) -> Cmi5LaunchUnavailable:
    """The error a SCORM operation (the SCORM course, CMI, migrating SCORM sessions) answers on a cmi5 version."""
    return Cmi5LaunchUnavailable(
        f"version {version} of package {package_id} is a cmi5 course: it has no SCORM course or CMI data "
        "(its sessions are cmi5 registrations)",
        {"package_id": package_id, "version": version, "standard": STANDARD},
    )


def report(course: Course, *, packaged: bool) -> ValidationReport:
    """The verdict on an accepted course: warnings, capabilities and counts, as a SCORM package has.

    `item_count` counts blocks and AUs, `sco_count` the AUs (cmi5's launchable units).
    """
    aus = course.aus()
    return ValidationReport(
        error=None,
        warnings=_warnings(aus, packaged=packaged),
        capabilities=capabilities(course),
        item_count=len(aus) + len(course.blocks()),
        sco_count=len(aus),
        launchable_count=len(aus),
    )


def _warnings(aus: list[Au], *, packaged: bool) -> list[PackageProblem]:
    warnings = []
    external = [au for au in aus if not au.relative]
    if external:
        where = "in the package's course structure" if packaged else "(the course structure came without a ZIP)"
        warnings.append(
            PackageProblem(
                "EXTERNAL_AU",
                f"{len(external)} AU(s) are hosted elsewhere by absolute URL {where}: the appliance neither "
                "stores nor checks them, and the learner's browser loads them from their own origin",
                {"count": len(external), "aus": [{"id": au.id, "url": au.url} for au in external[:MAX_LISTED_AUS]]},
            )
        )
    own_window = [au for au in aus if au.launch_method == "OwnWindow"]
    if own_window:
        warnings.append(
            PackageProblem(
                "OWN_WINDOW_AU",
                f"{len(own_window)} AU(s) have launchMethod OwnWindow: they open in a window of their own "
                "(a new tab or a redirect), not in the player's frame",
                {"count": len(own_window), "aus": [au.id for au in own_window[:MAX_LISTED_AUS]]},
            )
        )
    return warnings


def capabilities(course: Course) -> dict[str, Capability]:
    """What the course uses, all supported: `launch` (every course) is a registration and its AU
    launches (appliance.services.learning.cmi5_registrations)."""
    aus = course.aus()
    used = {
        "multi_au": len(aus) > 1,
        "blocks": bool(course.blocks()),
        "objectives": bool(course.objectives),
        "mastery_score": any(au.mastery_score is not None for au in aus),
        "own_window": any(au.launch_method == "OwnWindow" for au in aus),
        "external_aus": any(not au.relative for au in aus),
        "launch_parameters": any(au.launch_parameters is not None for au in aus),
        "entitlement_key": any(au.entitlement_key is not None for au in aus),
        "launch": True,
    }
    return {key: Capability(used=value, supported=True) for key, value in used.items()}


def title(course: Course) -> str | None:
    """The package title: the course title in English if it has one, else its first language."""
    texts = course.title
    for lang in ("en-US", "en", ""):
        if texts.get(lang):
            return texts[lang]
    return next((text for text in texts.values() if text), None)


def course_json(course: Course) -> dict[str, Any]:
    """The `course` object of the package JSON: the tree of blocks and AUs (`type` "block" or "au")."""
    tree = msgspec.to_builtins(course)
    tree["au_count"] = len(course.aus())
    tree["block_count"] = len(course.blocks())
    return tree


def encode(course: Course) -> str:
    """The course as stored with the version (decoded again by `decode`)."""
    return msgspec.json.encode(course).decode()


def decode(stored: str) -> Course:
    """A stored course back into a Course."""
    return msgspec.json.decode(stored, type=Course)


def refusal(error: CourseStructureError) -> tuple[str, str, dict[str, Any]]:
    """(code, message, details) of a refused course structure, in the contract's package failure codes.

    MISSING_FILES when every problem is an AU URL naming a file the ZIP lacks (`details.missing`, as
    for SCORM); otherwise MANIFEST_INVALID, cmi5.xml being the package's manifest. `details.reason` is
    the first problem's cmi5 code and `details.problems` lists them (at most MAX_PROBLEMS).
    """
    problems = error.problems or [Problem("COURSE_STRUCTURE_INVALID", "the course structure is refused")]
    missing = sorted({name for p in problems if p.code == "MISSING_FILES" for name in p.details.get("missing", [])})
    code = "MISSING_FILES" if all(p.code == "MISSING_FILES" for p in problems) else "MANIFEST_INVALID"
    message = f"{FILENAME}: {problems[0].message}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    details: dict[str, Any] = {
        "file": FILENAME,
        "standard": STANDARD,
        "reason": problems[0].code,
        "problem_count": len(problems),
        "problems": [msgspec.to_builtins(p) for p in problems[:MAX_PROBLEMS]],
    }
    if missing:
        details["missing"] = missing
    return code, message, details
