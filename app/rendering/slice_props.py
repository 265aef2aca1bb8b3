"""VTK props drawn over a 2-D slice: image layers, crosshair, corner text, orientation letters.

Kept apart from the Qt widget so the widget file stays about interaction and document wiring.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingAnnotation import vtkCornerAnnotation
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkImageProperty,
    vtkImageSlice,
    vtkImageSliceMapper,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkTextActor,
)

from app.rendering.vtk_image import image_2d

# Slicer-like colours identifying each plane (crosshair lines, 3-D outlines).
PLANE_COLOURS = {"axial": (0.95, 0.35, 0.35), "coronal": (0.35, 0.85, 0.35), "sagittal": (0.95, 0.85, 0.3)}


def image_slice(layer: int) -> vtkImageSlice:
    """An image actor for a vtkImageStack layer (linear interpolation, placeholder 1×1 input)."""
    mapper = vtkImageSliceMapper()
    mapper.SetInputData(image_2d(np.zeros((1, 1), np.float32), (1.0, 1.0)))
    prop = vtkImageProperty()
    prop.SetInterpolationTypeToLinear()
    prop.SetLayerNumber(layer)
    actor = vtkImageSlice()
    actor.SetMapper(mapper)
    actor.SetProperty(prop)
    return actor


class Crosshair:
    """Two lines through the cursor with a small gap so the voxel itself stays visible."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self.actors: list[vtkActor] = []
        for _ in range(2):
            points = vtkPoints()
            points.SetNumberOfPoints(4)
            lines = vtkCellArray()
            for a, b in ((0, 1), (2, 3)):
                lines.InsertNextCell(2)
                lines.InsertCellPoint(a)
                lines.InsertCellPoint(b)
            poly = vtkPolyData()
            poly.SetPoints(points)
            poly.SetLines(lines)
            mapper = vtkPolyDataMapper()
            mapper.SetInputData(poly)
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.GetProperty().SetLineWidth(1.0)
            actor.GetProperty().SetOpacity(0.8)
            actor.VisibilityOff()
            renderer.AddActor(actor)
            self.actors.append(actor)

    def hide(self) -> None:
        for actor in self.actors:
            actor.VisibilityOff()

    def place(
        self,
        centre: tuple[float, float],
        extent: tuple[float, float],
        colours: tuple[tuple[float, float, float], tuple[float, float, float]],
    ) -> None:
        """Vertical and horizontal line through ``centre`` across ``extent`` (world mm)."""
        cx, cy = centre
        x_max, y_max = extent
        gap = 0.04 * max(x_max, y_max)
        segments = (
            ((cx, 0.0), (cx, cy - gap), (cx, cy + gap), (cx, y_max)),
            ((0.0, cy), (cx - gap, cy), (cx + gap, cy), (x_max, cy)),
        )
        for actor, segs, colour in zip(self.actors, segments, colours, strict=True):
            points = actor.GetMapper().GetInput().GetPoints()
            for i, (px, py) in enumerate(segs):
                points.SetPoint(i, px, py, 0.5)
            points.Modified()
            actor.GetProperty().SetColor(*colour)
            actor.VisibilityOn()


class ViewText:
    """Corner annotation (0 lower-left, 1 lower-right, 2 upper-left, 3 upper-right) and edge letters."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self.corners = vtkCornerAnnotation()
        self.corners.SetMaximumFontSize(15)
        self.corners.SetMinimumFontSize(11)
        self.corners.GetTextProperty().SetColor(0.9, 0.9, 0.9)
        self.corners.GetTextProperty().ShadowOn()
        renderer.AddViewProp(self.corners)
        self.letters = [
            self._letter(renderer, pos) for pos in ((0.01, 0.5), (0.99, 0.5), (0.5, 0.01), (0.5, 0.99))
        ]

    @staticmethod
    def _letter(renderer: vtkRenderer, pos: tuple[float, float]) -> vtkTextActor:
        actor = vtkTextActor()
        prop = actor.GetTextProperty()
        prop.SetFontSize(16)
        prop.BoldOn()
        prop.SetColor(1.0, 0.85, 0.3)
        prop.ShadowOn()
        prop.SetJustification(0 if pos[0] < 0.1 else 2 if pos[0] > 0.9 else 1)
        prop.SetVerticalJustification(0 if pos[1] < 0.1 else 2 if pos[1] > 0.9 else 1)
        actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        actor.SetPosition(*pos)
        renderer.AddViewProp(actor)
        return actor

    def set_corner(self, corner: int, text: str) -> None:
        self.corners.SetText(corner, text)

    def set_letters(self, letters: tuple[str, str, str, str]) -> None:
        """Left, right, bottom, top edge letters."""
        for actor, text in zip(self.letters, letters, strict=True):
            actor.SetInput(text)
