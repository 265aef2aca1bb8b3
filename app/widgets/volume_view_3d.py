"""3-D view: volume rendering of the primary image with the three slice planes outlined.

Rendering uses ``vtkSmartVolumeMapper`` (GPU ray casting when available, CPU otherwise) on an
in-plane subsampled copy so it stays interactive on laptops (int16 for CT: half the memory of float32,
for the copy and for the renderer's texture). CT gets a bone/contrast transfer
function; other modalities a ramp between robust percentiles. Left-drag rotates, wheel zooms.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
from vtkmodules.vtkFiltersSources import vtkOutlineSource
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkInteractionWidgets import vtkOrientationMarkerWidget
from vtkmodules.vtkRenderingAnnotation import vtkAnnotatedCubeActor
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkColorTransferFunction,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkVolume,
    vtkVolumeProperty,
)
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

from app.model.document import Document
from app.rendering.slice_props import PLANE_COLOURS
from app.rendering.volume_backdrop import VolumeBackdrop
from app.rendering.vtk_image import grab_render_window, image_3d

_MAX_INPLANE = 256  # subsample larger slices for rendering speed


def _transfer_functions(
    values: np.ndarray, is_ct: bool
) -> tuple[vtkColorTransferFunction, vtkPiecewiseFunction]:
    colour, opacity = vtkColorTransferFunction(), vtkPiecewiseFunction()
    if is_ct:
        for hu, rgb in (
            (-1000, (0, 0, 0)),
            (100, (0.75, 0.3, 0.25)),
            (250, (0.95, 0.75, 0.6)),
            (1000, (1, 1, 0.95)),
        ):
            colour.AddRGBPoint(hu, *rgb)
        for hu, a in ((-1000, 0.0), (120, 0.0), (250, 0.25), (700, 0.7), (3000, 0.9)):
            opacity.AddPoint(hu, a)
    else:
        lo, hi = (float(v) for v in np.percentile(values[:, ::4, ::4], [50, 99.8]))
        hi = max(hi, lo + 1e-3)
        colour.AddRGBPoint(lo, 0, 0, 0)
        colour.AddRGBPoint(hi, 1, 1, 1)
        opacity.AddPoint(lo, 0.0)
        opacity.AddPoint(hi, 0.6)
    return colour, opacity


class VolumeView3D(QWidget):
    """Volume rendering that follows the document's primary image and cursor."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("volume_view_3d")
        self.document = document
        self.vtk_widget = QVTKRenderWindowInteractor(self)
        self.vtk_widget.SetInteractorStyle(vtkInteractorStyleTrackballCamera())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.addWidget(self.vtk_widget)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.05, 0.05, 0.08)
        self.renderer.SetBackground2(0.18, 0.2, 0.26)
        self.renderer.GradientBackgroundOn()
        self.render_window.AddRenderer(self.renderer)
        self._volume = vtkVolume()
        self._mapper = vtkSmartVolumeMapper()
        self._volume.SetMapper(self._mapper)
        self._volume.VisibilityOff()
        self.renderer.AddVolume(self._volume)
        # Slice-plane outlines and label surfaces: a layer above the volume, same camera, drawn over it
        # (never hidden inside it), so the volume's picture can stand in for the volume (VolumeBackdrop).
        self.overlay = vtkRenderer()
        self.overlay.SetLayer(1)
        self.overlay.InteractiveOff()  # mouse interaction stays with the volume's renderer
        self.overlay.SetActiveCamera(self.renderer.GetActiveCamera())
        self.render_window.SetNumberOfLayers(2)
        self.render_window.AddRenderer(self.overlay)
        self.backdrop = VolumeBackdrop(self.render_window, self.renderer, self._volume)
        self._planes: list[tuple[vtkOutlineSource, vtkActor]] = []
        for name in ("sagittal", "coronal", "axial"):
            source = vtkOutlineSource()
            mapper = vtkPolyDataMapper()
            mapper.SetInputConnection(source.GetOutputPort())
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.GetProperty().SetColor(*PLANE_COLOURS[name])
            actor.VisibilityOff()
            self.overlay.AddActor(actor)
            self._planes.append((source, actor))
        self._marker = self._orientation_marker()
        document.volume_changed.connect(self._on_volume)
        # Software GL renders a volume in ~1 s: coalesce crosshair moves so dragging stays fluid.
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(150)
        self._render_timer.timeout.connect(self.refresh)
        document.cursor_changed.connect(lambda _c: self._update_planes())

    @property
    def render_window(self):  # noqa: ANN201 - vtkRenderWindow
        return self.vtk_widget.GetRenderWindow()

    def _orientation_marker(self) -> vtkOrientationMarkerWidget:
        cube = vtkAnnotatedCubeActor()
        # Cube faces in LPS world coordinates (+x = patient left, +y = posterior, +z = superior).
        cube.SetXPlusFaceText("L")
        cube.SetXMinusFaceText("R")
        cube.SetYPlusFaceText("P")
        cube.SetYMinusFaceText("A")
        cube.SetZPlusFaceText("S")
        cube.SetZMinusFaceText("I")
        cube.GetCubeProperty().SetColor(0.3, 0.35, 0.45)
        cube.GetTextEdgesProperty().SetColor(0.8, 0.8, 0.8)
        marker = vtkOrientationMarkerWidget()
        marker.SetOrientationMarker(cube)
        marker.SetInteractor(self.vtk_widget)  # type: ignore[arg-type]  # the Qt widget wraps the interactor
        marker.SetViewport(0.0, 0.0, 0.22, 0.22)
        marker.SetEnabled(1)
        marker.InteractiveOff()
        return marker

    def refresh(self) -> None:
        if self.isVisible():
            self.render_window.Render()

    def grab_array(self) -> np.ndarray:
        return grab_render_window(self.render_window)

    @property
    def render_pending(self) -> bool:
        """A throttled render is still to come (benchmarks wait for it)."""
        return self._render_timer.isActive()

    def request_render(self) -> None:
        """Render after the throttle (a software-GL volume render takes up to a second): props added by
        other features (label surfaces) call this instead of rendering at once."""
        self._render_timer.start()

    def _on_volume(self, _volume: object) -> None:
        vol = self.document.volume
        if vol is None or vol.is_2d:
            self.backdrop.show_volume = False
            self._volume.VisibilityOff()
            for _, actor in self._planes:
                actor.VisibilityOff()
            self.refresh()
            return
        stride = max(1, int(np.ceil(max(vol.shape[1:]) / _MAX_INPLANE)))
        is_ct = vol.modality == "CT" or vol.units == "HU"
        image = image_3d(vol.array, vol.spacing, stride, integer=is_ct)
        origin = np.asarray(vol.origin, float)
        image.SetOrigin(*origin)
        image.SetDirectionMatrix(*np.asarray(vol.direction, float).ravel())
        self._mapper.SetInputData(image)
        colour, opacity = _transfer_functions(vol.array, is_ct)
        prop = vtkVolumeProperty()
        prop.SetColor(colour)
        prop.SetScalarOpacity(opacity)
        prop.SetInterpolationTypeToLinear()
        prop.ShadeOn()
        prop.SetAmbient(0.3)
        prop.SetDiffuse(0.7)
        prop.SetSpecular(0.2)
        self._volume.SetProperty(prop)
        self.backdrop.show_volume = True
        self._volume.VisibilityOn()
        self._update_planes(render=False)
        # the software-GL volume render (~0.5–2 s) waits for the throttle timer, so the slices show first
        self.reset_camera(render=False)
        self._render_timer.start()

    def reset_camera(self, render: bool = True) -> None:
        """Anterior view (patient facing the viewer, superior up), whatever the storage order."""
        camera = self.renderer.GetActiveCamera()
        self.renderer.ResetCamera()
        focal = np.asarray(camera.GetFocalPoint())
        distance = camera.GetDistance()
        camera.SetPosition(*(focal + np.array([0.0, -distance, 0.0])))
        camera.SetViewUp(0.0, 0.0, 1.0)
        camera.Elevation(20.0)  # slightly from above: depth is readable, anterior still faces the viewer
        camera.Azimuth(-15.0)
        camera.OrthogonalizeViewUp()
        self.renderer.ResetCamera()
        camera.Zoom(1.15)
        if render:
            self.refresh()

    def _update_planes(self, render: bool = True) -> None:
        vol = self.document.volume
        if vol is None or vol.is_2d:
            return
        dims = np.asarray(self.document.shape_xyz, float) - 1
        cursor = np.asarray(self.document.cursor, float)
        for axis, (source, actor) in enumerate(self._planes):
            lo, hi = np.zeros(3), dims.copy()
            lo[axis] = hi[axis] = cursor[axis]
            corners = vol.index_to_physical(np.array([lo, hi]))
            bounds = np.ravel(np.column_stack([corners.min(0), corners.max(0)]))
            source.SetBounds(*bounds)
            actor.VisibilityOn()
        if render:
            self._render_timer.start()
