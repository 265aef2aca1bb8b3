"""Segmentation mouse tools for the slice views: box prompt, include/exclude clicks, brush and eraser.

They work in the view that shows whole slices of the label map (axial for CT, the image for X-rays):
the session's prompts are ``(x, y)`` pixels on slice ``z``. Every tool only *describes* the gesture; the
:class:`~app.controllers.segmentation.SegmentationController` runs it (model calls off the UI thread).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt

from app.model.document import Document
from app.tools import SliceEvent, SliceTool

if TYPE_CHECKING:
    from app.controllers.segmentation import SegmentationController
    from app.widgets.label_overlay import LabelOverlay

SEG_TOOL_NAMES = ("seg_box", "seg_point", "seg_brush", "seg_eraser")


def usable_view(event: SliceEvent) -> bool:
    """Prompts and strokes go on whole slices of the label map (its z axis normal to the view)."""
    return event.view.mapping.normal_axis == 2


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
            self.controller.say("Segment on the axial view (or the X-ray image).")
            return False
        return event.inside


class BoxTool(_SegTool):
    """Drag a box around the structure; the model segments it on release (one undoable gesture)."""

    name, label, shortcut = "seg_box", "Box", "B"
    tooltip = "Segment: drag a box around the structure (B)"

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
    tooltip = "Segment: left click includes, right click (or shift+click) excludes (K)"
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
    """Paint the active label with a round brush ([ and ] change its size); one stroke = one undo step."""

    name, label, shortcut = "seg_brush", "Brush", "D"
    tooltip = "Segment: paint the active label (D); [ and ] change the brush size"
    erase = False

    def __init__(self, document: Document, controller: SegmentationController,
                 overlays: Mapping[str, LabelOverlay]) -> None:
        super().__init__(document, controller, overlays)
        self._stroke: np.ndarray | None = None
        self._z = 0
        self._last: tuple[float, float] | None = None

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
        _, h, w = self.document.volume.shape
        self._stroke = np.zeros((h, w), dtype=bool)
        self._z = event.view.slice_index
        self._last = None
        self._stamp(event)
        labels.preview = (self._z, self._stroke, value, self.erase)
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
            self.controller.paint(self._z, stroke, self.erase)
        else:
            self._redraw(event)

    def hover(self, event: SliceEvent) -> None:
        overlay = self.overlay(event)
        if overlay is not None:
            show = usable_view(event) and event.inside
            overlay.set_brush(event.index if show else None, self.controller.brush_radius)

    def deactivate(self) -> None:
        self._stroke = None
        self.controller.labels.preview = None
        for overlay in self.overlays.values():
            overlay.set_brush(None, 0)

    def _stamp(self, event: SliceEvent) -> None:
        """A disk at the mouse, and disks along the segment from the previous position (no gaps)."""
        assert self._stroke is not None
        x, y = float(event.index[0]), float(event.index[1])
        r = max(float(self.controller.brush_radius), 0.5)
        points = [(x, y)]
        if self._last is not None:
            lx, ly = self._last
            n = int(math.hypot(x - lx, y - ly) / max(r / 2, 0.5))
            points += [(lx + (x - lx) * t / (n + 1), ly + (y - ly) * t / (n + 1)) for t in range(1, n + 1)]
        self._last = (x, y)
        h, w = self._stroke.shape
        for px, py in points:
            y0, y1 = max(int(py - r), 0), min(int(py + r) + 1, h)
            x0, x1 = max(int(px - r), 0), min(int(px + r) + 1, w)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            self._stroke[y0:y1, x0:x1] |= (yy - py) ** 2 + (xx - px) ** 2 <= r * r

    def _redraw(self, event: SliceEvent) -> None:
        overlay = self.overlay(event)
        if overlay is not None:
            overlay.update()


class EraserTool(BrushTool):
    """Erase the active label's pixels (other labels are never touched)."""

    name, label, shortcut = "seg_eraser", "Eraser", "E"
    tooltip = "Segment: erase the active label (E); [ and ] change the size"
    erase = True
