"""Cohort CSV parsing: presentation-time EHR, robust missing handling, labels only for training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from inference.errors import EHRDataError
from inference.fusion.cohort import EHR_FEATURES, FORBIDDEN_INPUTS, patient_labels, read_cohort, read_severity

HEADER = "patientid,offset,sex,age,survival,intubated,went_icu,needed_supplemental_O2,temperature,pO2_saturation," \
         "leukocyte_count,neutrophil_count,lymphocyte_count,view,location,filename,clinical_notes\n"


def write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "cohort.csv"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def test_ehr_from_earliest_row_and_images_ordered_by_offset(tmp_path: Path) -> None:
    path = write(tmp_path, [
        "7,5,F,70,Y,N,Y,Y,38.5,88,,,,AP,Here,b.jpg,went to ICU",
        "7,1,F,70,,,,,37.0,96,9.1,,,PA,Here,a.jpg,",
        "8,,M,40,,,,,,,,,,PA,There,c.jpg,",
    ])
    patients = {p.patient_id: p for p in read_cohort(path)}
    p7 = patients["7"]
    assert [i.filename for i in p7.images] == ["a.jpg", "b.jpg"]
    assert p7.ehr["temperature"] == 37.0 and p7.ehr["pO2_saturation"] == 96.0 and p7.ehr["view"] == "PA"
    assert p7.ehr["neutrophil_count"] is None  # missing stays missing
    assert set(p7.ehr) == set(EHR_FEATURES)
    assert not set(p7.ehr) & FORBIDDEN_INPUTS
    assert patients["8"].images[0].offset is None


def test_bad_values_become_missing_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, [
        "1,0,X,abc,,,,,98.6,130,-3,,,Lateral-ish,Here,a.jpg,",
        "2,0,M,150,,,,,,,,,,PA,Here,b.jpg,",
    ])
    p1, p2 = read_cohort(path)
    assert p1.ehr["age"] is None and p1.ehr["temperature"] is None and p1.ehr["pO2_saturation"] is None
    assert p1.ehr["leukocyte_count"] is None
    assert p1.ehr["sex"] == "unknown" and p1.ehr["view"] == "unknown"
    assert any("age" in w and "not a number" in w for w in p1.warnings)
    assert any("pO2_saturation" in w for w in p1.warnings)
    assert p2.ehr["age"] is None and any("age" in w for w in p2.warnings)


def test_structurally_broken_files_raise_ehr_data_error(tmp_path: Path) -> None:
    with pytest.raises(EHRDataError, match="patientid"):
        read_cohort(write(tmp_path, ["1,a.jpg"], header="id,filename\n"))
    with pytest.raises(EHRDataError, match="Cannot read"):
        read_cohort(tmp_path / "missing.csv")


def test_labels_any_positive_all_negative_else_missing(tmp_path: Path) -> None:
    path = write(tmp_path, [
        "1,0,M,50,Y,N,N,,,,,,,PA,Here,a.jpg,",
        "1,2,M,50,N,,Y,,,,,,,PA,Here,b.jpg,",
        "2,0,F,60,Y,N,,,,,,,,PA,Here,c.jpg,",
        "2,1,F,60,,N,,,,,,,,PA,Here,d.jpg,",
    ])
    labels = patient_labels(path)
    assert labels["1"][:3] == [1.0, 0.0, 1.0]  # went_icu Y, intubated all-known N, death (survival N)
    assert math.isnan(labels["1"][3])
    assert labels["2"][1] == 0.0 and labels["2"][2] == 0.0 and math.isnan(labels["2"][0])


def test_outcome_columns_do_not_change_the_model_input(tmp_path: Path) -> None:
    rows = ["1,0,M,50,{s},{i},{w},{o},37.5,93,,,,PA,Here,a.jpg,{n}"]
    a = read_cohort(write(tmp_path, [rows[0].format(s="Y", i="N", w="N", o="Y", n="fine")]))
    b = read_cohort(write(tmp_path, [rows[0].format(s="N", i="Y", w="Y", o="", n="died in ICU")]))
    assert a[0].ehr == b[0].ehr and a[0].images == b[0].images


def test_real_cohort_and_severity(cxr_dir: Path) -> None:
    patients = read_cohort(cxr_dir / "metadata.csv")
    assert len(patients) == 233 and sum(len(p.images) for p in patients) == 406
    labels = patient_labels(cxr_dir / "metadata.csv")
    assert sum(v[0] == 1.0 for v in labels.values()) == 54  # README: went_icu 54 positive patients
    assert sum(v[2] == 1.0 for v in labels.values()) == 16
    scores = read_severity(cxr_dir / "severity_scores.csv")
    assert len(scores) == 70
    assert all(0 <= g <= 8 and 0 <= o <= 6 for g, o in scores.values())
