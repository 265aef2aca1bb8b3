"""Export and re-open segmentations and the PDF report, off the UI thread.

Why snapshot-then-work: the label map is copied on the UI thread (the user may keep editing while a
SEG is encoded), then highdicom / SimpleITK / reportlab run on ``window.runner`` with progress and
cancel. The labels model is reached only through its contract (``names``, ``label_map``, ``values``,
``colour``, ``origin``, ``set_masks``), so this works with whichever model the segmentation tools install.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.model.label_stats import present_values
from inference.errors import MedFusionError
from inference.export.labels import SegmentLabel
from inference.io.loader import has_dicom_preamble
from inference.progress import CancelToken, ProgressCallback

if TYPE_CHECKING:  # the PDF stack (reportlab, matplotlib, scipy) is imported when a report is made
    from app.controllers.report_builder import ReportInputs

log = logging.getLogger("medfusion.app.export")

# labels-model origin <-> SegmentLabel / DICOM SEG algorithm type
ORIGIN_TO_ALGORITHM = {"AI": "AI", "MANUAL": "MANUAL", "AI_CORRECTED": "AI-corrected"}
ALGORITHM_TO_ORIGIN = {v: k for k, v in ORIGIN_TO_ALGORITHM.items()}
BACKEND_NAMES = {"litemedsam": ("LiteMedSAM", "litemedsam-v1"), "medsam2": ("MedSAM2", "medsam2")}
SEG_SUFFIXES = (".dcm", ".dicom", ".seg")
VOLUME_SUFFIXES = (".nrrd", ".nii", ".nii.gz")


def _suffix(path: Path) -> str:
    return ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix.lower()


def labels_sidecar(path: Path) -> Path:
    """``mask.nrrd`` → ``mask.nrrd.labels.json``: names, colours, origins that NRRD/NIfTI/PNG cannot hold
    (the same sidecar the segmentation panel's Save/Open uses, so the files go both ways)."""
    from app.controllers.segmentation import sidecar_path

    return sidecar_path(Path(path))


@dataclass
class LabelSnapshot:
    """A copy of the labels model at one moment (safe to hand to a worker thread)."""

    labelmap: np.ndarray  # uint8 [z, y, x]
    labels: list[SegmentLabel]

    @property
    def empty(self) -> bool:
        return not self.labels or not bool(self.labelmap.any())


def snapshot_labels(labels_model: Any, backend: str = "litemedsam") -> LabelSnapshot | None:
    """Copy the labels model into a label map + label table; None when there is no model or no mask."""
    if labels_model is None:
        return None
    try:
        label_map = labels_model.label_map()
    except MedFusionError:  # no image bound to the labels model yet
        return None
    if label_map is None:
        return None
    values = labels_model.values()
    algo_name, algo_version = BACKEND_NAMES.get(backend, (backend, ""))
    table = []
    for name in labels_model.names():
        origin = str(labels_model.origin(name) or "MANUAL")
        algorithm = ORIGIN_TO_ALGORITHM.get(origin, "MANUAL")
        colour = tuple(int(c) for c in tuple(labels_model.colour(name))[:3])
        table.append(SegmentLabel(
            value=int(values[name]), name=str(name), colour=colour,  # type: ignore[arg-type]
            algorithm_type=algorithm, algorithm_name=algo_name if algorithm != "MANUAL" else "",
            algorithm_version=algo_version if algorithm != "MANUAL" else ""))
    return LabelSnapshot(np.asarray(label_map, dtype=np.uint8), table)  # label_map() is already a copy


def restore_labels(labels_model: Any, labelmap: np.ndarray, labels: list[SegmentLabel]) -> None:
    """Put a label map + table back into the labels model (``set_masks`` of the contract)."""
    if labels_model is None:
        raise MedFusionError("Segmentation tools are not available, so masks cannot be shown.")
    present = present_values(labelmap)
    table = [(lab.name, lab.value, tuple(lab.colour)) for lab in labels]
    known = {lab.value for lab in labels}
    table += [(f"Label {v}", v, (255, 0, 0)) for v in sorted(present - known)]
    origins = {lab.name: ALGORITHM_TO_ORIGIN.get(lab.algorithm_type, "MANUAL") for lab in labels}
    labels_model.set_masks(np.asarray(labelmap, dtype=np.uint8), table, origins)


def write_mask_file(snapshot: LabelSnapshot, reference: Any, path: Path) -> Path:
    """NRRD / NIfTI / PNG mask in the image geometry plus the label-table sidecar JSON."""
    from inference.io.writers import save_mask

    suffix = _suffix(path)
    if suffix == ".png" and not reference.is_2d:
        raise MedFusionError("PNG masks are for 2-D images; save a 3-D segmentation as NRRD or NIfTI.")
    if suffix not in (*VOLUME_SUFFIXES, ".png"):
        raise MedFusionError(f"Segmentations can be saved as DICOM SEG, NRRD, NIfTI or PNG, not '{path.name}'.")
    try:
        save_mask(snapshot.labelmap, reference, path)
    except ValueError as exc:
        raise MedFusionError(f"The mask could not be saved ({exc}).") from exc
    table = [{"name": lab.name, "value": lab.value, "colour": list(lab.colour),
              "origin": ALGORITHM_TO_ORIGIN.get(lab.algorithm_type, "MANUAL"), "algorithm_name": lab.algorithm_name,
              "algorithm_version": lab.algorithm_version} for lab in snapshot.labels]
    labels_sidecar(path).write_text(json.dumps({"labels": table}, indent=1))
    return path


def read_mask_file(path: Path, reference: Any) -> tuple[np.ndarray, list[SegmentLabel]]:
    """A DICOM SEG (ours or another tool's) or a NRRD/NIfTI/PNG mask (+ sidecar table if present)."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix in SEG_SUFFIXES or has_dicom_preamble(path):
        from inference.export.seg import read_seg

        return read_seg(path, reference)
    from inference.io.writers import load_mask

    labelmap = load_mask(path, reference)
    if labelmap.shape != reference.shape:
        raise MedFusionError("The mask does not have the size of the open image.")
    if reference.is_2d and suffix == ".png" and labelmap.max(initial=0) == 255 and set(np.unique(labelmap)) <= {0, 255}:
        labelmap = (labelmap > 0).astype(np.uint8)  # a binary PNG mask saved as 0/255
    from app.controllers.segmentation import read_label_table

    rows, origins = read_label_table(path, labelmap)
    labels = [SegmentLabel(value=int(value), name=str(name), colour=tuple(colour) if colour else (255, 0, 0),  # type: ignore[arg-type]
                           algorithm_type=ORIGIN_TO_ALGORITHM.get(origins.get(str(name), "MANUAL"), "MANUAL"))
              for name, value, colour in rows]
    return labelmap.astype(np.uint8), labels


class ExportController:
    """File > Export segmentation / Open segmentation / Export PDF report (all on the runner)."""

    def __init__(self, window: Any) -> None:
        self.window = window

    # ---- helpers -----------------------------------------------------------------------------
    @property
    def volume(self) -> Any:
        return self.window.document.volume

    def _require_volume(self) -> Any:
        if self.volume is None:
            raise MedFusionError("Open an image first.")
        return self.volume

    def snapshot(self) -> LabelSnapshot:
        """The current masks; raises a clear sentence when there is nothing to export."""
        self._require_volume()
        snap = snapshot_labels(getattr(self.window, "labels", None), self.window.settings.segmentation_backend)
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
        self.window.runner.submit("export", fn, on_done, self.window.show_error, description)

    # ---- segmentation ------------------------------------------------------------------------
    def export_segmentation(self, path: Path, *, deidentify: bool = False,
                            on_done: Callable[[Path], None] | None = None) -> None:
        """DICOM SEG (``.dcm``), NRRD / NIfTI or PNG by suffix. With ``deidentify`` a SEG is written
        de-identified together with a de-identified copy of its series (``<name>_series/``), linked by UIDs."""
        try:
            snap = self.snapshot()
            volume = self._require_volume()
        except MedFusionError as err:
            self.window.show_error(err)
            return
        path = Path(path)
        user = self.window.settings.user_name

        def work(progress: ProgressCallback, cancel: CancelToken) -> Path:
            if _suffix(path) in SEG_SUFFIXES:
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
            self.window.show_status(f"Segmentation saved to {written}.")
            if on_done is not None:
                on_done(written)

        self._submit(work, done, "Exporting segmentation")

    def open_segmentation(self, path: Path, on_done: Callable[[int], None] | None = None) -> None:
        """Read a SEG / mask file onto the open image and show it in the labels model."""
        try:
            volume = self._require_volume()
        except MedFusionError as err:
            self.window.show_error(err)
            return

        def work(progress: ProgressCallback, cancel: CancelToken) -> tuple[np.ndarray, list[SegmentLabel]]:
            progress(0.1, "Reading segmentation")
            return read_mask_file(Path(path), volume)

        def done(result: tuple[np.ndarray, list[SegmentLabel]]) -> None:
            labelmap, labels = result
            if self.window.document.volume is not volume:
                return  # another image was opened meanwhile
            try:
                restore_labels(getattr(self.window, "labels", None), labelmap, labels)
            except MedFusionError as err:
                self.window.show_error(err)
                return
            self.window.show_status(f"Opened {len(labels)} segment(s) from {Path(path).name}.")
            if on_done is not None:
                on_done(len(labels))

        self._submit(work, done, "Opening segmentation")

    # ---- report ------------------------------------------------------------------------------
    def report_inputs(self, deidentified: bool | None = None) -> ReportInputs:
        """What the report shows now: current slice and window, masks, clinical results if any."""
        from app.controllers.report_builder import ReportInputs

        volume = self._require_volume()
        doc = self.window.document
        snap = snapshot_labels(getattr(self.window, "labels", None), self.window.settings.segmentation_backend)
        clinical = getattr(self.window, "clinical", None)
        model = clinical.model if clinical is not None else None
        z = int(round(float(doc.cursor[2]))) if doc.cursor is not None else volume.shape[0] // 2
        return ReportInputs(
            volume=volume, study=doc.study_info(), deidentified=bool(doc.deidentify if deidentified is None
                                                                     else deidentified),
            slice_index=z, window=(float(doc.level), float(doc.window)),
            labelmap=snap.labelmap if snap is not None and not snap.empty else None,
            labels=snap.labels if snap is not None else [],
            clinical_model=model if model is not None and model.case is not None else None,
            audit=clinical.controller.audit if clinical is not None else None,
            author=self.window.settings.user_name)

    def export_report(self, path: Path, *, deidentified: bool | None = None,
                      on_done: Callable[[Path], None] | None = None) -> None:
        try:
            inputs = self.report_inputs(deidentified)
        except MedFusionError as err:
            self.window.show_error(err)
            return

        def work(progress: ProgressCallback, cancel: CancelToken) -> Path:
            from app.controllers.report_builder import write_viewer_report

            progress(0.2, "Composing report")
            return write_viewer_report(inputs, Path(path))

        def done(written: Path) -> None:
            self.window.show_status(f"Report saved to {written}.")
            if on_done is not None:
                on_done(written)

        self._submit(work, done, "Writing PDF report")
