"""File > PACS…: search a PACS, retrieve a series into the viewer, store our segmentation back.

UI only: every command goes to :class:`~app.controllers.pacs.PacsController`, which runs the network
calls on the task runner (so a slow PACS never freezes the viewer) and picks the transport through
``inference.pacs.gateway``. A failure becomes one sentence in the dialog and a message box. Server
settings come from ``Settings.pacs`` only (the Settings… button edits them).
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.pacs import PacsController
from app.widgets.settings_dialog import PacsSettingsDialog
from inference.errors import MedFusionError
from inference.pacs.common import SeriesSummary, StudySummary
from inference.pacs.gateway import StudyQuery
from inference.settings import PacsSettings

MODALITIES = ("", "CT", "PT", "MR", "CR", "DX", "SEG", "US")
_DATE = re.compile(r"^\d{8}$")


def _pretty_date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if _DATE.match(value or "") else value


class PacsDialog(QDialog):
    """Non-modal PACS browser (the view of one :class:`PacsController`)."""

    def __init__(self, controller: PacsController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pacs_dialog")
        self.setWindowTitle("PACS")
        self.controller = controller
        self.context = controller.context
        self.studies: list[StudySummary] = []
        self.series: list[SeriesSummary] = []
        self.retrieved: Path | None = None
        self.stored = 0
        self._note = ""  # prefix for the next status line (kept when the series list refreshes)

        self.server = QLabel(self)
        self.server.setObjectName("pacs_server")
        self.server.setWordWrap(True)
        self.settings_button = QPushButton("Settings…", self)
        self.settings_button.clicked.connect(self.edit_settings)
        self.echo_button = QPushButton("Test connection", self)
        self.echo_button.setToolTip("C-ECHO to the DICOM node (or a DICOMweb query when only DICOMweb is set)")
        self.echo_button.clicked.connect(self.test_connection)

        self.name = QLineEdit(self)
        self.name.setPlaceholderText("DOE^J*  (* and ? are wildcards)")
        self.patient_id = QLineEdit(self)
        self.date_from = QLineEdit(self)
        self.date_from.setPlaceholderText("YYYYMMDD")
        self.date_to = QLineEdit(self)
        self.date_to.setPlaceholderText("YYYYMMDD")
        self.modality = QComboBox(self)
        for m in MODALITIES:
            self.modality.addItem(m or "any", m)
        self.search_button = QPushButton("Search", self)
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        for edit in (self.name, self.patient_id, self.date_from, self.date_to):
            edit.returnPressed.connect(self.search)

        self.study_table = self._table(["Patient", "Patient ID", "Date", "Description", "Modalities", "Series"])
        self.study_table.itemSelectionChanged.connect(self._study_selected)
        self.series_table = self._table(["#", "Modality", "Description", "Images"])
        self.series_table.itemSelectionChanged.connect(self._update_buttons)
        self.series_table.itemDoubleClicked.connect(lambda *_a: self.retrieve())

        self.retrieve_button = QPushButton("Retrieve into viewer", self)
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.store_button = QPushButton("Store segmentation to PACS", self)
        self.store_button.setToolTip("Send the current masks as a DICOM SEG that references the open series")
        self.store_button.clicked.connect(self.store_segmentation)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel(self)
        self.status.setObjectName("pacs_status")
        self.status.setWordWrap(True)
        self._build_layout()
        self.context.runner.progress.connect(self._on_progress)
        self.context.runner.busy_changed.connect(lambda _b: self._update_buttons())
        self.refresh_server()
        self.resize(900, 620)

    # ---- layout ------------------------------------------------------------------------------
    def _table(self, headers: list[str]) -> QTableWidget:
        table = QTableWidget(0, len(headers), self)
        table.setHorizontalHeaderLabels(headers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setStretchLastSection(True)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        return table

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.server, 1)
        top.addWidget(self.echo_button)
        top.addWidget(self.settings_button)
        form = QFormLayout()
        form.addRow("Patient name", self.name)
        form.addRow("Patient ID", self.patient_id)
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to", self))
        dates.addWidget(self.date_to)
        form.addRow("Study date", dates)
        row = QHBoxLayout()
        row.addWidget(self.modality)
        row.addStretch(1)
        row.addWidget(self.search_button)
        form.addRow("Modality", row)
        actions = QHBoxLayout()
        actions.addWidget(self.retrieve_button)
        actions.addWidget(self.progress, 1)
        actions.addWidget(self.cancel_button)
        actions.addWidget(self.store_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addWidget(QLabel("Studies", self))
        layout.addWidget(self.study_table, 3)
        layout.addWidget(QLabel("Series of the selected study", self))
        layout.addWidget(self.series_table, 2)
        layout.addLayout(actions)
        layout.addWidget(self.status)

    # ---- settings ----------------------------------------------------------------------------
    @property
    def pacs(self) -> PacsSettings:
        return self.controller.settings

    def refresh_server(self) -> None:
        self.server.setText(self.controller.gateway.describe())
        self._update_buttons()

    def edit_settings(self) -> None:
        dialog = PacsSettingsDialog(self.pacs, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_settings(dialog.values())

    def apply_settings(self, pacs: PacsSettings) -> None:
        """Use and remember new PACS settings (written to the settings file)."""
        problem = self.controller.apply_settings(pacs)
        if problem:
            self._say(problem)
        self.refresh_server()

    def _update_buttons(self) -> None:
        gateway = self.controller.gateway
        self.search_button.setEnabled(gateway.configured)
        self.echo_button.setEnabled(gateway.configured)
        self.retrieve_button.setEnabled(gateway.can_retrieve and self._selected_series() is not None)
        self.retrieve_button.setToolTip("" if gateway.can_retrieve
                                        else "Retrieving needs a DICOMweb server (set it in Settings…)")
        self.store_button.setEnabled(gateway.configured and self.context.document.volume is not None)
        self.cancel_button.setEnabled(self.context.runner.busy)

    # ---- helpers -----------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _failed(self, error: BaseException) -> None:
        self.progress.setValue(0)
        if isinstance(error, MedFusionError):
            self._say(str(error))
        self.context.show_error(error)
        self._update_buttons()

    def _on_progress(self, description: str, fraction: float, message: str) -> None:
        if description.startswith("PACS"):
            self.progress.setValue(int(round(100 * fraction)))
            self.progress.setFormat(message or "%p %")

    # ---- commands ----------------------------------------------------------------------------
    def test_connection(self) -> None:
        self._say("Testing the connection…")
        self.controller.test_connection(self._said, self._failed)
        self._update_buttons()

    def _said(self, text: str) -> None:
        self._say(text)
        self._update_buttons()

    def search(self) -> None:
        try:
            query = StudyQuery.from_text(self.name.text(), self.patient_id.text(), self.date_from.text(),
                                         self.date_to.text(), str(self.modality.currentData() or ""))
        except MedFusionError as err:
            self._failed(err)
            return
        self._say("Searching…")
        self.controller.search(query, self._show_studies, self._failed)
        self._update_buttons()

    def _show_studies(self, studies: list[StudySummary]) -> None:
        self.studies = list(studies)
        self.series = []
        self.series_table.setRowCount(0)
        self.study_table.setRowCount(len(self.studies))
        for row, s in enumerate(self.studies):
            values = [s.patient_name.replace("^", " "), s.patient_id, _pretty_date(s.study_date), s.description,
                      ", ".join(s.modalities), "" if s.n_series is None else str(s.n_series)]
            for col, text in enumerate(values):
                self.study_table.setItem(row, col, QTableWidgetItem(text))
        self._say(f"{len(self.studies)} stud{'y' if len(self.studies) == 1 else 'ies'} found.")
        self._update_buttons()

    def _selected_study(self) -> StudySummary | None:
        rows = self.study_table.selectionModel().selectedRows() if self.study_table.selectionModel() else []
        return self.studies[rows[0].row()] if rows and rows[0].row() < len(self.studies) else None

    def _selected_series(self) -> SeriesSummary | None:
        rows = self.series_table.selectionModel().selectedRows() if self.series_table.selectionModel() else []
        return self.series[rows[0].row()] if rows and rows[0].row() < len(self.series) else None

    def _study_selected(self) -> None:
        study = self._selected_study()
        self.series = []
        self.series_table.setRowCount(0)
        self._update_buttons()
        if study is None or not self.controller.gateway.can_retrieve:
            return
        self.controller.list_series(study, self._show_series, self._failed)
        self._update_buttons()

    def _show_series(self, series: list[SeriesSummary]) -> None:
        self.series = list(series)
        self.series_table.setRowCount(len(self.series))
        for row, s in enumerate(self.series):
            values = ["" if s.number is None else str(s.number), s.modality, s.description,
                      "" if s.n_instances is None else str(s.n_instances)]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                self.series_table.setItem(row, col, item)
        note, self._note = self._note, ""
        self._say(f"{note}{len(self.series)} series in this study; select one and press Retrieve (or double-click).")
        images = [i for i, s in enumerate(self.series) if s.modality != "SEG"]
        if images:
            self.series_table.selectRow(images[0])
        self._update_buttons()

    def retrieve(self) -> None:
        """Download the selected series (progress + cancel); the controller then opens it in the viewer."""
        series = self._selected_series()
        try:
            if series is None:
                raise MedFusionError("Select a series to retrieve.")
            self.controller.retrieve(series, self._retrieved, self._failed)
        except MedFusionError as err:
            self._failed(err)
            return
        self._say(f"Retrieving {series.modality} {series.description}…")
        self._update_buttons()

    def _retrieved(self, folder: Path) -> None:
        self.retrieved = Path(folder)
        self.progress.setValue(100)
        self._say(f"Retrieved {len(list(self.retrieved.glob('*.dcm')))} images; opening them.")
        self._update_buttons()

    def cancel(self) -> None:
        self.controller.cancel()
        self.progress.setValue(0)
        self._say("Cancelled.")
        self._update_buttons()

    def store_segmentation(self) -> None:
        """Encode the current masks as DICOM SEG (referencing the open series) and send it to the PACS."""
        try:
            self.controller.store_segmentation(self._stored, self._failed)
        except MedFusionError as err:
            self._failed(err)
            return
        self._say("Storing the segmentation…")
        self._update_buttons()

    def _stored(self, n: int) -> None:
        self.stored += n
        self._say("The segmentation was stored to the PACS.")
        self.context.show_status("Segmentation stored to the PACS.")
        self._update_buttons()
        study = self._selected_study()
        if study is not None and self.controller.gateway.can_retrieve:
            self._note = "The segmentation was stored to the PACS. "
            self._study_selected()  # show the new SEG series
