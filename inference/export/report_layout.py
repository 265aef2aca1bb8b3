"""Layout of the PDF report: fonts, wrapping fixed-width tables and the sections in reading order.

Kept apart from :mod:`inference.export.report` (content dataclasses, key-image rendering, the atomic
write) so each stays readable. Why fixed widths: reportlab sizes a table to its longest cell, so an
image file name or a long outcome name pushed columns off the page; here every table spans exactly the
text width and its cells wrap.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, Spacer, Table, TableStyle

from inference.clinical.formatting import format_percent, iso_date
from inference.errors import MedFusionError
from inference.export.report import NOTICE
from inference.export.report_sections import section_flowables

if TYPE_CHECKING:
    from inference.export.report import PredictionRow, ReportContent, StructureMeasurement

TEXT_WIDTH = A4[0] - 3 * cm  # 1.5 cm margins


def _fonts() -> tuple[str, str, bool]:
    """(regular, bold, full_unicode): matplotlib's DejaVu Sans, else reportlab's Vera, else Helvetica."""
    import matplotlib
    import reportlab

    registered = pdfmetrics.getRegisteredFontNames()
    candidates = (
        (Path(matplotlib.get_data_path()) / "fonts" / "ttf", "DejaVuSans", "DejaVuSans.ttf",
         "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", True),
        (Path(reportlab.__file__).parent / "fonts", "Vera", "Vera.ttf", "VeraBd.ttf", "VeraIt.ttf", False),
    )
    for folder, name, regular, bold, italic, full in candidates:
        try:
            if name not in registered:
                pdfmetrics.registerFont(TTFont(name, str(folder / regular)))
                pdfmetrics.registerFont(TTFont(name + "-Bold", str(folder / bold)))
                pdfmetrics.registerFont(TTFont(name + "-Italic", str(folder / italic)))
                pdfmetrics.registerFontFamily(name, normal=name, bold=name + "-Bold", italic=name + "-Italic",
                                                boldItalic=name + "-Bold")
            return name, name + "-Bold", full
        except Exception:  # noqa: BLE001 - try the next font
            continue
    return "Helvetica", "Helvetica-Bold", False


_FALLBACK_MARKUP = {"\u2082": "<sub>2</sub>", "\u2079": "<super>9</super>", "\u2192": "-&gt;",
                    "\u2193": "", "\u2191": "", "\u203c": "!!", "\u26a0": "!", "\u270e": ""}


def _esc(text: str, unicode_font: bool = True) -> str:
    """Escape for reportlab's paragraph markup; without a full font, SpO₂ → SpO<sub>2</sub> etc."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if not unicode_font:
        for char, markup in _FALLBACK_MARKUP.items():
            text = text.replace(char, markup)
    return text


def _image_flowable(image: np.ndarray, width: float) -> Image:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise MedFusionError("Key images must be RGB uint8 arrays of shape (H, W, 3).")
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    buffer.seek(0)
    height = width * array.shape[0] / array.shape[1]
    return Image(buffer, width=width, height=height)


def _volume(m: StructureMeasurement) -> str:
    if m.volume_ml is not None:
        return f"{m.volume_ml:,.2f} ml"
    return f"{m.volume_voxels:,} voxels" if m.volume_voxels is not None else "\u2013"


def _area(m: StructureMeasurement) -> str:
    if m.area_mm2 is not None:
        return f"{m.area_mm2:,.1f} mm\u00b2"
    return f"{m.area_pixels:,} pixels" if m.area_pixels is not None else "\u2013"


def _value(row: PredictionRow) -> str:
    if row.value_text:
        return row.value_text
    return format_percent(row.probability) if row.interval is None else f"{row.probability:.3g}"


def _answer(row: PredictionRow) -> str:
    level = f"{round(100 * (1 - row.alpha))} %"
    if row.answer:
        return row.answer
    if row.interval is not None:
        return f"{level} interval {row.interval[0]:.3g}\u2013{row.interval[1]:.3g}"
    if row.conformal_set is not None:
        if not row.conformal_set:
            return f"unusual case: no answer fits at {level} confidence"
        return f"{level} set {{{', '.join(row.conformal_set)}}}"
    return "\u2013"


class ReportLayout:
    """Paragraph styles and fixed-width tables (cells wrap; widths add up to :data:`TEXT_WIDTH`)."""

    def __init__(self) -> None:
        self.font, self.bold, self.unicode = _fonts()
        styles = getSampleStyleSheet()
        self.body = ParagraphStyle("body", parent=styles["BodyText"], fontName=self.font, fontSize=9, leading=12)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=8.5, leading=10.5, spaceBefore=0,
                                   spaceAfter=0)
        self.head = ParagraphStyle("head", parent=self.cell, fontName=self.bold)
        self.h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontName=self.bold, fontSize=16)
        self.h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontName=self.bold, fontSize=12,
                                 spaceBefore=8, keepWithNext=1)
        self.notice = ParagraphStyle("notice", parent=self.body, fontName=self.bold, fontSize=11,
                                     textColor=colors.white, backColor=colors.HexColor("#b00020"),
                                     borderPadding=5, alignment=1)
        self.whatif = ParagraphStyle("whatif", parent=self.body, backColor=colors.HexColor("#fff3c4"),
                                     borderColor=colors.HexColor("#c9a100"), borderWidth=0.8, borderPadding=5)

    def esc(self, text: str) -> str:
        return _esc(text, self.unicode)

    def para(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        """``text`` is markup (escape plain text with :meth:`esc` first)."""
        return Paragraph(text, style or self.body)

    def table(self, rows: list[list[object]], fractions: list[float], header: bool = True,
              shade: list[tuple[int, str]] | None = None) -> Table:
        """Plain-text cells become wrapping paragraphs; ``fractions`` of the text width per column."""
        total = sum(fractions)
        widths = [TEXT_WIDTH * f / total for f in fractions]
        cells = [[c if not isinstance(c, str) else Paragraph(self.esc(c), self.head if header and r == 0
                                                                 else self.cell)
                  for c in row] for r, row in enumerate(rows)]
        table = Table(cells, colWidths=widths, hAlign="LEFT", repeatRows=1 if header else 0)
        style = [("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#8896aa")), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee")))
        style += [("BACKGROUND", (0, r), (-1, r), colors.HexColor(c)) for r, c in shade or []]
        table.setStyle(TableStyle(style))
        return table


def _predictions(lay: ReportLayout, predictions: list[PredictionRow]) -> list:
    """Outcomes (probability, base rate, answer), then one table per group of scores (value, range)."""
    def level_of(rows: list[PredictionRow]) -> str:
        alphas = {round(p.alpha, 6) for p in rows}
        return f" ({round(100 * (1 - alphas.pop()))} % confidence)" if len(alphas) == 1 else ""

    out: list = []
    outcomes = [p for p in predictions if not p.group]
    if outcomes:
        rows: list[list[object]] = [["Outcome", "Probability", "Cohort base rate",
                                     f"Model's answer{level_of(outcomes)}"]]
        for p in outcomes:
            answer = lay.esc(_answer(p))
            if p.note:
                answer += f"<br/><i>{lay.esc(p.note)}</i>"
            rows.append([p.outcome, _value(p), p.base_rate or "\u2013", lay.para(answer, lay.cell)])
        out += [lay.table(rows, [3.6, 2.4, 3.4, 8.6]),
                lay.para("The answer is a conformal prediction set: it contains the true outcome with the stated "
                         "confidence for patients like the calibration cohort; when both outcomes remain "
                         "possible, the model cannot decide. The base rate is the share of the model's training "
                         "patients with the outcome.")]
    for group in dict.fromkeys(p.group for p in predictions if p.group):
        members = [p for p in predictions if p.group == group]
        rows = [["Image", "Score", f"Range{level_of(members)}"]]
        rows += [[p.outcome, _value(p), _answer(p)] for p in members]
        out += [Spacer(1, 0.2 * cm), lay.para(f"<b>{lay.esc(group)}</b>"), lay.table(rows, [8, 3, 7])]
    return out


def build_story(content: ReportContent, lay: ReportLayout) -> list:
    esc = lay.esc
    story: list = [lay.para(esc(content.title), lay.h1), lay.para(NOTICE, lay.notice), Spacer(1, 0.4 * cm)]
    info = content.study.deidentified() if content.deidentified else content.study
    header: list[list[object]] = [
        ["Patient", info.patient_name.replace("^", " ") or "\u2013", "Patient ID", info.patient_id or "\u2013"],
        ["Study date", iso_date(info.study_date) or "\u2013", "Modality", info.modality or "\u2013"],
        ["Study", info.study_description or "\u2013", "Series", info.series_description or "\u2013"]]
    if content.deidentified:
        header.append(["De-identified", "yes (PS3.15 basic profile)", "", ""])
    header.append(["Generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "By", content.author or "\u2013"])
    story.append(lay.table(header, [3, 6, 3, 6], header=False))
    if content.key_images:
        story.append(lay.para("Key images", lay.h2))
        cells = [[_image_flowable(k.image, 8.2 * cm), lay.para(esc(k.caption))] for k in content.key_images]
        pairs = []
        for i in range(0, len(cells), 2):
            row = cells[i:i + 2]
            pairs.append([c[0] for c in row] + [""] * (2 - len(row)))
            pairs.append([c[1] for c in row] + [""] * (2 - len(row)))
        story.append(Table(pairs, colWidths=[8.6 * cm, 8.6 * cm], hAlign="LEFT"))
    if content.measurements:
        story.append(lay.para("Volumes and areas", lay.h2))
        rows: list[list[object]] = [["Structure", "Volume", "Area on the key image", "Source"]]
        rows += [[m.name, _volume(m), _area(m), m.source or "\u2013"] for m in content.measurements]
        story.append(lay.table(rows, [5.5, 3, 4.5, 5]))
        if any(m.area_pixels is not None or m.volume_voxels is not None for m in content.measurements):
            story.append(lay.para("The image file holds no pixel spacing (e.g. a JPEG or PNG X-ray), so sizes "
                                  "are given in pixels, not mm\u00b2."))
    story += section_flowables(content.sections, lay.h2, lay.body, TEXT_WIDTH)  # features' tables
    if content.what_if:
        story.append(lay.para("What-if values", lay.h2))
        lines = "<br/>".join(f"\u2022 {esc(line)}" for line in content.what_if)
        story.append(lay.para("<b>The predictions below use values that are not the patient's record:</b><br/>"
                              + lines, lay.whatif))
    if content.clinical_values:
        story.append(lay.para("Clinical values used by the model", lay.h2))
        rows = [["Variable", "Value used", "Reference", "Flag"]]
        rows += [[c.name, c.value, c.reference or "\u2013", c.flag] for c in content.clinical_values]
        shade = [(r + 1, "#fff3c4") for r, c in enumerate(content.clinical_values) if c.edited]
        story.append(lay.table(rows, [4, 3.5, 3.5, 7], shade=shade))
    if content.predictions:
        story.append(lay.para("Predictions", lay.h2))
        if content.prediction_note:
            story.append(lay.para(f"<b>{esc(content.prediction_note)}</b>", lay.whatif))
        story += _predictions(lay, content.predictions)
    if content.model is not None:
        m = content.model
        story.append(lay.para("Model", lay.h2))
        story.append(lay.para(f"<b>{esc(m.name)}</b>, version {esc(m.version)}"))
        for label, text in (("Summary", m.card_summary), ("Intended use", m.intended_use)):
            if text:
                story.append(lay.para(f"{label}: {esc(text)}"))
        if m.metrics:
            story.append(lay.para("Validation: " + ", ".join(f"{esc(k)} {v:.3f}" for k, v in m.metrics.items())))
    if content.audit is not None:
        a = content.audit
        story.append(lay.para("Audit summary", lay.h2))
        rows = [["AI outputs", "Human changes", "Audit log"],
                [str(a.ai_changes), str(a.human_changes),
                 {True: "verified (hash chain intact)", False: "TAMPERED / broken", None: "not checked"}[a.log_verified]]]
        story.append(lay.table(rows, [4, 4, 10]))
        if a.dice_ai_vs_final:
            dice_rows: list[list[object]] = [["Mask", "Agreement of the AI mask with the final mask (Dice)"]]
            dice_rows += [[k, f"{v:.3f}"] for k, v in a.dice_ai_vs_final.items()]
            story.append(Spacer(1, 0.2 * cm))
            story.append(lay.table(dice_rows, [10, 8]))
    if content.notes:
        story.append(lay.para("Notes", lay.h2))
        story.append(lay.para(esc(content.notes)))
    return story
