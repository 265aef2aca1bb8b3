"""Measurement and annotation tools for the slice views: ruler, angle, ellipse ROI, long/short axis, arrow/text.

Every tool works on any slice view (axial, coronal, sagittal, the X-ray image): what it draws stays on
the slice it was drawn on. With any of them active, the left button first looks for something already
there: a handle under the mouse is dragged (editing that measurement), a line/outline/label moves the
whole measurement; elsewhere a new one is drawn. Each finished drag is one undo step of the
:class:`~app.model.measurements.MeasurementsModel`; the half-drawn one is the model's ``draft``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt

from app.model.document import Document
from app.model.measurements import Measurement, MeasurementsModel
from app.tools import SliceEvent, SliceTool
from inference.measure import (
    from_plane_coords,
    initial_short_axis,
    move_long_end,
    move_short_end,
    plane_coords,
)

if TYPE_CHECKING:
    from app.widgets.measurement_overlay import MeasurementOverlay

AskText = Callable[[str, str], "str | None"]  # (title, initial text) → text, or None when cancelled
MIN_DRAG_PX = 4.0
MEASURE_TOOL_NAMES = ("measure_ruler", "measure_angle", "measure_ellipse", "measure_axes", "measure_annotate")


class MeasureTool(SliceTool):
    """Shared editing (select, drag handles, move) and two-point drag creation; subclasses set ``kind``."""

    kind = "ruler"
    hint = ""
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, document: Document, model: MeasurementsModel,
                 overlays: Mapping[str, MeasurementOverlay], say: Callable[[str], None]) -> None:
        super().__init__(document)
        self.model, self.overlays, self.say = model, overlays, say
        self._edit: tuple[int, int, np.ndarray, Measurement] | None = None  # id, handle, press index, original
        self._start: np.ndarray | None = None
        self._start_event: SliceEvent | None = None

    # ---- helpers ------------------------------------------------------------------------------
    def clamp(self, index: np.ndarray) -> np.ndarray:
        dims = np.asarray(self.document.shape_xyz, float)
        return np.clip(np.asarray(index, float), 0.0, np.maximum(dims - 1.0, 0.0))

    def new(self, event: SliceEvent, points: list[np.ndarray], text: str = "") -> Measurement:
        view = event.view
        m = Measurement(self.kind, view.mapping.name, view.mapping.normal_axis, view.slice_index, (), text)
        return m.with_points(points)

    @staticmethod
    def screen_distance(event: SliceEvent, a: np.ndarray, b: np.ndarray) -> float:
        wa, wb = event.view.index_to_world(a), event.view.index_to_world(b)
        return math.hypot(wb[0] - wa[0], wb[1] - wa[1]) / max(event.view.mm_per_pixel(), 1e-9)

    def overlay(self, event: SliceEvent) -> MeasurementOverlay | None:
        return self.overlays.get(event.view.orientation)

    # ---- SliceTool ------------------------------------------------------------------------------
    def activate(self) -> None:
        if self.hint:
            self.say(self.hint)

    def deactivate(self) -> None:
        self._cancel()

    def _cancel(self) -> None:
        if self._edit is not None:
            self.model.end_edit()
        self._edit, self._start, self._start_event = None, None, None
        self.model.set_draft(None)

    def press(self, event: SliceEvent) -> None:
        overlay = self.overlay(event)
        hit = overlay.hit(event.index, event.pos) if overlay is not None and not self.pending() else None
        if hit is not None:
            ident, handle = hit
            original = self.model.get(ident)
            if original is not None:
                self.model.select(ident)
                self.model.begin_edit()
                self._edit = (ident, handle, np.asarray(event.index, float), original)
            return
        if not event.inside:
            return
        if not self.pending():
            self.model.select(0)
        self.start(event, self.clamp(event.index))

    def drag(self, event: SliceEvent) -> None:
        if self._edit is not None:
            ident, handle, start, original = self._edit
            where = np.asarray(event.index, float) - start if handle < 0 else self.clamp(event.index)
            try:
                edited = self.edited(event, original, handle, where)
            except ValueError:
                return
            self.model.update(edited)
        else:
            self.follow(event, self.clamp(event.index))

    def release(self, event: SliceEvent) -> None:
        if self._edit is not None:
            self.model.end_edit()
            self._edit = None
            return
        self.finish(event, self.clamp(event.index))

    def hover(self, event: SliceEvent) -> None:
        if self.pending():
            self.follow(event, self.clamp(event.index))

    # ---- creation (two-point drag; the angle tool overrides) --------------------------------------
    def pending(self) -> bool:
        """True while a multi-click measurement waits for its next point."""
        return False

    def start(self, event: SliceEvent, index: np.ndarray) -> None:
        self._start, self._start_event = index, event
        self.model.set_draft(self.new(event, self.draft_points(event, index, index)))

    def follow(self, event: SliceEvent, index: np.ndarray) -> None:
        if self._start is not None and self._start_event is not None and event.view is self._start_event.view:
            self.model.set_draft(self.new(event, self.draft_points(event, self._start, index)))

    def finish(self, event: SliceEvent, index: np.ndarray) -> None:
        start, self._start, self._start_event = self._start, None, None
        self.model.set_draft(None)
        if start is None:
            return
        if self.screen_distance(event, start, index) < MIN_DRAG_PX:
            self.too_small(event, start)
            return
        self.create(event, start, index)

    def draft_points(self, event: SliceEvent, start: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
        return [start, end]

    def create(self, event: SliceEvent, start: np.ndarray, end: np.ndarray) -> None:
        self.model.add(self.new(event, self.draft_points(event, start, end)))

    def too_small(self, event: SliceEvent, start: np.ndarray) -> None:
        self.say("Drag across the structure to measure it.")

    # ---- editing --------------------------------------------------------------------------------
    def edited(self, event: SliceEvent, m: Measurement, handle: int, where: np.ndarray) -> Measurement:
        """``m`` with ``handle`` dragged to ``where`` (handle −1: ``where`` is the move since the press)."""
        points = [np.asarray(p, float) for p in m.points]
        if handle < 0:  # move the whole measurement, as far as it stays on the image
            stack = np.stack(points)
            low, high = -stack.min(axis=0), self.clamp(np.full(3, np.inf)) - stack.max(axis=0)
            shift = np.clip(np.asarray(where, float), np.minimum(low, 0.0), np.maximum(high, 0.0))
            shift[m.normal_axis] = 0.0
            return m.with_points(list(stack + shift))
        if m.kind == "ellipse":
            h, v = event.view.mapping.h_axis, event.view.mapping.v_axis
            a, b = points
            corner_1, corner_3 = a.copy(), a.copy()
            corner_1[h], corner_3[v] = b[h], b[v]  # corners in drawing order: a, (b_h, a_v), b, (a_h, b_v)
            opposite = [b, corner_3, a, corner_1][handle % 4]
            return m.with_points([opposite, where])
        if m.kind == "bidimensional":
            return self._edited_axes(m, handle, where)
        points[handle] = np.asarray(where, float)
        return m.with_points(points)

    def _edited_axes(self, m: Measurement, handle: int, where: np.ndarray) -> Measurement:
        volume = self.document.volume
        if volume is None:
            raise ValueError("no image")
        a, b, s0, s1 = plane_coords(volume, m.normal_axis, [*m.points, where])[:4]
        new = plane_coords(volume, m.normal_axis, [where])[0]
        if handle in (0, 1):
            a, b, s0, s1 = move_long_end(a, b, s0, s1, handle, new)
        else:
            s0, s1 = move_short_end(a, b, s0, s1, handle - 2, new)
        return m.with_points(from_plane_coords(volume, m.normal_axis, m.slice_index, np.stack([a, b, s0, s1])))


class RulerTool(MeasureTool):
    name, label, shortcut, kind = "measure_ruler", "Ruler", "M", "ruler"
    tooltip = "Measure a length in mm: drag across the structure (M); drag a handle to adjust, Delete removes"
    hint = "Ruler: drag across the structure. Drag a handle to adjust; Delete removes the selected one."


class EllipseTool(MeasureTool):
    name, label, shortcut, kind = "measure_ellipse", "Ellipse ROI", "O", "ellipse"
    tooltip = "Ellipse ROI: drag its box; shows mean, SD, min, max and area (O)"
    hint = "Ellipse ROI: drag from one corner of its box to the other. Drag a corner handle to resize."


class AxesTool(MeasureTool):
    """Nodule long/short axis (RECIST-style): drag the long axis, then adjust the perpendicular short axis."""

    name, label, shortcut, kind = "measure_axes", "Long/short axis", "L", "bidimensional"
    tooltip = "Long and short axis of a lesion: drag the longest diameter, then drag the short-axis ends (L)"
    hint = "Long/short axis: drag the longest diameter; then drag the short-axis ends to the lesion's edges."

    def draft_points(self, event: SliceEvent, start: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
        volume = self.document.volume
        if volume is None:
            return [start, end, start, end]
        axis = event.view.mapping.normal_axis
        a, b = plane_coords(volume, axis, [start, end])
        s0, s1 = initial_short_axis(a, b)
        return list(from_plane_coords(volume, axis, event.view.slice_index, np.stack([a, b, s0, s1])))

    def create(self, event: SliceEvent, start: np.ndarray, end: np.ndarray) -> None:
        super().create(event, start, end)
        self.say("Now drag the short-axis ends to the lesion's edges (it stays perpendicular).")


class AngleTool(MeasureTool):
    """Three points (arm end, vertex, arm end): drag the first arm and click the third point, or click three times."""

    name, label, shortcut, kind = "measure_angle", "Angle", "A", "angle"
    tooltip = "Angle: drag the first arm to the vertex, then click the end of the second arm (A)"
    hint = "Angle: drag from the end of the first arm to the vertex, then click the end of the second arm."

    def __init__(self, document: Document, model: MeasurementsModel,
                 overlays: Mapping[str, MeasurementOverlay], say: Callable[[str], None]) -> None:
        super().__init__(document, model, overlays, say)
        self._fixed: list[np.ndarray] = []
        self._event: SliceEvent | None = None

    def pending(self) -> bool:
        return bool(self._fixed)

    def _cancel(self) -> None:
        self._fixed, self._event = [], None
        super()._cancel()

    def start(self, event: SliceEvent, index: np.ndarray) -> None:
        same = self._event is not None and self._event.view is event.view \
            and self._event.view.slice_index == event.view.slice_index
        if self._fixed and not same:
            self._fixed = []
        if not self._fixed:
            self._fixed, self._event = [index], event
        self.follow(event, index)

    def follow(self, event: SliceEvent, index: np.ndarray) -> None:
        if self._fixed and self._event is not None and event.view is self._event.view:
            pts = [*self._fixed, index]
            pts += [index] * (3 - len(pts))
            self.model.set_draft(self.new(event, pts[:3]))

    def finish(self, event: SliceEvent, index: np.ndarray) -> None:
        if not self._fixed or self._event is None or event.view is not self._event.view:
            return
        if len(self._fixed) == 1 and self.screen_distance(event, self._fixed[0], index) < MIN_DRAG_PX:
            return  # a click: the vertex comes with the next click
        self._fixed.append(index)
        if len(self._fixed) == 3:
            points, self._fixed, self._event = self._fixed, [], None
            self.model.set_draft(None)
            self.model.add(self.new(event, points))


class AnnotateTool(MeasureTool):
    """Arrow with text (drag from what it points at to where the text goes) or text alone (click)."""

    name, label, shortcut, kind = "measure_annotate", "Arrow / text", "T", "arrow"
    tooltip = "Annotate: drag from the finding to where the text goes (arrow), or click for text only (T)"
    hint = "Arrow/text: drag from the finding to where the text should go, or click to place text only."

    def __init__(self, document: Document, model: MeasurementsModel,
                 overlays: Mapping[str, MeasurementOverlay], say: Callable[[str], None],
                 ask_text: AskText) -> None:
        super().__init__(document, model, overlays, say)
        self.ask_text = ask_text

    def create(self, event: SliceEvent, start: np.ndarray, end: np.ndarray) -> None:
        text = self.ask_text("Arrow text (may be empty)", "")
        if text is not None:
            self.model.add(self.new(event, [start, end], text.strip()[:200]))

    def too_small(self, event: SliceEvent, start: np.ndarray) -> None:
        text = self.ask_text("Annotation text", "")
        if text and text.strip():
            self.model.add(replace(self.new(event, [start], text.strip()[:200]), kind="text"))


def edit_text(model: MeasurementsModel, ident: int, ask_text: AskText) -> bool:
    """Change an arrow's or a text's wording (one undo step); False when it is not an annotation."""
    m = model.get(ident)
    if m is None or m.kind not in ("arrow", "text"):
        return False
    text = ask_text("Annotation text", m.text)
    if text is None or (m.kind == "text" and not text.strip()):
        return False
    model.update(replace(m, text=text.strip()[:200]))
    return True
