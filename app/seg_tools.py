"""Segmentation mouse tools for the slice views: box prompt, include/exclude clicks, brush and eraser.

The model tools (box, include/exclude) work in the view that shows whole slices of the label map (axial
for CT, the image for X-rays): the model segments 2-D axial slices, its prompts are ``(x, y)`` pixels on
slice ``z``. On the coronal and sagittal views they say so instead of acting (a reformatted CT plane is
a stack of thick slices stretched along z, which the 2-D model was not trained on). Brush and eraser
work on every view: a stroke is a plane of the label map (``inference.segmentation.plane_edit``), round
in millimetres. Every tool only *describes* the gesture; the
:class:`~app.controllers.segmentation.SegmentationController` runs it (model calls off the UI thread).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt

from app.model.document import Document
from app.model.labels import BrushPreview
from app.tools import SliceEvent, SliceTool
from inference.segmentation.plane_edit import plane_axes

if TYPE_CHECKING:
    from app.controllers.segmentation import SegmentationController
    from app.widgets.label_overlay import LabelOverlay

SEG_TOOL_NAMES = ("seg_box", "seg_point", "seg_brush", "seg_eraser")


MODEL_PLANE_HINT = (
    "The model segments axial slices: draw the box and the include/exclude clicks on the axial view. "
    "Brush and eraser work on every view."
)


def usable_view(event: SliceEvent) -> bool:
    """Model prompts go on whole slices of the label map (its z axis normal to the view)."""
    return event.view.mapping.normal_axis == 2


def brush_radii(spacing: tuple[float, float, float], axes: tuple[int, int], radius_px: float) -> tuple[float, float]:
    """Brush radii in voxels along a plane's (row, column) index axes: ``radius_px`` pixels of the axial
    x spacing, so the brush is round in millimetres on thick-slice coronal/sagittal planes too."""
    radius_mm = max(float(radius_px), 0.5) * float(spacing[0])
    return radius_mm / float(spacing[axes[0]]), radius_mm / float(spacing[axes[1]])


class _SegTool(SliceTool):
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, document: Document, controller: SegmentationController,
                 overlays: Mapping[str, LabelOverlay]) -> None:
        super().__init__(document)
        self.controller = controller
        self.overlays = overlays  # orientation -> the label layer drawn on that view

    def overlay(self, event: SliceEvent) -> LabelOverlay | None:
        return self.overlays.get(event.view.orientation)

    def _check(self, event: SliceEvent) -> bool:
        if not usable_view(event):
            self.controller.say(MODEL_PLANE_HINT)
            return False
        return event.inside


class BoxTool(_SegTool):
    """Drag a box around the structure; the model segments it on release (one undoable gesture)."""

    name, label, shortcut = "seg_box", "Box", "B"
    tooltip = "Segment: drag a box around the structure (B; axial view or X-ray: the model segments axial slices)"

    def __init__(self, document: Document, controller: SegmentationController,
                 overlays: Mapping[str, LabelOverlay]) -> None:
        super().__init__(document, controller, overlays)
        self._start: tuple[np.ndarray, int] | None = None

    def press(self, event: SliceEvent) -> None:
        if self._check(event):
            self._start = (np.asarray(event.index, float), event.view.slice_index)

    def drag(self, event: SliceEvent) -> None:
        overlay = self.overlay(event)
        if self._start is not None and overlay is not None:
            overlay.set_rubber_band(self._corners(event))

    def release(self, event: SliceEvent) -> None:
        if self._start is None:
            return
        x0, y0, x1, y1 = self._corners(event)
        z = self._start[1]
        self._start = None
        overlay = self.overlay(event)
        if overlay is not None:
            overlay.set_rubber_band(None)
        if abs(x1 - x0) < 2 or abs(y1 - y0) < 2:
            self.controller.say("Drag a box over the structure (it was too small).")
            return
        self.controller.add_box(z, (x0, y0, x1, y1))

    def _corners(self, event: SliceEvent) -> tuple[float, float, float, float]:
        assert self._start is not None
        start, end = self._start[0], np.asarray(event.index, float)
        dims = self.document.shape_xyz
        ex = min(max(float(end[0]), 0.0), dims[0] - 1.0)
        ey = min(max(float(end[1]), 0.0), dims[1] - 1.0)
        return (float(start[0]), float(start[1]), ex, ey)

    def deactivate(self) -> None:
        self._start = None
        for overlay in self.overlays.values():
            overlay.set_rubber_band(None)


class PointTool(_SegTool):
    """Click to include (left) or exclude (right click, or shift + left) a region of the active label."""

    name, label, shortcut = "seg_point", "Include/exclude", "K"
    tooltip = ("Segment: left click includes, right click (or shift+click) excludes (K; axial view or X-ray). "
               "A click changes the mask only around itself: brush work elsewhere stays")
    takes_right_click = True  # the slice view sends right clicks without drag here (drag stays W/L)

    def press(self, event: SliceEvent) -> None:
        if self._check(event):
            exclude = bool(event.modifiers & Qt.KeyboardModifier.ShiftModifier)
            self._click(event, positive=not exclude)

    def right_click(self, event: SliceEvent) -> None:
        if self._check(event):
            self._click(event, positive=False)

    def _click(self, event: SliceEvent, positive: bool) -> None:
        x, y = float(event.index[0]), float(event.index[1])
        self.controller.add_point(event.view.slice_index, x, y, positive)


class BrushTool(_SegTool):
    """Paint the active label with a round brush ([ and ] change its size) on any view; one stroke = one undo
    step. On the coronal/sagittal views a stroke paints one row of each axial slice it crosses."""

    name, label, shortcut = "seg_brush", "Brush", "D"
    tooltip = "Segment: paint the active label on any view (D); [ and ] change the brush size"
    erase = False

    def __init__(self, document: Document, controller: SegmentationController,
                 overlays: Mapping[str, LabelOverlay]) -> None:
        super().__init__(document, controller, overlays)
        self._stroke: np.ndarray | None = None
        self._axis, self._index = 2, 0
        self._last: tuple[float, float] | None = None

    def _check(self, event: SliceEvent) -> bool:
        return event.inside

    def press(self, event: SliceEvent) -> None:
        if not self._check(event) or self.document.volume is None:
            return
        labels = self.controller.labels
        if self.erase and not labels.active:
            self.controller.say("Choose the label to erase in the Segmentation panel.")
            return
        try:
            name = labels.ensure_active()
            value = labels.values()[name]
        except Exception as err:  # noqa: BLE001 - shown as one sentence
            self.controller.report(err)
            return
        self._axis, self._index = event.view.mapping.normal_axis, event.view.slice_index
        shape = list(self.document.volume.shape)
        del shape[2 - self._axis]  # the plane's rows and columns, in array order (plane_edit.plane_of)
        self._stroke = np.zeros(tuple(shape), dtype=bool)
        self._last = None
        self._stamp(event)
        labels.preview = BrushPreview(self._axis, self._index, self._stroke, value, self.erase)
        self._redraw(event)

    def drag(self, event: SliceEvent) -> None:
        if self._stroke is not None:
            self._stamp(event)
            self._redraw(event)
        self.hover(event)

    def release(self, event: SliceEvent) -> None:
        stroke, self._stroke = self._stroke, None
        self.controller.labels.preview = None
        if stroke is not None and stroke.any():
            self.controller.paint_plane(self._axis, self._index, stroke, self.erase)
        else:
            self._redraw(event)

    def hover(self, event: SliceEvent) -> None:
        overlay = self.overlay(event)
        if overlay is not None:
            vol = self.document.volume
            spacing_x = float(vol.spacing[0]) if vol is not None else 1.0
            radius_mm = max(float(self.controller.brush_radius), 0.5) * spacing_x
            overlay.set_brush(event.index if event.inside else None, radius_mm)

    def deactivate(self) -> None:
        self._stroke = None
        self.controller.labels.preview = None
        for overlay in self.overlays.values():
            overlay.set_brush(None, 0)

    def _stamp(self, event: SliceEvent) -> None:
        """An ellipse (round in mm) at the mouse, and along the segment from the previous position (no gaps)."""
        assert self._stroke is not None
        axes = plane_axes(self._axis)
        y, x = float(event.index[axes[0]]), float(event.index[axes[1]])  # plane row, column
        assert self.document.volume is not None
        ry, rx = brush_radii(self.document.volume.spacing, axes, self.controller.brush_radius)
        points = [(x, y)]
        if self._last is not None:
            lx, ly = self._last
            n = int(max(abs(x - lx) / max(rx / 2, 0.5), abs(y - ly) / max(ry / 2, 0.5)))
            points += [(lx + (x - lx) * t / (n + 1), ly + (y - ly) * t / (n + 1)) for t in range(1, n + 1)]
        self._last = (x, y)
        h, w = self._stroke.shape
        for px, py in points:
            y0, y1 = max(int(math.floor(py - ry)), 0), min(int(py + ry) + 1, h)
            x0, x1 = max(int(math.floor(px - rx)), 0), min(int(px + rx) + 1, w)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            self._stroke[y0:y1, x0:x1] |= ((yy - py) / max(ry, 0.5)) ** 2 + ((xx - px) / max(rx, 0.5)) ** 2 <= 1.0

    def _redraw(self, event: SliceEvent) -> None:
        overlay = self.overlay(event)
        if overlay is not None:
            overlay.update(sync=True)


class EraserTool(BrushTool):
    """Erase the active label's pixels (other labels are never touched)."""

    name, label, shortcut = "seg_eraser", "Eraser", "E"
    tooltip = "Segment: erase the active label (E); [ and ] change the size"
    erase = True
