"""``install_export(window)``: export, PACS, sessions and crash recovery on the viewer shell.

Everything plugs in through the main window's registry (``add_action``); the File menu gets Open /
Save session, Open / Export segmentation, Export PDF report, PACS… and PACS settings…, inserted above
Quit. ``window.export`` is the :class:`ExportWorkspace` (tests and the CLI drive it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

from app.controllers.export import ExportController
from app.controllers.session_io import SessionController
from app.widgets.pacs_dialog import PacsDialog
from app.widgets.settings_dialog import PacsSettingsDialog

SESSION_FILTER = "MedFusion session (*.mfsession);;All files (*)"
SEG_OPEN_FILTER = "Segmentations (*.dcm *.dicom *.seg *.nrrd *.nii *.nii.gz *.png);;All files (*)"
FORMATS = {  # key: (menu text, suffix)
    "seg": ("DICOM SEG (.dcm)", ".dcm"),
    "nrrd": ("NRRD (.nrrd)", ".nrrd"),
    "nifti": ("NIfTI (.nii.gz)", ".nii.gz"),
    "png": ("PNG (2-D images)", ".png"),
}


class ExportSegmentationDialog(QDialog):
    """Format, file and the de-identify option for File > Export segmentation."""

    def __init__(self, default_format: str, allowed: list[str], start: Path, deidentify: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("export_segmentation_dialog")
        self.setWindowTitle("Export segmentation")
        self.format = QComboBox(self)
        for key in allowed:
            self.format.addItem(FORMATS[key][0], key)
        self.format.setCurrentIndex(max(0, allowed.index(default_format) if default_format in allowed else 0))
        self.path = QLineEdit(str(start.with_suffix("")) + FORMATS[self.current()][1], self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.deidentify = QCheckBox("De-identify (PS3.15 basic profile; also writes a de-identified copy of "
                                    "the series so the SEG references it)", self)
        self.deidentify.setChecked(deidentify)
        self.format.currentIndexChanged.connect(self._format_changed)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Format", self.format)
        form.addRow("File", row)
        form.addRow("", self.deidentify)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
                                   self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._format_changed()

    def current(self) -> str:
        return str(self.format.currentData())

    def _format_changed(self, *_args: object) -> None:
        self.deidentify.setEnabled(self.current() == "seg")
        text = self.path.text()
        for _name, suffix in FORMATS.values():
            if text.lower().endswith(suffix):
                text = text[: -len(suffix)]
                break
        self.path.setText(text + FORMATS[self.current()][1])

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export segmentation", self.path.text(),
                                              f"{FORMATS[self.current()][0]};;All files (*)")
        if path:
            self.path.setText(path)


@dataclass
class ExportWorkspace:
    """Handles to the installed parts."""

    controller: ExportController
    session: SessionController
    pacs_dialog: PacsDialog | None = None

    # ExportController API, reachable as window.export.snapshot() etc. (used by the PACS dialog)
    def snapshot(self) -> Any:
        return self.controller.snapshot()

    @property
    def volume(self) -> Any:
        return self.controller.volume


def _start_dir(window: Any) -> Path:
    vol = window.document.volume
    if vol is not None and vol.source:
        source = Path(vol.source)
        return source.parent  # next to the file, or beside the DICOM folder
    return Path.home()


def _base_name(window: Any) -> str:
    vol = window.document.volume
    name = Path(vol.source).name if vol is not None and vol.source else "segmentation"
    for suffix in (".nii.gz", ".nii", ".nrrd", ".png", ".jpg", ".jpeg", ".dcm"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or "segmentation"


def install_export(window: Any, recovery_dir: Path | None = None) -> ExportWorkspace:  # MainWindow
    """Add the export / PACS / session commands to ``window``; returns the workspace (``window.export``)."""
    controller = ExportController(window)
    session = SessionController(window, recovery_dir)
    workspace = ExportWorkspace(controller, session)
    window.export = workspace
    from inference.pacs.retrieved import expire_retrieved

    # identified series retrieved from the PACS do not outlive their policy (also applied at every retrieval)
    expire_retrieved(window.settings.resolved_cache_dir() / "pacs", window.settings.pacs.retrieve_keep_hours)

    def export_segmentation() -> None:
        vol = window.document.volume
        if vol is None:
            window.show_error(controller_error("Open an image first."))
            return
        allowed = (["seg"] if vol.source_files else []) + (["png"] if vol.is_2d else []) + ["nrrd", "nifti"]
        start = _start_dir(window) / f"{_base_name(window)}_seg"
        dialog = ExportSegmentationDialog(controller.default_format(), allowed, start,
                                          bool(window.document.deidentify), window)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.path.text().strip():
            controller.export_segmentation(Path(dialog.path.text().strip()),
                                           deidentify=dialog.deidentify.isChecked() and dialog.current() == "seg")

    def open_segmentation() -> None:
        path, _ = QFileDialog.getOpenFileName(window, "Open segmentation", str(_start_dir(window)), SEG_OPEN_FILTER)
        if path:
            controller.open_segmentation(Path(path))

    def export_report() -> None:
        default = _start_dir(window) / f"{_base_name(window)}_report.pdf"
        path, _ = QFileDialog.getSaveFileName(window, "Export PDF report", str(default), "PDF (*.pdf)")
        if path:
            controller.export_report(Path(path))

    def save_session() -> None:
        default = _start_dir(window) / f"{_base_name(window)}.mfsession"
        path, _ = QFileDialog.getSaveFileName(window, "Save session", str(default), SESSION_FILTER)
        if path:
            session.save_session(Path(path))

    def open_session() -> None:
        path, _ = QFileDialog.getOpenFileName(window, "Open session", str(session.archive_dir), SESSION_FILTER)
        if path:
            session.open_session(Path(path))

    def show_pacs() -> None:
        if workspace.pacs_dialog is None:
            workspace.pacs_dialog = PacsDialog(window)
        workspace.pacs_dialog.refresh_server()
        workspace.pacs_dialog.show()
        workspace.pacs_dialog.raise_()

    def pacs_settings() -> None:
        dialog = PacsSettingsDialog(window.settings.pacs, window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            if workspace.pacs_dialog is None:
                workspace.pacs_dialog = PacsDialog(window)
            workspace.pacs_dialog.apply_settings(dialog.values())

    file_menu = window.menu("File")
    quit_action = window.actions.get("quit")
    entries = [
        ("Open session…", open_session, "open_session", None, "Reopen a saved session: image, masks, EHR edits"),
        ("Save session…", save_session, "save_session", "Ctrl+S", "Save image reference, masks, labels, EHR edits"),
        (None, None, None, None, None),
        ("Open segmentation…", open_segmentation, "open_segmentation", None,
         "DICOM SEG (ours or another tool's), NRRD, NIfTI or PNG mask onto the open image"),
        ("Export segmentation…", export_segmentation, "export_segmentation", "Ctrl+E",
         "DICOM SEG for DICOM images, NRRD/NIfTI for volumes, PNG for 2-D images"),
        ("Export PDF report…", export_report, "export_report", "Ctrl+Shift+E",
         "Key image with masks and explanation, measurements, predictions, model and audit summary"),
        (None, None, None, None, None),
        ("PACS…", show_pacs, "pacs", "Ctrl+Alt+P", "Search a PACS, retrieve a series, store the segmentation"),
        ("PACS settings…", pacs_settings, "pacs_settings", None, "DICOMweb address, DICOM node, credentials"),
        (None, None, None, None, None),
    ]
    for text, callback, name, shortcut, tip in entries:
        if text is None:
            file_menu.insertSeparator(quit_action) if quit_action is not None else file_menu.addSeparator()
            continue
        existing = window.actions.get(name)
        if existing is not None and name == "open_segmentation":
            # The segmentation tools' Open (NRRD/NIfTI/PNG, same sidecar) becomes ours, which also reads
            # DICOM SEG: one menu entry, not two.
            existing.triggered.disconnect()
            existing.triggered.connect(lambda *_a, cb=callback: cb())
            existing.setToolTip(tip or "")
            existing.setStatusTip(tip or "")
            continue
        action = window.add_action("File", text, callback, name=name, shortcut=shortcut, tooltip=tip or "")
        if quit_action is not None:
            file_menu.removeAction(action)
            file_menu.insertAction(quit_action, action)
    return workspace


def controller_error(message: str) -> Exception:
    from inference.errors import MedFusionError

    return MedFusionError(message)
