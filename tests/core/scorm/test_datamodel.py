"""The element table, DataModel behaviour beyond the shared vectors, initial values and programmatic patches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.core.scorm import datamodel
from appliance.core.scorm.datamodel import CmiError, DataModel, apply_patch, count_records, validate_patch
from appliance.core.scorm.elements import datamodel_table
from appliance.core.scorm.launch import adl_data_access, initial_cmi, number_text
from appliance.core.scorm.model import (
    SCORM_12,
    SCORM_2004_3RD,
    SCORM_2004_4TH,
    SCORM_VERSIONS,
    CompletionThreshold,
    DataMap,
    Item,
)

SPEC = Path(__file__).resolve().parents[4] / "shared" / "spec"


# ------------------------------------------------------------------------------------------ table
@pytest.mark.parametrize("version", SCORM_VERSIONS)
def test_table_is_json_and_a_fresh_copy(version: str) -> None:
    table = datamodel_table(version)
    assert json.loads(json.dumps(table)) == table
    table["elements"].clear()
    assert datamodel_table(version)["elements"]


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SCORM version"):
        datamodel_table("1.3")


@pytest.mark.parametrize("version", SCORM_VERSIONS)
def test_patterns_use_the_common_regex_subset(version: str) -> None:
    """Unicode-dependent escapes and lookbehind would match differently in Python and JavaScript."""
    for name, pattern in datamodel_table(version)["patterns"].items():
        re.compile(pattern)
        assert not re.search(r"\\[dwDW]|\(\?<[=!]|\(\?P", pattern), name
        assert "\\s" not in pattern.replace("[\\s\\S]", ""), name


@pytest.mark.parametrize(
    ("spec_file", "version"),
    [("datamodel-scorm12.json", SCORM_12), ("datamodel-scorm2004.json", SCORM_2004_4TH)],
)
def test_every_spec_element_is_in_the_table_with_its_access(spec_file: str, version: str) -> None:
    path = SPEC / spec_file
    if not path.exists():
        pytest.skip(f"{path} is not available")
    table = datamodel_table(version)
    for row in json.loads(path.read_text())["elements"]:
        name, access = row["name"], row["access"]
        if name.endswith(("._children", "._count", "._version")):
            parent, keyword = name.rsplit(".", 1)
            if name in table["undefined"]:
                continue
            where = {"_children": table["children"], "_count": table["arrays"], "_version": {"cmi": 1}}[keyword]
            assert parent in where, name
        elif access == "array":
            assert name in table["arrays"], name
        elif "{target=" in name:
            assert name.split(".{")[0] in table["targets"], name
        else:
            assert table["elements"][name]["access"] == access, name


def test_editions_differ_where_the_specs_say() -> None:
    second, third, fourth = (datamodel_table(v) for v in SCORM_VERSIONS[1:])
    assert second["elements"]["cmi.suspend_data"]["spm"] == 4000
    assert third["elements"]["cmi.suspend_data"]["spm"] == 64000
    assert "adl.data.n.store" in fourth["elements"] and "adl.data.n.store" not in third["elements"]
    assert "adl.nav.request_valid.jump" in fourth["targets"] and "adl.nav.request_valid.jump" not in third["targets"]


def test_language_codes_are_iso_639_primary_subtags() -> None:
    """The ISO 639-1/639-2 list the 2004 language_type check uses (shipped to the browser as one string)."""
    codes = datamodel_table(SCORM_2004_4TH)["language_codes"].split(" ")
    assert codes == sorted(set(codes))
    assert all(re.fullmatch("[a-z]{2,3}", code) for code in codes)
    assert {"en", "eng", "de", "ger", "deu", "fil", "und", "sgn", "mo", "scr"} <= set(codes)
    assert not {"frl", "exg", "sp", "ruq", "i", "x"} & set(codes)
    assert datamodel_table(SCORM_12)["language_codes"] == ""


# -------------------------------------------------------------------------------------- DataModel
def test_the_given_dict_is_copied_not_changed() -> None:
    cmi = {"cmi.location": "a"}
    model = DataModel(SCORM_2004_4TH, cmi)
    assert model.set_value("cmi.location", "b") == 0
    assert cmi == {"cmi.location": "a"}
    assert model.cmi["cmi.location"] == "b"


def test_record_counts_come_from_the_stored_names() -> None:
    counts = count_records(["cmi.interactions.1.id", "cmi.interactions.0.id", "cmi.interactions.1.objectives.2.id"])
    assert counts == {"cmi.interactions": 2, "cmi.interactions.1.objectives": 3}
    model = DataModel(SCORM_2004_4TH, {"cmi.interactions.0.id": "a", "cmi.interactions.1.id": "b"})
    assert model.get_value("cmi.interactions._count") == ("2", 0)
    assert model.set_value("cmi.interactions.2.id", "c") == 0
    assert model.count("cmi.interactions") == 3


def test_2004_accepts_values_beyond_spm_and_says_so() -> None:
    model = DataModel(SCORM_2004_4TH)
    assert model.set_value("cmi.location", "x" * 1001) == 0
    assert "SPM" in model.diagnostic
    assert model.set_value("cmi.location", "x") == 0
    assert model.diagnostic == ""


def test_failed_set_changes_nothing_and_explains() -> None:
    model = DataModel(SCORM_2004_4TH)
    assert model.set_value("cmi.interactions.0.type", "choice") == 408
    assert "cmi.interactions.0.id" in model.diagnostic
    assert model.cmi == {} and model.count("cmi.interactions") == 0


def test_shared_data_rights_come_from_the_data_maps() -> None:
    item = Item("i", "t", data_maps=[DataMap("a", read_shared_data=False), DataMap("b", write_shared_data=False)])
    cmi = initial_cmi(SCORM_2004_4TH, learner_id="l", learner_name="n", item=item, shared_data={"b": "kept"})
    model = DataModel(SCORM_2004_4TH, cmi, data_access=adl_data_access(item))
    assert model.get_value("adl.data.0.store") == ("", 405)
    assert model.set_value("adl.data.0.store", "x") == 0
    assert model.get_value("adl.data.1.store") == ("kept", 0)
    assert model.set_value("adl.data.1.store", "x") == 404
    assert adl_data_access(None) == []


def test_shared_data_id_is_readable_without_read_rights() -> None:
    """RTE 4.3 adl.data.n.id is RO and always readable: readSharedData only guards the store (CTS DMI)."""
    item = Item("i", "t", data_maps=[DataMap("a", read_shared_data=False, write_shared_data=False)])
    cmi = initial_cmi(SCORM_2004_4TH, learner_id="l", learner_name="n", item=item)
    model = DataModel(SCORM_2004_4TH, cmi, data_access=adl_data_access(item))
    assert model.get_value("adl.data.0.id") == ("a", 0)
    assert model.get_value("adl.data.0.store") == ("", 405)
    assert model.set_value("adl.data.0.id", "b") == 404


@given(st.text(max_size=300))
def test_any_text_round_trips_through_a_2004_string(text: str) -> None:
    model = DataModel(SCORM_2004_4TH)
    assert model.set_value("cmi.suspend_data", text) == 0
    assert model.get_value("cmi.suspend_data") == (text, 0)


@given(st.decimals(min_value=-1, max_value=1, places=4).map(str))
def test_every_scaled_score_in_range_is_accepted_as_written(text: str) -> None:
    model = DataModel(SCORM_2004_4TH)
    assert model.set_value("cmi.score.scaled", text) == 0
    assert model.get_value("cmi.score.scaled") == (text, 0)


# ------------------------------------------------------------------------------------ initial_cmi
def test_initial_cmi_12_from_the_manifest_item() -> None:
    item = Item(
        "i1",
        "Lesson",
        mastery_score=80.0,
        max_time_allowed="0000:30:00",
        time_limit_action="Exit, Message",
        data_from_lms="level=2",
    )
    cmi = initial_cmi(SCORM_12, learner_id="u1", learner_name="Doe, Jane", item=item, comments_from_lms="Hi")
    model = DataModel(SCORM_12, cmi)
    expected = {
        "cmi.core.student_id": "u1",
        "cmi.core.student_name": "Doe, Jane",
        "cmi.core.entry": "ab-initio",
        "cmi.core.credit": "credit",
        "cmi.core.lesson_mode": "normal",
        "cmi.core.lesson_status": "not attempted",
        "cmi.core.total_time": "0000:00:00.00",
        "cmi.launch_data": "level=2",
        "cmi.comments_from_lms": "Hi",
        "cmi.student_data.mastery_score": "80",
        "cmi.student_data.max_time_allowed": "0000:30:00",
        "cmi.student_data.time_limit_action": "exit,message",
    }
    for element, value in expected.items():
        assert model.get_value(element) == (value, 0), element


def test_initial_cmi_leaves_out_invalid_manifest_values() -> None:
    item = Item("i1", "Lesson", mastery_score=180.0, max_time_allowed="30 minutes", time_limit_action="stop")
    cmi = initial_cmi(SCORM_12, learner_id="u1", learner_name="n", item=item)
    assert not any(key.startswith("cmi.student_data") for key in cmi)


def test_initial_cmi_2004_from_item_and_sequencing() -> None:
    item = Item(
        "i1",
        "SCO",
        data_from_lms="x",
        max_time_allowed="PT45M",
        time_limit_action="exit,no message",
        completion_threshold=CompletionThreshold(completed_by_measure=True, min_progress_measure=0.75),
        data_maps=[DataMap("shared-a"), DataMap("shared-b")],
    )
    cmi = initial_cmi(
        SCORM_2004_4TH,
        learner_id="u1",
        learner_name="Jane",
        item=item,
        mode="review",
        credit="no-credit",
        scaled_passing_score=0.6,
        objectives=[{"id": "primary", "success_status": "passed"}],
        comments_from_lms=[{"comment": "Welcome", "location": "p1"}],
        shared_data={"shared-a": "A"},
    )
    model = DataModel(SCORM_2004_4TH, cmi)
    expected = {
        "cmi.launch_data": "x",
        "cmi.max_time_allowed": "PT45M",
        "cmi.time_limit_action": "exit,no message",
        "cmi.completion_threshold": "0.75",
        "cmi.scaled_passing_score": "0.6",
        "cmi.mode": "review",
        "cmi.credit": "no-credit",
        "cmi.entry": "ab-initio",
        "cmi.total_time": "PT0H0M0S",
        "cmi.objectives._count": "1",
        "cmi.objectives.0.success_status": "passed",
        "cmi.comments_from_lms.0.comment": "Welcome",
        "adl.data._count": "2",
        "adl.data.0.store": "A",
        "adl.data.1.id": "shared-b",
    }
    for element, value in expected.items():
        assert model.get_value(element) == (value, 0), element
    assert model.get_value("adl.data.1.store") == ("", 403)


def test_completion_threshold_by_edition() -> None:
    not_by_measure = Item("i", "t", completion_threshold=CompletionThreshold(min_progress_measure=0.5))
    for version, present in [(SCORM_2004_4TH, False), (SCORM_2004_3RD, True)]:
        cmi = initial_cmi(version, learner_id="l", learner_name="n", item=not_by_measure)
        assert ("cmi.completion_threshold" in cmi) is present


def test_initial_cmi_2004_without_item_leaves_manifest_values_unset() -> None:
    model = DataModel(SCORM_2004_3RD, initial_cmi(SCORM_2004_3RD, learner_id="l", learner_name="n"))
    for element in ["cmi.launch_data", "cmi.max_time_allowed", "cmi.completion_threshold", "cmi.scaled_passing_score"]:
        assert model.get_value(element) == ("", 403)
    assert model.get_value("cmi.time_limit_action") == ("continue,no message", 0)


def test_number_text() -> None:
    assert [number_text(x) for x in (80.0, 0.85, 1, -0.5)] == ["80", "0.85", "1", "-0.5"]


# ------------------------------------------------------------------------------------ PATCH rules
def test_patch_applies_in_order() -> None:
    new, errors = apply_patch(
        SCORM_2004_4TH,
        {"cmi.location": "a"},
        {"cmi.interactions.0.id": "q1", "cmi.interactions.0.type": "numeric", "cmi.location": "b"},
    )
    assert errors == []
    assert new == {
        "cmi.location": "b",
        "cmi.interactions.0.id": "q1",
        "cmi.interactions.0.type": "numeric",
    }


def test_patch_with_errors_reports_all_and_changes_nothing() -> None:
    current = {"cmi.core.lesson_location": "a"}
    patch = {
        "cmi.core.lesson_location": "b",
        "cmi.core.student_id": "x",
        "cmi.core.score.raw": "150",
        "cmi.interactions.3.id": "q",
        "cmi.foo": "1",
    }
    new, errors = apply_patch(SCORM_12, current, patch)
    assert new == current
    assert [(e.element, e.scorm_error_code) for e in errors] == [
        ("cmi.core.student_id", 403),
        ("cmi.core.score.raw", 405),
        ("cmi.interactions.3.id", 201),
        ("cmi.foo", 401),
    ]
    assert errors[0] == CmiError("cmi.core.student_id", "x", 403, errors[0].message)
    assert errors[0].message.startswith("Element is read only")
    assert validate_patch(SCORM_12, current, patch) == errors


def test_patch_order_matters_for_dependencies() -> None:
    errors = validate_patch(SCORM_2004_4TH, {}, {"cmi.objectives.0.score.raw": "5", "cmi.objectives.0.id": "o"})
    assert [(e.element, e.scorm_error_code) for e in errors] == [("cmi.objectives.0.score.raw", 408)]


def test_patch_values_must_be_strings() -> None:
    errors = validate_patch(SCORM_2004_4TH, {}, {"cmi.score.raw": 5})  # type: ignore[dict-item]
    assert [(e.element, e.scorm_error_code, e.value) for e in errors] == [("cmi.score.raw", 406, "5")]


def test_names_longer_than_any_element_are_answered_but_never_cached() -> None:
    """Content chooses the names it sets: the per-name caches keep only names of a real length."""
    model = DataModel("2004 4th Edition")
    before = (datamodel._set_plan.cache_info().currsize, datamodel._resolution.cache_info().currsize)
    for n in range(50):
        long_name = "cmi.interactions.0." + "x" * 300 + str(n)
        assert model.set_value(long_name, "1") == 401
        assert model.get_value(long_name) == ("", 401)
    after = (datamodel._set_plan.cache_info().currsize, datamodel._resolution.cache_info().currsize)
    assert after == before
    assert model.set_value("cmi.location", "p1") == 0 and model.get_value("cmi.location") == ("p1", 0)


# ------------------------------------------------------------------------- 1.2 suspend_data limit
def test_the_12_suspend_data_limit_is_a_parameter_of_the_table() -> None:
    """Only cmi.suspend_data's SPM changes; everything else is the spec's table, and 2004 ignores it."""
    spec_table, relaxed = datamodel_table(SCORM_12), datamodel_table(SCORM_12, suspend_data_limit=64000)
    assert spec_table["elements"]["cmi.suspend_data"]["spm"] == 4096
    assert relaxed["elements"]["cmi.suspend_data"] == {**spec_table["elements"]["cmi.suspend_data"], "spm": 64000}
    del relaxed["elements"]["cmi.suspend_data"], spec_table["elements"]["cmi.suspend_data"]
    assert relaxed == spec_table
    assert datamodel_table(SCORM_12, suspend_data_limit=4096) == datamodel_table(SCORM_12)
    for version in SCORM_VERSIONS[1:]:
        assert datamodel_table(version, suspend_data_limit=10000) == datamodel_table(version)


@pytest.mark.parametrize("limit", [4095, 64001, 0, -1, True, 5000.0, "64000"])
def test_a_suspend_data_limit_outside_4096_to_64000_is_refused(limit: object) -> None:
    with pytest.raises(ValueError, match="suspend_data_limit must be an integer from 4096 to 64000"):
        datamodel_table(SCORM_12, suspend_data_limit=limit)  # type: ignore[arg-type]


def test_models_with_different_limits_share_the_name_caches_but_not_the_limit() -> None:
    """Names resolve once per version; each model checks lengths against its own table."""
    value = "s" * 10000
    relaxed, strict = DataModel(SCORM_12, suspend_data_limit=64000), DataModel(SCORM_12)
    assert relaxed.set_value("cmi.suspend_data", value) == 0
    assert strict.set_value("cmi.suspend_data", value) == 405
    assert "longer than 4096 characters" in strict.diagnostic
    assert relaxed.get_value("cmi.suspend_data") == (value, 0)
    assert strict.get_value("cmi.suspend_data") == ("", 0)
    new, errors = apply_patch(SCORM_12, {}, {"cmi.suspend_data": value}, suspend_data_limit=10000)
    assert errors == [] and new == {"cmi.suspend_data": value}
    errors = validate_patch(SCORM_12, {}, {"cmi.suspend_data": value + "s"}, suspend_data_limit=10000)
    assert [(e.element, e.scorm_error_code) for e in errors] == [("cmi.suspend_data", 405)]
    assert "longer than 10000 characters" in errors[0].message
