"""Export and re-open segmentations and the PDF report, off the UI thread.

Why snapshot-then-work: the label map is copied on the UI thread (the user may keep editing while a
SEG is encoded), then highdicom / SimpleITK / reportlab run on ``context.runner`` with progress and
cancel. The file formats themselves live in :mod:`inference.export.mask_files`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.context import AppContext
from app.model.label_snapshot import restore_labels, snapshot_labels
from inference.errors import MedFusionError
from inference.export.labels import SegmentLabel
from inference.export.mask_files import (
    SEG_SUFFIXES,
    LabelSnapshot,
    mask_suffix,
    read_mask_file,
    write_mask_file,
)
from inference.io.volume import Volume
from inference.progress import CancelToken, ProgressCallback

if TYPE_CHECKING:  # the PDF stack (reportlab, matplotlib, scipy) is imported when a report is made
    from app.controllers.report_builder import ReportInputs

log = logging.getLogger("medfusion.app.export")


class ExportController:
    """File > Export segmentation / Open segmentation / Export PDF report (all on the runner)."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    # ---- helpers -----------------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return self.context.document.volume

    def _require_volume(self) -> Volume:
        if self.volume is None:
            raise MedFusionError("Open an image first.")
        return self.volume

    def snapshot(self) -> LabelSnapshot:
        """The current masks; raises a clear sentence when there is nothing to export."""
        self._require_volume()
        snap = snapshot_labels(self.context.labels, self.context.settings.segmentation_backend)
        if snap is None or snap.empty:
            raise MedFusionError("There is no segmentation to export: draw or predict a mask first.")
        return snap

    def default_format(self) -> str:
        """'seg' for DICOM images, 'png' for 2-D pictures, else 'nrrd'."""
        vol = self.volume
        if vol is not None and vol.source_files:
            return "seg"
        return "png" if vol is not None and vol.is_2d else "nrrd"

    def _submit(self, fn: Callable[[ProgressCallback, CancelToken], Any], on_done: Callable[[Any], None],
                description: str) -> None:
        self.context.runner.submit("export", fn, on_done, self.context.show_error, description)

    # ---- segmentation ------------------------------------------------------------------------
    def export_segmentation(self, path: Path, *, deidentify: bool = False,
                            on_done: Callable[[Path], None] | None = None) -> None:
        """DICOM SEG (``.dcm``), NRRD / NIfTI or PNG by suffix. With ``deidentify`` a SEG is written
        de-identified together with a de-identified copy of its series (``<name>_series/``), linked by UIDs."""
        try:
            snap = self.snapshot()
            volume = self._require_volume()
        except MedFusionError as err:
            self.context.show_error(err)
            return
        path = Path(path)
        user = self.context.settings.user_name

        def work(progress: ProgressCallback, cancel: CancelToken) -> Path:
            if mask_suffix(path) in SEG_SUFFIXES:
                from inference.export.deid import Deidentifier
                from inference.export.seg import write_seg, write_series_copy
                from inference.progress import scaled

                deid = Deidentifier() if deidentify else None
                if deid is not None:
                    write_series_copy(volume, path.with_name(f"{path.stem}_series"), deidentifier=deid,
                                      progress=scaled(progress, 0.0, 0.5), cancel=cancel)
                return write_seg(snap.labelmap, snap.labels, volume, path, deidentifier=deid, creator=user,
                                 progress=scaled(progress, 0.5 if deid else 0.0, 1.0), cancel=cancel)
            progress(0.1, "Writing mask")
            return write_mask_file(snap, volume, path)

        def done(written: Path) -> None:
            self.context.show_status(f"Segmentation saved to {written}.")
            if on_done is not None:
                on_done(written)

        self._submit(work, done, "Exporting segmentation")

    def open_segmentation(self, path: Path, on_done: Callable[[int], None] | None = None) -> None:
        """Read a SEG / mask file onto the open image and show it in the labels model."""
        try:
            volume = self._require_volume()
        except MedFusionError as err:
            self.context.show_error(err)
            return

        def work(progress: ProgressCallback, cancel: CancelToken) -> tuple[np.ndarray, list[SegmentLabel]]:
            progress(0.1, "Reading segmentation")
            return read_mask_file(Path(path), volume)

        def done(result: tuple[np.ndarray, list[SegmentLabel]]) -> None:
            labelmap, labels = result
            if self.context.document.volume is not volume:
                return  # another image was opened meanwhile
            try:
                restore_labels(self.context.labels, labelmap, labels)
            except MedFusionError as err:
                self.context.show_error(err)
                return
            self.context.show_status(f"Opened {len(labels)} segment(s) from {Path(path).name}.")
            if on_done is not None:
                on_done(len(labels))

        self._submit(work, done, "Opening segmentation")

    # ---- report ------------------------------------------------------------------------------
    def report_inputs(self, deidentified: bool | None = None) -> ReportInputs:
        """What the report shows now: current slice and window, masks, clinical results if any."""
        from app.controllers.report_builder import ReportInputs

        volume = self._require_volume()
        doc = self.context.document
        snap = snapshot_labels(self.context.labels, self.context.settings.segmentation_backend)
        model, clinical = self.context.case, self.context.clinical
        z = int(round(float(doc.cursor[2]))) if doc.cursor is not None else volume.shape[0] // 2
        return ReportInputs(
            volume=volume, study=doc.study_info(), deidentified=bool(doc.deidentify if deidentified is None
                                                                     else deidentified),
            slice_index=z, window=(float(doc.level), float(doc.window)),
            labelmap=snap.labelmap if snap is not None and not snap.empty else None,
            labels=snap.labels if snap is not None else [],
            clinical_model=model if model.case is not None else None,
            audit=clinical.audit if clinical is not None else None,
            author=self.context.settings.user_name,
            sections=self.context.collect_report_sections())

    def export_report(self, path: Path, *, deidentified: bool | None = None,
                      on_done: Callable[[Path], None] | None = None) -> None:
        try:
            inputs = self.report_inputs(deidentified)
        except MedFusionError as err:
            self.context.show_error(err)
            return

        def work(progress: ProgressCallback, cancel: CancelToken) -> Path:
            from app.controllers.report_builder import write_viewer_report

            progress(0.2, "Composing report")
            return write_viewer_report(inputs, Path(path))

        def done(written: Path) -> None:
            self.context.show_status(f"Report saved to {written}.")
            if on_done is not None:
                on_done(written)

        self._submit(work, done, "Writing PDF report")
