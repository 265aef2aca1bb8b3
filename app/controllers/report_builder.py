"""Qt-free assembly of the PDF report content from what the viewer holds.

Why a separate builder: the one-click report in the viewer (File > Export PDF report) and the headless
demo (``cli/demo.py``) must show the same sections computed the same way; neither may need a widget.
The caller passes plain values (volume, slice, window, label map, the clinical model and audit log);
sections without data are left out by :func:`inference.export.report.write_report`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.model.label_stats import label_counts
from inference.clinical.attribution_colours import greying_note
from inference.clinical.formatting import field_value, format_percent, recorded_text
from inference.clinical.ranges import check_value
from inference.clinical.terms import actor_label, field_label, method_label, outcome_label
from inference.clinical.wording import mid_sentence, outcome_words
from inference.export import report as rp
from inference.export.labels import SegmentLabel
from inference.export.report_sections import ReportSection
from inference.io.volume import StudyInfo, Volume

MODEL_CARD = Path(__file__).resolve().parents[2] / "docs" / "model_card.md"


@dataclass
class ReportInputs:
    """Everything the report may show; ``clinical_model``/``audit`` are optional (duck-typed)."""

    volume: Volume
    study: StudyInfo
    deidentified: bool = False
    slice_index: int = 0
    window: tuple[float, float] | None = None  # (centre, width); None: percentiles
    labelmap: np.ndarray | None = None  # uint8 [z, y, x]
    labels: list[SegmentLabel] = field(default_factory=list)
    clinical_model: Any = None  # app.model.clinical.ClinicalModel
    audit: Any = None  # inference.audit.log.AuditLog
    title: str = "MedFusion Viewer report"
    author: str = ""
    notes: str = ""
    sections: list[ReportSection] = field(default_factory=list)  # features' tables (AppContext.report_sections)


def model_card_summary(path: Path = MODEL_CARD, name: str = "Outcome predictor",
                       version: str = "") -> rp.ModelSummary | None:
    """The card's title, first paragraph of "What it is" and the "Intended use" bullets, as plain text.

    A first paragraph that introduces a table or list ends on a colon; the report does not show the
    table, so the sentence is closed with a full stop instead of dangling.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None

    def section(title: str) -> str:
        match = re.search(rf"^## {title}\s*\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
        return match.group(1).strip() if match else ""

    def plain(md: str) -> str:
        md = re.sub(r"[`*]", "", md)
        return re.sub(r"\s+", " ", md).strip()

    title = re.search(r"^# (?:Model card:\s*)?(.+)$", text, flags=re.M)
    if title:  # "outcome predictor (`resources/models/fusion/`, `medfusion-cxr-v2`)" → without path and id
        name = plain(re.sub(r"\s*\((?:`[^`]*`(?:,\s*)?)+\)\s*$", "", title.group(1))) or name
        name = name[:1].upper() + name[1:]
    what = plain(section("What it is").split("\n\n")[0])
    if what.endswith(":"):
        what = what[:-1].rstrip() + "."
    use = " ".join(plain(line.lstrip("- ")) for line in section("Intended use").splitlines() if line.strip())
    return rp.ModelSummary(name=name, version=version or "unknown", card_summary=what, intended_use=use)


def _measurements(labelmap: np.ndarray, labels: list[SegmentLabel], volume: Volume,
                  z: int) -> list[rp.StructureMeasurement]:
    """Volume (3-D) and area on the key slice ``z`` (2-D: the image) per label present in the mask;
    in pixels / voxels when the file has no pixel spacing (a JPEG or PNG X-ray)."""
    sx, sy, sz = (float(s) for s in volume.spacing)
    calibrated = bool(volume.meta.get("spacing_known", True))
    counts = label_counts(labelmap)
    on_slice = np.bincount(labelmap[z].ravel(), minlength=256)
    rows = []
    for lab in labels:
        n = int(counts[lab.value]) if 0 < lab.value < 256 else 0
        if n == 0:
            continue
        m = rp.StructureMeasurement(lab.name, source=lab.algorithm_type)
        pixels = n if volume.is_2d else int(on_slice[lab.value])
        if calibrated:
            m.area_mm2 = pixels * sx * sy or None
        else:
            m.area_pixels = pixels or None
        if not volume.is_2d:
            if calibrated:
                m.volume_ml = n * sx * sy * sz / 1000.0
            else:
                m.volume_voxels = n
        rows.append(m)
    return rows


def _image_days(model: Any, with_names: bool = True) -> dict[str, str]:
    """X-ray file → 'day 0 X-ray 2 of 2 (name.jpg)': the day, which one when a day has several, the file."""
    images = list(getattr(getattr(model, "case", None), "images", []))
    out = {}
    for im in images:
        same_day = [other.filename for other in images if other.offset == im.offset]
        text = f"day {im.offset:g} X-ray"
        if len(same_day) > 1:
            text += f" {same_day.index(im.filename) + 1} of {len(same_day)}"
        out[im.filename] = text + (f" ({im.filename})" if with_names else "")
    return out


def _prediction_rows(prediction: Any, base_rates: dict[str, Any], days: dict[str, str]) -> list[rp.PredictionRow]:
    """Outcomes under their clinical names, with the plain-word answer and the cohort base rate."""
    if prediction is None:
        return []
    rows = []
    for name, res in prediction.outcomes.items():
        labels = ["yes" if c == 1 else "no" for c in sorted(res.prediction_set, reverse=True)]
        rate = base_rates.get(name)
        words = outcome_words(name, float(res.probability), res.prediction_set, float(prediction.alpha), rate)
        rows.append(rp.PredictionRow(
            outcome_label(name), float(res.probability), labels, None, float(prediction.alpha),
            answer=words.answer[:1].upper() + words.answer[1:],
            base_rate=format_percent(rate.rate) if rate is not None else "unknown", note=words.note))
    for image, (value, low, high) in getattr(prediction, "severity", {}).items():
        when = days.get(image, image)
        rows.append(rp.PredictionRow(
            when[:1].upper() + when[1:], float(value), None, (float(low), float(high)), float(prediction.alpha),
            value_text=f"{float(value):.1f} of 8", answer=f"between {float(low):.1f} and {float(high):.1f}",
            group="Lung involvement score per X-ray (geographic extent, 0\u20138)"))
    return rows


def _edit_authors(audit: Any) -> dict[str, str]:
    """Field → who made its latest what-if edit (from the audit log)."""
    if audit is None:
        return {}
    try:
        entries = audit.entries()
    except Exception:  # noqa: BLE001 - an unreadable log must not stop the report
        return {}
    return {str(e.get("target")): actor_label(str(e.get("actor", ""))) for e in entries if e.get("action") == "ehr_edit"}


def clinical_rows(model: Any, audit: Any) -> tuple[list[rp.ClinicalValueRow], list[str]]:
    """The EHR values the model was given (flags from the shared ranges) and one line per what-if edit."""
    ehr = getattr(model, "ehr", None) or {}
    authors = _edit_authors(audit)
    rows, edits = [], []
    for name, v in ehr.items():
        f = v.field
        check = check_value(name, v.value)
        flag = check.short()
        if check.level in ("critical", "implausible"):
            flag = f"{flag}: {check.reason}"
        if v.edited:
            flag = f"{flag} \u00b7 what-if ({recorded_text(name, v.original)})".strip(" \u00b7")
            before = field_value(name, v.original, with_unit=False) if v.original is not None else "missing"
            who = authors.get(name, "the user")
            edits.append(f"{field_label(name)} edited {before} \u2192 {field_value(name, v.value)} by {who} (what-if)")
        reference = f"{f.normal[0]:g}\u2013{f.normal[1]:g} {f.unit}".strip() if f.normal else ""
        rows.append(rp.ClinicalValueRow(field_label(name), field_value(name, v.value), reference, flag, v.edited))
    return rows, edits


def audit_summary(audit: Any, days: dict[str, str] | None = None) -> rp.AuditSummary | None:
    """Counts of AI and human changes, Dice of AI vs final mask per structure, chain verification."""
    if audit is None:
        return None
    entries = audit.entries()
    days = days or {}

    def mask_name(target: str) -> str:  # an X-ray's lung mask is named by its day, as in the panels
        return f"Lung mask, {days[target]}" if target in days else target

    dices = {mask_name(e["target"]): e["details"].get("dice_ai_vs_final")
             for e in entries if e["action"] == "mask_edit"}
    return rp.AuditSummary(
        ai_changes=sum(str(e["actor"]).startswith("AI:") for e in entries),
        human_changes=sum(str(e["actor"]).startswith("user:") for e in entries),
        dice_ai_vs_final={k: float(v) for k, v in dices.items() if v is not None},
        log_verified=audit.verify()[0])


LUNG_OUTLINE = (242, 242, 191)  # the viewer's pale lung outline (app/widgets/heatmap_overlay.py)


def _signed_map(explanation: Any, filename: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The signed attribution of ``filename`` in [-1, 1], 0 outside its lung mask (when the mask is known)."""
    signed = getattr(explanation, "signed_heatmaps", {}).get(filename)
    if signed is None or np.shape(signed) != tuple(shape):
        return None
    lungs = getattr(explanation, "lungs", {}).get(filename)
    signed = np.clip(np.asarray(signed, np.float32), -1.0, 1.0)
    return signed * (np.asarray(lungs) > 0) if lungs is not None and np.shape(lungs) == tuple(shape) else signed


def build_report(inputs: ReportInputs) -> rp.ReportContent:
    """The report content: key image (slice + masks + heat-map), measurements, predictions, model, audit."""
    vol = inputs.volume
    z = int(np.clip(inputs.slice_index, 0, vol.shape[0] - 1))
    model = inputs.clinical_model
    image = getattr(model, "selected", None) if model is not None else None
    mask2d = None
    colours: dict[int, tuple[int, int, int]] = {}
    mask_alpha = 0.35
    if inputs.labelmap is not None and inputs.labelmap.shape == vol.shape and inputs.labelmap[z].any():
        mask2d = inputs.labelmap[z]
        colours = {lab.value: tuple(lab.colour) for lab in inputs.labels}  # type: ignore[misc]
    elif model is not None and image is not None and vol.is_2d:
        clinical_mask = model.masks.get(image.filename)
        if clinical_mask is not None and np.shape(clinical_mask) == vol.shape[1:]:
            mask2d = (np.asarray(clinical_mask) > 0).astype(np.uint8)
            colours = {1: LUNG_OUTLINE}  # outline only: a red fill would read as "towards" on the heat-map
            mask_alpha = 0.0
    heat, signed = None, None
    explanation = getattr(model, "explanation", None) if model is not None else None
    if explanation is not None and image is not None and vol.is_2d:
        signed = _signed_map(explanation, image.filename, vol.shape[1:])
        candidate = explanation.heatmaps.get(image.filename)
        if signed is None and candidate is not None and np.shape(candidate) == vol.shape[1:]:
            heat = candidate
    days = _image_days(model, with_names=not inputs.deidentified)
    parts = [f"slice {z + 1} of {vol.shape[0]} (areas are on this slice)" if not vol.is_2d else "image"]
    if image is not None and vol.is_2d:
        label = days.get(image.filename, f"day {image.offset:g} X-ray")
        parts = [label[:1].upper() + label[1:]]
    if mask2d is not None:
        parts.append("lung outline" if mask_alpha == 0.0 else "mask outlines")
    why_grey = ""
    if explanation is not None and image is not None:
        weights = getattr(explanation, "time_weights", {}) or {}
        why_grey = greying_note(getattr(explanation, "gate", None), weights.get(image.filename), len(weights))
    greyed = bool(why_grey)
    if (heat is not None or signed is not None) and explanation is not None:
        outcome = outcome_label(explanation.outcome)
        meaning = (f"; red: pushes towards {mid_sentence(outcome)}, blue: pushes away, inside the lungs"
                   if signed is not None else "")
        parts.append(f"explanation heat-map ({method_label(explanation.method)}, {outcome}{meaning})"
                     + (f" \u2014 {why_grey}" if signed is not None and greyed else "")
                     + (" \u2014 out of date: inputs changed after it was computed" if explanation.stale else ""))
    key = rp.KeyImage(rp.render_overlay(vol.array[z], inputs.window, mask2d, heat, colours=colours or None,
                                        mask_alpha=mask_alpha,
                                        signed_heatmap=signed, greyed=greyed),
                      ", ".join(parts))
    measurements = []
    if inputs.labelmap is not None and inputs.labelmap.shape == vol.shape:
        measurements = _measurements(inputs.labelmap, inputs.labels, vol, z)
    prediction = getattr(model, "prediction", None) if model is not None else None
    summary = None
    values: list[rp.ClinicalValueRow] = []
    what_if: list[str] = []
    if prediction is not None:
        summary = model_card_summary(version=getattr(prediction, "model_version", ""))
        values, what_if = clinical_rows(model, inputs.audit)
    rates = getattr(model, "base_rates", None) or {}
    stale = ""
    if prediction is not None and getattr(prediction, "stale", False):
        reasons = "; ".join(getattr(prediction, "stale_reasons", []))
        stale = f"Out of date: the inputs changed after this prediction ({reasons}); it was not re-run."
    return rp.ReportContent(
        study=inputs.study, deidentified=inputs.deidentified, title=inputs.title, key_images=[key],
        measurements=measurements, clinical_values=values, what_if=what_if, prediction_note=stale,
        predictions=_prediction_rows(prediction, rates, days), model=summary,
        audit=audit_summary(inputs.audit, days), author=inputs.author, notes=inputs.notes,
        sections=list(inputs.sections))


def write_viewer_report(inputs: ReportInputs, path: Path) -> Path:
    """Build and write the PDF atomically (``.pdf`` added when missing)."""
    path = Path(path)
    if path.suffix.lower() != ".pdf":
        path = path.with_name(path.name + ".pdf")
    return rp.write_report(build_report(inputs), path)
