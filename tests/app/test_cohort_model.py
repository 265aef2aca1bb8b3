"""Cohort folders: the patient list (outcomes never read), validation of an untrusted table, one patient as a case."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from app.model import cohort as cohort_module
from app.model.clinical import OUTCOME_COLUMNS, load_case
from app.model.cohort import HIDDEN_COLUMNS, PatientSummary, is_cohort_folder, read_cohort_index
from inference.errors import EHRDataError

SHARED = Path(os.environ.get("MEDFUSION_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
CXR = SHARED / "cxr"
HEADER = ["patientid", "offset", "sex", "age", "finding", "went_icu", "survival", "date", "filename", "clinical_notes"]


def _cohort(tmp_path: Path, rows: list[list[str]], header: list[str] = HEADER, text: str | None = None) -> Path:
    folder = tmp_path / "cohort"
    (folder / "images").mkdir(parents=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        if text is not None:
            fh.write(text)
        else:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
    for row in rows:
        if len(row) > 8 and "/" not in row[8] and row[8]:
            (folder / "images" / row[8]).write_bytes(b"")
    return folder


def test_patients_are_summarised_without_outcomes(tmp_path: Path) -> None:
    folder = _cohort(tmp_path, [
        ["7", "3", "F", "61", "COVID-19", "Y", "N", "January 25, 2020", "b.jpg", "died on day 9"],
        ["7", "0", "F", "61", "COVID-19", "Y", "N", "January 22, 2020", "a.jpg", "admitted"],
        ["12", "", "M", "abc", "Other", "N", "Y", "", "c.jpg", ""],
    ])
    (folder / "images" / "c.jpg").unlink()
    cohort = read_cohort_index(folder)
    assert [p.patient_id for p in cohort.patients] == ["7", "12"]
    first, second = cohort.patients
    assert (first.sex, first.age, first.n_images, first.offsets, first.dates) == (
        "F", 61.0, 2, (0.0, 3.0), ("2020-01-22", "2020-01-25"))
    assert (first.span_text, first.dates_text) == ("day 0 – 3", "2020-01-22 → 2020-01-25")
    assert (second.age, second.offsets, second.n_missing) == (None, None, 1)  # 'abc' is not an age
    assert cohort.warnings == ["1 listed image(s) are not in the folder"]
    summary_fields = set(PatientSummary.__dataclass_fields__)
    assert not summary_fields & HIDDEN_COLUMNS and not summary_fields & {"finding", "notes"}
    text = repr(cohort)
    for secret in ("died on day 9", "admitted", "COVID-19", "Other"):
        assert secret not in text  # outcome values, notes and the diagnosis were never copied
    assert is_cohort_folder(folder)


@pytest.mark.parametrize(("content", "message"), [
    ("", "is empty"),
    ("patientid,offset\n1,0\n", "no filename column"),
    ("patientid,filename,filename\n1,a.jpg,b.jpg\n", "column 'filename' twice"),
    ('patientid,filename\n1,"a.jpg"x\n2,b.jpg\n', r"not a valid CSV table \(line 2"),
    ("patientid,filename\n1,a.jpg\n2," + "x" * 200_000 + "\n", "not a valid CSV table"),
])
def test_malformed_tables_are_one_sentence(tmp_path: Path, content: str, message: str) -> None:
    folder = _cohort(tmp_path, [], text=content)
    assert is_cohort_folder(folder) in (True, False)  # never raises
    with pytest.raises(EHRDataError, match=message):
        read_cohort_index(folder)


def test_unusable_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    folder = _cohort(tmp_path, [
        ["1", "0", "M", "50", "", "", "", "", "ok.jpg", ""],
        ["", "0", "M", "50", "", "", "", "", "anon.jpg", ""],
        ["2", "0", "F", "40", "", "", "", "", "../../etc/passwd", ""],
        ["3\x07", "0", "F", "40", "", "", "", "", "bell.jpg", ""],
        ["4", "0"],
    ])
    cohort = read_cohort_index(folder)
    assert [p.patient_id for p in cohort.patients] == ["1"]
    assert "2 row(s) skipped: no patient id" in cohort.warnings
    assert "1 row(s) skipped: file name that is a path" in cohort.warnings
    assert "1 row(s) skipped: wrong number of columns" in cohort.warnings


def test_too_large_table_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _cohort(tmp_path, [["1", "0", "M", "50", "", "", "", "", "a.jpg", ""]] * 50)
    monkeypatch.setattr(cohort_module, "MAX_TABLE_BYTES", 100)
    assert is_cohort_folder(folder)  # goes to the cohort reader, which says why
    with pytest.raises(EHRDataError, match="too large to list"):
        read_cohort_index(folder)


def test_one_patient_of_a_cohort_opens_as_a_case_without_outcome_columns(tmp_path: Path) -> None:
    folder = _cohort(tmp_path, [
        ["7", "3", "F", "61", "COVID-19", "Y", "N", "", "b.jpg", "died"],
        ["7", "0", "F", "61", "COVID-19", "Y", "N", "", "a.jpg", "admitted"],
        ["12", "0", "M", "70", "Other", "N", "Y", "", "c.jpg", ""],
    ])
    with pytest.raises(EHRDataError, match="several patients"):
        load_case(folder)
    case = load_case(folder, "7")
    assert (case.patient_id, case.cohort, [im.filename for im in case.images]) == ("7", True, ["a.jpg", "b.jpg"])
    assert all(not set(row) & OUTCOME_COLUMNS for row in case.rows)
    with pytest.raises(EHRDataError, match="no rows for patient 99"):
        load_case(folder, "99")


@pytest.mark.skipif(not (CXR / "metadata.csv").is_file(), reason="shared cxr data not available")
def test_the_shared_cxr_folder_lists_every_patient() -> None:
    with open(CXR / "metadata.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_patient: dict[str, int] = {}
    for row in rows:
        by_patient[row["patientid"].strip()] = by_patient.get(row["patientid"].strip(), 0) + 1
    cohort = read_cohort_index(CXR)
    assert {p.patient_id: p.n_images for p in cohort.patients} == by_patient
    assert cohort.n_rows == len(rows) and is_cohort_folder(CXR)
    several = next(p for p in cohort.patients if p.n_images > 1)
    case = load_case(CXR, several.patient_id)
    assert len(case.images) == several.n_images and case.images == sorted(case.images, key=lambda im: im.offset)
