"""The explanation heat-map on the X-ray: inside the lungs only, with a colour bar, greyed when the X-rays
carry little weight, and in the same colours as the clinical-value bars (red = towards the outcome).

The greyed view is saved as ``clinical_overlay_greyed_test.png`` (under ``tmp_path``; also into the folder
named by ``MEDFUSION_SCREENSHOTS``): a crafted map on the demo X-ray (``main.py demo --headless`` writes
the shipped model's greyed view as ``clinical_overlay_greyed.png``).
"""

from __future__ import annotations

import colorsys
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from vtkmodules.util.numpy_support import vtk_to_numpy

from app.clinical_install import DEMO_CASE, install_clinical
from app.model.clinical import ExplanationResult
from inference.clinical.attribution_colours import AWAY, LOW_IMAGE_WEIGHT, TOWARDS, rgb
from tests.app.clinical_fakes import TinyCasePredictor

pytestmark = pytest.mark.skipif(not DEMO_CASE.is_dir(), reason="demo case not bundled")


@pytest.fixture
def opened(window, qtbot, tmp_path):  # noqa: ANN001, ANN201 - the demo case open, no prediction run
    ws = install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    window.open_path(DEMO_CASE)
    qtbot.waitUntil(lambda: not window.runner.busy and ws.model.case is not None, timeout=60000)
    return ws


def _explanation(ws, gate: float, leak: bool = True) -> tuple[ExplanationResult, np.ndarray]:  # noqa: ANN001
    """A signed map that is non-zero *everywhere* (``leak``), so only the overlay can keep it in the lungs."""
    image = ws.model.selected
    lungs = ws.model.masks[image.filename] > 0
    h, w = lungs.shape
    yy, xx = np.mgrid[0:h, 0:w]
    signed = (np.sin(xx / w * 6.0) * 0.8 + 0.2).astype(np.float32)  # both signs, never exactly 0
    if not leak:
        signed = signed * lungs
    result = ExplanationResult("occlusion", "went_icu", {image.filename: np.abs(signed)},
                               [("age", 0.4), ("pO2_saturation", -0.3)], {image.filename: 1.0}, gate,
                               signed_heatmaps={image.filename: signed}, lungs={image.filename: lungs})
    return result, lungs


def _vtk_plane(actor) -> np.ndarray:  # noqa: ANN001 - what the overlay actually handed to VTK
    data = actor.GetMapper().GetInput()
    cols, rows, _ = data.GetDimensions()
    return vtk_to_numpy(data.GetPointData().GetScalars()).reshape(rows, cols)


def test_heatmap_is_zero_outside_the_lungs_and_has_a_colour_bar(window, opened, qtbot) -> None:  # noqa: ANN001
    ws, overlay = opened, opened.overlay
    assert not overlay.legend.bar.GetVisibility()  # no explanation: no bar
    result, lungs = _explanation(ws, gate=0.6)
    ws.model.set_explanation(result)
    qtbot.wait(20)
    assert overlay.shown is not None and overlay.actor.GetVisibility()
    assert np.all(overlay.shown[~lungs] == 0) and np.count_nonzero(overlay.shown[lungs]) > 0.9 * lungs.sum()
    view = window.views["axial"]
    plane = _vtk_plane(overlay.actor)
    lungs_on_screen = view.mapping.slice_2d(lungs[None].astype(np.float32), 0) > 0.5
    assert plane.shape == lungs_on_screen.shape
    assert np.all(plane[~lungs_on_screen] == 0) and np.abs(plane[lungs_on_screen]).max() > 0.9
    lut = overlay.actor.GetProperty().GetLookupTable()
    assert lut.GetTableValue(lut.GetIndex(0.0))[3] == 0.0  # 0 (outside the lungs) is fully transparent
    outline = _vtk_plane(overlay.outline)
    assert overlay.outline.GetVisibility() and outline.sum() > 0 and np.all(outline[~lungs_on_screen] == 0)

    legend = overlay.legend
    assert legend.bar.GetVisibility() and legend.bar.GetLookupTable() is not None
    assert "towards" in legend.towards.GetInput() and "ICU admission" in legend.towards.GetInput()
    assert legend.away.GetVisibility() and "away" in legend.away.GetInput()
    assert not legend.note.GetVisibility()  # the X-rays count: no greying note

    before = view.grab_array()
    ws.explanation.show_box.setChecked(False)  # the check box hides map, outline and bar together
    qtbot.wait(20)
    assert not overlay.actor.GetVisibility() and not legend.bar.GetVisibility()
    assert not np.array_equal(before, view.grab_array())


def _screenshot(window, name: str, tmp_path: Path) -> None:  # noqa: ANN001
    from app.screenshot import save_array

    pixels = window.views["axial"].grab_array()
    assert pixels.std() > 3.0
    path = tmp_path / name
    save_array(pixels, path)
    target = os.environ.get("MEDFUSION_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def test_map_greyed_with_a_note_below_the_weight_threshold(window, opened, qtbot, tmp_path) -> None:  # noqa: ANN001
    ws, overlay = opened, opened.overlay
    ws.model.set_explanation(_explanation(ws, gate=LOW_IMAGE_WEIGHT / 2, leak=False)[0])
    qtbot.wait(20)
    _screenshot(window, "clinical_overlay_greyed_test.png", tmp_path)
    lut = overlay.actor.GetProperty().GetLookupTable()
    assert overlay.grey and lut is overlay.lut_grey
    note = overlay.legend.note.GetInput()
    assert overlay.legend.note.GetVisibility() and "10 %" in note and "greyed" in note
    assert "greyed" in ws.explanation.status.text()
    assert overlay.legend.bar.GetVisibility()  # the bar stays, greyed like the map

    def saturation(table, value: float) -> float:  # noqa: ANN001
        r, g, b, _a = table.GetTableValue(table.GetIndex(value))
        return colorsys.rgb_to_hsv(r, g, b)[1]

    colour = overlay.lut_colour
    assert saturation(lut, 1.0) < 0.5 * saturation(colour, 1.0)
    assert saturation(lut, -1.0) < 0.5 * saturation(colour, -1.0)
    assert lut.GetTableValue(lut.GetIndex(1.0))[3] < colour.GetTableValue(colour.GetIndex(1.0))[3]

    ws.model.set_explanation(_explanation(ws, gate=LOW_IMAGE_WEIGHT + 0.05)[0])  # just above: in colour
    qtbot.wait(20)
    assert not overlay.grey and overlay.actor.GetProperty().GetLookupTable() is overlay.lut_colour
    assert not overlay.legend.note.GetVisibility() and "greyed" not in ws.explanation.status.text()


def test_an_x_ray_with_little_weight_among_the_others_is_greyed(window, opened, qtbot) -> None:  # noqa: ANN001
    ws, overlay = opened, opened.overlay
    result, _lungs = _explanation(ws, gate=0.9, leak=False)
    shown = ws.model.selected.filename
    others = [im.filename for im in ws.model.case.images if im.filename != shown]
    n = len(others) + 1
    result.time_weights = {shown: 0.4 / n, **{o: (1 - 0.4 / n) / len(others) for o in others}}  # under 0.5 / n
    ws.model.set_explanation(result)
    qtbot.wait(20)
    note = overlay.legend.note.GetInput()
    assert overlay.grey and overlay.legend.note.GetVisibility() and f"{40 / n:.0f} %" in note
    assert "other X-rays" in ws.explanation.status.text()
    result.time_weights = {shown: 0.6 / n, **{o: (1 - 0.6 / n) / len(others) for o in others}}  # over 0.5 / n
    ws.model.set_explanation(result)
    qtbot.wait(20)
    assert not overlay.grey and not overlay.legend.note.GetVisibility()


def test_red_means_towards_the_outcome_on_the_image_and_in_the_clinical_bars(window, opened, qtbot) -> None:  # noqa: ANN001
    ws, overlay = opened, opened.overlay
    ws.model.set_explanation(_explanation(ws, gate=0.6, leak=False)[0])
    qtbot.wait(20)
    lut = overlay.lut_colour
    towards, away = lut.GetTableValue(lut.GetIndex(1.0))[:3], lut.GetTableValue(lut.GetIndex(-1.0))[:3]
    assert np.allclose(towards, rgb(TOWARDS), atol=0.02) and np.allclose(away, rgb(AWAY), atol=0.02)
    ws.explanation.chart.figure.canvas.draw()
    bars = ws.explanation.chart.figure.axes[0].patches  # reversed order: SpO2 (-0.3) first, age (+0.4)
    colours = [tuple(round(c, 3) for c in bar.get_facecolor()[:3]) for bar in bars]
    assert colours == [tuple(round(c, 3) for c in rgb(AWAY)), tuple(round(c, 3) for c in rgb(TOWARDS))]


def test_report_key_image_uses_the_same_colours_inside_the_lung_outline(window, opened, qtbot) -> None:  # noqa: ANN001
    from app.controllers.report_builder import LUNG_OUTLINE, ReportInputs, build_report

    ws = opened
    result, lungs = _explanation(ws, gate=0.6)  # the map leaks outside the lungs: the report must not show it
    ws.model.set_explanation(result)
    vol = window.document.volume
    inputs = ReportInputs(volume=vol, study=window.document.study_info(), deidentified=True, clinical_model=ws.model)
    key = build_report(inputs).key_images[0]
    signed = result.signed_heatmaps[ws.model.selected.filename]
    ws.model.set_explanation(None)
    plain = build_report(inputs).key_images[0].image.astype(int)
    image = key.image.astype(int)
    assert "red: pushes towards ICU admission" in key.caption and "lung outline" in key.caption
    np.testing.assert_array_equal(image[~lungs], plain[~lungs])  # outside the lungs: untouched
    inner = ndimage.binary_erosion(lungs, iterations=8)  # well inside, away from the outline
    towards, away = inner & (signed > 0.5), inner & (signed < -0.5)
    assert np.mean(image[towards, 0] - image[towards, 2]) > 30  # red where the map pushes towards
    assert np.mean(image[away, 2] - image[away, 0]) > 30  # blue where it pushes away
    edge = lungs & ~ndimage.binary_erosion(lungs)
    assert np.all(plain[edge] == LUNG_OUTLINE)  # the mask is an outline in the viewer's colour, no red fill
