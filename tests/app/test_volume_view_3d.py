"""The 3-D view keeps the volume's rendering as a picture while nothing it depends on changes (issue 17):
cursor moves and label surfaces redraw only the layer above it, the picture is pixel-identical to ray
casting, and any camera, transfer-function or size change ray casts again."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from app.widgets.volume_view_3d import VolumeView3D
from inference.io.volume import Volume


def _ct() -> Volume:
    """40 slices of 64×64: a bright block (bone) in soft tissue, so the volume rendering shows something."""
    array = np.full((40, 64, 64), -50.0, np.float32)
    array[10:30, 20:44, 16:48] = 900.0
    return Volume(array, spacing=(1.0, 1.0, 2.0), modality="CT", units="HU")


def _render(view: VolumeView3D) -> np.ndarray:
    QApplication.processEvents()
    return view.grab_array().astype(int)


def test_cursor_moves_reuse_the_volume_picture_and_camera_moves_ray_cast(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    view, backdrop = window.grid.view_3d, window.grid.view_3d.backdrop
    window.document.set_volume(_ct())
    qtbot.waitUntil(lambda: not view.render_pending, timeout=5000)
    first = _render(view)
    assert not backdrop.in_use or backdrop.captures >= 1
    again = _render(view)
    assert backdrop.in_use, "an unchanged view ray cast the volume again"
    np.testing.assert_array_equal(again, first)

    backdrop.enabled = False  # the reference: the volume ray cast, with the same overlays
    ray_cast = _render(view)
    backdrop.enabled = True
    assert not backdrop.in_use
    np.testing.assert_array_equal(_render(view), ray_cast)  # the picture is the volume, pixel for pixel
    assert backdrop.in_use

    captures = backdrop.captures
    window.document.set_slice(2, 5)  # the axial plane's outline moves, the volume does not
    moved = _render(view)
    assert backdrop.in_use and backdrop.captures == captures
    assert np.abs(moved - again).sum(axis=2).astype(bool).sum() > 20, "the plane outline did not move"

    camera = view.renderer.GetActiveCamera()
    camera.Azimuth(40.0)  # what a left-drag does
    view.render_window.Render()
    assert not backdrop.in_use and backdrop.captures == captures + 1  # ray cast, and kept for the next render
    turned = _render(view)
    assert backdrop.in_use and backdrop.captures == captures + 1
    assert np.abs(turned - moved).mean() > 1.0
    backdrop.enabled = False
    np.testing.assert_array_equal(_render(view), turned)  # the new picture is the turned volume
    backdrop.enabled = True

    window.resize(window.width() - 120, window.height())  # a new size: the old picture would be stretched
    qtbot.waitUntil(lambda: view.render_window.GetSize()[0] != turned.shape[1], timeout=5000)
    resized = _render(view)
    assert backdrop.captures >= captures + 2 and resized.shape != turned.shape
    backdrop.enabled = False
    np.testing.assert_array_equal(_render(view), resized)


def test_an_x_ray_after_a_ct_shows_no_stale_volume_picture(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    view, backdrop = window.grid.view_3d, window.grid.view_3d.backdrop
    window.document.set_volume(_ct())
    qtbot.waitUntil(lambda: not view.render_pending, timeout=5000)
    _render(view)
    _render(view)
    assert backdrop.in_use
    window.document.set_volume(Volume(np.zeros((1, 32, 32), np.float32), spacing=(1.0, 1.0, 1.0), modality="DX"))
    view.render_window.Render()
    assert not backdrop.in_use and not view.renderer.GetTexturedBackground()
