"""The view-mode toolbar during a prior comparison, in the real window: I inverts both sides, a window preset
sets both sides, the grid-only modes (layout, flip/rotate, slab, cine) are off with "not while comparing" in
their tooltips, and all of it comes back when the comparison closes."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

from app.comparison_view_modes import COMPARING_STATUS, link_comparison_view_modes
from app.view_modes_install import install_view_modes
from tests.app.browser_data import two_studies
from tests.app.browser_helpers import install, screenshot, wait_idle
from tests.app.keys import shortcut  # window shortcuts: pressed with the window active

GRID_ONLY = ("layout_1x2", "layout_2x2", "flip_horizontal", "flip_vertical", "rotate_right", "rotate_left",
             "slab_cycle", "slab_max", "cine_play", "save_view_image")


def _centre(view) -> np.ndarray:  # noqa: ANN001 - SliceView
    """The middle of what the view draws (grey), clear of the corner texts."""
    pixels = view.grab_array().astype(float).mean(axis=2)
    h, w = pixels.shape
    return pixels[h // 4: 3 * h // 4, w // 4: 3 * w // 4]


def _inverted_of(before: np.ndarray, after: np.ndarray) -> bool:
    """``after`` is ``before`` with the grey scale turned over (strongly anti-correlated, not blank)."""
    return before.std() > 3.0 and after.std() > 3.0 and float(np.corrcoef(before.ravel(), after.ravel())[0, 1]) < -0.9


def test_view_modes_act_on_both_comparison_sides_or_say_why_not(window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    data = two_studies(tmp_path)
    view_modes = install_view_modes(window)  # the order build_viewer uses
    ws = install(window, tmp_path)
    link_comparison_view_modes(view_modes, ws.comparison)
    window.resize(1200, 800)
    statuses: list[str] = []
    monkeypatch.setattr(window.context, "show_status", statuses.append)
    monkeypatch.setattr(window, "choose_series", lambda series, path: (data.current.series_uid, None))
    window.open_path(data.folder)
    qtbot.waitUntil(lambda: bool(ws.browser.model.entries), timeout=60000)
    wait_idle(qtbot, window)
    actions, modes = window.actions, view_modes.modes
    assert all(actions[name].isEnabled() for name in GRID_ONLY)  # a 3-D study: all available

    actions["compare_prior"].trigger()
    wait_idle(qtbot, window)
    model, view = ws.comparison.model, ws.comparison.view()
    assert model.active and model.prior.volume is not None
    qtbot.wait(50)
    assert COMPARING_STATUS in statuses
    for name in GRID_ONLY:
        assert not actions[name].isEnabled(), name
        assert "not while comparing" in actions[name].toolTip(), name
    toolbar = view_modes.toolbar
    for widget in (toolbar.layout_button, toolbar.slab_mode, toolbar.slab_mm, toolbar.fps):
        assert not widget.isEnabled() and "not while comparing" in widget.toolTip()
    assert actions["invert"].isEnabled()

    # I (pressed over the prior side) inverts both sides, not just the hidden grid
    current_before, prior_before = _centre(view.current.view), _centre(view.prior.view)
    shortcut(view.prior.view.vtk_widget, Qt.Key.Key_I)
    qtbot.wait(20)
    assert modes.inverted and actions["invert"].isChecked()
    assert _inverted_of(current_before, _centre(view.current.view))
    assert _inverted_of(prior_before, _centre(view.prior.view))
    assert "inverted" in view.prior.view.mode_text
    screenshot(window, "comparison_inverted", tmp_path)

    # a window preset (2 = mediastinum 400/40) reaches the prior too; H (flip) does nothing while comparing
    shortcut(view.current.view.vtk_widget, Qt.Key.Key_2)
    assert (window.document.window, window.document.level) == (400.0, 40.0)
    assert (model.prior.window, model.prior.level) == (400.0, 40.0)
    transform = modes.display().transform
    shortcut(view.current.view.vtk_widget, Qt.Key.Key_H)
    assert modes.display().transform == transform

    # back to the views: the grid's modes return (tooltips without the note), the grid is inverted too
    QTest.mouseClick(view.findChild(QWidget, "comparison_back"), Qt.MouseButton.LeftButton)
    assert not model.active
    for name in GRID_ONLY:
        assert actions[name].isEnabled() and "not while comparing" not in actions[name].toolTip(), name
    assert toolbar.slab_mode.isEnabled() and "not while comparing" not in toolbar.slab_mode.toolTip()
    assert modes.inverted and "inverted" in window.views["axial"].mode_text
    shortcut(window.views["axial"].vtk_widget, Qt.Key.Key_H)
    assert modes.display().transform != transform
