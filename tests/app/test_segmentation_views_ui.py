"""Segmentations in every view (issue 15 defect 5), driven through the real window with the real LiteMedSAM:
label surfaces in the 3-D view, brush/eraser on the coronal and sagittal views, model prompts kept to the
axial view, and the X-ray-only clinical panels hidden while a CT is on screen.

The two view tests save screenshots (under ``tmp_path``; also into the folder named by
``MEDFUSION_SCREENSHOTS`` when set, which is how ``docs/screenshots/`` is refreshed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, Qt

from app.launch import DEMO_CT
from app.main_window import MainWindow
from app.seg_tools import MODEL_PLANE_HINT
from app.segmentation_install import SegmentationWorkspace
from app.widgets.slice_view import SliceView
from tests.app.segmentation_gestures import AORTA_BOX, box_prompt, mouse, open_and_wait, wait_idle


def _pos(view: SliceView, index_xyz: tuple[float, float, float]) -> QPointF:
    """Voxel index (x, y, z) on the view's shown plane → Qt widget coordinates."""
    wx, wy = view.index_to_world(np.asarray(index_xyz, float))
    view.renderer.SetWorldPoint(wx, wy, 0.0, 1.0)
    view.renderer.WorldToDisplay()
    dx, dy, _ = view.renderer.GetDisplayPoint()
    ratio = view.vtk_widget.devicePixelRatioF()
    return QPointF(dx / ratio, view.vtk_widget.height() - dy / ratio)


def _drag_index(view: SliceView, start: tuple[float, float, float], end: tuple[float, float, float],
                steps: int = 6) -> None:
    a, b = _pos(view, start), _pos(view, end)
    left = Qt.MouseButton.LeftButton
    mouse(view, QEvent.Type.MouseButtonPress, a, left, left)
    for i in range(1, steps + 1):
        mouse(view, QEvent.Type.MouseMove, a + (b - a) * (i / steps), Qt.MouseButton.NoButton, left)
    mouse(view, QEvent.Type.MouseButtonRelease, b, left, Qt.MouseButton.NoButton)


def _focus(qtbot, window: MainWindow, name: str, index_xyz: tuple[float, float, float],  # noqa: ANN001
           half_height_mm: float = 25.0) -> SliceView:
    """View ``name`` alone (as after a double-click), centred on a voxel and zoomed in, as a user would
    before editing the 20-slice demo CT on a coronal or sagittal plane (40 mm tall)."""
    window.grid.toggle_maximized(name)
    view = window.views[name]
    grid = window.grid  # the gestures below are placed with the view's laid-out size: wait for it, not a sleep
    qtbot.waitUntil(lambda: view.width() > 0.9 * grid.width() and view.height() > 0.9 * grid.height(), timeout=5000)
    wx, wy = view.index_to_world(np.asarray(index_xyz, float))
    camera = view.renderer.GetActiveCamera()
    camera.SetFocalPoint(wx, wy, 0.0)
    camera.SetPosition(wx, wy, 1000.0)
    camera.SetParallelScale(half_height_mm)
    view.refresh()
    return view


def _save(pixels: np.ndarray, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.png"
    Image.fromarray(np.ascontiguousarray(pixels[..., :3])).save(path)
    target = os.environ.get("MEDFUSION_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


def _aorta(qtbot, window: MainWindow, workspace: SegmentationWorkspace) -> np.ndarray:  # noqa: ANN001
    """Box on the aorta at slice 10, propagated over slices 8..12: the label map's aorta mask."""
    open_and_wait(qtbot, window, DEMO_CT)
    box_prompt(qtbot, window, window.views["axial"], AORTA_BOX)
    workspace.panel.z_from.setValue(9)  # 1-based
    workspace.panel.z_to.setValue(13)
    workspace.panel.propagate_button.click()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=240000)  # 4 embeddings on a shared CPU
    mask = window.context.labels.mask_for("Label 1").astype(bool)
    assert all(mask[z].sum() > 100 for z in range(8, 13)), "propagation did not follow the aorta"
    return mask


def test_labels_are_surfaces_in_the_3d_view(qtbot, seg: MainWindow, workspace: SegmentationWorkspace,  # noqa: ANN001
                                            tmp_path: Path) -> None:
    window, labels = seg, seg.context.labels
    layer = workspace.surfaces
    assert layer is not None
    mask = _aorta(qtbot, window, workspace)
    qtbot.waitUntil(lambda: layer.updates >= 1 and not layer.pending, timeout=60000)
    value = labels.values()["Label 1"]
    actor = layer.actors[value]
    assert actor.GetVisibility() and actor.GetMapper().GetInput().GetNumberOfPolys() > 100

    # The surface lies where the label is, in the patient frame of the volume rendering.
    vol = window.document.volume
    assert vol is not None
    zs, ys, xs = np.nonzero(mask)
    corners = vol.index_to_physical(np.array([[xs.min(), ys.min(), zs.min()], [xs.max(), ys.max(), zs.max()]], float))
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    bounds = np.asarray(actor.GetBounds()).reshape(3, 2)
    tolerance = np.asarray(vol.spacing, float) * 1.5
    assert np.all(np.abs(bounds[:, 0] - lo) <= tolerance) and np.all(np.abs(bounds[:, 1] - hi) <= tolerance), (
        f"surface bounds {bounds.tolist()} vs label {lo.tolist()}..{hi.tolist()}")
    colour = np.asarray(actor.GetProperty().GetColor())
    assert np.allclose(colour * 255.0, labels.colour("Label 1"), atol=1.0)

    # The 3-D view alone and turned to the aorta, as a user would with the mouse, for a readable picture.
    view_3d = window.grid.view_3d
    before = view_3d.size()
    for view in window.views.values():
        view.hide()
    window.resize(1200, 900)  # the 3-D view grows with the window: waited for, not slept
    qtbot.waitUntil(lambda: view_3d.width() > before.width() and view_3d.height() > before.height(), timeout=5000)
    camera = view_3d.renderer.GetActiveCamera()
    shift = bounds.mean(axis=1) - np.asarray(camera.GetFocalPoint())
    camera.SetFocalPoint(*(np.asarray(camera.GetFocalPoint()) + shift))
    camera.SetPosition(*(np.asarray(camera.GetPosition()) + shift))
    camera.Zoom(2.5)
    view_3d.renderer.ResetCameraClippingRange()
    view_3d.refresh()
    shown = view_3d.grab_array()
    _save(shown, "segmentation_3d_surface", tmp_path)
    meshed = layer.updates
    labels.set_visible("Label 1", False)  # the panel's Show box restyles the actor without re-meshing
    assert not actor.GetVisibility() and layer.updates == meshed and not layer.pending
    view_3d.refresh()
    hidden = view_3d.grab_array()
    changed = np.abs(shown[..., :3].astype(int) - hidden[..., :3].astype(int)).sum(axis=2) > 30
    assert changed.sum() > 200, "the label surface is not visible in the 3-D view"
    labels.set_visible("Label 1", True)

    # An undo re-meshes; a label without voxels loses its surface.
    window.actions["seg_undo"].trigger()  # the propagation
    qtbot.waitUntil(lambda: layer.updates >= meshed + 1 and not layer.pending, timeout=60000)
    window.actions["seg_undo"].trigger()  # the box
    qtbot.waitUntil(lambda: layer.updates >= meshed + 2 and not layer.pending, timeout=60000)
    assert value not in layer.actors


def test_brush_and_eraser_edit_on_the_coronal_and_sagittal_views(
    qtbot, seg: MainWindow, workspace: SegmentationWorkspace, tmp_path: Path  # noqa: ANN001
) -> None:
    window, labels, controller = seg, seg.context.labels, workspace.controller
    mask = _aorta(qtbot, window, workspace)
    rows, cols = np.nonzero(mask[10])
    cy, cx = int(np.median(rows)), int(np.median(cols))  # the aorta's centre on slice 10 (row, column)
    window.document.set_cursor((cx, cy, 10))
    window.resize(1200, 900)
    coronal = _focus(qtbot, window, "coronal", (cx, cy, 10))
    assert coronal.slice_index == cy

    # Model prompts stay on the axial view: a box on the coronal view explains instead of acting.
    said: list[str] = []
    controller.status.connect(said.append)
    window.activate_tool("seg_box")
    _drag_index(coronal, (cx - 10, cy, 4), (cx + 10, cy, 16))
    wait_idle(qtbot, window)
    assert said and said[-1] == MODEL_PLANE_HINT
    assert np.array_equal(labels.mask_for("Label 1").astype(bool), mask)

    # A brush stroke down the coronal view extends the aorta to slices 2..17: one row of each axial slice.
    controller.brush_radius = 3
    window.activate_tool("seg_brush")
    _drag_index(coronal, (cx, cy, 2), (cx, cy, 17))
    painted = labels.mask_for("Label 1").astype(bool)
    added = painted & ~mask
    assert set(np.flatnonzero(added.any(axis=(1, 2)))) >= {*range(2, 8), *range(13, 18)}
    assert set(np.flatnonzero(added.any(axis=(0, 2)))) == {cy}, "a coronal stroke painted outside its plane"
    assert np.all(np.abs(np.flatnonzero(added[3, cy]) - cx) <= 4) and added[3, cy, cx]
    assert labels.origin("Label 1") == "AI_CORRECTED"
    workspace.settle()
    assert workspace.overlays["coronal"].shown and workspace.overlays["axial"].shown
    coronal.refresh()
    _save(coronal.grab_array(), "segmentation_coronal_edit", tmp_path)

    # The eraser on the sagittal view removes the slices 2..5 of that column; undo brings them back.
    sagittal = _focus(qtbot, window, "sagittal", (cx, cy, 10))
    assert sagittal.slice_index == cx
    window.activate_tool("seg_eraser")
    _drag_index(sagittal, (cx, cy, 2), (cx, cy, 5))
    erased = labels.mask_for("Label 1").astype(bool)
    assert not erased[2:6, :, cx].any() and erased[2:6, cy].any(), "the sagittal eraser missed or overreached"
    window.actions["seg_undo"].trigger()
    assert np.array_equal(labels.mask_for("Label 1").astype(bool), painted)
    window.actions["seg_undo"].trigger()
    assert np.array_equal(labels.mask_for("Label 1").astype(bool), mask), "the coronal stroke is not one undo step"


@pytest.mark.parametrize("with_case", [False, True])
def test_a_ct_hides_the_xray_only_clinical_panels_and_predict_says_why(
    qtbot, seg: MainWindow, tmp_path: Path, with_case: bool  # noqa: ANN001
) -> None:
    from app.clinical_install import DEMO_CASE, install_clinical
    from app.clinical_scope import CASE_PANELS, NO_CASE, NOT_CASE_IMAGE, PREDICT_TIP
    from app.controllers.case_mask_link import PREDICTOR_LABEL
    from tests.app.clinical_fakes import TinyCasePredictor

    window = seg
    ws = install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    predict = window.actions["predict"]
    if with_case:
        window.open_path(DEMO_CASE)
        wait_idle(qtbot, window)
        assert all(window.panels[name].isVisible() for name in CASE_PANELS)
        assert predict.isEnabled() and predict.toolTip() == PREDICT_TIP
    open_and_wait(qtbot, window, DEMO_CT)
    assert not any(window.panels[name].isVisible() for name in CASE_PANELS)
    assert window.panels["timeline"].isVisible() == with_case  # the case stays one click away
    assert not predict.isEnabled()
    assert predict.toolTip() == (NOT_CASE_IMAGE if with_case else NO_CASE)
    assert PREDICTOR_LABEL not in window.context.labels.names()
    if with_case:
        image = ws.model.case.images[1]  # back to one of the case's X-rays
        ws.controller.show_image(image.filename)
        wait_idle(qtbot, window)
        assert all(window.panels[name].isVisible() for name in CASE_PANELS) and predict.isEnabled()
        lungs = window.context.labels.mask_for(PREDICTOR_LABEL)[0] > 0
        assert np.array_equal(lungs, ws.model.masks[image.filename] > 0)
