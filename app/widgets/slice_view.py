"""One 2-D slice view (axial, coronal, sagittal or a projection image) drawn with VTK.

The view extracts the current plane from the document with :class:`PlaneMapping` (so orientation is
explicit and testable), shows it in millimetres (correct aspect from spacing) with a parallel camera,
and layers the overlay, crosshair and text on top. Qt mouse/key events are intercepted before VTK's
own interactor so all behaviour is ours: see :mod:`app.tools` for the mouse map.

Extension points for later helpers: ``add_image_layer`` (e.g. a label map as another image slice),
``add_prop`` (rubber bands, contours), the ``slice_changed``/``geometry_changed`` signals, and
``display_to_index``/``index_to_world`` to convert coordinates. Display modes (``app/view_modes_install.py``)
use ``set_display_transform`` (flip/rotate), ``plane_source`` (thick slab) and ``set_mode_text``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent
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
from app.tools import PanTool, SliceEvent, ToolRegistry, WindowLevelTool, ZoomTool

_SLICE_KEYS = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_Left: -1,
               Qt.Key.Key_PageUp: 5, Qt.Key.Key_PageDown: -5}


class SliceView(QWidget):
    """A slice view bound to a :class:`Document`; left-button events go to the active tool."""

    double_clicked = Signal(str)  # orientation; the grid maximises / restores the view
    hovered = Signal(object)  # np.ndarray (x, y, z) continuous index under the mouse, or None
    slice_changed = Signal(int)  # index along the view's normal axis
    geometry_changed = Signal()  # new volume or orientation: layers must rebuild

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
        self._drag: tuple[Qt.MouseButton, object] | None = None
        self._right_click: tuple[float, float] | None = None  # right press a tool may take as a click
        self._builtin_wl, self._builtin_pan, self._builtin_zoom = (WindowLevelTool(document), PanTool(document),
                                                                   ZoomTool(document))
        self.crosshair_visible = True
        # Renders are coalesced: one volume change fires ~10 prop updates per view, each asking for a
        # render; a zero-delay timer turns them into one render per event-loop turn (first slice sooner).
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._render_now)

        self.vtk_widget = QVTKRenderWindowInteractor(self)
        self.vtk_widget.SetInteractorStyle(vtkInteractorStyleUser())
        self.vtk_widget.installEventFilter(self)
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

    def add_image_layer(self, image_slice: vtkImageSlice, layer: int = 2) -> None:
        """Stack another image (e.g. a label map slice) above the image and the overlay."""
        image_slice.GetProperty().SetLayerNumber(layer)
        self.image_stack.AddImage(image_slice)

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
        self.refresh()

    def pan_pixels(self, dx: float, dy: float) -> None:
        pan_camera(self.renderer.GetActiveCamera(), dx, dy, self.vtk_widget.height())
        self._user_camera = True
        self.refresh()

    def reset_camera(self) -> None:
        """Fit the whole image in the view, centred."""
        if self._plane_shape[0] == 0:
            return
        fit_camera(self.renderer, self._plane_shape, self.display_spacing,
                   (self.vtk_widget.width(), self.vtk_widget.height()))
        self._user_camera = False
        self._update_annotations()
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

    # --- input ---------------------------------------------------------------------------------
    def _on_slider(self, value: int) -> None:
        if self.document.volume is not None:
            self.document.set_slice(self.mapping.normal_axis, value)

    def _event(self, event: QMouseEvent, button: Qt.MouseButton) -> SliceEvent:
        pos = event.position()
        return SliceEvent(
            self, self.display_to_index(pos.x(), pos.y()), (pos.x(), pos.y()), button, event.modifiers()
        )

    def _handler_for(self, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> object | None:
        if button == Qt.MouseButton.LeftButton:
            return self.tools.active
        if button == Qt.MouseButton.RightButton:
            return self._builtin_zoom if modifiers & Qt.KeyboardModifier.ControlModifier else self._builtin_wl
        if button == Qt.MouseButton.MiddleButton:
            return self._builtin_pan
        return None

    def _tool_takes_right_click(self, event: QMouseEvent) -> bool:
        return (
            event.button() == Qt.MouseButton.RightButton
            and not event.modifiers() & Qt.KeyboardModifier.ControlModifier
            and getattr(self.tools.active, "takes_right_click", False)
        )

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if watched is not self.vtk_widget or self.document.volume is None:
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress:
            assert isinstance(event, QMouseEvent)
            self.vtk_widget.setFocus()
            handler = self._handler_for(event.button(), event.modifiers())
            self._right_click = None
            if self._tool_takes_right_click(event):
                # Right click without drag goes to the tool (e.g. "exclude"); a drag is still window/level.
                self._right_click = (event.position().x(), event.position().y())
            if handler is not None:
                self._drag = (event.button(), handler)
                if self._right_click is None:
                    handler.press(self._event(event, event.button()))  # type: ignore[attr-defined]
            return True
        if kind == QEvent.Type.MouseMove:
            assert isinstance(event, QMouseEvent)
            slice_event = self._event(event, Qt.MouseButton.NoButton)
            if self._drag is not None:
                slice_event.button = self._drag[0]
                if self._right_click is not None:
                    if math.dist(self._right_click, slice_event.pos) < 4:
                        return True
                    self._right_click = None  # it became a drag: window/level from the press point
                    self._drag[1].press(self._event(event, self._drag[0]))  # type: ignore[attr-defined]
                self._drag[1].drag(slice_event)  # type: ignore[attr-defined]
            else:
                if self.tools.active is not None:
                    self.tools.active.hover(slice_event)
                self.hovered.emit(slice_event.index if slice_event.inside else None)
            return True
        if kind == QEvent.Type.MouseButtonRelease:
            assert isinstance(event, QMouseEvent)
            if self._drag is not None and self._drag[0] == event.button():
                if self._right_click is not None and self.tools.active is not None:
                    self.tools.active.right_click(self._event(event, event.button()))  # type: ignore[attr-defined]
                else:
                    self._drag[1].release(self._event(event, event.button()))  # type: ignore[attr-defined]
                self._drag = None
                self._right_click = None
            return True
        if kind == QEvent.Type.MouseButtonDblClick:
            self.double_clicked.emit(self.orientation)
            return True
        if kind == QEvent.Type.Wheel:
            assert isinstance(event, QWheelEvent)
            steps = event.angleDelta().y() / 120.0
            if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                self.zoom(math.pow(1.15, steps))
            elif steps:
                self.document.step_slice(self.mapping.normal_axis, 1 if steps > 0 else -1)
            return True
        if kind == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            return self._on_key(event)
        return False

    def _on_key(self, event: QKeyEvent) -> bool:
        key = event.key()
        axis = self.mapping.normal_axis
        if key in _SLICE_KEYS:
            self.document.step_slice(axis, _SLICE_KEYS[key])  # type: ignore[index]
        elif key == Qt.Key.Key_Home:
            self.document.set_slice(axis, 0)
        elif key == Qt.Key.Key_End:
            self.document.set_slice(axis, self.document.shape_xyz[axis] - 1)
        elif key == Qt.Key.Key_R:
            self.reset_camera()
        else:
            return False
        return True

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt API
        super().resizeEvent(event)
        if not self._user_camera:
            self.reset_camera()
