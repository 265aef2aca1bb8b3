"""The explanation heat-map on the 2-D view: signed, inside the lungs only, with a colour bar and a note.

Why signed: a clinician must see *which way* a part of the lungs moved the risk (red towards the outcome,
blue away, as the clinical-value bars), not only "something happened here". Why the lung outline: the
map is restricted to the lung mask the model used (supplied or found automatically), so the outline says
where the model looked at all. When the X-rays carry little weight in the prediction (the clinical values
decided), or this X-ray little among the others, the map is greyed and a note says so: a vivid map would
suggest the image drove the answer.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkLookupTable

from app.model.clinical import OUTCOMES, ClinicalModel, ExplanationResult
from app.rendering.attribution import AttributionLegend, signed_lut
from app.rendering.slice_props import image_slice
from app.rendering.vtk_image import image_2d
from app.widgets.slice_view import SliceView
from inference.clinical.attribution_colours import greying_note


def outline_lut() -> vtkLookupTable:
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(2)
    lut.SetRange(0.0, 1.0)
    lut.SetTableValue(0, 0.0, 0.0, 0.0, 0.0)
    lut.SetTableValue(1, 0.95, 0.95, 0.75, 0.55)
    lut.Build()
    return lut


def lung_outline(lungs: np.ndarray) -> np.ndarray:
    """float32 {0, 1}: a line ~0.3 % of the image wide along the lung mask's border."""
    lungs = np.asarray(lungs, bool)
    width = max(1, round(max(lungs.shape) / 350))
    from scipy import ndimage  # on first use: the viewer's start-up stays free of scipy.ndimage

    return (lungs & ~ndimage.binary_erosion(lungs, iterations=width)).astype(np.float32)


class HeatmapOverlay:
    """Signed attribution of the X-ray on screen (opacity adjustable), the lung outline and the legend."""

    def __init__(self, view: SliceView, model: ClinicalModel) -> None:
        self.view, self.model = view, model
        self.opacity = 0.6
        self.visible = True
        self.grey = False
        self.lut_colour, self.lut_grey = signed_lut(), signed_lut(grey=True)
        self.actor = image_slice(3)
        self.actor.GetProperty().SetLookupTable(self.lut_colour)
        self.actor.GetProperty().UseLookupTableScalarRangeOn()
        self.actor.VisibilityOff()
        view.add_image_layer(self.actor, layer=3)
        self.outline = image_slice(4)
        self.outline.GetProperty().SetLookupTable(outline_lut())
        self.outline.GetProperty().UseLookupTableScalarRangeOn()
        self.outline.GetProperty().SetInterpolationTypeToNearest()
        self.outline.VisibilityOff()
        view.add_image_layer(self.outline, layer=4)
        self.legend = AttributionLegend(view.renderer)
        self.shown: np.ndarray | None = None  # the (H, W) map last handed to VTK, 0 outside the lungs
        self._outline: tuple[object, np.ndarray] | None = None  # (lung mask, its outline): erosion once per mask
        view.geometry_changed.connect(self.update)
        view.slice_changed.connect(lambda _i: self.update())
        model.explanation_changed.connect(lambda _e: self.update())
        model.image_selected.connect(lambda _i: self.update())

    def current(self) -> np.ndarray | None:
        """The signed map of the X-ray on screen in [-1, 1], multiplied by its lung mask when known."""
        exp, image, vol = self.model.explanation, self.model.selected, self.view.document.volume
        if exp is None or image is None or vol is None or not vol.is_2d:
            return None
        shape = vol.array.shape[1:]
        heat = exp.signed_heatmaps.get(image.filename)
        if heat is None:  # a predictor without signed maps: its [0, 1] map reads as "towards"
            heat = exp.heatmaps.get(image.filename)
        if heat is None or heat.shape != shape:
            return None
        lungs = self.lungs()
        heat = np.clip(np.asarray(heat, np.float32), -1.0, 1.0)
        return heat * lungs if lungs is not None else heat

    def lungs(self) -> np.ndarray | None:
        exp, image, vol = self.model.explanation, self.model.selected, self.view.document.volume
        if exp is None or image is None or vol is None:
            return None
        lungs = exp.lungs.get(image.filename)
        return np.asarray(lungs, bool) if lungs is not None and lungs.shape == vol.array.shape[1:] else None

    def _outline_of(self, lungs: np.ndarray) -> np.ndarray:
        if self._outline is None or self._outline[0] is not lungs:
            self._outline = (lungs, lung_outline(lungs))
        return self._outline[1]

    def update(self) -> None:
        exp = self.model.explanation
        heat = self.current() if self.visible else None
        self.grey = bool(self.greying(sep=" "))
        self.shown = heat
        if heat is not None:
            plane = self.view.mapping.slice_2d(heat[None], 0)
            self.actor.GetMapper().SetInputData(image_2d(plane, self.view.display_spacing))
            self.actor.GetProperty().SetLookupTable(self.lut_grey if self.grey else self.lut_colour)
            self.actor.GetProperty().SetOpacity(self.opacity)
        lungs = self.lungs() if heat is not None else None  # the result's own array when it is bool
        if lungs is not None:
            plane = self.view.mapping.slice_2d(self._outline_of(lungs)[None], 0)
            self.outline.GetMapper().SetInputData(image_2d(plane, self.view.display_spacing))
        self.actor.SetVisibility(heat is not None)
        self.outline.SetVisibility(lungs is not None)
        if heat is not None and exp is not None:
            self.legend.show(OUTCOMES.get(exp.outcome, exp.outcome), self.grey)
        else:
            self.legend.hide()
        self.legend.set_note(self._note(exp, heat))
        self.view.refresh()

    def _note(self, exp: ExplanationResult | None, heat: np.ndarray | None) -> str:
        if exp is None or not self.visible or self.model.selected is None:
            return ""
        if heat is None:
            return "No heat-map for this X-ray: no lungs were found in it" if exp.heatmaps or exp.lungs else ""
        return self.greying(sep="\n")

    def greying(self, sep: str = " ") -> str:
        """Why the map of the X-ray on screen is greyed ("" when it is not); the panel shows it too."""
        exp, image = self.model.explanation, self.model.selected
        if exp is None or image is None:
            return ""
        return greying_note(exp.gate, exp.time_weights.get(image.filename), len(exp.time_weights), sep)

    def set_opacity(self, value: float) -> None:
        self.opacity = value
        self.update()

    def set_visible(self, on: bool) -> None:
        self.visible = on
        self.update()
