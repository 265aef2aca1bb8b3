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
from inference.export import report as rp
from inference.export.labels import SegmentLabel
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


def model_card_summary(path: Path = MODEL_CARD, name: str = "MedFusion-Mamba outcome predictor",
                       version: str = "") -> rp.ModelSummary | None:
    """First paragraph of "What it is" and the "Intended use" bullets of the model card, as plain text."""
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

    what = section("What it is").split("\n\n")[0]
    use = " ".join(plain(line.lstrip("- ")) for line in section("Intended use").splitlines() if line.strip())
    return rp.ModelSummary(name=name, version=version or "unknown", card_summary=plain(what), intended_use=use)


def _measurements(labelmap: np.ndarray, labels: list[SegmentLabel], volume: Volume,
                  z: int) -> list[rp.StructureMeasurement]:
    """Volume (3-D) and area on the key slice ``z`` (2-D: the image) per label present in the mask."""
    sx, sy, sz = (float(s) for s in volume.spacing)
    counts = label_counts(labelmap)
    on_slice = np.bincount(labelmap[z].ravel(), minlength=256)
    rows = []
    for lab in labels:
        n = int(counts[lab.value]) if 0 < lab.value < 256 else 0
        if n == 0:
            continue
        if volume.is_2d:
            rows.append(rp.StructureMeasurement(lab.name, None, n * sx * sy, lab.algorithm_type))
        else:
            area = float(on_slice[lab.value]) * sx * sy
            rows.append(rp.StructureMeasurement(lab.name, n * sx * sy * sz / 1000.0, area or None, lab.algorithm_type))
    return rows


def _prediction_rows(prediction: Any) -> list[rp.PredictionRow]:
    if prediction is None:
        return []
    rows = []
    for name, res in prediction.outcomes.items():
        labels = ["yes" if c == 1 else "no" for c in sorted(res.prediction_set, reverse=True)]
        rows.append(rp.PredictionRow(name, float(res.probability), labels, None, float(prediction.alpha)))
    for image, (value, low, high) in getattr(prediction, "severity", {}).items():
        rows.append(rp.PredictionRow(f"severity score ({image})", float(value), None, (float(low), float(high)),
                                     float(prediction.alpha)))
    return rows


def audit_summary(audit: Any) -> rp.AuditSummary | None:
    """Counts of AI and human changes, Dice of AI vs final mask per structure, chain verification."""
    if audit is None:
        return None
    entries = audit.entries()
    dices = {e["target"]: e["details"].get("dice_ai_vs_final") for e in entries if e["action"] == "mask_edit"}
    return rp.AuditSummary(
        ai_changes=sum(str(e["actor"]).startswith("AI:") for e in entries),
        human_changes=sum(str(e["actor"]).startswith("user:") for e in entries),
        dice_ai_vs_final={k: float(v) for k, v in dices.items() if v is not None},
        log_verified=audit.verify()[0])


def build_report(inputs: ReportInputs) -> rp.ReportContent:
    """The report content: key image (slice + masks + heat-map), measurements, predictions, model, audit."""
    vol = inputs.volume
    z = int(np.clip(inputs.slice_index, 0, vol.shape[0] - 1))
    model = inputs.clinical_model
    image = getattr(model, "selected", None) if model is not None else None
    mask2d = None
    colours: dict[int, tuple[int, int, int]] = {}
    if inputs.labelmap is not None and inputs.labelmap.shape == vol.shape and inputs.labelmap[z].any():
        mask2d = inputs.labelmap[z]
        colours = {lab.value: tuple(lab.colour) for lab in inputs.labels}  # type: ignore[misc]
    elif model is not None and image is not None and vol.is_2d:
        clinical_mask = model.masks.get(image.filename)
        if clinical_mask is not None and np.shape(clinical_mask) == vol.shape[1:]:
            mask2d = (np.asarray(clinical_mask) > 0).astype(np.uint8)
    heat = None
    explanation = getattr(model, "explanation", None) if model is not None else None
    if explanation is not None and image is not None and vol.is_2d:
        candidate = explanation.heatmaps.get(image.filename)
        if candidate is not None and np.shape(candidate) == vol.shape[1:]:
            heat = candidate
    parts = [f"slice {z + 1} of {vol.shape[0]} (areas are on this slice)" if not vol.is_2d else "image"]
    if image is not None and vol.is_2d:
        parts = [f"Day {image.offset:g}"]
    if mask2d is not None:
        parts.append("mask outlines")
    if heat is not None and explanation is not None:
        parts.append(f"explanation heat-map ({explanation.method}, {explanation.outcome})")
    key = rp.KeyImage(rp.render_overlay(vol.array[z], inputs.window, mask2d, heat, colours=colours or None),
                      ", ".join(parts))
    measurements = []
    if inputs.labelmap is not None and inputs.labelmap.shape == vol.shape:
        measurements = _measurements(inputs.labelmap, inputs.labels, vol, z)
    prediction = getattr(model, "prediction", None) if model is not None else None
    summary = None
    if prediction is not None:
        summary = model_card_summary(version=getattr(prediction, "model_version", ""))
    return rp.ReportContent(
        study=inputs.study, deidentified=inputs.deidentified, title=inputs.title, key_images=[key],
        measurements=measurements, predictions=_prediction_rows(prediction), model=summary,
        audit=audit_summary(inputs.audit), author=inputs.author, notes=inputs.notes)


def write_viewer_report(inputs: ReportInputs, path: Path) -> Path:
    """Build and write the PDF atomically (``.pdf`` added when missing)."""
    path = Path(path)
    if path.suffix.lower() != ".pdf":
        path = path.with_name(path.name + ".pdf")
    return rp.write_report(build_report(inputs), path)
