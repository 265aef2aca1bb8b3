"""Prompts in the viewer with the real LiteMedSAM: a box drawn with the mouse shows a mask (undo removes
it, redo restores it), include/exclude clicks, right-drag still sets the window, and a new image starts a
fresh session. The model loads once per module (tests/app/conftest.py); embeddings are shared.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from app.launch import DEMO_CT, DEMO_CXR
from app.main_window import MainWindow
from app.segmentation_install import SegmentationWorkspace
from tests.app.segmentation_gestures import (
    LUNG_BOX,
    REF_MASK,
    box_prompt,
    click,
    dice,
    drag,
    open_and_wait,
    wait_idle,
)


def test_box_drawn_with_the_mouse_shows_a_mask_undo_removes_it_redo_restores_it(
    qtbot, seg: MainWindow, workspace: SegmentationWorkspace, backend  # noqa: ANN001
) -> None:
    window, labels = seg, seg.context.labels
    open_and_wait(qtbot, window, DEMO_CXR)
    view = window.views["axial"]
    assert view.mapping.name == "image"
    events: list[tuple[str, str, object]] = []
    labels.gesture_applied.connect(lambda kind, label, zr: events.append((kind, label, zr)))
    calls_before = backend.encoder_calls
    before = view.grab_array().astype(int)

    box_prompt(qtbot, window, view, LUNG_BOX)
    assert labels.names() == ["Label 1"] and events[-1] == ("box", "Label 1", (0, 0))
    mask = labels.mask_for("Label 1")
    assert mask.dtype == np.uint8 and mask.shape == window.document.volume.shape
    reference = np.asarray(Image.open(REF_MASK))[None] > 0
    reference[:, :, : int(LUNG_BOX[0])] = False  # only the lung inside the box
    assert dice(mask > 0, reference) > 0.8, "the box did not segment the lung"
    assert labels.origin("Label 1") == "AI"
    # The precompute embedded the image when it opened; the box reused it (no second encoder run).
    assert backend.encoder_calls - calls_before <= 1

    shown = view.grab_array().astype(int)
    tinted = np.abs(shown - before).sum(axis=2) > 30
    assert tinted.mean() > 0.03, "no mask pixels appeared on screen"
    colour = np.array(labels.colour("Label 1"))
    shift = (shown[tinted] - before[tinted]).mean(axis=0)
    assert np.corrcoef(shift, colour - colour.mean())[0, 1] > 0.5, "the tint is not the label colour"

    window.actions["seg_undo"].trigger()
    assert not labels.mask_for("Label 1").any() and events[-1][0] == "undo"
    assert np.abs(view.grab_array().astype(int) - before).mean() < 0.5, "undo left mask pixels on screen"
    window.actions["seg_redo"].trigger()
    assert np.array_equal(labels.mask_for("Label 1"), mask) and events[-1][0] == "redo"
    workspace.settle()  # the label layer is composed on a background thread after a gesture
    assert np.abs(view.grab_array().astype(int) - shown).mean() < 0.5
    labels.set_visible("Label 1", False)  # the panel's Show box
    assert np.abs(view.grab_array().astype(int) - before).mean() < 0.5, "a hidden label is still drawn"
    labels.set_visible("Label 1", True)
    labels.set_opacity("Label 1", 0.9)
    stronger = np.abs(view.grab_array().astype(int) - before).sum(axis=2)
    assert stronger[tinted].mean() > np.abs(shown - before).sum(axis=2)[tinted].mean() + 10


def test_right_click_excludes_left_click_includes_and_right_drag_is_still_window_level(
    qtbot, seg: MainWindow, workspace: SegmentationWorkspace  # noqa: ANN001
) -> None:
    window, labels = seg, seg.context.labels
    open_and_wait(qtbot, window, DEMO_CXR)
    view = window.views["axial"]
    box_prompt(qtbot, window, view, LUNG_BOX)
    boxed = labels.mask_for("Label 1")[0].astype(bool)
    ys, xs = np.nonzero(boxed)
    px, py = float(np.median(xs)), float(np.median(ys))  # inside the lung

    window.activate_tool("seg_point")
    click(view, px, py, Qt.MouseButton.RightButton)
    wait_idle(qtbot, window)
    excluded = labels.mask_for("Label 1")[0].astype(bool)
    prompt = labels.session.prompt("Label 1", 0)
    assert prompt is not None and prompt.points[-1][2] is False
    assert excluded.sum() < boxed.sum(), "the exclude click did not remove anything"
    assert workspace.overlays["axial"].exclude_marks.actor.GetVisibility()

    window.actions["seg_undo"].trigger()  # back to the box alone
    assert np.array_equal(labels.mask_for("Label 1")[0].astype(bool), boxed)
    click(view, px, py, Qt.MouseButton.LeftButton)  # the same spot, now as "include"
    wait_idle(qtbot, window)
    included = labels.mask_for("Label 1")[0].astype(bool)
    (cx, cy, positive), = labels.session.prompt("Label 1", 0).points
    assert positive and abs(cx - px) < 0.5 and abs(cy - py) < 0.5
    assert included.sum() > excluded.sum(), "include kept less than exclude at the same spot"
    assert workspace.overlays["axial"].include_marks.actor.GetVisibility()
    assert not workspace.overlays["axial"].exclude_marks.actor.GetVisibility()

    level = window.document.level
    drag(view, (300.0, 300.0), (300.0, 420.0), Qt.MouseButton.RightButton)
    assert window.document.level != level, "right-drag no longer changes the window/level"
    assert len(labels.session.prompt("Label 1", 0).points) == 1, "a right-drag was taken as a click"


def test_new_image_cancels_the_precompute_and_starts_a_fresh_session(
    qtbot, seg: MainWindow, workspace: SegmentationWorkspace, backend  # noqa: ANN001
) -> None:
    window, labels, controller = seg, seg.context.labels, workspace.controller
    controller.neighbours = 6  # 13 CT slices to embed: far more than the time the X-ray takes to open
    calls = backend.encoder_calls
    window.open_path(DEMO_CT)
    qtbot.waitUntil(lambda: window.document.volume is not None and controller.busy("seg_embed"), timeout=60000)
    ct_session = labels.session
    window.open_path(DEMO_CXR)
    wait_idle(qtbot, window)
    assert window.document.volume.is_2d and labels.session is not ct_session
    assert workspace.panel.window_mode.currentText() == "Automatic (from the box)"  # no choice for this image yet
    assert backend.encoder_calls - calls < 13, "the CT precompute went on after the image changed"
    assert labels.names() == [] and not controller.busy()
    # Shortcuts (xvfb has no window manager to activate the window, so the actions are triggered directly).
    keys = {name: window.actions[name].shortcut().toString() for name in
            ("tool_seg_box", "tool_seg_point", "tool_seg_brush", "tool_seg_eraser", "seg_undo", "seg_redo",
             "seg_brush_larger", "seg_propagate", "save_segmentation")}
    assert keys == {"tool_seg_box": "B", "tool_seg_point": "K", "tool_seg_brush": "D", "tool_seg_eraser": "E",
                    "seg_undo": "Ctrl+Z", "seg_redo": "Ctrl+Shift+Z", "seg_brush_larger": "]",
                    "seg_propagate": "Ctrl+Shift+P", "save_segmentation": "Ctrl+Shift+S"}
    radius = controller.brush_radius
    window.actions["seg_brush_larger"].trigger()
    assert controller.brush_radius == radius + 1
    assert not window.actions["seg_cancel"].isEnabled()  # Esc is only taken while the model works

