"""Audit log viewer: every AI output and human change for this study, chain check and export."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.clinical import ClinicalController
from app.model.clinical import ClinicalModel

COLUMNS = ("#", "time (UTC)", "who", "what", "on", "details")


class AuditView(QWidget):
    """Read-only table of the log; 'Verify' re-checks the hash chain; 'Export…' writes CSV or JSON."""

    def __init__(self, model: ClinicalModel, controller: ClinicalController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("audit_view")
        self.controller = controller
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        layout.addWidget(self.table, 1)
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

    def refresh(self) -> None:
        log = self.controller.audit
        entries = log.entries() if log is not None and log.path.exists() else []
        self.table.setRowCount(len(entries))
        for r, e in enumerate(reversed(entries)):  # newest first
            details = json.dumps(e.get("details", {}), ensure_ascii=False, default=str)
            cells = (str(e["seq"]), e["timestamp"][11:19], e["actor"], e["action"].replace("_", " "),
                     e.get("target", ""), details)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text if c == 5 else f"hash {e['hash'][:16]}…")
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()

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
