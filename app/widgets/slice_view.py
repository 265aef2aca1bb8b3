"""One 2-D slice view (axial, coronal, sagittal or a projection image) drawn with VTK.

The view extracts the current plane from the document with :class:`PlaneMapping` (so orientation is
explicit and testable), shows it in millimetres (correct aspect from spacing) with a parallel camera,
and layers the overlay, crosshair and text on top. Qt mouse/key events are intercepted before VTK's
own interactor so all behaviour is ours: :mod:`app.widgets.slice_input` routes them (mouse map: :mod:`app.tools`).

Extension points for later helpers: ``add_image_layer`` (e.g. a label map as another image slice),
``add_prop``/``remove_prop`` (rubber bands, contours), ``add_overlay(redraw)`` (annotation layers whose
size is in screen pixels: redrawn on every slice, geometry and camera change), the
``slice_changed``/``geometry_changed``/``camera_changed``/``user_camera_changed`` signals, and ``display_to_index`` /
``index_to_world`` / ``index_to_display`` / ``mm_per_pixel`` to convert coordinates. Display modes
(``app/view_modes_install.py``) use ``set_display_transform`` (flip/rotate), ``plane_source`` (thick slab)
and ``set_mode_text``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QSlider, QVBoxLayout, QWidget
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleUser
from vtkmodules.vtkRenderingCore import (
    vtkImageSlice,
    vtkProp,
    vtkRenderer,
)
from vtkmodules.vtkRenderingImage import vtkImageStack

from app.model.display_transform import IDENTITY, DisplayTransform
from app.model.document import Document
from app.rendering.display_transform import transformed
from app.rendering.planes import PlaneMapping, plane_mapping, plane_normal_to
from app.rendering.slice_camera import fit_camera, pan_camera
from app.rendering.slice_props import PLANE_COLOURS, Crosshair, ViewText, image_slice
from app.rendering.vtk_image import grab_render_window, hot_lut, image_2d
from app.tools import ToolRegistry
from app.widgets.slice_input import SliceInput


class SliceView(QWidget):
    """A slice view bound to a :class:`Document`; left-button events go to the active tool."""

    double_clicked = Signal(str)  # orientation; the grid maximises / restores the view
    hovered = Signal(object)  # np.ndarray (x, y, z) continuous index under the mouse, or None
    slice_changed = Signal(int)  # index along the view's normal axis
    geometry_changed = Signal()  # new volume or orientation: layers must rebuild
    camera_changed = Signal()  # zoom, pan, reset or resize: layers sized in screen pixels redraw
    user_camera_changed = Signal()  # the user zoomed or panned (zoom(), pan_pixels()): linked views follow

    def __init__(
        self, document: Document, orientation: str, tools: ToolRegistry, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.document, self.orientation, self.tools = document, orientation, tools
        self.setObjectName(f"slice_view_{orientation}")
        self.mapping: PlaneMapping = plane_mapping(orientation, np.eye(3))
        self.display_spacing: tuple[float, float] = (1.0, 1.0)
        self.display_transform: DisplayTransform = IDENTITY  # the user's flip/rotation (display only)
        # (mapping, array, slice) -> plane as drawn; None: the plain slice. Set for thick slabs.
        self.plane_source: Callable[[PlaneMapping, np.ndarray, int], np.ndarray] | None = None
        self.mode_text = ""  # display modes under the title ("MIP 10 mm", "inverted", …)
        self._plane_shape: tuple[int, int] = (0, 0)
        self._slice_index = -1
        self._user_camera = False
        self.crosshair_visible = True
        # Renders are coalesced: one volume change fires ~10 prop updates per view, each asking for a
        # render; a zero-delay timer turns them into one render per event-loop turn (first slice sooner).
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._render_now)

        self.vtk_widget = QVTKRenderWindowInteractor(self)
        self.vtk_widget.SetInteractorStyle(vtkInteractorStyleUser())
        self._input = SliceInput(self)  # mouse/wheel/keys, routed before VTK's own interactor sees them
        self.vtk_widget.installEventFilter(self._input)
        self.vtk_widget.setMouseTracking(True)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName(f"slider_{orientation}")
        self.slider.valueChanged.connect(self._on_slider)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(1)
        layout.addWidget(self.vtk_widget, 1)
        layout.addWidget(self.slider)

        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.vtk_widget.GetRenderWindow().AddRenderer(self.renderer)
        self.image_stack = vtkImageStack()
        self.base_slice = image_slice(0)
        self.overlay_slice = image_slice(1)
        self.overlay_slice.VisibilityOff()
        self.image_stack.AddImage(self.base_slice)
        self.image_stack.AddImage(self.overlay_slice)
        self.renderer.AddViewProp(self.image_stack)
        self._crosshair = Crosshair(self.renderer)
        self._text = ViewText(self.renderer)
        self.renderer.GetActiveCamera().ParallelProjectionOn()

        document.volume_changed.connect(self._on_volume)
        document.overlay_changed.connect(lambda _ov: self._update_slice(force=True))
        document.window_level_changed.connect(self._on_window_level)
        document.overlay_range_changed.connect(self._on_overlay_display)
        document.overlay_opacity_changed.connect(lambda _o: self._on_overlay_display())
        document.cursor_changed.connect(lambda _c: self._update_slice())

    # --- public API ----------------------------------------------------------------------------
    @property
    def render_window(self):  # noqa: ANN201 - vtkRenderWindow
        return self.vtk_widget.GetRenderWindow()

    @property
    def slice_index(self) -> int:
        return self._slice_index

    def add_prop(self, prop: vtkProp) -> None:
        """Add a VTK prop drawn in this view's world coordinates (mm, see :meth:`index_to_world`)."""
        self.renderer.AddViewProp(prop)

    def remove_prop(self, prop: vtkProp) -> None:
        self.renderer.RemoveViewProp(prop)

    def add_overlay(self, redraw: Callable[[], None]) -> None:
        """Call ``redraw()`` whenever what the view shows moves (slice, image/orientation, zoom/pan/resize).

        For annotation layers drawn with :meth:`add_prop` whose sizes are in screen pixels (handles, text
        offsets, arrow heads); ``redraw`` should end with :meth:`refresh`.
        """
        self.slice_changed.connect(lambda _index: redraw())
        self.geometry_changed.connect(redraw)
        self.camera_changed.connect(redraw)

    def add_image_layer(self, image_slice: vtkImageSlice, layer: int = 2) -> None:
        """Stack another image (e.g. a label map slice) above the image and the overlay."""
        image_slice.GetProperty().SetLayerNumber(layer)
        self.image_stack.AddImage(image_slice)

    def show_document(self) -> None:
        """Take up the document's current image (a view created after the image was opened)."""
        self._on_volume(self.document.volume)

    def set_crosshair_visible(self, visible: bool) -> None:
        self.crosshair_visible = visible
        self._update_crosshair()
        self.refresh()

    def refresh(self) -> None:
        """Ask for a render (call after changing props); coalesced into one per event-loop turn."""
        self._render_timer.start()

    def _render_now(self) -> None:
        self._render_timer.stop()
        if self.isVisible():
            self.render_window.Render()

    def grab_array(self) -> np.ndarray:
        """What the view shows as ``uint8[H, W, 3]`` (QWidget.grab does not see VTK's GL output)."""
        self._render_timer.stop()  # grab_render_window renders the current props itself
        return grab_render_window(self.render_window)

    def index_to_world(self, index_xyz: np.ndarray) -> tuple[float, float]:
        """Voxel index → this view's world coordinates (mm in the display plane)."""
        col, row = self.mapping.index_to_display(np.asarray(index_xyz, float), self.document.shape_xyz)
        return col * self.display_spacing[0], row * self.display_spacing[1]

    def index_to_display(self, index_xyz: np.ndarray) -> tuple[float, float]:
        """Voxel index → widget pixel (Qt coordinates, y down): the inverse of :meth:`display_to_index`."""
        wx, wy = self.index_to_world(index_xyz)
        self.renderer.SetWorldPoint(wx, wy, 0.0, 1.0)
        self.renderer.WorldToDisplay()
        dx, dy, _dz = self.renderer.GetDisplayPoint()
        ratio = self.vtk_widget.devicePixelRatioF() or 1.0
        return dx / ratio, self.vtk_widget.height() - dy / ratio

    def mm_per_pixel(self) -> float:
        """World millimetres per screen pixel at the current zoom (to size marks in screen pixels)."""
        scale = self.renderer.GetActiveCamera().GetParallelScale()
        return 2.0 * scale / max(self.vtk_widget.height(), 1)

    def display_to_index(self, x: float, y: float) -> np.ndarray:
        """Widget pixel (Qt coordinates) → continuous voxel index on the shown slice."""
        ratio = self.vtk_widget.devicePixelRatioF()
        height = self.vtk_widget.height()
        self.renderer.SetDisplayPoint(x * ratio, (height - y) * ratio, 0.0)
        self.renderer.DisplayToWorld()
        wx, wy, _wz, w = self.renderer.GetWorldPoint()
        w = w or 1.0
        col, row = wx / w / self.display_spacing[0], wy / w / self.display_spacing[1]
        return self.mapping.display_to_index(col, row, max(self._slice_index, 0), self.document.shape_xyz)

    def zoom(self, factor: float) -> None:
        camera = self.renderer.GetActiveCamera()
        camera.SetParallelScale(camera.GetParallelScale() / max(factor, 1e-3))
        self._user_camera = True
        self._update_annotations()
        self.camera_changed.emit()
        self.refresh()
        self.user_camera_changed.emit()

    def pan_pixels(self, dx: float, dy: float) -> None:
        pan_camera(self.renderer.GetActiveCamera(), dx, dy, self.vtk_widget.height())
        self._user_camera = True
        self.camera_changed.emit()
        self.refresh()
        self.user_camera_changed.emit()

    def reset_camera(self) -> None:
        """Fit the whole image in the view, centred."""
        if self._plane_shape[0] == 0:
            return
        fit_camera(self.renderer, self._plane_shape, self.display_spacing,
                   (self.vtk_widget.width(), self.vtk_widget.height()))
        self._user_camera = False
        self._update_annotations()
        self.camera_changed.emit()
        self.refresh()

    def set_display_transform(self, transform: DisplayTransform) -> None:
        """Flip/rotate the display (never the data): mapping, letters and layers follow; the view refits."""
        if transform != self.display_transform:
            self.display_transform = transform
            self._apply_mapping()
            self._update_slice(force=True)
            self.reset_camera()
            self.geometry_changed.emit()

    def corner_text(self, corner: int) -> str:
        """The text in ``corner`` (0 lower-left, 1 lower-right, 2 upper-left: plane and slice, 3 upper-right)."""
        return str(self._text.corners.GetText(corner) or "")

    def set_mode_text(self, text: str) -> None:
        if text != self.mode_text:
            self.mode_text = text
            self._update_annotations()
            self.refresh()

    def redraw(self) -> None:
        """Extract the shown plane again (e.g. after ``plane_source``'s settings changed)."""
        self._update_slice(force=True)

    # --- document reactions --------------------------------------------------------------------
    def _apply_mapping(self) -> None:
        vol = self.document.volume
        name = "image" if vol is not None and vol.is_2d else self.orientation
        base = plane_mapping(name, vol.direction if vol is not None else np.eye(3))
        self.mapping = transformed(base, self.display_transform)
        if vol is not None:
            spacing = vol.spacing
            self.display_spacing = (float(spacing[self.mapping.h_axis]), float(spacing[self.mapping.v_axis]))
        self._text.set_letters(self.mapping.edge_letters)

    def _plane(self, array: np.ndarray, index: int) -> np.ndarray:
        source = self.plane_source
        return source(self.mapping, array, index) if source is not None else self.mapping.slice_2d(array, index)

    def _on_volume(self, volume: object) -> None:
        vol = self.document.volume
        self.display_transform = IDENTITY  # a new image starts in the canonical orientation
        self._apply_mapping()
        if vol is not None:
            n = self.document.shape_xyz[self.mapping.normal_axis]
            self.slider.blockSignals(True)
            self.slider.setRange(0, max(n - 1, 0))
            self.slider.blockSignals(False)
            self.slider.setVisible(n > 1)
        self._slice_index = -1
        self._on_window_level(self.document.window, self.document.level)
        self._update_slice(force=True)
        self.reset_camera()
        self.geometry_changed.emit()

    def _on_window_level(self, window: float, level: float) -> None:
        prop = self.base_slice.GetProperty()
        prop.SetColorWindow(window)
        prop.SetColorLevel(level)
        self._update_annotations()
        self.refresh()

    def _on_overlay_display(self, *_args: object) -> None:
        lower, upper = self.document.overlay_range
        prop = self.overlay_slice.GetProperty()
        prop.SetLookupTable(hot_lut(lower, upper))
        prop.UseLookupTableScalarRangeOn()
        prop.SetOpacity(self.document.overlay_opacity)
        self.refresh()

    def _update_slice(self, force: bool = False) -> None:
        vol = self.document.volume
        if vol is None:
            self.base_slice.VisibilityOff()
            self.overlay_slice.VisibilityOff()
            self._crosshair.hide()
            self._update_annotations()
            self.refresh()
            return
        index = self.document.cursor[self.mapping.normal_axis]
        if force or index != self._slice_index:
            self._slice_index = index
            plane = self._plane(vol.array, index)
            self._plane_shape = plane.shape
            self.base_slice.GetMapper().SetInputData(image_2d(plane, self.display_spacing))
            self.base_slice.VisibilityOn()
            overlay = self.document.overlay
            if overlay is not None:
                ov_plane = self._plane(overlay.array, index)
                self.overlay_slice.GetMapper().SetInputData(image_2d(ov_plane, self.display_spacing))
                self._on_overlay_display()
            self.overlay_slice.SetVisibility(overlay is not None)
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
            self.slice_changed.emit(index)
        self._update_crosshair()
        self._update_annotations()
        self.refresh()

    def _update_crosshair(self) -> None:
        vol = self.document.volume
        rows, cols = self._plane_shape
        if not self.crosshair_visible or vol is None or self.mapping.name == "image" or rows == 0:
            self._crosshair.hide()
            return
        owners = [plane_normal_to(axis, vol.direction) for axis in (self.mapping.h_axis, self.mapping.v_axis)]
        extent = ((cols - 1) * self.display_spacing[0], (rows - 1) * self.display_spacing[1])
        centre = self.index_to_world(np.asarray(self.document.cursor, float))
        self._crosshair.place(centre, extent, (PLANE_COLOURS[owners[0]], PLANE_COLOURS[owners[1]]))

    def _update_annotations(self) -> None:
        vol = self.document.volume
        if vol is None:
            self._text.set_corner(
                2, "No image\nFile > Open, or drop a file here" if self.orientation == "axial" else ""
            )
            for corner in (0, 1, 3):
                self._text.set_corner(corner, "")
            return
        title = "Image" if self.mapping.name == "image" else self.mapping.name.capitalize()
        n = self.document.shape_xyz[self.mapping.normal_axis]
        slice_text = f"  {self._slice_index + 1}/{n}" if n > 1 else ""
        self._text.set_corner(2, f"{title}{slice_text}" + (f"\n{self.mode_text}" if self.mode_text else ""))
        self._text.set_corner(0, f"W {self.document.window:.0f}  L {self.document.level:.0f}")
        info = self.document.study_info()
        self._text.set_corner(3, f"{info.modality or vol.modality}  {info.series_description}".strip())
        # Magnification: screen pixels per image pixel along the finer in-plane axis (rotation-proof).
        scale = self.renderer.GetActiveCamera().GetParallelScale()
        screen_per_mm = self.vtk_widget.height() / max(2.0 * scale, 1e-6)
        self._text.set_corner(1, f"{screen_per_mm * min(self.display_spacing) * 100:.0f}%")

    # --- input (mouse, wheel and keys: SliceInput) ---------------------------------------------
    def _on_slider(self, value: int) -> None:
        if self.document.volume is not None:
            self.document.set_slice(self.mapping.normal_axis, value)

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt API
        super().resizeEvent(event)
        if not self._user_camera:
            self.reset_camera()
        else:
            self.camera_changed.emit()
