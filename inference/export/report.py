"""One-click PDF report: header, key images with overlays, measurements, predictions, model, audit.

Why reportlab + numpy overlays: the core must not depend on Qt, so key images are composed here
(:func:`render_overlay`) or by the caller as RGB arrays, and the PDF is laid out with reportlab's
platypus. The font is the DejaVu Sans that matplotlib ships (SpO₂, ×10⁹/L, arrows and warning signs
render; no system font needed), falling back to reportlab's Vera with sub/superscript markup. Tables
have fixed column widths that add up to the text width and wrap their cells, so nothing runs off the
page. Every page carries the "Research use only — not for diagnostic use" notice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.platypus import SimpleDocTemplate
from scipy import ndimage

from inference.clinical.attribution_colours import blend_signed
from inference.errors import MedFusionError
from inference.export.report_sections import ReportSection
from inference.io.volume import StudyInfo

__all__ = ["NOTICE", "AuditSummary", "ClinicalValueRow", "KeyImage", "ModelSummary", "PredictionRow",
           "ReportContent", "StructureMeasurement", "render_overlay", "write_report"]

NOTICE = "Research use only \u2014 not for diagnostic use"
DEFAULT_COLOURS: dict[int, tuple[int, int, int]] = {1: (255, 40, 40), 2: (40, 200, 40), 3: (60, 120, 255),
                                                    4: (255, 200, 0), 5: (200, 0, 200), 6: (0, 200, 200)}


@dataclass
class KeyImage:
    image: np.ndarray  # RGB uint8 [H, W, 3], e.g. from render_overlay
    caption: str = ""


@dataclass
class StructureMeasurement:
    """Sizes in physical units; ``area_pixels`` / ``volume_voxels`` when the pixel spacing is unknown."""

    name: str
    volume_ml: float | None = None
    area_mm2: float | None = None
    source: str = ""  # AI | MANUAL | AI-corrected
    area_pixels: int | None = None
    volume_voxels: int | None = None


@dataclass
class PredictionRow:
    """One outcome; ``answer``/``note``/``base_rate`` are the plain words (see inference.clinical.wording)."""

    outcome: str
    probability: float
    conformal_set: list[str] | None = None  # classification: labels in the set
    interval: tuple[float, float] | None = None  # regression: [low, high]
    alpha: float = 0.1
    answer: str = ""  # "the model cannot decide", "yes", …
    base_rate: str = ""  # "59 %", "unknown"; "" = not applicable (scores)
    note: str = ""  # why a "yes" goes with a probability under 50 %, …
    value_text: str = ""  # how to print the value when not a probability ("4.2 of 8")
    group: str = ""  # rows with a group (e.g. a per-image score) get their own table under that title


@dataclass
class ClinicalValueRow:
    """A clinical value the model used; ``edited``: a what-if value, not the patient's record."""

    name: str
    value: str
    reference: str = ""
    flag: str = ""
    edited: bool = False


@dataclass
class ModelSummary:
    name: str
    version: str
    card_summary: str = ""
    intended_use: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class AuditSummary:
    ai_changes: int = 0
    human_changes: int = 0
    dice_ai_vs_final: dict[str, float] = field(default_factory=dict)  # per structure
    log_verified: bool | None = None


@dataclass
class ReportContent:
    """Everything the report shows; the caller fills what it has, empty sections are left out."""

    study: StudyInfo
    deidentified: bool = False
    title: str = "MedFusion Viewer report"
    key_images: list[KeyImage] = field(default_factory=list)
    measurements: list[StructureMeasurement] = field(default_factory=list)
    clinical_values: list[ClinicalValueRow] = field(default_factory=list)
    what_if: list[str] = field(default_factory=list)  # "SpO₂ edited 85 → 99 % by dr.k (what-if)"
    predictions: list[PredictionRow] = field(default_factory=list)
    prediction_note: str = ""  # e.g. "Out of date: the inputs changed after this prediction …"
    model: ModelSummary | None = None
    audit: AuditSummary | None = None
    author: str = ""
    notes: str = ""
    sections: list[ReportSection] = field(default_factory=list)  # features' tables (e.g. measurements)


def _window(slice2d: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    data = np.asarray(slice2d, dtype=np.float32)
    if window is None:
        low, high = np.percentile(data, [0.5, 99.5]) if data.size else (0.0, 1.0)
    else:
        centre, width = window
        low, high = centre - width / 2.0, centre + width / 2.0
    scaled = (data - low) / max(float(high - low), 1e-6)
    return np.clip(scaled, 0.0, 1.0)


def render_overlay(slice2d: np.ndarray, window: tuple[float, float] | None = None,
                   mask: np.ndarray | None = None, heatmap: np.ndarray | None = None, *,
                   colours: dict[int, tuple[int, int, int]] | None = None, mask_alpha: float = 0.35,
                   heatmap_alpha: float = 0.4, cmap: str = "jet", signed_heatmap: np.ndarray | None = None,
                   greyed: bool = False) -> np.ndarray:
    """Grey slice (window = (centre, width), None: 0.5–99.5 percentiles) with a label map filled and
    outlined in its colours and an optional heatmap in [0, 1] blended with ``cmap``; RGB uint8.

    ``signed_heatmap`` (in [-1, 1], instead of ``heatmap``): an attribution in the viewer's colours, red
    towards the outcome and blue away (:mod:`inference.clinical.attribution_colours`), drained of colour
    when ``greyed``; 0 leaves the slice untouched."""
    if np.ndim(slice2d) != 2:
        raise MedFusionError("A key image must be a single 2-D slice.")
    grey = _window(slice2d, window)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if heatmap is not None:
        heat = np.asarray(heatmap, dtype=np.float32)
        if heat.shape != grey.shape:
            raise MedFusionError("The explanation heatmap does not match the slice size.")
        heat = np.clip(np.nan_to_num(heat), 0.0, 1.0)
        hot = heat > 0
        coloured = colormaps[cmap](heat[hot])[:, :3].astype(np.float32)
        weight = heatmap_alpha * heat[hot][:, None]
        rgb[hot] = rgb[hot] * (1 - weight) + coloured * weight
    if signed_heatmap is not None:
        signed = np.asarray(signed_heatmap, dtype=np.float32)
        if signed.shape != grey.shape:
            raise MedFusionError("The explanation heatmap does not match the slice size.")
        rgb = blend_signed(rgb, signed, opacity=0.6, grey=greyed).astype(np.float32)
    if mask is not None:
        labels = np.asarray(mask)
        if labels.shape != grey.shape:
            raise MedFusionError("The mask does not match the slice size.")
        palette = colours or DEFAULT_COLOURS
        for value in (int(v) for v in np.unique(labels) if v != 0):
            colour = np.asarray(palette.get(value, DEFAULT_COLOURS[1 + (value - 1) % 6]), np.float32) / 255.0
            region = labels == value
            rgb[region] = rgb[region] * (1 - mask_alpha) + colour * mask_alpha
            edge = region & ~ndimage.binary_erosion(region)
            rgb[edge] = colour
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_report(content: ReportContent, path: Path) -> Path:
    """Lay out ``content`` as an A4 PDF at ``path`` (written to a temp name, then renamed)."""
    from inference.export.report_layout import ReportLayout, build_story

    lay = ReportLayout()
    story = build_story(content, lay)
    bold = lay.bold

    def footer(canvas, doc) -> None:  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont(bold, 8)
        canvas.setFillColor(colors.HexColor("#b00020"))
        canvas.drawString(1.5 * cm, 1.0 * cm, NOTICE)
        canvas.setFillColor(colors.black)
        canvas.drawRightString(A4[0] - 1.5 * cm, 1.0 * cm, f"Page {doc.page}")
        canvas.restoreState()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        doc = SimpleDocTemplate(str(tmp), pagesize=A4, leftMargin=1.5 * cm, rightMargin=1.5 * cm,
                                topMargin=1.5 * cm, bottomMargin=1.8 * cm, title=content.title,
                                author=content.author or "MedFusion Viewer")
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MedFusionError(f"The report could not be written to '{path}' ({exc.strerror or exc}).") from exc
    return path
