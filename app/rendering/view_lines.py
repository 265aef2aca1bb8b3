"""Line overlays drawn on a slice view in world millimetres (boxes, clicks, brush outline, measurements).

Why one class: the segmentation overlay and the measurement overlay both need "a few polylines in one colour
at a fixed depth above the image", rebuilt on every change (a handful of points, so no incremental update).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

if TYPE_CHECKING:
    from app.widgets.slice_view import SliceView

Xy = tuple[float, float]


class ViewPolylines:
    """Polylines (a segment is a two-point polyline) in one colour and width, at depth ``z`` on ``view``."""

    def __init__(self, view: SliceView, colour: tuple[float, float, float], width: float, z: float) -> None:
        self.z = z
        self.poly = vtkPolyData()
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(self.poly)
        self.actor = vtkActor()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetColor(*colour)
        self.actor.GetProperty().SetLineWidth(width)
        self.actor.VisibilityOff()
        view.add_prop(self.actor)

    def set(self, lines: Sequence[Sequence[Xy]]) -> None:
        points, cells = vtkPoints(), vtkCellArray()
        for line in lines:
            cells.InsertNextCell(len(line))
            for x, y in line:
                cells.InsertCellPoint(points.InsertNextPoint(x, y, self.z))
        self.poly.SetPoints(points)
        self.poly.SetLines(cells)
        self.poly.Modified()
        self.actor.SetVisibility(bool(lines))
