"""``install_segmentation(window)``: the segmentation tools, label layers, panel and menus on the shell.

After it, ``window.labels`` is the :class:`~app.model.labels.LabelsModel` (the contract other features
use) and ``window.segmentation`` the controller. The model is loaded lazily on a worker thread the first
time it is needed (a test or the demo can pass a loaded ``backend`` instead).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.controllers.segmentation import SegmentationController
from app.model.labels import LabelsModel
from app.seg_tools import SEG_TOOL_NAMES, BoxTool, BrushTool, EraserTool, PointTool
from app.widgets.label_overlay import LabelOverlay
from app.widgets.label_panel import LabelPanel
from inference.segmentation.backend import Embedding, SegmentationBackend
from inference.segmentation.cache import CacheKey, EmbeddingCache

VOLUME_FILTER = "NRRD (*.nrrd);;NIfTI (*.nii.gz *.nii)"
IMAGE_FILTER = "PNG (*.png);;NRRD (*.nrrd);;NIfTI (*.nii.gz *.nii)"
OPEN_FILTER = "Segmentations (*.nrrd *.nii *.nii.gz *.png);;All files (*)"


class LazyBackend:
    """Loads the real backend on first use (on a worker thread), so opening the viewer stays instant."""

    def __init__(self, factory: Callable[[], SegmentationBackend]) -> None:
        self._factory = factory
        self._backend: SegmentationBackend | None = None
        self._lock = threading.Lock()

    def get(self) -> SegmentationBackend:
        with self._lock:
            if self._backend is None:
                self._backend = self._factory()
            return self._backend

    @property
    def model_id(self) -> str:
        return self.get().model_id

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding:
        return self.get().embed(slice2d, window)

    def decode(self, embedding: Embedding, boxes: Any, points: Any = (), mask_prompt: Any = None) -> Any:
        return self.get().decode(embedding, boxes, points, mask_prompt)


class SingleFlightCache(EmbeddingCache):
    """An embedding cache where concurrent requests for one key wait for a single computation."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self._flights: dict[CacheKey, threading.Event] = {}
        self._flight_lock = threading.Lock()
        self.computed = 0

    def get_or_compute(self, key: CacheKey, compute: Callable[[], Embedding]) -> Embedding:
        while True:
            found = self.get(key)
            if found is not None:
                return found
            with self._flight_lock:
                event = self._flights.get(key)
                owner = event is None
                if owner:
                    event = self._flights[key] = threading.Event()
            assert event is not None
            if not owner:
                event.wait()  # the other thread finished (or failed): look again
                continue
            try:
                embedding = compute()
                self.put(key, embedding)
                self.computed += 1
                return embedding
            finally:
                with self._flight_lock:
                    self._flights.pop(key, None)
                event.set()


def _create_backend(settings: Any) -> SegmentationBackend:
    from inference.segmentation.factory import create_backend

    return create_backend(settings)


def install_segmentation(
    window: Any,  # MainWindow (not imported: avoids a cycle with app.launch)
    backend: SegmentationBackend | None = None,
    cache: EmbeddingCache | None = None,
) -> SegmentationController:
    """Add labels, tools (B box, K include/exclude, D brush, E eraser), the panel and the menu entries."""
    labels = LabelsModel()
    backend = backend or LazyBackend(lambda: _create_backend(window.settings))  # type: ignore[assignment]
    cache = cache or SingleFlightCache(int(window.settings.embedding_cache_mb) * 1024 * 1024)
    controller = SegmentationController(window, labels, backend, cache)  # type: ignore[arg-type]
    window.labels, window.segmentation = labels, controller
    controller.overlays = {name: LabelOverlay(view, labels) for name, view in window.views.items()}
    window.toolbar.addSeparator()
    for tool_cls in (BoxTool, PointTool, BrushTool, EraserTool):
        window.register_tool(tool_cls(window.document, controller))

    def on_tool(name: str) -> None:
        controller.tools_active = name in SEG_TOOL_NAMES
        if controller.tools_active and controller.current_z() != controller._precomputed_z:
            controller.precompute()

    window.tools.active_changed.connect(on_tool)
    panel = LabelPanel(labels, controller, window.document)
    window.segmentation_panel = panel
    window.add_panel("Segmentation", panel, name="segmentation")
    _add_actions(window, controller, labels, panel)
    return controller


def _add_actions(window: Any, controller: SegmentationController, labels: LabelsModel, panel: LabelPanel) -> None:
    add = window.add_action
    add("Segmentation", "Undo", controller.undo, name="seg_undo", shortcut="Ctrl+Z",
        tooltip="Undo the last segmentation gesture")
    redo = add("Segmentation", "Redo", controller.redo, name="seg_redo", shortcut="Ctrl+Shift+Z")
    redo.setShortcuts([redo.shortcut(), "Ctrl+Y"])
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

    save = add("File", "Save segmentation…", lambda: save_dialog(window, controller), name="save_segmentation",
               shortcut="Ctrl+Shift+S", tooltip="Masks to NRRD/NIfTI (volumes) or PNG (2-D images)")
    load = add("File", "Open segmentation…", lambda: open_dialog(window, controller), name="open_segmentation",
               tooltip="Re-open saved masks as labels of the current image")
    file_menu = window.menu("File")  # keep them above "Open recent"/"Quit"
    for action in (save, load):
        file_menu.removeAction(action)
        file_menu.insertAction(window.recent_menu.menuAction(), action)

    def on_volume(_v: object) -> None:
        on = window.document.volume is not None
        save.setEnabled(on)
        load.setEnabled(on)

    window.document.volume_changed.connect(on_volume)
    on_volume(None)


def _guard(controller: SegmentationController, fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - one sentence for the user
        controller.report(err)


def _clear_all(window: Any, controller: SegmentationController, labels: LabelsModel) -> None:
    if labels.session is None or not labels.names():
        return
    answer = QMessageBox.question(window, "Clear all masks", "Remove every mask? This cannot be undone.")
    if answer == QMessageBox.StandardButton.Yes:
        _guard(controller, labels.clear_all)


def default_mask_path(window: Any) -> Path:
    vol = window.document.volume
    source = Path(str(vol.source)) if vol is not None and vol.source else Path.home() / "image"
    folder = source.parent if source.suffix or source.is_file() else source.parent
    stem = source.name.split(".")[0] or "image"
    suffix = ".png" if vol is not None and vol.is_2d else ".nrrd"
    return folder / f"{stem}_segmentation{suffix}"


def save_dialog(window: Any, controller: SegmentationController) -> None:
    vol = window.document.volume
    if vol is None:
        return
    filters = IMAGE_FILTER if vol.is_2d else VOLUME_FILTER
    path, chosen = QFileDialog.getSaveFileName(window, "Save segmentation", str(default_mask_path(window)), filters)
    if path:
        if not Path(path).suffix:
            path += ".png" if chosen.startswith("PNG") else ".nii.gz" if chosen.startswith("NIfTI") else ".nrrd"
        controller.save(Path(path))


def open_dialog(window: Any, controller: SegmentationController) -> None:
    if window.document.volume is None:
        return
    labels = controller.labels
    if labels.raw_label_map() is not None and bool(np.any(labels.raw_label_map())):
        answer = QMessageBox.question(window, "Open segmentation", "Replace the current masks with the file's?")
        if answer != QMessageBox.StandardButton.Yes:
            return
    path, _ = QFileDialog.getOpenFileName(window, "Open segmentation", str(default_mask_path(window).parent),
                                          OPEN_FILTER)
    if path:
        controller.load(Path(path))
