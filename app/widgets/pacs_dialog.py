"""File > PACS…: search a PACS, retrieve a series into the viewer, store our segmentation back.

Why every network call goes through ``window.runner``: a slow or unreachable PACS must never freeze
the viewer; search, series listing, retrieval (with progress + cancel) and store each run on their
own channel, and a failure becomes one sentence (``PacsError``) in the dialog and a message box.
DICOMweb is used when configured (search, retrieve, store); a DIMSE-only PACS gets C-FIND and
C-STORE (no retrieval: C-MOVE/C-GET are not implemented). Server settings come from
``Settings.pacs`` only (the Settings… button edits them).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

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

from app.widgets.settings_dialog import PacsSettingsDialog
from inference.errors import MedFusionError
from inference.pacs.common import PacsError, SeriesSummary, StudySummary
from inference.progress import CancelToken, ProgressCallback

MODALITIES = ("", "CT", "PT", "MR", "CR", "DX", "SEG", "US")
_DATE = re.compile(r"^\d{8}$")


def _date(text: str) -> str:
    value = text.strip().replace("-", "").replace(".", "").replace("/", "")
    if value and not _DATE.match(value):
        raise MedFusionError(f"'{text.strip()}' is not a date; write it as YYYYMMDD (e.g. 20221208).")
    return value


def _pretty_date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if _DATE.match(value or "") else value


class PacsDialog(QDialog):
    """Non-modal PACS browser bound to one main window."""

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setObjectName("pacs_dialog")
        self.setWindowTitle("PACS")
        self.window_ = window
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
        window.runner.progress.connect(self._on_progress)
        window.runner.busy_changed.connect(lambda _b: self._update_buttons())
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
    def pacs(self) -> Any:
        return self.window_.settings.pacs

    def refresh_server(self) -> None:
        p = self.pacs
        parts = []
        if p.dicomweb_url:
            parts.append(f"DICOMweb: {p.dicomweb_url}" + (f" (user {p.username})" if p.username else ""))
        if p.dimse_host:
            parts.append(f"DICOM: {p.dimse_called_aet}@{p.dimse_host}:{p.dimse_port}")
        self.server.setText(" · ".join(parts) or "No PACS configured — press Settings… to add one.")
        self._update_buttons()

    def edit_settings(self) -> None:
        dialog = PacsSettingsDialog(self.pacs, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_settings(dialog.values())

    def apply_settings(self, pacs: Any) -> None:
        """Use and remember new PACS settings (written to the settings file)."""
        self.window_.settings.pacs = pacs
        try:
            self.window_.settings.save(getattr(self.window_.loader, "settings_path", None))
        except OSError as exc:
            self._say(f"The settings could not be saved ({exc.strerror or exc}).")
        self.refresh_server()

    def _update_buttons(self) -> None:
        busy = self.window_.runner.busy
        web = bool(self.pacs.dicomweb_url)
        self.search_button.setEnabled(web or bool(self.pacs.dimse_host))
        self.echo_button.setEnabled(web or bool(self.pacs.dimse_host))
        self.retrieve_button.setEnabled(web and self._selected_series() is not None)
        self.retrieve_button.setToolTip("" if web else "Retrieving needs a DICOMweb server (set it in Settings…)")
        self.store_button.setEnabled((web or bool(self.pacs.dimse_host)) and self.window_.document.volume is not None)
        self.cancel_button.setEnabled(busy)

    # ---- helpers -----------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _failed(self, error: BaseException) -> None:
        self.progress.setValue(0)
        if isinstance(error, MedFusionError):
            self._say(str(error))
        self.window_.show_error(error)
        self._update_buttons()

    def _submit(self, channel: str, fn: Any, on_done: Any, description: str) -> None:
        self.window_.runner.submit(channel, fn, on_done, self._failed, description)
        self._update_buttons()

    def _web(self) -> Any:
        from inference.pacs.dicomweb import DicomWebClient

        return DicomWebClient(self.pacs)

    def _dimse(self) -> Any:
        from inference.pacs.dimse import DimseClient

        return DimseClient(self.pacs)

    def _on_progress(self, description: str, fraction: float, message: str) -> None:
        if description.startswith("PACS"):
            self.progress.setValue(int(round(100 * fraction)))
            self.progress.setFormat(message or "%p %")

    # ---- commands ----------------------------------------------------------------------------
    def test_connection(self) -> None:
        pacs = self.pacs

        def work(progress: ProgressCallback, cancel: CancelToken) -> str:
            if pacs.dimse_host:
                self._dimse().echo()
                return f"C-ECHO to {pacs.dimse_called_aet}@{pacs.dimse_host}:{pacs.dimse_port} succeeded."
            self._web().search_studies(limit=1)
            return f"The DICOMweb server at {pacs.dicomweb_url} answered."

        self._say("Testing the connection…")
        self._submit("pacs_echo", work, self._said, "PACS: test connection")

    def _said(self, text: str) -> None:
        self._say(text)
        self._update_buttons()

    def search(self) -> None:
        try:
            start, stop = _date(self.date_from.text()), _date(self.date_to.text())
        except MedFusionError as err:
            self._failed(err)
            return
        query = {"patient_name": self.name.text().strip(), "patient_id": self.patient_id.text().strip(),
                 "date_range": (start, stop) if start or stop else None,
                 "modality": str(self.modality.currentData() or "")}
        use_web = bool(self.pacs.dicomweb_url)

        def work(progress: ProgressCallback, cancel: CancelToken) -> list[StudySummary]:
            return self._web().search_studies(**query) if use_web else self._dimse().find_studies(**query)

        self._say("Searching…")
        self._submit("pacs_search", work, self._show_studies, "PACS: search")

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
        if study is None or not self.pacs.dicomweb_url:
            return

        def work(progress: ProgressCallback, cancel: CancelToken) -> list[SeriesSummary]:
            return self._web().list_series(study.study_uid)

        self._submit("pacs_series", work, self._show_series, "PACS: list series")

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
        """Download the selected series (progress + cancel), then open it in the viewer."""
        series = self._selected_series()
        if series is None:
            self._failed(MedFusionError("Select a series to retrieve."))
            return
        if series.modality == "SEG":
            self._failed(MedFusionError("Open the image series first, then File > Open segmentation for a SEG."))
            return
        dest = self.window_.settings.resolved_cache_dir() / "pacs"

        def work(progress: ProgressCallback, cancel: CancelToken) -> Path:
            return self._web().retrieve_series(series.study_uid, series.series_uid, dest, progress=progress,
                                               cancel=cancel)

        self._say(f"Retrieving {series.modality} {series.description}…")
        self._submit("pacs_retrieve", work, self._retrieved, "PACS: retrieve series")

    def _retrieved(self, folder: Path) -> None:
        self.retrieved = Path(folder)
        self.progress.setValue(100)
        self._say(f"Retrieved {len(list(self.retrieved.glob('*.dcm')))} images; opening them.")
        self._update_buttons()
        self.window_.open_path(self.retrieved)

    def cancel(self) -> None:
        for channel in ("pacs_retrieve", "pacs_search", "pacs_series", "pacs_store", "pacs_echo"):
            self.window_.runner.cancel(channel)
        self.progress.setValue(0)
        self._say("Cancelled.")
        self._update_buttons()

    def store_segmentation(self) -> None:
        """Encode the current masks as DICOM SEG (referencing the open series) and send it to the PACS."""
        export = getattr(self.window_, "export", None)
        try:
            if export is None:
                raise MedFusionError("Export is not available in this window.")
            snap = export.snapshot()
            volume = export.volume
            if not volume.source_files:
                raise MedFusionError("Only segmentations of images opened from DICOM can be stored to a PACS.")
        except MedFusionError as err:
            self._failed(err)
            return
        use_web, user = bool(self.pacs.dicomweb_url), self.window_.settings.user_name

        def work(progress: ProgressCallback, cancel: CancelToken) -> int:
            from inference.export.seg import write_seg
            from inference.progress import scaled

            with tempfile.TemporaryDirectory(prefix="medfusion-seg-") as tmp:
                path = write_seg(snap.labelmap, snap.labels, volume, Path(tmp) / "seg.dcm", creator=user,
                                 progress=scaled(progress, 0.0, 0.6), cancel=cancel)
                progress(0.7, "Sending to the PACS")
                n = self._web().store([path]) if use_web else self._dimse().store_files([path], cancel=cancel)
            if n < 1:
                raise PacsError("The PACS did not accept the segmentation.")
            progress(1.0, "Stored")
            return n

        self._say("Storing the segmentation…")
        self._submit("pacs_store", work, self._stored, "PACS: store segmentation")

    def _stored(self, n: int) -> None:
        self.stored += n
        self._say("The segmentation was stored to the PACS.")
        self.window_.show_status("Segmentation stored to the PACS.")
        self._update_buttons()
        study = self._selected_study()
        if study is not None and self.pacs.dicomweb_url:
            self._note = "The segmentation was stored to the PACS. "
            self._study_selected()  # show the new SEG series
