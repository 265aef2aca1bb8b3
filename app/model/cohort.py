"""A cohort folder (``metadata.csv`` with many patients + ``images/``) as a patient list, outcomes never read.

Why: the shared ``cxr/`` folder holds 233 patients in one table; a clinician picks one and reads it as a
case (:func:`app.model.clinical.load_case` with that patient). The list shows only what identifies a row
and describes the follow-up (id, sex, age, number of X-rays, day offsets, dates): outcome columns, their
proxies and free text (:data:`HIDDEN_COLUMNS`) are skipped while parsing, never kept in memory, so no
panel can show them by accident. ``finding`` (the diagnosis) is not a model input either
(``inference.fusion.cohort.FORBIDDEN_INPUTS``) and is not listed.

The table is untrusted: size and field limits, one clear sentence for a malformed file, and rows that
cannot be used (no patient id, a file name that is a path) are skipped with a counted warning.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from psygnal import Signal

from app.model.clinical import OUTCOME_COLUMNS, is_case_folder
from inference.errors import EHRDataError
from inference.fusion.cohort import FORBIDDEN_INPUTS
from inference.progress import CancelToken, ProgressCallback, no_progress

HIDDEN_COLUMNS = FORBIDDEN_INPUTS | OUTCOME_COLUMNS  # never listed; the reader does not even copy them
LISTED_COLUMNS = ("patientid", "offset", "sex", "age", "filename", "folder", "date", "view")
MAX_TABLE_BYTES = 256 * 1024 * 1024  # a cohort of a million X-rays stays well under this
MAX_ID_CHARS = 64


@dataclass
class PatientSummary:
    """One row of the patient list."""

    patient_id: str
    sex: str = ""
    age: float | None = None
    n_images: int = 0
    n_missing: int = 0  # listed images whose file is not in the folder
    offsets: tuple[float, float] | None = None  # first and last day offset
    dates: tuple[str, str] | None = None  # first and last ISO date, when the table has dates

    @property
    def span_text(self) -> str:
        if self.offsets is None:
            return ""
        first, last = self.offsets
        return f"day {first:g}" if first == last else f"day {first:g} – {last:g}"

    @property
    def dates_text(self) -> str:
        if self.dates is None:
            return ""
        first, last = self.dates
        return first if first == last else f"{first} → {last}"


@dataclass
class Cohort:
    folder: Path
    patients: list[PatientSummary]
    n_rows: int = 0
    warnings: list[str] = field(default_factory=list)

    def patient(self, patient_id: str) -> PatientSummary | None:
        return next((p for p in self.patients if p.patient_id == patient_id), None)


def _clean(text: str, limit: int = MAX_ID_CHARS) -> str | None:
    """A short printable identifier, or None (control characters or too long: not a usable id)."""
    text = text.strip()
    if not text or len(text) > limit or any(unicodedata.category(c).startswith("C") for c in text):
        return None
    return text


def _number(text: str, low: float = -math.inf, high: float = math.inf) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and low <= value <= high else None


def _iso_date(text: str) -> str | None:
    """'January 22, 2020' / '2020-01-22' / '2/29/2020' (US order first) → '2020-01-22'; 'March 2003' →
    '2003-03'; '2004' → '2004'; anything else (no year, free text) → None."""
    text = text.strip()
    for fmt, keep in (("%B %d, %Y", 10), ("%b %d, %Y", 10), ("%d %B %Y", 10), ("%Y-%m-%d", 10), ("%Y%m%d", 10),
                      ("%m/%d/%Y", 10), ("%m/%d/%y", 10), ("%d/%m/%Y", 10), ("%B %Y", 7), ("%Y", 4)):
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.date().isoformat()[:keep]
    return None


def safe_file_name(name: str) -> bool:
    """A plain file name inside ``images/`` (a path, '..' or control characters never leave the folder)."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\x00") \
        and not any(unicodedata.category(c) == "Cc" for c in name)


def _open_table(path: Path) -> tuple[BinaryIO, io.TextIOWrapper]:
    """The raw file (its position is the progress) and its text, decoded leniently (ids and numbers only)."""
    try:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise EHRDataError(f"'{path.name}' is too large to list ({size / 2**20:.0f} MB; the limit is "
                               f"{MAX_TABLE_BYTES / 2**20:.0f} MB).")
        raw = open(path, "rb")  # noqa: SIM115 - closed with the text wrapper by the caller
    except OSError as err:
        raise EHRDataError(f"'{path.name}' cannot be read ({err.strerror or 'I/O error'}).") from err
    return raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def _header(reader: Iterator[list[str]], name: str) -> dict[str, int]:
    try:
        header = next(reader)
    except StopIteration:
        raise EHRDataError(f"'{name}' is empty.") from None
    columns = [c.strip() for c in header]
    index: dict[str, int] = {}
    for i, column in enumerate(columns):
        if column in LISTED_COLUMNS:
            if column in index:
                raise EHRDataError(f"'{name}' has the column '{column}' twice.")
            index[column] = i
    missing = [c for c in ("patientid", "filename") if c not in index]
    if missing:
        raise EHRDataError(f"'{name}' is not a cohort table: it has no {' or '.join(missing)} column.")
    return index


def read_cohort_index(
    folder: Path, *, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
) -> Cohort:
    """The patients of a cohort folder's ``metadata.csv`` (listed columns only), in first-appearance order."""
    folder = Path(folder)
    if not is_case_folder(folder):
        raise EHRDataError(f"'{folder.name}' is not a cohort folder (it needs metadata.csv and an images/ folder).")
    table = folder / "metadata.csv"
    size = max(table.stat().st_size, 1)
    patients: dict[str, PatientSummary] = {}
    skipped = {"no patient id": 0, "file name that is a path": 0, "wrong number of columns": 0}
    offsets: dict[str, list[float]] = {}
    dates: dict[str, list[str]] = {}
    n_rows = 0
    raw, text = _open_table(table)
    with text:
        reader = csv.reader(text, strict=True)  # a stray quote is an error, not a silently merged row
        try:
            index = _header(reader, table.name)
            for row in reader:
                n_rows += 1
                if n_rows % 2000 == 0:
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    progress(min(raw.tell() / size, 1.0), f"Reading {table.name}: {n_rows} rows")
                if not any(cell.strip() for cell in row):
                    n_rows -= 1
                    continue
                if len(row) <= max(index.values()):
                    skipped["wrong number of columns"] += 1
                    continue
                cell = {name: row[i] for name, i in index.items()}  # hidden columns are never copied
                pid = _clean(cell["patientid"])
                if pid is None:
                    skipped["no patient id"] += 1
                    continue
                name = cell["filename"].strip()
                if not safe_file_name(name):
                    skipped["file name that is a path"] += 1
                    continue
                summary = patients.setdefault(pid, PatientSummary(pid))
                summary.n_images += 1
                sub = cell.get("folder", "").strip()
                image = folder / (sub if sub and safe_file_name(sub) else "images") / name
                if not image.is_file() and not (folder / "images" / name).is_file():
                    summary.n_missing += 1
                summary.sex = summary.sex or (_clean(cell.get("sex", ""), 8) or "")
                if summary.age is None:
                    summary.age = _number(cell.get("age", ""), 0.0, 130.0)
                offset = _number(cell.get("offset", ""), -36500.0, 36500.0)
                if offset is not None:
                    offsets.setdefault(pid, []).append(offset)
                date = _iso_date(cell.get("date", ""))
                if date is not None:
                    dates.setdefault(pid, []).append(date)
        except csv.Error as err:
            raise EHRDataError(f"'{table.name}' is not a valid CSV table (line {reader.line_num}: {err}).") from err
    for pid, summary in patients.items():
        if pid in offsets:
            summary.offsets = (min(offsets[pid]), max(offsets[pid]))
        if pid in dates:
            summary.dates = (min(dates[pid]), max(dates[pid]))
    if not patients:
        raise EHRDataError(f"'{table.name}' lists no usable patient rows.")
    warnings = [f"{n} row(s) skipped: {why}" for why, n in skipped.items() if n]
    missing = sum(p.n_missing for p in patients.values())
    if missing:
        warnings.append(f"{missing} listed image(s) are not in the folder")
    progress(1.0, f"{len(patients)} patients")
    return Cohort(folder, list(patients.values()), n_rows, warnings)


def is_cohort_folder(path: Path) -> bool:
    """A case folder whose ``metadata.csv`` lists more than one patient (read until the second one).

    A table that cannot be parsed counts as a cohort, so the cohort reader reports what is wrong with it.
    """
    if not is_case_folder(path):
        return False
    table = path / "metadata.csv"
    try:
        if table.stat().st_size > MAX_TABLE_BYTES:
            return True
        with open(table, newline="", encoding="utf-8-sig", errors="replace") as handle:
            reader = csv.reader(handle, strict=True)
            header = [c.strip() for c in next(reader, [])]
            if "patientid" not in header:
                return False
            column = header.index("patientid")
            first: str | None = None
            for row in reader:
                if len(row) <= column or not row[column].strip():
                    continue
                pid = row[column].strip()
                if first is None:
                    first = pid
                elif pid != first:
                    return True
    except csv.Error:
        return True
    except OSError:
        return False
    return False


class CohortModel:
    """The open cohort (Qt-free); the patient list shows it, the cohort controller fills it."""

    cohort_changed = Signal(object)  # Cohort | None
    patient_opened = Signal(str)  # patient id now open as the case

    def __init__(self) -> None:
        self.cohort: Cohort | None = None
        self.open_patient: str | None = None

    def set_cohort(self, cohort: Cohort | None) -> None:
        self.cohort = cohort
        self.open_patient = None
        self.cohort_changed.emit(cohort)

    def set_open_patient(self, patient_id: str) -> None:
        self.open_patient = patient_id
        self.patient_opened.emit(patient_id)
