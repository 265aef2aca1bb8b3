"""One-click PDF report: header, key images with overlays, measurements, predictions, model, audit.

Why reportlab + numpy overlays: the core must not depend on Qt, so key images are composed here
(:func:`render_overlay`) or by the caller as RGB arrays, and the PDF is laid out with reportlab's
platypus. Fonts are the Bitstream Vera TTFs shipped with reportlab (Latin-1 names render; no system
font needed). Every page carries the "Research use only — not for diagnostic use" notice.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from scipy import ndimage

from inference.errors import MedFusionError
from inference.export.report_sections import ReportSection, section_flowables
from inference.io.volume import StudyInfo

__all__ = ["NOTICE", "AuditSummary", "KeyImage", "ModelSummary", "PredictionRow", "ReportContent",
           "StructureMeasurement", "render_overlay", "write_report"]

NOTICE = "Research use only \u2014 not for diagnostic use"
DEFAULT_COLOURS: dict[int, tuple[int, int, int]] = {1: (255, 40, 40), 2: (40, 200, 40), 3: (60, 120, 255),
                                                    4: (255, 200, 0), 5: (200, 0, 200), 6: (0, 200, 200)}


@dataclass
class KeyImage:
    image: np.ndarray  # RGB uint8 [H, W, 3], e.g. from render_overlay
    caption: str = ""


@dataclass
class StructureMeasurement:
    name: str
    volume_ml: float | None = None
    area_mm2: float | None = None
    source: str = ""  # AI | MANUAL | AI-corrected


@dataclass
class PredictionRow:
    outcome: str
    probability: float
    conformal_set: list[str] | None = None  # classification: labels in the set
    interval: tuple[float, float] | None = None  # regression: [low, high]
    alpha: float = 0.1


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
    predictions: list[PredictionRow] = field(default_factory=list)
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
                   heatmap_alpha: float = 0.4, cmap: str = "jet") -> np.ndarray:
    """Grey slice (window = (centre, width), None: 0.5–99.5 percentiles) with a label map filled and
    outlined in its colours and an optional heatmap in [0, 1] blended with ``cmap``; RGB uint8."""
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


def _fonts() -> tuple[str, str]:
    import reportlab

    folder = Path(reportlab.__file__).parent / "fonts"
    try:
        if "Vera" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("Vera", str(folder / "Vera.ttf")))
            pdfmetrics.registerFont(TTFont("VeraBd", str(folder / "VeraBd.ttf")))
        return "Vera", "VeraBd"
    except Exception:  # noqa: BLE001 - fall back to the PDF base fonts
        return "Helvetica", "Helvetica-Bold"


def _image_flowable(image: np.ndarray, width: float) -> Image:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise MedFusionError("Key images must be RGB uint8 arrays of shape (H, W, 3).")
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    buffer.seek(0)
    height = width * array.shape[0] / array.shape[1]
    return Image(buffer, width=width, height=height)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "\u2013" if value is None else f"{value:.{digits}f}"


def _conformal(row: PredictionRow) -> str:
    if row.conformal_set is not None:
        return "{" + ", ".join(row.conformal_set) + "}" if row.conformal_set else "{} (abstain)"
    if row.interval is not None:
        return f"[{row.interval[0]:.3g}, {row.interval[1]:.3g}]"
    return "\u2013"


def _table(rows: list[list[str]], font: str, bold: str, widths: list[float] | None = None) -> Table:
    table = Table(rows, colWidths=widths, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), font, 9), ("FONT", (0, 0), (-1, 0), bold, 9),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee")),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#8896aa")), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def write_report(content: ReportContent, path: Path) -> Path:
    """Lay out ``content`` as an A4 PDF at ``path`` (written to a temp name, then renamed)."""
    font, bold = _fonts()
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=font, fontSize=9, leading=12)
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontName=bold, fontSize=16)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontName=bold, fontSize=12, spaceBefore=8,
                        keepWithNext=1)
    notice = ParagraphStyle("notice", parent=body, fontName=bold, fontSize=11, textColor=colors.white,
                            backColor=colors.HexColor("#b00020"), borderPadding=5, alignment=1)

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    story: list = [Paragraph(esc(content.title), h1), Paragraph(NOTICE, notice), Spacer(1, 0.4 * cm)]
    info = content.study.deidentified() if content.deidentified else content.study
    header = [["Patient", esc(info.patient_name.replace("^", " ")) or "\u2013", "Patient ID", info.patient_id or "\u2013"],
              ["Study date", info.study_date or "\u2013", "Modality", info.modality or "\u2013"],
              ["Study", esc(info.study_description) or "\u2013", "Series", esc(info.series_description) or "\u2013"]]
    if content.deidentified:
        header.append(["De-identified", "yes (PS3.15 basic profile)", "", ""])
    header.append(["Generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "By", esc(content.author) or "\u2013"])
    story.append(_table(header, font, font, [3 * cm, 6 * cm, 3 * cm, 5 * cm]))
    if content.key_images:
        story.append(Paragraph("Key images", h2))
        cells = [[_image_flowable(k.image, 8.2 * cm), Paragraph(esc(k.caption), body)] for k in content.key_images]
        pairs = []
        for i in range(0, len(cells), 2):
            row = cells[i:i + 2]
            pairs.append([c[0] for c in row] + [""] * (2 - len(row)))
            pairs.append([c[1] for c in row] + [""] * (2 - len(row)))
        story.append(Table(pairs, colWidths=[8.6 * cm, 8.6 * cm], hAlign="LEFT"))
    if content.measurements:
        story.append(Paragraph("Volumes and areas", h2))
        rows = [["Structure", "Volume (ml)", "Area (mm\u00b2)", "Source"]]
        rows += [[esc(m.name), _fmt(m.volume_ml, 2), _fmt(m.area_mm2, 1), m.source or "\u2013"]
                 for m in content.measurements]
        story.append(_table(rows, font, bold))
    story += section_flowables(content.sections, h2, body, A4[0] - 3 * cm)  # features' sections
    if content.predictions:
        story.append(Paragraph("Predictions", h2))
        rows = [["Outcome", "Probability", "Conformal set / interval", "Coverage"]]
        rows += [[esc(p.outcome), f"{p.probability:.2f}", _conformal(p), f"{1 - p.alpha:.0%} (alpha = {p.alpha:g})"]
                 for p in content.predictions]
        story.append(_table(rows, font, bold))
        story.append(Paragraph("Conformal sets contain the true outcome with the stated probability on data like "
                               "the calibration cohort; a set with both outcomes means the model cannot decide.",
                               body))
    if content.model is not None:
        m = content.model
        story.append(Paragraph("Model", h2))
        story.append(Paragraph(f"<b>{esc(m.name)}</b> version {esc(m.version)}", body))
        for label, text in (("Summary", m.card_summary), ("Intended use", m.intended_use)):
            if text:
                story.append(Paragraph(f"{label}: {esc(text)}", body))
        if m.metrics:
            story.append(Paragraph("Validation: " + ", ".join(f"{k} {v:.3f}" for k, v in m.metrics.items()), body))
    if content.audit is not None:
        a = content.audit
        story.append(Paragraph("Audit summary", h2))
        rows = [["AI changes", "Human changes", "Audit log"],
                [str(a.ai_changes), str(a.human_changes),
                 {True: "verified", False: "TAMPERED / broken", None: "not checked"}[a.log_verified]]]
        story.append(_table(rows, font, bold))
        if a.dice_ai_vs_final:
            dice_rows = [["Structure", "Dice AI vs final"]] + [[esc(k), f"{v:.3f}"] for k, v in a.dice_ai_vs_final.items()]
            story.append(Spacer(1, 0.2 * cm))
            story.append(_table(dice_rows, font, bold))
    if content.notes:
        story.append(Paragraph("Notes", h2))
        story.append(Paragraph(esc(content.notes), body))

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
