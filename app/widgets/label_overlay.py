"""The label-map layer of one slice view: filled labels with a solid outline, plus prompt marks.

Fill and outline are one image (value ``v`` = fill of label ``v``, ``256 + v`` = its outline pixels) drawn
through one lookup table, so visibility/opacity per label is just the table's alpha. Marks (the prompt box,
include/exclude clicks, the rubber band and the brush circle) are VTK lines in the view's world mm.

Speed (issue 17): a view recomposes only when its plane of the label map changed (a gesture on one
slice often leaves the other views alone), composes on a background thread after gestures
(:class:`~app.rendering.label_layer.LayerComposer`) and renders through the shared
:class:`~app.rendering.label_layer.RenderQueue` (one view per event-loop turn). Scrolling and the brush
preview compose at once, so the labels never lag behind the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from vtkmodules.vtkCommonCore import vtkLookupTable

from app.model.labels import LabelsModel
from app.rendering.label_layer import LayerComposer, RenderQueue, compose
from app.rendering.slice_props import image_slice
from app.rendering.view_lines import ViewPolylines
from app.rendering.vtk_image import image_2d
from app.widgets.slice_view import SliceView
from inference.segmentation.plane_edit import plane_of

_Z = 0.6  # above the image stack and the crosshair (0.5)
Segment = tuple[tuple[float, float], tuple[float, float]]


class LabelOverlay:
    """Draws ``labels`` on ``view`` and follows its slice; tools set the rubber band and brush circle."""

    def __init__(self, view: SliceView, labels: LabelsModel, composer: LayerComposer | None = None,
                 renders: RenderQueue | None = None) -> None:
        self.view, self.labels = view, labels
        self.composer, self.renders = composer, renders
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
        self.box_lines = ViewPolylines(view, (1.0, 0.85, 0.2), 1.5, _Z)
        self.include_marks = ViewPolylines(view, (0.2, 1.0, 0.3), 2.5, _Z)
        self.exclude_marks = ViewPolylines(view, (1.0, 0.25, 0.25), 2.5, _Z)
        self.rubber = ViewPolylines(view, (1.0, 1.0, 0.4), 1.5, _Z)
        self.brush = ViewPolylines(view, (0.9, 0.9, 0.9), 1.0, _Z)
        self.shown = False  # a label pixel is on screen (tests)
        self._shown_plane: np.ndarray | None = None
        self._lut_key: tuple = ()
        self._marks_key: object = None
        self.composed = 0  # compositions done (tests: a gesture elsewhere does not recompose this view)
        view.slice_changed.connect(lambda _i: self.update(sync=True))
        view.geometry_changed.connect(self._on_geometry)
        labels.changed.connect(self.update)
        labels.active_changed.connect(lambda _n: self.update())

    def _on_geometry(self) -> None:
        self._shown_plane, self._marks_key = None, None
        self.update(sync=True)

    def _render(self) -> None:
        if self.renders is not None:
            self.renders.request(self.view.refresh)
        else:
            self.view.refresh()

    # ---- label map --------------------------------------------------------------------------------
    def _plane(self) -> np.ndarray | None:
        label_map = self.labels.raw_label_map()
        doc = self.view.document
        if label_map is None or doc.volume is None or label_map.shape != doc.volume.shape:
            return None
        index = self.view.slice_index
        if index < 0 or not self.labels.names():  # no label yet (e.g. a new image): skip the plane copy
            return None
        mapping = self.view.mapping
        preview = self.labels.preview
        if preview is not None and preview.axis == mapping.normal_axis and preview.index == index:
            plane = plane_of(label_map, preview.axis, index).copy()
            if preview.erase:
                plane[preview.stroke & (plane == preview.value)] = 0
            else:
                plane[preview.stroke & (plane == 0)] = preview.value
            return mapping.slice_2d(np.expand_dims(plane, 2 - preview.axis), 0)
        plane = mapping.slice_2d(label_map, index)
        # kept to compare with the next one and composed on another thread: never a view of the live map
        return plane.copy() if np.may_share_memory(plane, label_map) else plane

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

    def _table_key(self) -> tuple:
        labels = self.labels
        return tuple((v, labels.colour(n), labels.visible(n), labels.opacity(n)) for n, v in labels.values().items())

    def update(self, sync: bool = False) -> None:
        """Bring the layer up to date; renders only when something on screen changes. ``sync``: compose on
        this thread now (scrolling, brush preview); otherwise on the composer's thread."""
        plane = self._plane()
        has = plane is not None and bool(plane.any())
        dirty = False
        key = self._table_key() if has else self._lut_key
        if key != self._lut_key:
            self._lut_key = key
            self._build_lut()
            dirty = True
        if not has:
            if self.composer is not None:
                self.composer.cancel(self)
            self._shown_plane = None
            dirty |= self.shown
            self.actor.SetVisibility(False)
            self.shown = False
        else:
            assert plane is not None
            if self._shown_plane is None or not np.array_equal(plane, self._shown_plane):
                self._shown_plane = plane
                self.composed += 1
                if sync or self.composer is None:
                    if self.composer is not None:
                        self.composer.cancel(self)  # an older plane still being composed must not replace it
                    self._show(compose(plane), render=False)
                    dirty = True
                else:
                    self.composer.submit(self, plane, self._show)
        dirty |= self._update_prompt_marks()
        if dirty:
            self.view.refresh() if sync else self._render()

    def _show(self, image: np.ndarray, render: bool = True) -> None:
        self.actor.GetMapper().SetInputData(image_2d(image, self.view.display_spacing))
        self.actor.SetVisibility(True)
        self.shown = True
        if render:
            self._render()

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

    def _update_prompt_marks(self) -> bool:
        """Box and clicks of the active label on this slice; True when they changed."""
        session, name = self.labels.session, self.labels.active
        prompt = None
        if session is not None and name and self.view.mapping.normal_axis == 2 and self.view.slice_index >= 0:
            lab = session.labels.find(name)
            prompt = session.prompt(lab, self.view.slice_index) if lab is not None else None
        key = (self.view.slice_index, prompt)
        if key == self._marks_key:
            return False
        self._marks_key = key
        self.box_lines.set(self._rect(prompt.box) if prompt is not None and prompt.box is not None else [])
        points = prompt.points if prompt is not None else ()
        self.include_marks.set([s for x, y, pos in points if pos for s in self._mark(x, y, False)])
        self.exclude_marks.set([s for x, y, pos in points if not pos for s in self._mark(x, y, True)])
        return True

    def set_rubber_band(self, box: Sequence[float] | None) -> None:
        self.rubber.set(self._rect(box) if box is not None else [])
        self.view.refresh()

    def set_brush(self, index: Sequence[float] | np.ndarray | None, radius_mm: float) -> None:
        """The brush outline centred on voxel ``index`` (None hides it), ``radius_mm`` in millimetres."""
        if index is None or radius_mm <= 0:
            if self.brush.actor.GetVisibility():
                self.brush.set([])
                self.view.refresh()
            return
        cx, cy = self.view.index_to_world(np.asarray(index, float))
        pts = [(cx + radius_mm * math.cos(t), cy + radius_mm * math.sin(t)) for t in np.linspace(0.0, 2.0 * math.pi, 33)]
        self.brush.set(list(zip(pts[:-1], pts[1:], strict=True)))
        self.view.refresh()
