"""NumPy ↔ VTK conversions and colour tables shared by the views."""

from __future__ import annotations

import numpy as np

# Register the OpenGL, text and volume rendering back ends (VTK's factory needs these imported once).
import vtkmodules.vtkInteractionStyle  # noqa: F401
import vtkmodules.vtkRenderingFreeType  # noqa: F401
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkWindowToImageFilter


def image_2d(plane: np.ndarray, spacing: tuple[float, float]) -> vtkImageData:
    """``plane[row, col]`` (row 0 at the bottom) as a one-slice vtkImageData in mm."""
    rows, cols = plane.shape
    image = vtkImageData()
    image.SetDimensions(cols, rows, 1)
    image.SetSpacing(float(spacing[0]), float(spacing[1]), 1.0)
    image.SetOrigin(0.0, 0.0, 0.0)
    scalars = numpy_to_vtk(np.ascontiguousarray(plane, dtype=np.float32).ravel(), deep=True)
    image.GetPointData().SetScalars(scalars)
    return image


def image_3d(array_zyx: np.ndarray, spacing_xyz: tuple[float, float, float], stride: int = 1,
             integer: bool = False) -> vtkImageData:
    """Whole volume (optionally subsampled in-plane by ``stride``) in index-aligned mm coordinates.

    ``integer``: store int16 (rounded) instead of float32 when the values fit — half the memory for the
    image and for the renderer's texture (CT in HU needs no fractions to be rendered). The VTK array shares
    the numpy buffer (no second copy); VTK keeps the numpy array alive through the array's buffer.
    """
    sub = array_zyx[:, ::stride, ::stride]
    data: np.ndarray
    if integer and sub.size and -32768.0 <= float(sub.min()) and float(sub.max()) <= 32767.0:
        data = np.empty(sub.shape, dtype=np.int16)
        np.rint(sub, out=data, casting="unsafe")
    else:
        data = np.ascontiguousarray(sub, dtype=np.float32)
    z, y, x = data.shape
    image = vtkImageData()
    image.SetDimensions(x, y, z)
    image.SetSpacing(spacing_xyz[0] * stride, spacing_xyz[1] * stride, spacing_xyz[2])
    image.GetPointData().SetScalars(numpy_to_vtk(data.ravel(), deep=False))
    return image


def hot_lut(lower: float, upper: float) -> vtkLookupTable:
    """'Hot' colour map (black→red→yellow→white) whose alpha ramps up from ``lower``.

    Low uptake stays transparent so the CT remains readable under the PET.
    """
    lut = vtkLookupTable()
    n = 256
    lut.SetNumberOfTableValues(n)
    lut.SetRange(lower, upper)
    for i in range(n):
        t = i / (n - 1)
        r, g, b = min(1.0, 3 * t), min(1.0, max(0.0, 3 * t - 1)), min(1.0, max(0.0, 3 * t - 2))
        lut.SetTableValue(i, r, g, b, min(1.0, t * 5.0))
    lut.SetBelowRangeColor(0, 0, 0, 0)
    lut.UseBelowRangeColorOn()
    lut.Build()
    return lut


def grab_render_window(window: vtkRenderWindow) -> np.ndarray:
    """Rendered pixels as ``uint8[H, W, 3]``, top row first (what the user sees)."""
    window.Render()
    grabber = vtkWindowToImageFilter()
    grabber.SetInput(window)
    grabber.SetInputBufferTypeToRGB()
    grabber.ReadFrontBufferOff()
    grabber.Update()
    image = grabber.GetOutput()
    w, h, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, -1)
    return np.ascontiguousarray(pixels[::-1, :, :3])
