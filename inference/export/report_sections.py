"""Extra report sections that features contribute (measurements today; anything tabular tomorrow).

Why a generic section: the report's fixed sections (key images, volumes, predictions, model, audit) are
owned by the report; a feature such as the viewer's measurement tools only has to hand over a titled
table, and :func:`section_flowables` lays it out after the fixed measurement table. The viewer collects
sections from ``AppContext.report_sections`` (one callable per feature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the PDF stack is imported when a report is written, not when the viewer starts
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Flowable

__all__ = ["ReportSection", "section_flowables"]

MAX_ROWS = 200


@dataclass
class ReportSection:
    """A titled table: ``columns`` (header) and ``rows`` of plain text; ``note`` is a line under it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section_flowables(sections: list[ReportSection], heading: ParagraphStyle, body: ParagraphStyle,
                      width: float) -> list[Flowable]:
    """Heading, wrapping table (columns share ``width``; the value column gets the most) and note per section."""
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, Table, TableStyle

    story: list[Flowable] = []
    cell = ParagraphStyle("section_cell", parent=body, fontSize=8.5, leading=10.5)
    head = ParagraphStyle("section_head", parent=cell, fontName=heading.fontName)
    for section in sections:
        if not section.rows:
            continue
        story.append(Paragraph(_esc(section.title), heading))
        n = len(section.columns)
        weights = [1.0] * n
        if n >= 3:
            weights[0], weights[n // 2] = 0.4, 3.0  # a narrow "#" column, a wide value column
        total = sum(weights)
        widths = [width * w / total for w in weights]
        rows = [[Paragraph(_esc(c), head) for c in section.columns]]
        rows += [[Paragraph(_esc(c), cell) for c in (list(r) + [""] * n)[:n]] for r in section.rows[:MAX_ROWS]]
        table = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
        table.setStyle(TableStyle([
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee")),
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#8896aa")), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        story.append(table)
        if section.note:
            story.append(Paragraph(_esc(section.note), body))
    return story
