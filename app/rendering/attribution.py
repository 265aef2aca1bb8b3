"""Colours of an attribution, one meaning everywhere: red pushes towards the outcome, blue pushes away.

Why one module: the heat-map on the X-ray, its colour bar and the clinical-value bars of the explanation
panel must agree, or a clinician reads "red = bad" on the image and "red = high value" beside it. The
signed maps come from ``inference.explain.anatomy`` (values in [-1, 1], 0 outside the lungs); the colour
tables here give 0 a fully transparent colour so nothing outside the lungs is tinted.
"""

from __future__ import annotations

from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTextActor

TOWARDS = "#d9534f"  # red: this value / this part of the lungs raises the risk of the outcome
AWAY = "#5b9bd5"  # blue: lowers it
GREY_TOWARDS = "#a58482"  # the same map, greyed (hue kept, colour drained) when the X-ray barely counts
GREY_AWAY = "#7d8b99"
NEUTRAL = (0.85, 0.85, 0.85)  # the middle of the colour bar: no effect
DEAD_ZONE = 0.08  # |value| below this stays transparent (smoothing ripple, not a finding)


def rgb(colour: str) -> tuple[float, float, float]:
    """'#rrggbb' → (r, g, b) in [0, 1]."""
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def signed_colour(value: float, grey: bool = False) -> tuple[float, float, float, float]:
    """RGBA of a signed attribution in [-1, 1]: neutral → red (positive) or blue (negative) as |value|
    grows; alpha 0 inside the dead zone, so exactly 0 (outside the lungs) never tints the image."""
    v = max(-1.0, min(1.0, float(value)))
    end = rgb((GREY_TOWARDS if grey else TOWARDS) if v > 0 else (GREY_AWAY if grey else AWAY))
    t = abs(v)
    mix = min(1.0, 0.35 + 0.65 * t)  # weak effects already show their hue, strong ones the full colour
    colour = tuple(NEUTRAL[i] + (end[i] - NEUTRAL[i]) * mix for i in range(3))
    alpha = 0.0 if t < DEAD_ZONE else min(1.0, (t - DEAD_ZONE) / 0.6) * 0.9
    if grey:
        alpha *= 0.75
    return colour[0], colour[1], colour[2], alpha


def signed_lut(grey: bool = False, opaque: bool = False) -> vtkLookupTable:
    """Lookup table over [-1, 1] for the overlay (``opaque``: the colour bar's copy, alpha 1 outside 0)."""
    lut = vtkLookupTable()
    n = 257  # odd: entry 128 is exactly 0
    lut.SetNumberOfTableValues(n)
    lut.SetRange(-1.0, 1.0)
    for i in range(n):
        v = -1.0 + 2.0 * i / (n - 1)
        r, g, b, a = signed_colour(v, grey)
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
        self.towards = _text(renderer, 13, 2, rgb(TOWARDS))
        self.towards.SetPosition(x, self.BOTTOM + self.HEIGHT - 0.03)
        self.neutral = _text(renderer, 12, 2, light)
        self.neutral.SetPosition(x, self.BOTTOM + self.HEIGHT / 2)
        self.away = _text(renderer, 13, 2, rgb(AWAY))
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
        lower = outcome_label[:1].lower() + outcome_label[1:] if not outcome_label[:3].isupper() else outcome_label
        self.towards.SetInput(f"pushes towards\n{lower}")
        self.neutral.SetInput("no effect")
        self.away.SetInput("pushes away")
        self.towards.GetTextProperty().SetColor(*rgb(GREY_TOWARDS if grey else TOWARDS))
        self.away.GetTextProperty().SetColor(*rgb(GREY_AWAY if grey else AWAY))
        for actor in self.actors:
            actor.VisibilityOn()

    def hide(self) -> None:
        for actor in self.actors:
            actor.VisibilityOff()

    def set_note(self, text: str) -> None:
        self.note.SetInput(text)
        self.note.SetVisibility(bool(text))
