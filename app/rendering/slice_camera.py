"""The 2-D views' parallel camera: fit the plane, pan by screen pixels (VTK only, no Qt).

Kept out of the widget so ``slice_view.py`` stays about interaction and document wiring.
"""

from __future__ import annotations

from vtkmodules.vtkRenderingCore import vtkCamera, vtkRenderer


def fit_camera(renderer: vtkRenderer, plane_shape: tuple[int, int], spacing: tuple[float, float],
               widget_size: tuple[int, int]) -> None:
    """Centre the ``[rows, cols]`` plane of ``spacing`` mm (x, y) and fit it whole into the widget."""
    rows, cols = plane_shape
    w_mm, h_mm = cols * spacing[0], rows * spacing[1]
    cx, cy = (cols - 1) * spacing[0] / 2, (rows - 1) * spacing[1] / 2
    camera = renderer.GetActiveCamera()
    camera.SetFocalPoint(cx, cy, 0.0)
    camera.SetPosition(cx, cy, 1000.0)
    camera.SetViewUp(0.0, 1.0, 0.0)
    aspect = max(widget_size[0], 1) / max(widget_size[1], 1)
    camera.SetParallelScale(max(h_mm / 2, w_mm / 2 / aspect) * 1.03)
    renderer.ResetCameraClippingRange(-1e4, 1e4, -1e4, 1e4, -10, 10)


def pan_camera(camera: vtkCamera, dx: float, dy: float, widget_height: int) -> None:
    """Move the image by ``(dx, dy)`` widget pixels (Qt's y runs down)."""
    per_pixel = 2.0 * camera.GetParallelScale() / max(widget_height, 1)
    fx, fy, fz = camera.GetFocalPoint()
    px, py, pz = camera.GetPosition()
    mx, my = -dx * per_pixel, dy * per_pixel
    camera.SetFocalPoint(fx + mx, fy + my, fz)
    camera.SetPosition(px + mx, py + my, pz)
