"""CMI time spans: SCORM 1.2 CMITimespan (HHHH:MM:SS.SS) and SCORM 2004 ISO 8601 durations.

Arithmetic is done in whole centiseconds (the precision of both formats) so that adding session
times never drifts the way float seconds would.
"""

from __future__ import annotations

import re

_TIMESPAN = re.compile(r"([0-9]{2,4}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,2}))?")
_DURATION = re.compile(
    r"P(?:([0-9]+(?:\.[0-9]+)?)Y)?(?:([0-9]+(?:\.[0-9]+)?)M)?(?:([0-9]+(?:\.[0-9]+)?)W)?(?:([0-9]+(?:\.[0-9]+)?)D)?"
    r"(?:T(?:([0-9]+(?:\.[0-9]+)?)H)?(?:([0-9]+(?:\.[0-9]+)?)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?)?"
)
# Fixed factors for the calendar components (as scorm-again: 1Y = 365 days, 1M = 30 days).
_DURATION_UNITS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)
MAX_TIMESPAN_CENTIS = (9999 * 3600 + 59 * 60 + 59) * 100 + 99


def _centis(text: str) -> int:
    """Centiseconds of a decimal seconds count, rounded half up, without float error."""
    whole, _, fraction = text.partition(".")
    fraction = (fraction + "000")[:3]
    return int(whole) * 100 + (int(fraction) + 5) // 10


def parse_timespan(value: str) -> int:
    """Centiseconds of a 1.2 CMITimespan ("0001:30:05.5"); ValueError if malformed."""
    match = _TIMESPAN.fullmatch(value)
    if match is None:
        raise ValueError(f"not a CMITimespan: {value!r}")
    hours, minutes, seconds, fraction = match.groups()
    return (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 100 + int((fraction or "0").ljust(2, "0"))


def format_timespan(centis: int) -> str:
    """A 1.2 CMITimespan with at least four hour digits; capped at 9999:59:59.99 (the format's maximum)."""
    centis = max(0, min(centis, MAX_TIMESPAN_CENTIS))
    seconds, cc = divmod(centis, 100)
    minutes, ss = divmod(seconds, 60)
    hours, mm = divmod(minutes, 60)
    return f"{hours:04d}:{mm:02d}:{ss:02d}.{cc:02d}"


def parse_duration(value: str) -> int:
    """Centiseconds of an ISO 8601 duration ("PT1H30M5.5S", "P1DT2H"); ValueError if malformed.

    Accepts any valid form, including weeks and fractional components the CMI format itself forbids.
    """
    match = _DURATION.fullmatch(value)
    if match is None or value in ("P", "") or value.endswith("T") or not any(match.groups()):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    total = 0
    for amount, unit in zip(match.groups(), _DURATION_UNITS, strict=True):
        if amount is not None:
            whole, _, fraction = amount.partition(".")
            total += int(whole) * unit * 100
            if fraction:
                total += _centis("0." + fraction) * unit
    return total


def format_duration(centis: int) -> str:
    """An ISO 8601 duration as PT{h}H{m}M{s}S (the ADL form), e.g. "PT1H2M3.5S", "PT0H0M0S"."""
    seconds, cc = divmod(max(0, centis), 100)
    minutes, ss = divmod(seconds, 60)
    hours, mm = divmod(minutes, 60)
    fraction = f".{cc:02d}".rstrip("0") if cc else ""
    return f"PT{hours}H{mm}M{ss}{fraction}S"


def parse_cmi_time(value: str) -> int:
    """Centiseconds of either format; "" counts as zero."""
    if value == "":
        return 0
    return parse_duration(value) if value.startswith("P") else parse_timespan(value)
