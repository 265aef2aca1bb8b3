"""Draws the measurements of one slice view: lines, ellipse outlines, arrows, handles and value labels.

Lines are VTK polylines in the view's world millimetres (``view.index_to_world``); sizes that must stay
constant on screen (handles, arrow heads, label offsets) are in screen pixels and converted with
``view.mm_per_pixel()``, so the layer redraws on every slice, geometry and camera change
(``view.add_overlay``). Labels are placed *outside* what they measure (beside a ruler's end, to the
right of an ellipse), with a dark translucent box so they stay readable on bone and air alike.
It also answers hit tests for the tools: which handle or which measurement is under the mouse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from vtkmodules.vtkRenderingCore import vtkTextActor

from app.model.document import Document
from app.model.measurement_values import ValueCache
from app.model.measurements import Measurement, MeasurementsModel
from app.rendering.view_lines import ViewPolylines
from app.widgets.slice_view import SliceView

_Z = 0.7  # above the image, crosshair (0.5) and label maps (0.6)
COLOUR = (0.35, 0.9, 1.0)
SELECTED = (1.0, 0.84, 0.2)
DRAFT = (1.0, 1.0, 0.55)
HANDLE_PX = 4.0
HIT_PX = 7.0
Xy = tuple[float, float]


@dataclass
class Shape:
    """What one measurement looks like on screen (world mm)."""

    lines: list[list[Xy]] = field(default_factory=list)
    handles: list[Xy] = field(default_factory=list)
    anchor: Xy = (0.0, 0.0)  # label position (world)
    offset_px: Xy = (10.0, 0.0)
    justify: tuple[int, int] = (0, 1)  # horizontal 0 left / 1 centre / 2 right; vertical 0 bottom / 1 centre / 2 top
    other_side: tuple[Xy, Xy, tuple[int, int]] | None = None  # (anchor, offset, justify) when cut at an edge


def _ellipse_outline(c: Xy, r: Xy, n: int = 72) -> list[Xy]:
    return [(c[0] + r[0] * math.cos(t), c[1] + r[1] * math.sin(t)) for t in np.linspace(0, 2 * math.pi, n + 1)]


def _segment_distance(p: Xy, a: Xy, b: Xy) -> float:
    ax, ay, bx, by = *a, *b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else min(max(((p[0] - ax) * dx + (p[1] - ay) * dy) / length2, 0.0), 1.0)
    return math.hypot(p[0] - (ax + t * dx), p[1] - (ay + t * dy))


class MeasurementOverlay:
    """The measurement layer of ``view`` (measurements on the slice it shows, plus a tool's draft)."""

    def __init__(self, view: SliceView, model: MeasurementsModel, values: ValueCache) -> None:
        self.view, self.model, self.values = view, model, values
        self.document: Document = view.document
        self.lines = ViewPolylines(view, COLOUR, 2.0, _Z)
        self.selected_lines = ViewPolylines(view, SELECTED, 2.0, _Z)
        self.handles = ViewPolylines(view, SELECTED, 1.5, _Z)
        self.draft_lines = ViewPolylines(view, DRAFT, 1.5, _Z)
        self.labels: list[vtkTextActor] = []
        self.label_of: dict[int, vtkTextActor] = {}  # measurement id → its label (hit tests, tests)
        self.shown_ids: list[int] = []
        view.add_overlay(self.redraw)
        for signal in (model.changed, model.draft_changed):
            signal.connect(self.redraw)
        model.selection_changed.connect(lambda _i: self.redraw())
        model.visible_changed.connect(lambda _v: self.redraw())
        self.document.overlay_changed.connect(lambda _o: self.redraw())

    # ---- what is shown ----------------------------------------------------------------------------
    def shown(self) -> list[Measurement]:
        if not self.model.visible or self.document.volume is None or self.view.slice_index < 0:
            return []
        return self.model.on_slice(self.view.mapping.normal_axis, self.view.slice_index)

    def _draft(self) -> Measurement | None:
        d = self.model.draft
        ok = d is not None and d.normal_axis == self.view.mapping.normal_axis and d.slice_index == self.view.slice_index
        return d if ok else None

    def world(self, index: Sequence[float] | np.ndarray) -> Xy:
        return self.view.index_to_world(np.asarray(index, float))

    def shape(self, m: Measurement) -> Shape:
        """Lines, handles and label placement of ``m`` at the current zoom."""
        px = self.view.mm_per_pixel()
        pts = [self.world(p) for p in m.points]
        if m.kind == "ruler":
            a, b = pts
            right, left = (a, b) if a[0] > b[0] else (b, a)
            return Shape([[a, b], *self._ticks(a, b, px)], pts, right, (10.0, 0.0), (0, 1),
                         (left, (-10.0, 0.0), (2, 1)))
        if m.kind == "angle":
            a, v, b = pts
            u1, u2 = self._unit(v, a), self._unit(v, b)
            bis = (u1[0] + u2[0], u1[1] + u2[1])
            norm = math.hypot(*bis) or 1.0
            out = (-bis[0] / norm, -bis[1] / norm)  # label outside the angle
            return Shape([[a, v, b], self._arc(v, u1, u2, 14 * px)], pts, v, (16 * out[0], 16 * out[1]),
                         (0 if out[0] >= 0 else 2, 1))
        if m.kind == "ellipse":
            (x0, y0), (x1, y1) = pts
            c, r = ((x0 + x1) / 2, (y0 + y1) / 2), (abs(x1 - x0) / 2, abs(y1 - y0) / 2)
            corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            return Shape([_ellipse_outline(c, r)], corners, (max(x0, x1), max(y0, y1)), (8.0, 0.0), (0, 2),
                         ((min(x0, x1), max(y0, y1)), (-8.0, 0.0), (2, 2)))
        if m.kind == "bidimensional":
            a, b, s0, s1 = pts
            right, left = (a, b) if a[0] > b[0] else (b, a)
            return Shape([[a, b], [s0, s1]], pts, right, (10.0, 0.0), (0, 1), (left, (-10.0, 0.0), (2, 1)))
        if m.kind == "arrow":
            head, tail = pts
            u = self._unit(tail, head)  # towards the head
            lines = [[tail, head]]
            if math.hypot(head[0] - tail[0], head[1] - tail[1]) > 0:
                size = 12 * px
                for turn in (0.45, -0.45):
                    cos, sin = math.cos(turn), math.sin(turn)
                    back = (-(u[0] * cos - u[1] * sin), -(u[0] * sin + u[1] * cos))
                    lines.append([head, (head[0] + size * back[0], head[1] + size * back[1])])
            return Shape(lines, pts, tail, (-6 * u[0], -6 * u[1]), (0 if u[0] <= 0 else 2, 1))
        return Shape([], pts, pts[0], (0.0, 0.0), (1, 1))  # text

    @staticmethod
    def _unit(a: Xy, b: Xy) -> Xy:
        d = math.hypot(b[0] - a[0], b[1] - a[1]) or 1.0
        return (b[0] - a[0]) / d, (b[1] - a[1]) / d

    def _ticks(self, a: Xy, b: Xy, px: float) -> list[list[Xy]]:
        u = self._unit(a, b)
        n = (-u[1] * 5 * px, u[0] * 5 * px)
        return [[(p[0] - n[0], p[1] - n[1]), (p[0] + n[0], p[1] + n[1])] for p in (a, b)]

    @staticmethod
    def _arc(v: Xy, u1: Xy, u2: Xy, radius: float) -> list[Xy]:
        t1, t2 = math.atan2(u1[1], u1[0]), math.atan2(u2[1], u2[0])
        delta = (t2 - t1 + math.pi) % (2 * math.pi) - math.pi
        return [(v[0] + radius * math.cos(t1 + delta * k / 16), v[1] + radius * math.sin(t1 + delta * k / 16))
                for k in range(17)]

    # ---- drawing ----------------------------------------------------------------------------------
    def redraw(self) -> None:
        volume = self.document.volume
        shown = self.shown()
        draft = self._draft()
        self.shown_ids = [m.id for m in shown]
        px = self.view.mm_per_pixel()
        normal: list[list[Xy]] = []
        selected: list[list[Xy]] = []
        handles: list[list[Xy]] = []
        draft_lines: list[list[Xy]] = []
        texts: list[tuple[Measurement, Shape, bool]] = []
        for m in shown:
            shape = self.shape(m)
            is_selected = m.id == self.model.selected
            (selected if is_selected else normal).extend(shape.lines)
            if is_selected:
                handles.extend(self._squares(shape.handles, HANDLE_PX * px))
            texts.append((m, shape, is_selected))
        if draft is not None:
            shape = self.shape(draft)
            draft_lines.extend(shape.lines)
            texts.append((draft, shape, True))
        self.lines.set(normal)
        self.selected_lines.set(selected)
        self.handles.set(handles)
        self.draft_lines.set(draft_lines)
        self.label_of = {}
        for i, (m, shape, highlight) in enumerate(texts):
            actor = self._label(i)
            text = self.values.get(m, volume, self.document.overlay).label if volume is not None else ""
            self._place(actor, text, shape, px, SELECTED if highlight else COLOUR)
            if m.id:
                self.label_of[m.id] = actor
        for actor in self.labels[len(texts):]:
            actor.VisibilityOff()
        self.view.refresh()

    @staticmethod
    def _squares(points: Sequence[Xy], half: float) -> list[list[Xy]]:
        return [[(x - half, y - half), (x + half, y - half), (x + half, y + half), (x - half, y + half),
                 (x - half, y - half)] for x, y in points]

    def _label(self, i: int) -> vtkTextActor:
        while len(self.labels) <= i:
            actor = vtkTextActor()
            prop = actor.GetTextProperty()
            prop.SetFontSize(14)
            prop.SetFontFamilyToArial()
            prop.ShadowOn()
            prop.SetBackgroundColor(0.0, 0.0, 0.0)
            prop.SetBackgroundOpacity(0.55)
            prop.SetFrame(False)
            actor.GetPositionCoordinate().SetCoordinateSystemToWorld()
            actor.VisibilityOff()
            self.view.add_prop(actor)
            self.labels.append(actor)
        return self.labels[i]

    def _place(self, actor: vtkTextActor, text: str, shape: Shape, px: float,
               colour: tuple[float, float, float]) -> None:
        actor.SetInput(text)
        actor.GetTextProperty().SetColor(*colour)
        actor.SetVisibility(bool(text))
        if not text:
            return
        x, y = self._put(actor, shape.anchor, shape.offset_px, shape.justify, px)
        if shape.other_side is not None and self._overflow(actor) != (0.0, 0.0):
            x, y = self._put(actor, *shape.other_side, px)  # beside the other end rather than over the shape
            if self._overflow(actor) != (0.0, 0.0):
                x, y = self._put(actor, shape.anchor, shape.offset_px, shape.justify, px)
        dx, dy = self._overflow(actor)
        if dx or dy:  # slide it back into the view
            ratio = self.view.vtk_widget.devicePixelRatioF() or 1.0
            actor.GetPositionCoordinate().SetValue(x + dx / ratio * px, y + dy / ratio * px, _Z)

    @staticmethod
    def _put(actor: vtkTextActor, anchor: Xy, offset: Xy, justify: tuple[int, int], px: float) -> Xy:
        prop = actor.GetTextProperty()
        prop.SetJustification(justify[0])
        prop.SetVerticalJustification(justify[1])
        x, y = anchor[0] + offset[0] * px, anchor[1] + offset[1] * px
        actor.GetPositionCoordinate().SetValue(x, y, _Z)
        return x, y

    def _label_rect(self, actor: vtkTextActor) -> tuple[float, float, float, float]:
        """The label's box in display pixels (x0, x1, y0, y1); VTK's bounding box gives only its size."""
        size = [0.0] * 4
        actor.GetBoundingBox(self.view.renderer, size)
        w, h = size[1] - size[0], size[3] - size[2]
        x, y, z = actor.GetPositionCoordinate().GetValue()
        renderer = self.view.renderer
        renderer.SetWorldPoint(x, y, z, 1.0)
        renderer.WorldToDisplay()
        ax, ay, _ = renderer.GetDisplayPoint()
        prop = actor.GetTextProperty()
        x0 = ax - w * (0.0, 0.5, 1.0)[prop.GetJustification()]
        y0 = ay - h * (0.0, 0.5, 1.0)[prop.GetVerticalJustification()]
        return x0, x0 + w, y0, y0 + h

    def _overflow(self, actor: vtkTextActor) -> Xy:
        """How far (display pixels) the label must move to be wholly inside the view (0, 0: it is)."""
        x0, x1, y0, y1 = self._label_rect(actor)
        ratio = self.view.vtk_widget.devicePixelRatioF() or 1.0
        width, height = self.view.vtk_widget.width() * ratio, self.view.vtk_widget.height() * ratio
        margin = 4.0 * ratio
        return (max(margin - x0, 0.0) - max(x1 - (width - margin), 0.0),
                max(margin - y0, 0.0) - max(y1 - (height - margin), 0.0))

    # ---- hit tests (tools) ------------------------------------------------------------------------
    def hit(self, index: Sequence[float] | np.ndarray, pos: Xy | None = None) -> tuple[int, int] | None:
        """``(measurement id, handle)`` under the mouse: handle ≥ 0 for a handle, −1 for the body (a line,
        an outline or its label). The selected measurement wins; None when nothing is there."""
        p = self.world(index)
        tol = HIT_PX * self.view.mm_per_pixel()
        shown = sorted(self.shown(), key=lambda m: m.id != self.model.selected)
        for m in shown:
            shape = self.shape(m)
            for k, h in enumerate(shape.handles):
                if math.hypot(p[0] - h[0], p[1] - h[1]) <= tol:
                    return m.id, k
        for m in shown:
            shape = self.shape(m)
            for line in shape.lines:
                if any(_segment_distance(p, a, b) <= tol for a, b in zip(line[:-1], line[1:], strict=True)):
                    return m.id, -1
            if pos is not None and self._on_label(m.id, pos):
                return m.id, -1
        return None

    def _on_label(self, ident: int, pos: Xy) -> bool:
        actor = self.label_of.get(ident)
        if actor is None or not actor.GetVisibility():
            return False
        x0, x1, y0, y1 = self._label_rect(actor)
        ratio = self.view.vtk_widget.devicePixelRatioF() or 1.0
        x, y = pos[0] * ratio, (self.view.vtk_widget.height() - pos[1]) * ratio
        return x0 - 2 <= x <= x1 + 2 and y0 - 2 <= y <= y1 + 2
