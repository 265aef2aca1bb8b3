"""EHR panel: presentation values with units, reference ranges and flags (editable what-if), and a timeline.

Flags have three grades from the shared table (:mod:`inference.clinical.ranges`): outside the reference
range, critical (act now) and implausible (check the entry before trusting it — or the prediction).
A what-if edit is marked in the row with the recorded value beside it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QShowEvent
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.clinical import ClinicalController
from app.model.clinical import EHR_FIELDS, ClinicalModel, EHRField, EHRValue
from app.widgets.lab_chart import draw_lab_timeline, labs_with_values
from app.widgets.lazy_figure import LazyFigure
from inference.clinical.formatting import field_value, recorded_text
from inference.clinical.ranges import consistency_warnings

COLUMNS = ("Value", "Reference", "Flag")  # the unit stands with the range: the flag keeps its width
REFERENCE_COLUMN, FLAG_COLUMN = 1, 2
CELL_MARGIN = 10  # px beside a cell's text (the style's text margins and the grid line)
#: level -> (value colour, flag colour, flag background or None): worse grades get a filled flag cell
LEVEL_STYLE: dict[str, tuple[str, str, str | None]] = {
    "abnormal": ("#ff9f8f", "#ff9f8f", None),
    "critical": ("#ff6b6b", "#ffffff", "#9b1c1c"),
    "implausible": ("#e2b8ff", "#1a1a1a", "#d291ff"),
}
EDITED_BACKGROUND = "#4d3f00"


def reference_text(field: EHRField) -> str:
    """'36.1–37.8 °C'; a value without a reference range shows its unit alone, in brackets: '(years)'."""
    if field.normal:
        return f"{field.normal[0]:g}\u2013{field.normal[1]:g} {field.unit}".strip()
    return f"({field.unit})" if field.unit else ""


def flag_text(value: EHRValue) -> str:
    """'‼ critical low', '⚠ implausible', '↓ low' …, plus '· what-if (recorded 85 %)' for an edit."""
    text = value.check.short()
    if value.edited:
        text = f"{text} \u00b7 what-if ({recorded_text(value.field.name, value.original)})".strip(" \u00b7")
    return text


class EHRPanel(QWidget):
    """Edits go through the controller (audited, prediction marked stale); missing stays missing."""

    def __init__(
        self, model: ClinicalModel, controller: ClinicalController,
        deidentified: Callable[[], bool] = lambda: False, parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ehr_panel")
        self.deidentified = deidentified
        self.model, self.controller = model, controller
        self._filling = False
        self._chart_pending = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 6)  # a narrow dock: the table's width goes to the flag
        self.header = QLabel("No case open.", self)
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.table = QTableWidget(len(EHR_FIELDS), len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setVerticalHeaderLabels([f.label for f in EHR_FIELDS])
        # a narrow dock must still show the flag (the column that matters most): the flag wraps in the
        # width left by the value and the range, rows grow to fit, and nothing scrolls sideways
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(REFERENCE_COLUMN, QHeaderView.ResizeMode.Fixed)  # as wide as a range:
        header.resizeSection(REFERENCE_COLUMN, self._reference_width())  # a long unit wraps below it
        header.setSectionResizeMode(FLAG_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.viewport().installEventFilter(self)  # wrap anew whenever the flag's width changes
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setToolTip("Double-click a value to try a what-if change; empty = missing")
        self.table.itemChanged.connect(self._on_item)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # sized to its rows
        layout.addWidget(self.table)
        self.warning = QLabel(self)
        self.warning.setObjectName("ehr_warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("background:#4a2a6a;color:white;padding:4px;border-radius:3px")
        self.warning.hide()
        layout.addWidget(self.warning)
        self.revert = QPushButton("Undo what-if edits", self)
        self.revert.clicked.connect(self._revert)
        layout.addWidget(self.revert)
        self.chart = LazyFigure(figsize=(3.6, 2.4), dpi=90, facecolor="#2b2b2b", min_height=170, parent=self)
        layout.addWidget(self.chart, 1)
        model.ehr_changed.connect(self.refresh_table)
        self.refresh_table()

    def _reference_width(self) -> int:
        """The widest range or its header ('36.1–37.8'), so units like '×10⁹/L' wrap instead of taking
        the flag's room in a narrow dock."""
        metrics = self.table.fontMetrics()
        texts = [COLUMNS[REFERENCE_COLUMN]] + [reference_text(f).rsplit(" ", 1)[0] for f in EHR_FIELDS]
        return max(metrics.horizontalAdvance(t) for t in texts) + CELL_MARGIN

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            QTimer.singleShot(0, self, self._fit_rows)  # after the header has laid out the stretched column
        return super().eventFilter(watched, event)

    def _fit_rows(self) -> None:
        """Rows as tall as their wrapped text, the table as tall as its rows: every value and flag in view
        without scrolling (a vertical scroll bar would also take the flag's width)."""
        self.table.resizeRowsToContents()
        frame = 2 * self.table.frameWidth()
        self.table.setFixedHeight(self.table.horizontalHeader().height() + self.table.verticalHeader().length() + frame)

    def _revert(self) -> None:
        for name, value in self.model.ehr.items():
            if value.edited:
                self.controller.edit_ehr(name, value.original)

    def _on_item(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 0:
            return
        name = EHR_FIELDS[item.row()].name
        text = item.text().strip()
        value: float | str | None
        if text.lower() in ("", "missing"):
            value = None
        elif EHR_FIELDS[item.row()].numeric:
            try:
                value = float(text.replace(",", "."))
            except ValueError:
                self.refresh_table()
                return
        else:
            value = text
        if value != self.model.ehr[name].value:
            self.controller.edit_ehr(name, value)

    def refresh_table(self) -> None:
        self._filling = True
        case = self.model.case
        self.header.setText(
            f"Patient {'(hidden)' if self.deidentified() else case.patient_id} · {case.finding or 'no finding recorded'} · "
            f"{len(case.images)} X-rays, days {case.images[0].offset:g}–{case.images[-1].offset:g}"
            if case and case.images else "No case open."
        )
        edited = False
        for row, f in enumerate(EHR_FIELDS):
            v = self.model.ehr.get(f.name)
            check = v.check if v else None
            edited = edited or bool(v and v.edited)
            cells = (v.text() if v else "", reference_text(f), flag_text(v) if v else "")
            for col, cell in enumerate(cells):
                item = QTableWidgetItem(cell)
                if col:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                tips = []
                if v and v.missing and col == 0:
                    item.setForeground(QBrush(QColor("#888888")))
                    tips.append("Not recorded: the model is told this value is missing (never guessed)")
                if check is not None and check.level in LEVEL_STYLE and col in (0, FLAG_COLUMN):
                    value_fg, flag_fg, flag_bg = LEVEL_STYLE[check.level]
                    item.setForeground(QBrush(QColor(value_fg if col == 0 else flag_fg)))
                    if check.level != "abnormal":
                        font = item.font()
                        font.setBold(True)
                        item.setFont(font)
                    if flag_bg is not None and col == FLAG_COLUMN:
                        item.setBackground(QBrush(QColor(flag_bg)))
                    tips.append(check.reason[:1].upper() + check.reason[1:] + ".")
                if v and v.edited and col == 0:
                    item.setBackground(QBrush(QColor(EDITED_BACKGROUND)))
                if v and v.edited and col in (0, FLAG_COLUMN):
                    tips.append(f"What-if edit: the prediction uses this value; the patient's record says "
                                f"{field_value(f.name, v.original)}.")
                if tips:
                    item.setToolTip("\n".join(tips))
                self.table.setItem(row, col, item)
        label = self.table.verticalHeaderItem
        for row, f in enumerate(EHR_FIELDS):
            v = self.model.ehr.get(f.name)
            header = label(row)
            if header is not None:
                header.setText(f.label + (" \u270e" if v and v.edited else ""))
        self._fit_rows()
        self.revert.setEnabled(edited)
        warnings = consistency_warnings(self.model.ehr_inputs()) if self.model.case else []
        implausible = [v.field.label for v in self.model.ehr.values() if v.check.level == "implausible"]
        if implausible:
            warnings.insert(0, f"Implausible value{'s' if len(implausible) > 1 else ''}: {', '.join(implausible)}"
                            " \u2014 check the entry and unit; the prediction uses it as entered.")
        self.warning.setText("\n".join(warnings))
        self.warning.setVisible(bool(warnings))
        self._filling = False
        self._plot()

    def _plot(self) -> None:
        if self.model.case is None and not self.chart.created:
            return  # nothing to chart yet: matplotlib stays unloaded
        n = len(labs_with_values(self.model.case))
        self.chart.setMinimumHeight(60 + 95 * max(n, 1))
        draw_lab_timeline(self.chart.figure, self.model.case, self.model.ehr)
        self._chart_pending = not self.chart.isVisible()
        if not self._chart_pending:  # a hidden canvas has no size yet: draw when it is shown
            self.chart.canvas.draw_idle()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._chart_pending and self.chart.created:
            self._chart_pending = False
            self.chart.canvas.draw_idle()
