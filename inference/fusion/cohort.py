"""Cohort CSV (the shared ``cxr/metadata.csv`` columns) → patients with EHR, image sequence and labels.

Rules (NAIM-style, see the seed papers): EHR values are those at presentation — the patient's earliest
row by ``offset`` — and a value that is empty, unparsable or physiologically impossible is *missing*
(masked in the model), never imputed. Outcome columns and their proxies are read only by
:func:`patient_labels` (training/evaluation); prediction never calls it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from inference.errors import EHRDataError

OUTCOMES = ("went_icu", "intubated", "death", "needed_supplemental_O2")
# (column, lowest plausible, highest plausible, unit)
NUMERIC_FIELDS: tuple[tuple[str, float, float, str], ...] = (
    ("age", 0.0, 120.0, "years"),
    ("temperature", 30.0, 45.0, "°C"),
    ("pO2_saturation", 30.0, 100.0, "%"),
    ("leukocyte_count", 0.0, 200.0, "×10⁹/L"),
    ("neutrophil_count", 0.0, 200.0, "×10⁹/L"),
    ("lymphocyte_count", 0.0, 100.0, "×10⁹/L"),
)
CATEGORICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "sex": ("M", "F"),
    "view": ("PA", "AP", "AP Supine", "AP Erect", "L"),
}
EHR_FEATURES: tuple[str, ...] = tuple(f[0] for f in NUMERIC_FIELDS) + tuple(CATEGORICAL_FIELDS)
# Never model inputs: outcomes, their proxies, free text, provenance.
FORBIDDEN_INPUTS = frozenset({
    "survival", "intubated", "intubation_present", "went_icu", "in_icu", "needed_supplemental_O2",
    "extubated", "clinical_notes", "other_notes", "location", "doi", "url", "license", "finding",
})


@dataclass
class ImageRecord:
    filename: str
    offset: float | None


@dataclass
class Patient:
    patient_id: str
    ehr: dict[str, float | str | None]
    images: list[ImageRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as err:
        raise EHRDataError(f"Cannot read the cohort table {path}: {err.strerror}.") from err
    except csv.Error as err:
        raise EHRDataError(f"The cohort table {path} is not a valid CSV file ({err}).") from err
    if not rows or "patientid" not in rows[0]:
        raise EHRDataError(f"The cohort table {path} has no 'patientid' column (or no rows).")
    if "filename" not in rows[0]:
        raise EHRDataError(f"The cohort table {path} has no 'filename' column.")
    return rows


def _sort_key(row: dict[str, str]) -> tuple[int, float]:
    offset = _number(row.get("offset", ""))
    return (1, 0.0) if offset is None else (0, offset)


def parse_ehr(row: dict[str, str], warnings: list[str]) -> dict[str, float | str | None]:
    ehr: dict[str, float | str | None] = {}
    for name, low, high, _unit in NUMERIC_FIELDS:
        raw = (row.get(name) or "").strip()
        value = _number(raw) if raw else None
        if raw and value is None:
            warnings.append(f"{name}: '{raw}' is not a number; treated as missing")
        elif value is not None and not (low <= value <= high):
            warnings.append(f"{name}: {value:g} is outside {low:g}–{high:g}; treated as missing")
            value = None
        ehr[name] = value
    for name, categories in CATEGORICAL_FIELDS.items():
        raw = (row.get(name) or "").strip()
        if not raw:
            ehr[name] = None
        elif raw in categories:
            ehr[name] = raw
        else:
            warnings.append(f"{name}: unknown category '{raw}'")
            ehr[name] = "unknown"
    return ehr


def read_cohort(path: Path) -> list[Patient]:
    """Patients in file order; images ordered by offset (unknown offsets last)."""
    rows = [r for r in read_rows(path) if (r.get("patientid") or "").strip()]
    by_patient: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_patient.setdefault(row["patientid"].strip(), []).append(row)
    return [_patient(pid, prow) for pid, prow in by_patient.items()]


def _open_table(path: Path):  # noqa: ANN202 - an open text handle
    try:
        return open(path, newline="", encoding="utf-8-sig", errors="replace")
    except OSError as err:
        raise EHRDataError(f"Cannot read the cohort table {path}: {err.strerror}.") from err


def _check_columns(path: Path, fieldnames: list[str] | None) -> None:
    if not fieldnames or "patientid" not in fieldnames:
        raise EHRDataError(f"The cohort table {path} has no 'patientid' column (or no rows).")
    if "filename" not in fieldnames:
        raise EHRDataError(f"The cohort table {path} has no 'filename' column.")


def _patient(pid: str, prow: list[dict[str, str]]) -> Patient:
    prow = sorted(prow, key=_sort_key)
    warnings: list[str] = []
    ehr = parse_ehr(prow[0], warnings)
    images = [ImageRecord(r["filename"].strip(), _number(r.get("offset", ""))) for r in prow
              if (r.get("filename") or "").strip()]
    return Patient(pid, ehr, images, warnings)


def stream_patients(path: Path) -> tuple[int, Iterator[Patient]]:
    """(number of patients, patients in order of their first row) without holding the table in memory.

    A first pass records only each patient's last row number; the second pass keeps a patient's rows
    until that row has been read, then yields the patient and drops them. Memory is the rows in flight
    (one patient for a table grouped by patient), whatever the table's length.
    """
    last_row: dict[str, int] = {}
    try:
        with _open_table(path) as handle:
            reader = csv.DictReader(handle)
            _check_columns(path, list(reader.fieldnames or []))
            for i, row in enumerate(reader):
                pid = (row.get("patientid") or "").strip()
                if pid:
                    last_row[pid] = i
    except csv.Error as err:
        raise EHRDataError(f"The cohort table {path} is not a valid CSV file ({err}).") from err
    if not last_row:
        raise EHRDataError(f"The cohort table {path} has no patient rows.")

    def generate() -> Iterator[Patient]:
        in_flight: dict[str, list[dict[str, str]]] = {}
        try:
            with _open_table(path) as handle:
                for i, row in enumerate(csv.DictReader(handle)):
                    pid = (row.get("patientid") or "").strip()
                    if not pid:
                        continue
                    in_flight.setdefault(pid, []).append(row)
                    if last_row.get(pid) == i:
                        yield _patient(pid, in_flight.pop(pid))
        except csv.Error as err:
            raise EHRDataError(f"The cohort table {path} is not a valid CSV file ({err}).") from err

    return len(last_row), generate()


def _yes_no(value: str | None, positive: str) -> float:
    """'Y'/'N' (any case) → 1/0 relative to ``positive``; anything else ('yes', '1', '?') is unknown."""
    value = (value or "").strip().upper()
    if value not in ("Y", "N"):
        return math.nan
    return 1.0 if value == positive else 0.0


def patient_labels(path: Path) -> dict[str, list[float]]:
    """Training only: patient → [went_icu, intubated, death, needed_supplemental_O2] (1/0/NaN).

    A patient is positive if any row is positive, negative if all known rows are negative.
    """
    out: dict[str, list[list[float]]] = {}
    for row in read_rows(path):
        pid = (row.get("patientid") or "").strip()
        values = [
            _yes_no(row.get("went_icu"), "Y"),
            _yes_no(row.get("intubated"), "Y"),
            _yes_no(row.get("survival"), "N"),  # death = survival N
            _yes_no(row.get("needed_supplemental_O2"), "Y"),
        ]
        out.setdefault(pid, []).append(values)
    labels = {}
    for pid, rows in out.items():
        merged = []
        for k in range(len(OUTCOMES)):
            known = [r[k] for r in rows if not math.isnan(r[k])]
            merged.append(math.nan if not known else (1.0 if max(known) == 1.0 else 0.0))
        labels[pid] = merged
    return labels


def read_severity(path: Path) -> dict[str, tuple[float, float]]:
    """``severity_scores.csv`` → filename → (geographic extent 0–8, opacity 0–6)."""
    scores: dict[str, tuple[float, float]] = {}
    if not path.is_file():
        return scores
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            g, o = _number(row.get("geographic_mean", "")), _number(row.get("opacity_mean", ""))
            if row.get("filename") and g is not None and o is not None:
                scores[row["filename"].strip()] = (g, o)
    return scores
