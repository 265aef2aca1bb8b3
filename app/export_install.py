"""``install_export(window)``: export, PACS, sessions and crash recovery on the viewer shell.

Everything plugs in through the main window's registry (``add_action``) and the application context
(the controllers become ``context.export`` and ``context.session``). The File menu gets Open / Save
session, Export segmentation, Export PDF report, PACS… and PACS settings… above Quit, and the one
*Open segmentation…* entry (DICOM SEG, NRRD, NIfTI, PNG) above *Open recent*. Returns the
:class:`ExportWorkspace` (tests and the CLI drive it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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

from app.context import AppContext
from app.controllers.export import ExportController
from app.controllers.pacs import PacsController
from app.controllers.session_io import SessionController
from app.widgets.pacs_dialog import PacsDialog
from app.widgets.settings_dialog import PacsSettingsDialog
from inference.errors import MedFusionError

if TYPE_CHECKING:
    from app.main_window import MainWindow

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
    pacs: PacsController
    pacs_dialog: PacsDialog | None = None


def _start_dir(context: AppContext) -> Path:
    vol = context.document.volume
    if vol is not None and vol.source:
        source = Path(vol.source)
        return source.parent  # next to the file, or beside the DICOM folder
    return Path.home()


def _base_name(context: AppContext) -> str:
    vol = context.document.volume
    name = Path(vol.source).name if vol is not None and vol.source else "segmentation"
    for suffix in (".nii.gz", ".nii", ".nrrd", ".png", ".jpg", ".jpeg", ".dcm"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or "segmentation"


def install_export(window: MainWindow, recovery_dir: Path | None = None) -> ExportWorkspace:
    """Add the export / PACS / session commands to ``window``; returns the workspace."""
    context = window.context
    controller = ExportController(context)
    session = SessionController(context, recovery_dir, parent=window)
    pacs = PacsController(context, controller)
    context.export, context.session = controller, session
    workspace = ExportWorkspace(controller, session, pacs)
    from inference.pacs.retrieved import expire_retrieved

    # identified series retrieved from the PACS do not outlive their policy (also applied at every retrieval)
    expire_retrieved(context.settings.resolved_cache_dir() / "pacs", context.settings.pacs.retrieve_keep_hours)

    def export_segmentation() -> None:
        vol = context.document.volume
        if vol is None:
            context.show_error(MedFusionError("Open an image first."))
            return
        allowed = (["seg"] if vol.source_files else []) + (["png"] if vol.is_2d else []) + ["nrrd", "nifti"]
        start = _start_dir(context) / f"{_base_name(context)}_seg"
        dialog = ExportSegmentationDialog(controller.default_format(), allowed, start,
                                          bool(context.document.deidentify), window)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.path.text().strip():
            controller.export_segmentation(Path(dialog.path.text().strip()),
                                           deidentify=dialog.deidentify.isChecked() and dialog.current() == "seg")

    def open_segmentation() -> None:
        path, _ = QFileDialog.getOpenFileName(window, "Open segmentation", str(_start_dir(context)),
                                              SEG_OPEN_FILTER)
        if path:
            controller.open_segmentation(Path(path))

    def export_report() -> None:
        default = _start_dir(context) / f"{_base_name(context)}_report.pdf"
        path, _ = QFileDialog.getSaveFileName(window, "Export PDF report", str(default), "PDF (*.pdf)")
        if path:
            controller.export_report(Path(path))

    def save_session() -> None:
        default = _start_dir(context) / f"{_base_name(context)}.mfsession"
        path, _ = QFileDialog.getSaveFileName(window, "Save session", str(default), SESSION_FILTER)
        if path:
            session.save_session(Path(path))

    def open_session() -> None:
        path, _ = QFileDialog.getOpenFileName(window, "Open session", str(session.archive_dir), SESSION_FILTER)
        if path:
            session.open_session(Path(path))

    def pacs_dialog() -> PacsDialog:
        if workspace.pacs_dialog is None:
            workspace.pacs_dialog = PacsDialog(pacs, window)
        return workspace.pacs_dialog

    def show_pacs() -> None:
        dialog = pacs_dialog()
        dialog.refresh_server()
        dialog.show()
        dialog.raise_()

    def pacs_settings() -> None:
        dialog = PacsSettingsDialog(context.settings.pacs, window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            pacs_dialog().apply_settings(dialog.values())

    # One Open segmentation entry, beside the segmentation panel's Save (reads DICOM SEG too).
    open_seg = window.add_action(
        "File", "Open segmentation…", open_segmentation, name="open_segmentation", before="open_recent",
        tooltip="DICOM SEG (ours or another tool's), NRRD, NIfTI or PNG mask onto the open image")
    context.document.volume_changed.connect(lambda volume: open_seg.setEnabled(volume is not None))
    open_seg.setEnabled(context.document.volume is not None)
    entries = [
        ("Open session…", open_session, "open_session", None, "Reopen a saved session: image, masks, EHR edits"),
        ("Save session…", save_session, "save_session", "Ctrl+S", "Save image reference, masks, labels, EHR edits"),
        (None, None, None, None, None),
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
        if text is None or callback is None or name is None:
            window.add_separator("File", before="quit")
            continue
        window.add_action("File", text, callback, name=name, shortcut=shortcut, tooltip=tip or "", before="quit")
    return workspace
