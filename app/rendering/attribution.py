"""VTK side of the attribution colours (``inference.clinical.attribution_colours``: red pushes towards the
outcome, blue away, 0 transparent): the overlay's lookup tables and the colour bar with its words."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTextActor

from inference.clinical.attribution_colours import (
    AWAY_TEXT,
    DEAD_ZONE,
    GREY_AWAY,
    GREY_TOWARDS,
    NEUTRAL,
    TOWARDS_TEXT,
    rgb,
    signed_rgba,
)
from inference.clinical.wording import mid_sentence


def signed_lut(grey: bool = False, opaque: bool = False) -> vtkLookupTable:
    """Lookup table over [-1, 1] for the overlay (``opaque``: the colour bar's copy, alpha 1 outside 0)."""
    lut = vtkLookupTable()
    n = 257  # odd: entry 128 is exactly 0
    lut.SetNumberOfTableValues(n)
    lut.SetRange(-1.0, 1.0)
    values = np.linspace(-1.0, 1.0, n)
    for i, (v, (r, g, b, a)) in enumerate(zip(values, signed_rgba(values, grey).tolist(), strict=True)):
        if opaque:
            r, g, b = (NEUTRAL if abs(v) < DEAD_ZONE else (r, g, b))
            a = 1.0
        lut.SetTableValue(i, r, g, b, a)
    lut.Build()
    return lut


def _text(renderer: vtkRenderer, size: int, justify: int, colour: tuple[float, float, float]) -> vtkTextActor:
    actor = vtkTextActor()
    prop = actor.GetTextProperty()
    prop.SetFontSize(size)
    prop.SetColor(*colour)
    prop.ShadowOn()
    prop.SetJustification(justify)  # 0 left, 1 centre, 2 right
    prop.SetVerticalJustification(1)
    prop.SetBackgroundColor(0.0, 0.0, 0.0)  # words stay legible over a bright X-ray
    prop.SetBackgroundOpacity(0.55)
    actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    actor.VisibilityOff()
    renderer.AddViewProp(actor)
    return actor


class AttributionLegend:
    """Colour bar in the upper right of a slice view, with its meaning in words, and a note line on top.

    The bar runs from blue ("pushes away from <outcome>") through neutral ("no effect") to red ("pushes
    towards <outcome>"); greyed with the map when the X-ray's weight in the prediction is low.
    """

    LEFT, BOTTOM, WIDTH, HEIGHT = 0.935, 0.50, 0.05, 0.36  # normalised viewport

    def __init__(self, renderer: vtkRenderer) -> None:
        self.bar = vtkScalarBarActor()
        self.bar.SetLookupTable(signed_lut(opaque=True))
        self.bar.SetOrientationToVertical()
        self.bar.DrawTickLabelsOff()
        self.bar.SetNumberOfLabels(0)
        self.bar.SetBarRatio(1.0)
        self.bar.SetTitle("")
        self.bar.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        self.bar.SetPosition(self.LEFT, self.BOTTOM)
        self.bar.SetWidth(self.WIDTH)
        self.bar.SetHeight(self.HEIGHT)
        self.bar.VisibilityOff()
        renderer.AddViewProp(self.bar)
        light = (0.92, 0.92, 0.92)
        x = self.LEFT - 0.005
        self.towards = _text(renderer, 13, 2, rgb(TOWARDS_TEXT))
        self.towards.SetPosition(x, self.BOTTOM + self.HEIGHT - 0.03)
        self.neutral = _text(renderer, 12, 2, light)
        self.neutral.SetPosition(x, self.BOTTOM + self.HEIGHT / 2)
        self.away = _text(renderer, 13, 2, rgb(AWAY_TEXT))
        self.away.SetPosition(x, self.BOTTOM + 0.03)
        self.note = _text(renderer, 13, 1, (1.0, 0.75, 0.35))
        self.note.SetPosition(0.5, 0.92)
        self.grey = False

    @property
    def actors(self) -> list:
        return [self.bar, self.towards, self.neutral, self.away]

    def show(self, outcome_label: str, grey: bool) -> None:
        """The bar for ``outcome_label`` ('ICU admission'), greyed or in colour."""
        if grey != self.grey or not self.bar.GetVisibility():
            self.bar.SetLookupTable(signed_lut(grey=grey, opaque=True))
            self.grey = grey
        self.towards.SetInput(f"pushes towards\n{mid_sentence(outcome_label)}")
        self.neutral.SetInput("no effect")
        self.away.SetInput("pushes away")
        self.towards.GetTextProperty().SetColor(*rgb(GREY_TOWARDS if grey else TOWARDS_TEXT))
        self.away.GetTextProperty().SetColor(*rgb(GREY_AWAY if grey else AWAY_TEXT))
        for actor in self.actors:
            actor.VisibilityOn()

    def hide(self) -> None:
        for actor in self.actors:
            actor.VisibilityOff()

    def set_note(self, text: str) -> None:
        self.note.SetInput(text)
        self.note.SetVisibility(bool(text))
