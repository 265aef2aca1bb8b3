"""The shared clinical vocabulary: names, critical / implausible ranges, formats, plain words, base rates,
audit entries in words (issue 15 defects 3, 6, 7; issue 13 item 6)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from inference.audit.describe import describe_entry, format_timestamp
from inference.audit.log import AuditLog
from inference.clinical.base_rates import BaseRate, base_rates_for, from_model_dir
from inference.clinical.formatting import (
    field_value,
    format_area,
    format_percent,
    format_pixel_value,
    iso_date,
)
from inference.clinical.ranges import EHR_RANGES, check_value, consistency_warnings
from inference.clinical.terms import OUTCOME_LABELS, action_label, actor_label, field_label, outcome_label
from inference.clinical.wording import outcome_words

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "resources" / "models" / "fusion"


def test_clinical_names_for_every_outcome_and_field() -> None:
    assert outcome_label("went_icu") == "ICU admission" and outcome_label("intubated") == "Intubation"
    assert outcome_label("death") == "Death" and outcome_label("needed_supplemental_O2") == "Supplemental O\u2082"
    assert outcome_label("length_of_stay") == "Length of stay"  # never raw snake_case
    assert field_label("pO2_saturation") == "SpO\u2082" and action_label("ehr_edit") == "What-if edit"
    assert actor_label("AI:medfusion-cxr-v1") == "AI model medfusion-cxr-v1" and actor_label("user:dr.k") == "dr.k"
    assert all("_" not in label for label in OUTCOME_LABELS.values())
    assert all("_" not in r.label for r in EHR_RANGES)


@pytest.mark.parametrize(("name", "value", "level", "direction"), [
    ("pO2_saturation", 97, "normal", ""),
    ("pO2_saturation", 92, "abnormal", "low"),
    ("pO2_saturation", 85, "abnormal", "low"),  # the limit itself is not critical
    ("pO2_saturation", 84, "critical", "low"),
    ("pO2_saturation", 35, "implausible", "low"),  # the "SpO2 35 % is just 'low'"
    ("pO2_saturation", 130, "implausible", "high"),  # a PaO2 in mmHg typed as SpO2 (in the shared cohort)
    ("temperature", 38.0, "abnormal", "high"),
    ("temperature", 40.5, "critical", "high"),
    ("temperature", 34.2, "critical", "low"),
    ("temperature", 101.3, "implausible", "high"),  # °F
    ("leukocyte_count", 1.5, "critical", "low"),
    ("leukocyte_count", 35.0, "critical", "high"),
    ("leukocyte_count", 5400, "implausible", "high"),  # per µL instead of ×10⁹/L
    ("neutrophil_count", 0.3, "critical", "low"),
    ("lymphocyte_count", 0.4, "critical", "low"),
    ("lymphocyte_count", 0.8, "abnormal", "low"),
    ("age", 72, "", ""),
    ("age", 150, "implausible", "high"),
    ("age", None, "missing", ""),
    ("sex", "F", "", ""),
])
def test_ranges(name: str, value: float | str | None, level: str, direction: str) -> None:
    check = check_value(name, value)
    assert (check.level, check.direction) == (level, direction), check
    if level in ("critical", "implausible"):
        assert check.reason and check.short()
    if level == "implausible":
        assert "check the entry" in check.reason


def test_ranges_are_ordered_and_flag_the_dev_cohort_sensibly(shared_data: Path) -> None:
    for r in EHR_RANGES:
        if r.normal and r.plausible:
            assert r.plausible[0] <= r.normal[0] < r.normal[1] <= r.plausible[1], r.name
        if r.normal and r.critical_low is not None:
            assert r.critical_low <= r.normal[0], r.name
        if r.normal and r.critical_high is not None:
            assert r.critical_high >= r.normal[1], r.name
    with open(shared_data / "cxr" / "metadata.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    levels: dict[str, list[str]] = {}
    for r in EHR_RANGES[2:]:
        values = [float(row[r.name]) for row in rows if (row.get(r.name) or "").strip() not in ("", "nan")]
        levels[r.name] = [check_value(r.name, v).level for v in values]
    # temperatures and counts in the cohort are all plausible; SpO2 holds PaO2-like values (>100) and a few
    # very low readings, which must be flagged rather than passed as "low"
    assert all(lv != "implausible" for name in ("temperature", "leukocyte_count", "lymphocyte_count")
               for lv in levels[name])
    spo2 = levels["pO2_saturation"]
    assert 0 < spo2.count("implausible") < len(spo2) // 2 and "critical" in spo2


def test_consistency_of_differential_counts() -> None:
    assert consistency_warnings({"leukocyte_count": 5.0, "neutrophil_count": 3.0, "lymphocyte_count": 1.2}) == []
    warning = consistency_warnings({"leukocyte_count": 3.0, "neutrophil_count": 6.8, "lymphocyte_count": 1.0})
    assert warning and "exceed the leukocyte count" in warning[0]
    assert consistency_warnings({"leukocyte_count": None, "neutrophil_count": 6.8}) == []


def test_formats() -> None:
    assert iso_date("20221208") == "2022-12-08" and iso_date("2022.12.08") == "2022-12-08"
    assert iso_date("") == "" and iso_date("20221399") == "20221399" and iso_date("unknown") == "unknown"
    assert format_pixel_value(-47.0, "HU", "CT") == "\u221247 HU"
    assert format_pixel_value(-46.6, "", "CT") == "\u221247 HU" and format_pixel_value(-0.3, "HU") == "0 HU"
    assert format_pixel_value(3.24, "SUVbw", "PT") == "3.2 SUVbw"
    assert format_pixel_value(123.4) == "123" and format_pixel_value(0.512) == "0.51"
    assert format_area(5592, None) == "5,592 pixels" and format_area(100, (0.5, 0.5)) == "25.0 mm\u00b2"
    assert format_percent(0.812) == "81 %" and format_percent(0.004) == "<1 %" and format_percent(1.0) == "100 %"
    assert field_value("pO2_saturation", 99.0) == "99 %" and field_value("temperature", 36.8) == "36.8 \u00b0C"
    assert field_value("lymphocyte_count", None) == "missing"


def test_plain_words() -> None:
    rate = BaseRate(0.21, 16, 76)
    undecided = outcome_words("death", 0.32, {0, 1}, 0.1, rate)
    assert undecided.undecided and undecided.line() == "Death: the model cannot decide at 90 % confidence"
    assert undecided.base_rate == "cohort base rate 21 %" and "{" not in undecided.line()
    assert undecided.technical == "90 % conformal set {yes, no}"
    yes_low = outcome_words("went_icu", 0.41, {1}, 0.1)
    assert yes_low.answer == "yes" and "41 %" in yes_low.note and "'no' is ruled out" in yes_low.note
    assert yes_low.base_rate == "base rate unknown"
    assert outcome_words("went_icu", 0.81, {1}, 0.1).note == ""
    no_high = outcome_words("intubated", 0.62, {0}, 0.2)
    assert no_high.answer == "no" and "'yes' is ruled out" in no_high.note and no_high.level == "80 % confidence"
    abstain = outcome_words("death", 0.5, set(), 0.05)
    assert abstain.abstain and "do not rely on it" in abstain.line()


def test_base_rates_come_from_the_shipped_config_else_from_calibration_counts(tmp_path: Path) -> None:
    rates = from_model_dir(SHIPPED)
    config = json.loads((SHIPPED / "config.json").read_text())
    assert set(rates) == set(config["outcomes"]) == set(config["base_rates"])
    for name, rate in config["base_rates"].items():
        assert 0.0 < rate < 1.0 and rates[name].rate == pytest.approx(rate)
    # A model folder without stored base rates: the conformal calibration's class counts are the labelled
    # cohort's outcome counts.
    older = tmp_path / "older"
    older.mkdir()
    (older / "config.json").write_text(json.dumps({"outcomes": ["went_icu", "death"]}))
    (older / "calibration.json").write_text(json.dumps({"conformal": [
        {"scores": {"0": [0.1, 0.2, 0.3], "1": [0.4]}}, {"scores": {"0": [0.1], "1": [0.2, 0.3, 0.4, 0.5]}}]}))
    counted = from_model_dir(older)
    assert counted["went_icu"].rate == pytest.approx(0.25) and counted["went_icu"].n_labelled == 4
    assert counted["death"].rate == pytest.approx(0.8) and counted["death"].n_positive == 4
    # the predictor's own numbers win; a broken or missing model folder gives "unknown", never a guess
    class Predictor:
        base_rates = {"went_icu": 0.4, "death": 1.7}
        model_dir = SHIPPED

    assert {k: v.rate for k, v in base_rates_for(Predictor()).items()} == {"went_icu": 0.4}

    class Adapter:
        fusion = Predictor()

    assert base_rates_for(Adapter())["went_icu"].rate == 0.4
    assert from_model_dir(tmp_path) == {} and base_rates_for(object()) == {}
    (older / "calibration.json").write_text("{not json")
    assert from_model_dir(older) == {}
    (older / "config.json").write_text("{not json")
    assert from_model_dir(older) == {}


def test_audit_entries_in_words(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    log.append("system:viewer", "case_open", "patient 178", {"folder": "cxr", "images": ["a.jpg", "b.jpg"]})
    log.append("user:dr.k", "ehr_edit", "pO2_saturation", {"before": 85.0, "after": 99.0, "what_if": True})
    log.append("AI:medfusion-cxr-v1", "prediction", "patient 178", {
        "alpha": 0.1, "tent": False, "before": {"went_icu": 0.7}, "after": {"went_icu": 0.81, "death": 0.32},
        "sets": {"went_icu": [1], "death": [0, 1]}, "ehr_edits": {"pO2_saturation": 99.0}, "edited_masks": []})
    log.append("user:dr.k", "mask_edit", "a.jpg", {"dice_ai_vs_final": 0.873, "pixels": 22750})
    log.append("AI:medfusion-cxr-v1", "explanation", "went_icu",
               {"method": "ig", "top_ehr": [["pO2_saturation", 0.3], ["age", 0.1]], "gate_image": 0.08})
    log.append("user:dr.k", "brand_new_action", "x", {"some_field": 3})
    rows = [describe_entry(e) for e in log.entries()]
    opened, edit, pred, mask, expl, other = rows
    assert opened.time[:4].isdigit() and opened.time[4] == "-" and len(opened.time) == 19  # date and time
    assert (opened.who, opened.action, opened.summary) == ("Viewer", "Case opened", "2 images from folder 'cxr'")
    assert (edit.who, edit.action, edit.target) == ("dr.k", "What-if edit", "SpO\u2082")
    assert edit.summary == "SpO\u2082 85 \u2192 99 % (what-if; the record is unchanged)"
    assert "ICU admission 81 % (was 70 %)" in pred.summary and "Cannot decide at 90 %: Death" in pred.summary
    assert "Used what-if values: SpO\u2082 99 %" in pred.summary and "went_icu" not in pred.summary
    assert "Dice 0.87" in mask.summary and "22,750 pixels" in mask.summary
    assert expl.target == "ICU admission" and "Integrated Gradients" in expl.summary and "SpO\u2082" in expl.summary
    assert other.action == "Brand new action" and other.summary == "some field: 3"
    assert all('"hash"' in r.raw for r in rows) and "{" not in "".join(r.summary for r in rows)
    assert format_timestamp("2026-12-01T09:48:52.123456+00:00") == "2026-12-01 09:48:52"


def test_audit_entries_without_identity_for_a_de_identified_display(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    log.append("system:viewer", "case_open", "patient 178", {"folder": "cxr178", "images": ["a.jpg"]})
    log.append("AI:medfusion-cxr-v1", "prediction", "patient 178", {"after": {"went_icu": 0.81}})
    log.append("user:dr.k", "ehr_edit", "pO2_saturation", {"before": 85.0, "after": 99.0, "what_if": True})
    opened, pred, edit = (describe_entry(e, hide_patient=True) for e in log.entries())
    assert (opened.target, opened.summary) == ("this patient", "1 image") and pred.target == "this patient"
    assert "178" not in opened.raw + pred.raw and '"folder": "(hidden)"' in opened.raw and '"hash"' in pred.raw
    assert edit == describe_entry(log.entries()[2])  # nothing identifying there: unchanged
    assert "patient 178" in (tmp_path / "a.jsonl").read_text() and log.check().ok  # the log is untouched
