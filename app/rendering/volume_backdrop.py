"""The 3-D view's volume rendering kept as a picture, so that what is drawn over it (slice-plane outlines,
label surfaces) updates without ray casting the volume again.

Why (issue 17): on software GL one volume render costs ~0.4 s on the UI thread, and a new label surface or
a cursor move used to pay it again although the volume looked exactly the same. While the camera, the
volume, its transfer functions and the window size are unchanged, the volume's pixels are unchanged: they
are read back once, at the end of a still render of the volume's renderer (before the overlay layer is
drawn, so the picture holds the volume alone), and later renders draw that picture as the renderer's
background texture instead of the volume. Overlays sit on their own layer above the volume and never
depth-test against it, so the picture is an exact stand-in. A render that finds anything changed (the
user rotates: the interactor renders directly) ray casts the volume as before and refreshes the picture.
"""

from __future__ import annotations

from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkCommand, vtkUnsignedCharArray
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkTexture, vtkVolume

_STILL_RATE = 1.0  # desired update rates above this are interactive renders (reduced quality): not kept


class VolumeBackdrop:
    """Chooses, before each render of ``window``, between ray casting ``volume`` and drawing its picture."""

    def __init__(self, window: vtkRenderWindow, renderer: vtkRenderer, volume: vtkVolume) -> None:
        self.window, self.renderer, self.volume = window, renderer, volume
        self.show_volume = False  # the view's wish (a 3-D image is loaded); the backdrop decides how
        self._texture = vtkTexture()
        self._texture.InterpolateOff()  # drawn at the size it was read: pixel for pixel
        self._key: tuple | None = None
        self._pending_key: tuple | None = None
        self.enabled = True
        self.captures = 0  # pictures taken (tests, benchmarks)
        self.reused = 0  # renders that drew the picture instead of the volume
        window.AddObserver(vtkCommand.StartEvent, self._before_render)
        renderer.AddObserver(vtkCommand.EndEvent, self._after_volume_layer)

    def invalidate(self) -> None:
        """Forget the picture (the next render ray casts the volume)."""
        self._key = None

    @property
    def in_use(self) -> bool:
        """The last render drew the picture."""
        return bool(self.renderer.GetTexturedBackground())

    def _state(self) -> tuple:
        """Everything the volume's pixels depend on."""
        camera = self.renderer.GetActiveCamera()
        mapper = self.volume.GetMapper()
        connected = mapper is not None and mapper.GetTotalNumberOfInputConnections() > 0
        data = mapper.GetInputDataObject(0, 0) if connected else None  # the volume's image
        prop = self.volume.GetProperty()
        view = (*camera.GetPosition(), *camera.GetFocalPoint(), *camera.GetViewUp(), camera.GetViewAngle(),
                camera.GetParallelScale(), *camera.GetClippingRange())
        return (
            # rounded: some renders round-trip the camera through single precision (a 1e-9° change in the
            # view angle was seen between renders); 1e-5 of a mm or degree moves no pixel
            tuple(round(v, 5) for v in view), camera.GetParallelProjection(),
            tuple(self.window.GetSize()), self.renderer.GetViewport(),
            data.__this__ if data is not None else None, data.GetMTime() if data is not None else 0, prop.GetMTime() if prop is not None else 0,
            mapper.GetMTime() if mapper is not None else 0,
        )

    def _before_render(self, _caller: object, _event: str) -> None:
        reuse = self.enabled and self.show_volume and self._key is not None and self._key == self._state()
        self.renderer.SetTexturedBackground(reuse)
        self.volume.SetVisibility(self.show_volume and not reuse)
        self._pending_key = None
        if reuse:
            self.reused += 1
        elif self.enabled and self.show_volume and self.window.GetDesiredUpdateRate() <= _STILL_RATE:
            self._pending_key = self._state()

    def _after_volume_layer(self, _caller: object, _event: str) -> None:
        """The volume's renderer has drawn (the overlay layer has not yet): keep its pixels."""
        if self._pending_key is None:
            return
        key, self._pending_key = self._pending_key, None
        x0, y0, x1, y1 = self._pixel_box()
        if x1 <= x0 or y1 <= y0:
            return
        pixels = vtkUnsignedCharArray()
        if not self.window.GetPixelData(x0, y0, x1, y1, 0, pixels, 0):
            return
        w, h = x1 - x0 + 1, y1 - y0 + 1
        if vtk_to_numpy(pixels).size != w * h * 3:
            return
        pixels.SetNumberOfComponents(3)
        image = vtkImageData()
        image.SetDimensions(w, h, 1)
        image.GetPointData().SetScalars(pixels)
        self._texture.SetInputData(image)
        self.renderer.SetBackgroundTexture(self._texture)
        self._key = key
        self.captures += 1

    def _pixel_box(self) -> tuple[int, int, int, int]:
        """The renderer's viewport in window pixels (inclusive corners)."""
        w, h = self.window.GetSize()
        vx0, vy0, vx1, vy1 = self.renderer.GetViewport()
        return round(vx0 * w), round(vy0 * h), round(vx1 * w) - 1, round(vy1 * h) - 1
