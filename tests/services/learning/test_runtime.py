"""appliance.services.learning.runtime helpers between the stored CMI and the sequencing engine (rte-rules 5.1 and 5.4)."""

from __future__ import annotations

from appliance.services.learning.deliveries import _refresh_resumed
from appliance.services.learning.terminations import _set_by_sco


def test_reported_objective_fields_carry_their_id() -> None:
    """5.4: a reported cmi.objectives.n field maps to the activity objective by the record's id, which the
    LMS may have supplied itself, so the id goes to sequencing with it; unreported values do not."""
    cmi = {
        "cmi.objectives.0.id": "obj1",
        "cmi.objectives.0.success_status": "passed",
        "cmi.objectives.1.id": "obj2",
        "cmi.objectives.1.success_status": "unknown",
        "cmi.completion_status": "unknown",
        "cmi.exit": "suspend",
    }
    values = _set_by_sco(cmi, ["cmi.objectives.0.success_status", "cmi.exit"])
    assert values == {"cmi.objectives.0.success_status": "passed", "cmi.objectives.0.id": "obj1", "cmi.exit": "suspend"}


def test_resumed_cmi_sees_current_global_objectives_and_shared_data() -> None:
    """5.1 on resume: objective values read from globals go to the record with the same id (SCO-created
    records stay), and adl.data stores are the shared stores as they are now (an emptied one disappears)."""
    cmi = {
        "cmi.objectives.0.id": "mine",
        "cmi.objectives.0.score.scaled": "0.1",
        "cmi.objectives.1.id": "mapped",
        "cmi.objectives.1.success_status": "failed",
        "cmi.objectives.1.score.scaled": "0.2",
        "adl.data.0.id": "notes",
        "adl.data.0.store": "old",
        "adl.data.1.id": "other",
        "adl.data.1.store": "gone",
    }
    overrides = {
        "cmi.objectives.0.id": "mapped",
        "cmi.objectives.0.success_status": "passed",
        "cmi.objectives.1.id": "new",
        "cmi.objectives.1.score.scaled": "0.7",
        "adl.data.0.id": "notes",
        "adl.data.0.store": "newer",
        "adl.data.1.id": "other",
        "cmi.max_time_allowed": "PT1H",
    }
    _refresh_resumed(cmi, overrides)
    assert cmi["cmi.objectives.0.score.scaled"] == "0.1"
    assert cmi["cmi.objectives.1.success_status"] == "passed"
    assert cmi["cmi.objectives.1.score.scaled"] == "0.2"  # the global has no measure: the SCO's value stays
    assert (cmi["cmi.objectives.2.id"], cmi["cmi.objectives.2.score.scaled"]) == ("new", "0.7")
    assert cmi["adl.data.0.store"] == "newer" and "adl.data.1.store" not in cmi
    assert "cmi.max_time_allowed" not in cmi
