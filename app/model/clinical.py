"""Qt-free clinical case model: patient, image series by day, EHR (with what-if edits), prediction state.

Kept apart from :class:`app.model.document.Document` (which holds the image on screen) so that panels,
the controller and tests share one source of truth without Qt. Every change emits a psygnal signal.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from psygnal import Signal

from inference.clinical.base_rates import BaseRate
from inference.clinical.ranges import EHR_RANGES, RangeCheck, check_value
from inference.clinical.terms import OUTCOME_LABELS
from inference.clinical.wording import outcome_words
from inference.errors import EHRDataError

OUTCOMES: dict[str, str] = OUTCOME_LABELS  # the one name table (inference.clinical.terms)
# where the predictor's lung mask of an image came from (shown beside its label)
MASK_SOURCES: dict[str, str] = {
    "supplied": "supplied with the case",
    "automatic": "made automatically",
    "model": "segmented in the viewer",
    "edited": "edited by hand",
}
# Outcome columns of the cohort table and their proxies: never kept when a case is read.
OUTCOME_COLUMNS = frozenset({"went_icu", "intubated", "survival", "needed_supplemental_O2", "in_icu",
                             "intubation_present", "extubated", "clinical_notes", "other_notes", "death"})


@dataclass(frozen=True)
class EHRField:
    """One clinical variable: display label, unit and adult reference range (None: no range)."""

    name: str
    label: str
    unit: str = ""
    normal: tuple[float, float] | None = None
    numeric: bool = True


# labels, units and ranges come from the Qt-free table in inference.clinical (critical/implausible too)
EHR_FIELDS: tuple[EHRField, ...] = tuple(EHRField(r.name, r.label, r.unit, r.normal, r.numeric) for r in EHR_RANGES)
FIELDS_BY_NAME = {f.name: f for f in EHR_FIELDS}


@dataclass(frozen=True)
class EHRValue:
    """A value at presentation; ``edited`` marks a user's what-if change (``original`` keeps the record)."""

    field: EHRField
    value: float | str | None
    original: float | str | None
    edited: bool = False

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def flag(self) -> str:
        """'high', 'low' or '' (normal, missing or no reference range)."""
        if self.missing or not self.field.numeric or self.field.normal is None:
            return ""
        lo, hi = self.field.normal
        v = float(self.value)  # type: ignore[arg-type]
        return "high" if v > hi else "low" if v < lo else ""

    @property
    def check(self) -> RangeCheck:
        """Reference / critical / implausible classification (:mod:`inference.clinical.ranges`)."""
        return check_value(self.field.name, self.value)

    def text(self) -> str:
        if self.missing:
            return "missing"
        if isinstance(self.value, float):
            return f"{self.value:g}"
        return str(self.value)


@dataclass(frozen=True)
class CaseImage:
    """One radiograph of the series; ``offset`` = days since presentation."""

    filename: str
    path: Path
    offset: float
    view: str = ""
    mask_path: Path | None = None


@dataclass
class ClinicalCase:
    """A patient folder: ``metadata.csv`` + ``images/`` (+ optional ``lung_masks/`` and ``LICENSE.md``)."""

    folder: Path
    patient_id: str
    images: list[CaseImage]
    presentation: dict[str, float | str | None]
    visits: dict[float, dict[str, float | None]]  # offset -> numeric lab values recorded that day
    finding: str = ""
    attribution: str = ""
    rows: list[dict[str, str]] = field(default_factory=list, repr=False)  # outcome columns left out
    cohort: bool = False  # one patient of a cohort folder (reopened by patient id)


def _parse(text: str | None, numeric: bool) -> float | str | None:
    text = (text or "").strip()
    if not text:
        return None
    if not numeric:
        return text
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _plain_name(name: str) -> bool:
    """A file or folder name that stays inside the case folder (no separators, no '..')."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\x00")


def is_case_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding ``metadata.csv`` and ``images/`` (opened as a case)."""
    return path.is_dir() and (path / "metadata.csv").is_file() and (path / "images").is_dir()


def _read_rows(table: Path, patient_id: str | None) -> list[dict[str, str]]:
    """Rows of ``metadata.csv`` (only ``patient_id``'s when given), outcome columns dropped while reading."""
    try:
        with open(table, newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"filename", "offset"} <= {f.strip() for f in reader.fieldnames}:
                raise EHRDataError("metadata.csv needs at least the columns filename and offset, and one row.")
            rows = []
            for row in reader:
                if patient_id is not None and (row.get("patientid") or "").strip() != patient_id:
                    continue
                rows.append({k.strip(): v for k, v in row.items()
                             if isinstance(k, str) and k.strip() not in OUTCOME_COLUMNS and isinstance(v, str)})
    except csv.Error as err:
        raise EHRDataError(f"metadata.csv is not a valid CSV table ({err}).") from err
    except OSError as err:
        raise EHRDataError(f"metadata.csv cannot be read ({err.strerror or 'I/O error'}).") from err
    return rows


def load_case(folder: Path, patient_id: str | None = None) -> ClinicalCase:
    """Read a case folder (or one patient of a cohort folder: ``patient_id``); outcome columns are never
    kept. Raises :class:`EHRDataError` on bad input."""
    folder = Path(folder)
    if not is_case_folder(folder):
        raise EHRDataError(f"'{folder}' is not a case folder (it needs metadata.csv and an images/ folder).")
    rows = _read_rows(folder / "metadata.csv", patient_id)
    if not rows and patient_id is not None:
        raise EHRDataError(f"metadata.csv has no rows for patient {patient_id}.")
    if not rows or "filename" not in rows[0] or "offset" not in rows[0]:
        raise EHRDataError("metadata.csv needs at least the columns filename and offset, and one row.")
    patients = {r.get("patientid", "") for r in rows}
    if len(patients) > 1:
        raise EHRDataError("metadata.csv holds several patients; a case folder holds one patient.")
    images: list[CaseImage] = []
    visits: dict[float, dict[str, float | None]] = {}
    for row in rows:
        if not _plain_name(row["filename"]):
            raise EHRDataError("metadata.csv names an image by a path; file names must lie in images/.")
        sub = row.get("folder") or "images"
        path = folder / (sub if _plain_name(sub) else "images") / row["filename"]
        if not path.is_file():
            path = folder / "images" / row["filename"]
        offset = _parse(row.get("offset"), True)
        offset = float(offset) if offset is not None else 0.0
        mask = folder / "lung_masks" / (Path(row["filename"]).stem + ".png")
        images.append(CaseImage(row["filename"], path, offset, row.get("view", ""), mask if mask.is_file() else None))
        day = visits.setdefault(offset, {})
        for f in EHR_FIELDS[2:]:
            v = _parse(row.get(f.name), True)
            if v is not None:
                day[f.name] = v  # type: ignore[assignment]
    images.sort(key=lambda im: (im.offset, im.filename))
    first = min(visits) if visits else 0.0
    presentation: dict[str, float | str | None] = {}
    for f in EHR_FIELDS:
        values = [_parse(r.get(f.name), f.numeric) for r in rows if _parse(r.get("offset"), True) in (first, None)]
        presentation[f.name] = next((v for v in values if v is not None), None)
    license_file = folder / "LICENSE.md"
    attribution = license_file.read_text(encoding="utf-8") if license_file.is_file() else ""
    return ClinicalCase(
        folder, patients.pop(), images, presentation, visits,
        finding=rows[0].get("finding", ""), attribution=attribution, rows=rows, cohort=patient_id is not None,
    )


@dataclass(frozen=True)
class OutcomeResult:
    """Calibrated probability of 'yes' and the conformal set ({0}, {1}, {0,1} or empty) at ``alpha``."""

    name: str
    probability: float
    prediction_set: frozenset[int]
    sets: dict[float, frozenset[int]] = field(default_factory=dict)  # alpha (0.2/0.1/0.05) → set

    @property
    def uncertain(self) -> bool:
        return len(self.prediction_set) == 2

    def words(self, alpha: float, base_rate: BaseRate | None = None) -> str:
        """Plain words, e.g. 'ICU admission: the model cannot decide at 90 % confidence'."""
        return outcome_words(self.name, self.probability, self.prediction_set, alpha, base_rate).line()


@dataclass
class PredictionState:
    """The latest prediction shown to the user; ``stale`` with reasons once inputs changed after it."""

    outcomes: dict[str, OutcomeResult]
    alpha: float
    tent: bool = False
    severity: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # image -> (value, lo, hi)
    gate: float | None = None  # share of the decision driven by the image (0..1); 1 - gate = EHR
    time_weights: dict[str, float] = field(default_factory=dict)  # image filename -> weight
    used_images: list[str] = field(default_factory=list)
    model_version: str = ""
    without_tent: dict[str, OutcomeResult] | None = None
    stale: bool = False
    stale_reasons: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """{outcome: probability} for the audit log (before/after)."""
        return {k: round(v.probability, 4) for k, v in self.outcomes.items()}


@dataclass
class ExplanationResult:
    """Attributions for one outcome: image heat-maps in [0,1] by filename, signed EHR attributions."""

    method: str
    outcome: str
    heatmaps: dict[str, np.ndarray]
    ehr: list[tuple[str, float]]
    time_weights: dict[str, float] = field(default_factory=dict)
    gate: float | None = None
    stale: bool = False
    signed_heatmaps: dict[str, np.ndarray] = field(default_factory=dict)  # [-1, 1], + = towards the outcome
    lungs: dict[str, np.ndarray] = field(default_factory=dict)  # bool lung mask each map is restricted to
    mask_sources: dict[str, str] = field(default_factory=dict)  # "supplied" | "auto" per filename


class ClinicalModel:
    """The open case and everything derived from it. Panels read it; only the controller writes it."""

    case_changed = Signal(object)  # ClinicalCase | None
    ehr_changed = Signal()
    prediction_changed = Signal(object)  # PredictionState | None
    stale_changed = Signal(bool)
    explanation_changed = Signal(object)  # ExplanationResult | None
    image_selected = Signal(object)  # CaseImage | None
    masks_changed = Signal(str)  # filename

    def __init__(self) -> None:
        self.case: ClinicalCase | None = None
        self.ehr: dict[str, EHRValue] = {}
        self.ai_masks: dict[str, np.ndarray] = {}
        self.masks: dict[str, np.ndarray] = {}
        self.mask_sources: dict[str, str] = {}  # filename -> a key of MASK_SOURCES
        self.mask_origins: dict[str, str] = {}  # filename -> "AI" | "MANUAL" | "AI_CORRECTED" (DICOM SEG terms)
        self.prediction: PredictionState | None = None
        self.explanation: ExplanationResult | None = None
        self.selected: CaseImage | None = None
        self.base_rates: dict[str, BaseRate] = {}  # training-cohort prevalence per outcome; {} = unknown

    # ---- case --------------------------------------------------------------------------------
    def set_case(self, case: ClinicalCase | None) -> None:
        self.case = case
        self.ehr = {
            f.name: EHRValue(f, case.presentation.get(f.name), case.presentation.get(f.name)) for f in EHR_FIELDS
        } if case else {}
        self.ai_masks.clear()
        self.masks.clear()
        self.mask_sources.clear()
        self.mask_origins.clear()
        self.prediction = None
        self.explanation = None
        self.selected = case.images[0] if case and case.images else None
        self.case_changed.emit(case)
        self.ehr_changed.emit()
        self.prediction_changed.emit(None)
        self.explanation_changed.emit(None)
        self.image_selected.emit(self.selected)

    def select_image(self, filename: str) -> CaseImage:
        if self.case is None:
            raise EHRDataError("No case is open.")
        image = next((im for im in self.case.images if im.filename == filename), None)
        if image is None:
            raise EHRDataError(f"The case has no image named '{filename}'.")
        self.selected = image
        self.image_selected.emit(image)
        return image

    # ---- EHR ---------------------------------------------------------------------------------
    def ehr_change(self, name: str, value: float | str | None) -> tuple[EHRValue, EHRValue]:
        """(old, new) a what-if change would make, without making it (the controller logs it first)."""
        old = self.ehr[name]
        if isinstance(value, str) and old.field.numeric:
            value = _parse(value, True)
        return old, replace(old, value=value, edited=value != old.original)

    def edit_ehr(self, name: str, value: float | str | None) -> tuple[object, object]:
        """What-if change; returns (old, new). Setting the original value back clears the edit mark."""
        old, new = self.ehr_change(name, value)
        self.ehr[name] = new
        self.ehr_changed.emit()
        self.mark_stale(f"{old.field.label} changed")
        return old.value, new.value

    def ehr_inputs(self) -> dict[str, float | str | None]:
        """Values the model gets (None = missing, passed as missing, never imputed)."""
        return {k: v.value for k, v in self.ehr.items()}

    # ---- masks -------------------------------------------------------------------------------
    def set_mask(self, filename: str, mask: np.ndarray, *, ai: bool, source: str = "") -> None:
        """The lung mask the predictor uses for ``filename``. ``ai``: a mask not drawn by a human here
        (supplied with the case, made automatically, segmented by the model); ``source`` says which
        (:data:`MASK_SOURCES`; default "model" for ``ai``, "edited" otherwise)."""
        mask = (np.asarray(mask) > 0).astype(np.uint8)
        source = source or ("model" if ai else "edited")
        if ai:
            self.ai_masks[filename] = mask
            self.mask_origins[filename] = "MANUAL" if source == "supplied" else "AI"
        else:
            previous = self.mask_origins.get(filename, "MANUAL")
            self.mask_origins[filename] = "MANUAL" if previous == "MANUAL" else "AI_CORRECTED"
        self.mask_sources[filename] = source
        changed = filename in self.masks
        self.masks[filename] = mask
        self.masks_changed.emit(filename)
        if changed or not ai:
            self.mark_stale(f"mask of {filename} changed")

    def current_mask(self, filename: str) -> np.ndarray | None:
        """The mask the predictor uses for ``filename`` now (uint8 0/1), ``None`` when it has none yet."""
        return self.masks.get(filename)

    def predictor_masks(self) -> dict[str, np.ndarray]:
        """The masks handed to the predictor as supplied. An unedited automatic mask is left out: the
        predictor then makes the same automatic mask itself and uses its heads trained on automatic masks
        (a supplied mask selects the heads trained on hand-drawn ones)."""
        return {name: mask for name, mask in self.masks.items() if self.mask_sources.get(name) != "automatic"}

    # ---- prediction / explanation ------------------------------------------------------------
    def set_prediction(self, state: PredictionState | None) -> None:
        self.prediction = state
        self.prediction_changed.emit(state)
        self.stale_changed.emit(False)

    def mark_stale(self, reason: str) -> None:
        if self.prediction is None:
            return
        self.prediction.stale = True
        if reason not in self.prediction.stale_reasons:
            self.prediction.stale_reasons.append(reason)
        if self.explanation is not None:
            self.explanation.stale = True
        self.stale_changed.emit(True)

    def set_explanation(self, result: ExplanationResult | None) -> None:
        self.explanation = result
        self.explanation_changed.emit(result)
