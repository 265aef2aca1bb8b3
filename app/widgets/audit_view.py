"""Audit log viewer: every AI output and human change for this study, in words, with the raw entry.

The table reads like a case history (date and time, who, what was done on what, and what changed in a
sentence: :mod:`inference.audit.describe`), in columns that fit a side panel without a horizontal scroll; the hash-chained JSON entry of the selected row is in the detail pane
below (and in each row's tooltip), so nothing is hidden. 'Verify chain' re-checks the log; 'Export…'
writes CSV or JSON. With the de-identified display on, the patient is "this patient" (no ID, no folder
name) in the table and the detail pane, like the other panels; the log and its exports are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QFontDatabase, QResizeEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.clinical import ClinicalController
from app.model.clinical import ClinicalModel
from inference.audit.describe import AuditRow, describe_entry

COLUMNS = ("#", "When (UTC)", "Who", "What")
SUMMARY_COLUMN = 3
WHO_WIDTH = 120  # wide enough for "AI model medfusion-cxr-v1" on two lines
WHO_MIN_WIDTH = 84  # "annotation" / "clinician": the who column gives way in a narrow dock, never 'what'
WHO_SHARE = 0.24  # of the table's width
ROW_SPACING = 6  # px added to each row's height


def what_text(row: AuditRow) -> str:
    """'What-if edit · SpO₂' on the first line, what changed in words below."""
    head = f"{row.action} \u00b7 {row.target}" if row.target else row.action
    return f"{head}\n{row.summary}" if row.summary else head


class _SpacedRows(QStyledItemDelegate):
    """A little air between entries. (A style-sheet padding was not counted when the rows were sized, so
    the wrapped text lost its last line, cut off with '…', in a narrow dock.)"""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        hint = super().sizeHint(option, index)
        return QSize(hint.width(), hint.height() + ROW_SPACING)


class AuditView(QWidget):
    """Read-only table of the log, newest first; selecting a row shows its raw entry below."""

    def __init__(self, model: ClinicalModel, controller: ClinicalController,
                 deidentified: Callable[[], bool] = lambda: False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("audit_view")
        self.controller = controller
        self.deidentified = deidentified
        self.rows: list[AuditRow] = []
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setWordWrap(True)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.table.horizontalHeader()  # fits the dock: date over time, who wraps, 'what' stretches
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(2, WHO_WIDTH)
        header.setSectionResizeMode(SUMMARY_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.sectionResized.connect(lambda *_a: self.table.resizeRowsToContents())  # wrap anew on resize
        header.geometriesChanged.connect(self._fit_who)
        self.table.verticalHeader().hide()
        self.table.setItemDelegate(_SpacedRows(self.table))
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._show_detail)
        splitter.addWidget(self.table)
        self.detail = QPlainTextEdit(self)
        self.detail.setObjectName("audit_detail")
        self.detail.setReadOnly(True)
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.detail.setPlaceholderText("Select an entry to see the stored record (JSON, with its hash).")
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout.addWidget(splitter, 1)
        row = QHBoxLayout()
        self.verify_button = QPushButton("Verify chain", self)
        self.verify_button.clicked.connect(self.verify)
        self.export_button = QPushButton("Export…", self)
        self.export_button.clicked.connect(self._export_dialog)
        self.status = QLabel("", self)
        row.addWidget(self.verify_button)
        row.addWidget(self.export_button)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        for signal in (model.case_changed, model.prediction_changed, model.explanation_changed,
                       model.ehr_changed, model.masks_changed, model.stale_changed):
            signal.connect(lambda *_a: self.refresh())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_who()

    def _fit_who(self) -> None:
        """In a narrow dock the fixed 'who' column left 'what' a word wide (each line cut off with '…'):
        'who' takes at most about a quarter of the table and wraps, 'what' keeps the rest."""
        width = int(min(WHO_WIDTH, max(WHO_MIN_WIDTH, self.table.viewport().width() * WHO_SHARE)))
        if self.table.columnWidth(2) != width:
            self.table.horizontalHeader().resizeSection(2, width)

    def refresh(self) -> None:
        log = self.controller.audit
        entries = log.entries() if log is not None and log.path.exists() else []
        hide = self.deidentified()
        self.rows = [describe_entry(e, hide_patient=hide) for e in reversed(entries)]  # newest first
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            cells = (str(row.seq), row.time.replace(" ", "\n", 1), row.who, what_text(row))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(row.raw if c == SUMMARY_COLUMN else text.replace("\n", " "))
                if c == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
                self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()
        self._show_detail()

    def _show_detail(self) -> None:
        selected = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        index = selected[0].row() if selected else -1
        self.detail.setPlainText(self.rows[index].raw if 0 <= index < len(self.rows) else "")

    def verify(self) -> bool:
        log = self.controller.audit
        if log is None:
            self.status.setText("No log yet.")
            return False
        st = log.check()
        self.status.setText(
            f"Chain intact: {st.n_valid} entries." if st.ok else f"Chain BROKEN at entry {st.first_bad_seq}: {st.reason}"
        )
        self.status.setStyleSheet("color:#7bd88f" if st.ok else "color:#ff7b72")
        return bool(st.ok)

    def export(self, path: Path) -> Path:
        if self.controller.audit is None:
            raise FileNotFoundError("no audit log")
        return Path(self.controller.audit.export(path))

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export audit log", "audit.csv", "CSV (*.csv);;JSON (*.json)")
        if path:
            self.status.setText(f"Exported to {self.export(Path(path))}")
