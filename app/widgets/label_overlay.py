"""The label-map layer of one slice view: filled labels with a solid outline, plus prompt marks.

Fill and outline are one image (value ``v`` = fill of label ``v``, ``256 + v`` = its outline pixels) drawn
through one lookup table, so visibility/opacity per label is just the table's alpha. Marks (the prompt box,
include/exclude clicks, the rubber band and the brush circle) are VTK lines in the view's world mm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from vtkmodules.vtkCommonCore import vtkLookupTable, vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from app.model.labels import LabelsModel
from app.rendering.slice_props import image_slice
from app.rendering.vtk_image import image_2d
from app.widgets.slice_view import SliceView

_Z = 0.6  # above the image stack and the crosshair (0.5)
Segment = tuple[tuple[float, float], tuple[float, float]]


def outline(plane: np.ndarray) -> np.ndarray:
    """Pixels of a label that touch a different value (4-neighbourhood)."""
    edge = np.zeros(plane.shape, dtype=bool)
    vertical = plane[:-1, :] != plane[1:, :]
    horizontal = plane[:, :-1] != plane[:, 1:]
    edge[:-1, :] |= vertical
    edge[1:, :] |= vertical
    edge[:, :-1] |= horizontal
    edge[:, 1:] |= horizontal
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    return edge & (plane != 0)


class _Lines:
    """A set of line segments in one colour (rebuilt on every change: a handful of points)."""

    def __init__(self, view: SliceView, colour: tuple[float, float, float], width: float = 2.0) -> None:
        self.poly = vtkPolyData()
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(self.poly)
        self.actor = vtkActor()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetColor(*colour)
        self.actor.GetProperty().SetLineWidth(width)
        self.actor.VisibilityOff()
        view.add_prop(self.actor)

    def set(self, segments: Sequence[Segment]) -> None:
        points, lines = vtkPoints(), vtkCellArray()
        for a, b in segments:
            i = points.InsertNextPoint(a[0], a[1], _Z)
            j = points.InsertNextPoint(b[0], b[1], _Z)
            lines.InsertNextCell(2)
            lines.InsertCellPoint(i)
            lines.InsertCellPoint(j)
        self.poly.SetPoints(points)
        self.poly.SetLines(lines)
        self.poly.Modified()
        self.actor.SetVisibility(bool(segments))


class LabelOverlay:
    """Draws ``labels`` on ``view`` and follows its slice; tools set the rubber band and brush circle."""

    def __init__(self, view: SliceView, labels: LabelsModel) -> None:
        self.view, self.labels = view, labels
        self.actor = image_slice(2)
        prop = self.actor.GetProperty()
        prop.SetInterpolationTypeToNearest()
        self.lut = vtkLookupTable()
        self.lut.SetNumberOfTableValues(512)
        self.lut.SetRange(0.0, 511.0)
        prop.SetLookupTable(self.lut)
        prop.UseLookupTableScalarRangeOn()
        self.actor.VisibilityOff()
        view.add_image_layer(self.actor, layer=2)
        self.box_lines = _Lines(view, (1.0, 0.85, 0.2), 1.5)
        self.include_marks = _Lines(view, (0.2, 1.0, 0.3), 2.5)
        self.exclude_marks = _Lines(view, (1.0, 0.25, 0.25), 2.5)
        self.rubber = _Lines(view, (1.0, 1.0, 0.4), 1.5)
        self.brush = _Lines(view, (0.9, 0.9, 0.9), 1.0)
        self.shown = False  # a label pixel is on screen (tests)
        view.slice_changed.connect(lambda _i: self.update())
        view.geometry_changed.connect(self.update)
        labels.changed.connect(self.update)
        labels.active_changed.connect(lambda _n: self.update())

    # ---- label map --------------------------------------------------------------------------------
    def _plane(self) -> np.ndarray | None:
        label_map = self.labels.raw_label_map()
        doc = self.view.document
        if label_map is None or doc.volume is None or label_map.shape != doc.volume.shape:
            return None
        index = self.view.slice_index
        if index < 0 or not self.labels.names():  # no label yet (e.g. a new image): skip the plane copy
            return None
        preview = self.labels.preview
        if preview is not None and self.view.mapping.normal_axis == 2 and preview[0] == index:
            z, stroke, value, erase = preview
            plane = label_map[z : z + 1].copy()
            if erase:
                plane[0][stroke & (plane[0] == value)] = 0
            else:
                plane[0][stroke & (plane[0] == 0)] = value
            return self.view.mapping.slice_2d(plane, 0)
        return self.view.mapping.slice_2d(label_map, index)

    def _build_lut(self) -> None:
        self.lut.SetTableValue(0, 0.0, 0.0, 0.0, 0.0)
        for v in range(1, 512):
            self.lut.SetTableValue(v, 0.0, 0.0, 0.0, 0.0)
        for name, value in self.labels.values().items():
            r, g, b = (c / 255.0 for c in self.labels.colour(name))
            on = self.labels.visible(name)
            alpha = self.labels.opacity(name) if on else 0.0
            self.lut.SetTableValue(value, r, g, b, alpha)
            self.lut.SetTableValue(256 + value, r, g, b, min(1.0, 0.35 + alpha * 1.5) if on else 0.0)
        self.lut.Modified()

    def update(self) -> None:
        plane = self._plane()
        has = plane is not None and bool(plane.any())
        if has:
            assert plane is not None
            data = plane.astype(np.float32) + 256.0 * outline(plane)
            self._build_lut()
            self.actor.GetMapper().SetInputData(image_2d(data, self.view.display_spacing))
        self.actor.SetVisibility(has)
        self.shown = has
        self._update_prompt_marks()
        self.view.refresh()

    # ---- marks ------------------------------------------------------------------------------------
    def _world(self, x: float, y: float) -> tuple[float, float]:
        return self.view.index_to_world(np.array([x, y, self.view.slice_index], float))

    def _rect(self, box: Sequence[float]) -> list[Segment]:
        x0, y0, x1, y1 = box
        c = [self._world(x0, y0), self._world(x1, y0), self._world(x1, y1), self._world(x0, y1)]
        return [(c[i], c[(i + 1) % 4]) for i in range(4)]

    def _mark(self, x: float, y: float, cross: bool) -> list[Segment]:
        cx, cy = self._world(x, y)
        s = 5.0 * self._mm_per_screen_pixel()
        if cross:  # exclude: ×
            return [((cx - s, cy - s), (cx + s, cy + s)), ((cx - s, cy + s), (cx + s, cy - s))]
        return [((cx - s, cy), (cx + s, cy)), ((cx, cy - s), (cx, cy + s))]  # include: +

    def _mm_per_screen_pixel(self) -> float:
        scale = self.view.renderer.GetActiveCamera().GetParallelScale()
        return 2.0 * scale / max(self.view.vtk_widget.height(), 1)

    def _update_prompt_marks(self) -> None:
        session, name = self.labels.session, self.labels.active
        prompt = None
        if session is not None and name and self.view.mapping.normal_axis == 2 and self.view.slice_index >= 0:
            lab = session.labels.find(name)
            prompt = session.prompt(lab, self.view.slice_index) if lab is not None else None
        self.box_lines.set(self._rect(prompt.box) if prompt is not None and prompt.box is not None else [])
        points = prompt.points if prompt is not None else ()
        self.include_marks.set([s for x, y, pos in points if pos for s in self._mark(x, y, False)])
        self.exclude_marks.set([s for x, y, pos in points if not pos for s in self._mark(x, y, True)])

    def set_rubber_band(self, box: Sequence[float] | None) -> None:
        self.rubber.set(self._rect(box) if box is not None else [])
        self.view.refresh()

    def set_brush(self, index: Sequence[float] | np.ndarray | None, radius_px: float) -> None:
        """The brush outline at ``index`` (None hides it), ``radius_px`` in image pixels."""
        if index is None or radius_px <= 0:
            if self.brush.actor.GetVisibility():
                self.brush.set([])
                self.view.refresh()
            return
        cx, cy = float(index[0]), float(index[1])
        pts = [
            self._world(cx + radius_px * math.cos(t), cy + radius_px * math.sin(t))
            for t in np.linspace(0.0, 2.0 * math.pi, 33)
        ]
        self.brush.set(list(zip(pts[:-1], pts[1:], strict=True)))
        self.view.refresh()
