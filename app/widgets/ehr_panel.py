"""EHR panel: presentation values with units, reference ranges and flags (editable what-if), and a timeline."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.controllers.clinical import ClinicalController
from app.model.clinical import EHR_FIELDS, ClinicalModel
from app.widgets.lazy_figure import LazyFigure

COLUMNS = ("Value", "Unit", "Normal", "Flag")


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
        layout = QVBoxLayout(self)
        self.header = QLabel("No case open.", self)
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.table = QTableWidget(len(EHR_FIELDS), len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setVerticalHeaderLabels([f.label for f in EHR_FIELDS])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setToolTip("Double-click a value to try a what-if change; empty = missing")
        self.table.itemChanged.connect(self._on_item)
        self.table.setMinimumHeight(32 + 30 * len(EHR_FIELDS))
        layout.addWidget(self.table)
        self.revert = QPushButton("Undo what-if edits", self)
        self.revert.clicked.connect(self._revert)
        layout.addWidget(self.revert)
        self.chart = LazyFigure(figsize=(3.6, 2.4), dpi=90, facecolor="#2b2b2b", min_height=170, parent=self)
        layout.addWidget(self.chart, 1)
        model.ehr_changed.connect(self.refresh_table)
        model.case_changed.connect(lambda _c: self._plot())
        self.refresh_table()

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
            text = v.text() if v else ""
            flag = ("↑ high" if v.flag == "high" else "↓ low" if v.flag == "low" else "") if v else ""
            if v and v.edited:
                flag = (flag + " · edited").strip(" ·")
                edited = True
            normal = f"{f.normal[0]:g}–{f.normal[1]:g}" if f.normal else ""
            for col, cell in enumerate((text, f.unit, normal, flag)):
                item = QTableWidgetItem(cell)
                if col:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if v and v.missing and col == 0:
                    item.setForeground(QBrush(QColor("#888888")))
                    item.setToolTip("Not recorded: the model is told this value is missing (never guessed)")
                if v and v.flag and col in (0, 3):
                    item.setForeground(QBrush(QColor("#ff7b72")))
                if v and v.edited and col in (0, 3):
                    item.setBackground(QBrush(QColor("#5a4a00")))
                    item.setToolTip(f"What-if edit; recorded value: {v.original if v.original is not None else 'missing'}")
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self.revert.setEnabled(edited)
        self._filling = False

    def _plot(self) -> None:
        if self.model.case is None and not self.chart.created:
            return  # nothing to chart yet: matplotlib stays unloaded
        fig = self.chart.figure
        fig.clear()
        ax = fig.add_subplot(111)
        ax.set_facecolor("#2b2b2b")
        case = self.model.case
        if case is not None:
            for im in case.images:
                ax.axvline(im.offset, color="#5bc0de", lw=1, alpha=0.6)
            for f in EHR_FIELDS[2:]:
                pts = sorted((day, v) for day, vals in case.visits.items() if (v := vals.get(f.name)) is not None)
                if pts and f.normal:
                    lo, hi = f.normal
                    scaled = [(d, (v - lo) / (hi - lo)) for d, v in pts]  # 0..1 = normal range
                    ax.plot([d for d, _ in scaled], [s for _, s in scaled], "o-", ms=4, label=f"{f.label} {pts[-1][1]:g}")
            ax.axhspan(0, 1, color="#3c763d", alpha=0.25)
            days = [im.offset for im in case.images]
            ax.set_xlim(min(days) - 0.5, max(days) + 0.5)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="upper right", facecolor="#2b2b2b", labelcolor="#e0e0e0")
        ax.set_title("Labs over time (green band = normal range); blue lines = X-rays", color="#e0e0e0", fontsize=8)
        ax.set_xlabel("day", color="#e0e0e0", fontsize=8)
        ax.set_yticks([0, 1], ["low", "high"])
        ax.tick_params(colors="#e0e0e0", labelsize=7)
        fig.subplots_adjust(left=0.12, right=0.97, top=0.88, bottom=0.2)
        self.chart.canvas.draw_idle()
