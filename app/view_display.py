"""Applies the display modes (:class:`~app.model.view_modes.ViewModes`) to the slice views.

One direction only: menus, toolbar and keys change the model; this binder makes every view show it —
flip/rotate through the view's mapping (``set_display_transform``), thick slabs through the view's
``plane_source`` (the projection of the shown slab only, cached per view), invert through the image
property's lookup table (window/level still apply, and screenshots grab what is drawn), the state in
each view's corner text, and a frame around the active view. It also tracks which view is active (the
last one clicked, scrolled or focused) and adds the slab value to the status-bar readout.

Readout policy: the status bar always gives the **voxel** value under the mouse (the real HU/SUV at that
3-D point, on the slab's centre slice); over a view showing a slab it adds the **slab** value drawn
there ("MIP 10 mm: 312 HU"), so the number that matches the screen is never mistaken for a voxel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QObject
from vtkmodules.vtkCommonCore import vtkLookupTable, vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor2D, vtkCoordinate, vtkPolyDataMapper2D

from app.model.view_modes import SLAB_LABELS, VIEW_NAMES, ViewDisplay, ViewModes, slab_text
from app.rendering.planes import PlaneMapping
from app.rendering.slab import Slab, SlabCache, oriented, slab_range, slab_value
from app.widgets.slice_view import SliceView
from inference.clinical.formatting import format_pixel_value

if TYPE_CHECKING:
    from app.main_window import MainWindow

ACTIVE_COLOUR = (0.25, 0.6, 1.0)


def inverted_grey_lut() -> vtkLookupTable:
    """White → black ramp: with ``UseLookupTableScalarRangeOff`` the window/level maps into it."""
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(256)
    lut.SetRange(0.0, 1.0)
    for i in range(256):
        grey = 1.0 - i / 255.0
        lut.SetTableValue(i, grey, grey, grey, 1.0)
    lut.Build()
    return lut


def show_inverted(view: SliceView, on: bool, lut: vtkLookupTable) -> None:
    """Draw ``view``'s image through ``lut`` (an inverted ramp) or the plain grey ramp; W/L still apply."""
    prop = view.base_slice.GetProperty()
    if on:
        prop.SetLookupTable(lut)
        prop.UseLookupTableScalarRangeOff()
    else:
        prop.SetLookupTable(None)
    view.refresh()


def _frame_actor() -> vtkActor2D:
    """A rectangle on the viewport's edges (normalised coordinates): the active view's frame."""
    points = vtkPoints()
    inset = 0.002
    for x, y in ((inset, inset), (1 - inset, inset), (1 - inset, 1 - inset), (inset, 1 - inset)):
        points.InsertNextPoint(x, y, 0.0)
    lines = vtkCellArray()
    lines.InsertNextCell(5)
    for i in (0, 1, 2, 3, 0):
        lines.InsertCellPoint(i)
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetLines(lines)
    coordinate = vtkCoordinate()
    coordinate.SetCoordinateSystemToNormalizedViewport()
    mapper = vtkPolyDataMapper2D()
    mapper.SetInputData(poly)
    mapper.SetTransformCoordinate(coordinate)
    actor = vtkActor2D()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*ACTIVE_COLOUR)
    actor.GetProperty().SetLineWidth(2.0)
    actor.VisibilityOff()
    return actor


class ViewDisplayBinder(QObject):
    """Keeps the slice views in step with ``modes`` (see the module docstring)."""

    def __init__(self, window: MainWindow, modes: ViewModes) -> None:
        super().__init__(window)
        self.window, self.modes, self.document = window, modes, window.document
        self.views: dict[str, SliceView] = dict(window.views)
        self.caches = {name: SlabCache() for name in self.views}
        self.frames = {name: _frame_actor() for name in self.views}
        self._lut = inverted_grey_lut()
        self._resetting = False
        self._last_kind: tuple[str, bool] | None = None  # (modality, 2-D) of the previous image
        for name, view in self.views.items():
            view.plane_source = self._plane_source(name)
            view.add_prop(self.frames[name])
            view.vtk_widget.installEventFilter(self)  # after the view's own filter: called first, passes on
            view.hovered.connect(lambda index, n=name: self._on_hover(n, index))
            view.slice_changed.connect(lambda _i, n=name: self._update_text(n))  # a slab clipped at the ends
            view.double_clicked.connect(lambda _o: self.update_frames())  # after the grid (un)maximised it
        # before the views redraw for a new image, so they draw it with the reset state at once
        self.document.volume_changed.connect(self._on_volume, priority=10)
        self.document.overlay_changed.connect(lambda _o: self._clear_caches())
        modes.view_changed.connect(self._on_view_changed)
        modes.inverted_changed.connect(self._on_inverted)
        modes.active_changed.connect(lambda _n: self.update_frames())
        self.update_frames()

    # ---- what the views draw ---------------------------------------------------------------------
    def slab_for(self, name: str, index: int) -> Slab | None:
        """The slab view ``name`` shows around slice ``index`` (None: the plain slice)."""
        display = self.modes.display(name)
        vol = self.document.volume
        view = self.views[name]
        if not display.slab_on or vol is None or vol.is_2d:
            return None
        axis = view.mapping.normal_axis
        start, stop = slab_range(index, self.document.shape_xyz[axis], display.slab_mm, vol.spacing[axis])
        return Slab(display.slab_mode, start, stop)

    def _plane_source(self, name: str):  # noqa: ANN202 - the view's plane_source callable
        def source(mapping: PlaneMapping, array: np.ndarray, index: int) -> np.ndarray:
            slab = self.slab_for(name, index)
            if slab is None or slab.count <= 1:
                return mapping.slice_2d(array, index)
            return oriented(mapping, self.caches[name].projection(array, mapping.normal_axis, slab))

        return source

    def _clear_caches(self) -> None:
        for cache in self.caches.values():
            cache.clear()

    def _on_volume(self, volume: object) -> None:
        self._clear_caches()
        vol = self.document.volume
        kind = (vol.modality, vol.is_2d) if vol is not None else None
        self._resetting = True  # the views reset their own orientation and redraw right after this
        try:
            keep_invert = self.modes.inverted and kind is not None and kind == self._last_kind
            self.modes.reset_views()
            if keep_invert:  # paging through X-rays of one patient keeps them inverted
                self.modes.set_inverted(True)
        finally:
            self._resetting = False
        self._last_kind = kind
        self.update_texts()

    def _on_view_changed(self, name: str) -> None:
        if self._resetting:
            return
        view = self.views[name]
        display = self.modes.display(name)
        before = view.display_transform
        view.set_display_transform(display.transform)  # redraws when the orientation changed
        if before == display.transform:
            view.redraw()  # the slab changed
        self.update_texts()

    def _on_inverted(self, on: bool) -> None:
        for view in self.views.values():
            show_inverted(view, on, self._lut)
        self.update_texts()

    def mode_text(self, name: str) -> str:
        """The view's state under its title, e.g. "MIP 10 mm (2 slices) · flipped H · inverted"."""
        display = self.modes.display(name)
        view = self.views[name]
        parts = []
        slab = self.slab_for(name, max(view.slice_index, 0))
        if slab is not None and self.document.volume is not None:
            spacing = float(self.document.volume.spacing[view.mapping.normal_axis])
            parts.append(slab_text(display, round(slab.count * spacing, 1), slab.count))
        parts.append(display.transform.describe())
        if self.modes.inverted:
            parts.append("inverted")
        return " · ".join(p for p in parts if p)

    def update_texts(self) -> None:
        for name in self.views:
            self._update_text(name)

    def _update_text(self, name: str) -> None:
        self.views[name].set_mode_text(self.mode_text(name))

    def update_frames(self) -> None:
        """Frame the active view when more than one slice view is on screen."""
        shown = [n for n, v in self.views.items() if not v.isHidden()]
        for name, frame in self.frames.items():
            frame.SetVisibility(len(shown) > 1 and name == self.modes.active)
            self.views[name].refresh()

    # ---- input: active view, readout -------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.Wheel, QEvent.Type.FocusIn):
            name = next((n for n, v in self.views.items() if v.vtk_widget is watched), None)
            if name is not None and name in VIEW_NAMES:
                self.modes.set_active(name)
        return False

    def slab_readout(self, name: str, index: object) -> str:
        """" MIP 10 mm: 312 HU" for a view showing a slab, else ""."""
        vol = self.document.volume
        if vol is None or index is None:
            return ""
        view = self.views[name]
        ijk = tuple(int(round(float(v))) for v in index)  # type: ignore[attr-defined]
        if any(not 0 <= i < n for i, n in zip(ijk, self.document.shape_xyz, strict=True)):
            return ""
        slab = self.slab_for(name, ijk[view.mapping.normal_axis])
        if slab is None:
            return ""
        value = slab_value(vol.array, ijk, view.mapping.normal_axis, slab)  # type: ignore[arg-type]
        display: ViewDisplay = self.modes.display(name)
        shown = (format_pixel_value(value, vol.units, vol.modality) if vol.units or vol.modality == "CT"
                 else f"{format_pixel_value(value)} intensity")  # as the voxel value beside it
        spacing = float(vol.spacing[view.mapping.normal_axis])
        label = SLAB_LABELS[display.slab_mode]
        return f"   {label} {round(slab.count * spacing, 1):g} mm: {shown}"

    def _on_hover(self, name: str, index: object) -> None:
        extra = self.slab_readout(name, index)
        if extra:  # connected after the window's own readout: append to its voxel line
            self.window.readout.setText(self.window.readout.text() + extra)
