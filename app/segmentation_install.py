"""``install_segmentation(window)``: the segmentation tools, label layers, panel and menus on the shell.

The labels model is the context's (``context.labels``, the contract other features use); this feature
binds it to a fresh segmentation session per image through its controller, which becomes
``context.segmentation``. The model is loaded lazily on a worker thread the first time it is needed
(a test or the demo can pass a loaded ``backend`` instead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.controllers.segmentation import SegmentationController
from app.model.labels import LabelsModel
from app.seg_tools import SEG_TOOL_NAMES, BoxTool, BrushTool, EraserTool, PointTool
from app.widgets.label_overlay import LabelOverlay
from app.widgets.label_panel import LabelPanel
from inference.io.volume import Volume
from inference.segmentation.backend import SegmentationBackend
from inference.segmentation.cache import EmbeddingCache, SingleFlightCache
from inference.segmentation.factory import LazyBackend, create_backend

if TYPE_CHECKING:
    from app.main_window import MainWindow

VOLUME_FILTER = "NRRD (*.nrrd);;NIfTI (*.nii.gz *.nii)"
IMAGE_FILTER = "PNG (*.png);;NRRD (*.nrrd);;NIfTI (*.nii.gz *.nii)"


@dataclass
class SegmentationWorkspace:
    """Handles to the installed parts (tests and benchmarks drive them)."""

    controller: SegmentationController
    panel: LabelPanel
    overlays: dict[str, LabelOverlay]


def install_segmentation(
    window: MainWindow,
    backend: SegmentationBackend | None = None,
    cache: EmbeddingCache | None = None,
) -> SegmentationWorkspace:
    """Add tools (B box, K include/exclude, D brush, E eraser), label overlays, the panel and the menu entries."""
    context = window.context
    settings = context.settings
    model: SegmentationBackend = backend or LazyBackend(lambda: create_backend(settings))
    cache = cache or SingleFlightCache(int(settings.embedding_cache_mb) * 1024 * 1024)
    controller = SegmentationController(context, model, cache, parent=window)
    context.segmentation = controller
    labels = context.labels
    overlays = {name: LabelOverlay(view, labels) for name, view in window.views.items()}
    window.toolbar.addSeparator()
    for tool_cls in (BoxTool, PointTool, BrushTool, EraserTool):
        window.register_tool(tool_cls(context.document, controller, overlays))

    def on_tool(name: str) -> None:
        controller.tools_active = name in SEG_TOOL_NAMES
        if controller.tools_active and controller.current_z() != controller.precomputed_z:
            controller.precompute()

    window.tools.active_changed.connect(on_tool)
    panel = LabelPanel(labels, controller, context.document)
    window.add_panel("Segmentation", panel, name="segmentation")
    _add_actions(window, controller, labels, panel)
    return SegmentationWorkspace(controller, panel, overlays)


def _add_actions(window: MainWindow, controller: SegmentationController, labels: LabelsModel, panel: LabelPanel) -> None:
    add = window.add_action
    add("Segmentation", "Undo", controller.undo, name="seg_undo", shortcut="Ctrl+Z",
        tooltip="Undo the last segmentation gesture")
    redo = add("Segmentation", "Redo", controller.redo, name="seg_redo", shortcut="Ctrl+Shift+Z")
    redo.setShortcuts([redo.shortcut(), QKeySequence("Ctrl+Y")])
    add("Segmentation", "Propagate through slices", panel.propagate, name="seg_propagate",
        shortcut="Ctrl+Shift+P", tooltip="Carry the active label to the neighbouring slices")
    cancel = add("Segmentation", "Cancel segmentation", controller.cancel, name="seg_cancel", shortcut="Esc")
    cancel.setEnabled(False)  # only while busy, so Esc stays free for dialogs and the tour otherwise
    controller.busy_changed.connect(cancel.setEnabled)
    window.menu("Segmentation").addSeparator()
    add("Segmentation", "New label", lambda: _guard(controller, labels.add_label), name="seg_new_label",
        shortcut="Ctrl+Shift+N")

    def brush_step(delta: int) -> None:
        panel.brush_size.setValue(panel.brush_size.value() + delta)
        controller.say(f"Brush radius {controller.brush_radius} px")

    add("Segmentation", "Smaller brush", lambda: brush_step(-1), name="seg_brush_smaller", shortcut="[")
    add("Segmentation", "Larger brush", lambda: brush_step(+1), name="seg_brush_larger", shortcut="]")
    add("Segmentation", "Clear all masks…", lambda: _clear_all(window, controller, labels), name="seg_clear")

    # File > Open segmentation… (which also reads DICOM SEG) belongs to the export feature
    save = add("File", "Save segmentation…", lambda: save_dialog(window, controller), name="save_segmentation",
               shortcut="Ctrl+Shift+S", tooltip="Masks to NRRD/NIfTI (volumes) or PNG (2-D images)",
               before="open_recent")
    window.document.volume_changed.connect(lambda volume: save.setEnabled(volume is not None))
    save.setEnabled(window.document.volume is not None)


def _guard(controller: SegmentationController, fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - one sentence for the user
        controller.report(err)


def _clear_all(window: MainWindow, controller: SegmentationController, labels: LabelsModel) -> None:
    if labels.session is None or not labels.names():
        return
    answer = QMessageBox.question(window, "Clear all masks", "Remove every mask? This cannot be undone.")
    if answer == QMessageBox.StandardButton.Yes:
        _guard(controller, labels.clear_all)


def default_mask_path(volume: Volume | None) -> Path:
    """``<image>_segmentation.nrrd`` (``.png`` for 2-D images) next to the open image."""
    vol = volume
    source = Path(str(vol.source)) if vol is not None and vol.source else Path.home() / "image"
    folder = source.parent if source.suffix or source.is_file() else source.parent
    stem = source.name.split(".")[0] or "image"
    suffix = ".png" if vol is not None and vol.is_2d else ".nrrd"
    return folder / f"{stem}_segmentation{suffix}"


def save_dialog(window: MainWindow, controller: SegmentationController) -> None:
    vol = window.document.volume
    if vol is None:
        return
    filters = IMAGE_FILTER if vol.is_2d else VOLUME_FILTER
    path, chosen = QFileDialog.getSaveFileName(window, "Save segmentation", str(default_mask_path(vol)), filters)
    if path:
        if not Path(path).suffix:
            path += ".png" if chosen.startswith("PNG") else ".nii.gz" if chosen.startswith("NIfTI") else ".nrrd"
        controller.save(Path(path))
