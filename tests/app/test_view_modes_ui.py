"""View modes in the real window (keys, toolbar, mouse through QTest): layouts, cine, invert, flip/rotate,
thick slab, the left-drag binding, and no shortcut used twice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QKeySequence, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget
from vtkmodules.util.numpy_support import vtk_to_numpy

from app.launch import DEMO_CXR
from app.main_window import MainWindow
from app.rendering.slab import Slab, oriented, project, slab_range
from app.view_modes_install import ViewModesWorkspace, install_view_modes
from app.widgets.slice_view import SliceView
from inference.clinical.formatting import format_pixel_value
from inference.io.volume import Volume
from inference.settings import Settings
from tests.app.keys import shortcut
from tests.app.mouse import LEFT, send

CTRL = Qt.KeyboardModifier.ControlModifier
BRIGHT = (30, 20, 10)  # (x, y, z) of the bright spot of the synthetic CT


@pytest.fixture
def modes(window: MainWindow) -> ViewModesWorkspace:
    return install_view_modes(window)


def _synthetic_ct() -> Volume:
    """24 slices of 64×80 soft tissue with a left-right gradient and one bright 3×3 spot on slice 10."""
    z, y, x = np.mgrid[0:24, 0:64, 0:80].astype(np.float32)
    array = -100.0 + 3.0 * x + 0.5 * y  # asymmetric: a flip is visible
    bx, by, bz = BRIGHT
    array[bz, by - 1 : by + 2, bx - 1 : bx + 2] = 3000.0
    return Volume(array.astype(np.float32), spacing=(1.0, 1.0, 1.0), modality="CT", units="HU")


def _key(view: SliceView, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """The keys under test are window shortcuts: pressed with the window active (tests/app/keys.py)."""
    shortcut(view.vtk_widget, key, modifiers)


def _visible(window: MainWindow) -> set[str]:
    widgets: dict[str, QWidget] = {**window.views, "3d": window.grid.view_3d}
    return {name for name, widget in widgets.items() if widget.isVisible()}


def _spot(view: SliceView) -> tuple[float, float] | None:
    """Widget position (x, y) of the bright spot as rendered (centroid of near-white pixels), or None."""
    pixels = view.grab_array().astype(float)
    h, w, _ = pixels.shape
    white = pixels.min(axis=2) > 240
    white[: h // 8], white[-h // 8 :] = False, False  # corner text
    white[:, : w // 12], white[:, -w // 12 :] = False, False  # edge letters
    rows, cols = np.nonzero(white)
    if rows.size == 0:
        return None
    ratio = view.vtk_widget.devicePixelRatioF()
    return cols.mean() / ratio, rows.mean() / ratio


def _hover(view: SliceView, x: float, y: float) -> None:
    """Move the mouse to (x, y): the move event goes straight to the view. QTest.mouseMove goes through the
    global cursor, which an earlier test may have left anywhere, and Qt drops or merges moves to where it
    thinks the cursor already is (order-dependent failures on CI): a sent event always arrives, once."""
    widget = view.vtk_widget
    local = QPointF(round(x), round(y))
    event = QMouseEvent(QEvent.Type.MouseMove, local, QPointF(widget.mapToGlobal(local.toPoint())),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_layouts_change_the_visible_views_and_double_click_still_maximises(
    window: MainWindow, modes: ViewModesWorkspace, qtbot
) -> None:  # noqa: ANN001
    window.document.set_volume(_synthetic_ct())
    assert _visible(window) == {"axial", "coronal", "sagittal", "3d"}
    coronal = window.views["coronal"]
    QTest.mouseClick(coronal.vtk_widget, Qt.MouseButton.LeftButton)  # makes it the active view
    assert modes.modes.active == "coronal" and modes.binder.frames["coronal"].GetVisibility()
    _key(coronal, Qt.Key.Key_1, CTRL)
    assert _visible(window) == {"coronal"} and window.actions["layout_1x1"].isChecked()
    assert not modes.binder.frames["coronal"].GetVisibility()  # a single view needs no frame
    # sizes: waited for (a condition), not slept; the grid lays itself out at once today (grid.activate())
    _key(coronal, Qt.Key.Key_2, CTRL)
    assert _visible(window) == {"coronal", "axial"}
    qtbot.waitUntil(lambda: window.views["axial"].x() > coronal.x(), timeout=5000)
    _key(coronal, Qt.Key.Key_4, CTRL)
    assert _visible(window) == {"axial", "coronal", "sagittal", "3d"} and "1+3" in modes.toolbar.layout_button.text()
    qtbot.waitUntil(lambda: coronal.width() > 2 * window.views["axial"].width()
                    and coronal.height() > 2 * window.views["axial"].height(), timeout=5000)
    sagittal = window.views["sagittal"].vtk_widget
    QTest.mouseDClick(sagittal, Qt.MouseButton.LeftButton)
    assert _visible(window) == {"sagittal"}
    QTest.mouseDClick(sagittal, Qt.MouseButton.LeftButton)  # restores the layout it came from, not 2×2
    assert _visible(window) == {"axial", "coronal", "sagittal", "3d"}
    qtbot.waitUntil(lambda: coronal.width() > 2 * sagittal.width(), timeout=5000)
    _key(coronal, Qt.Key.Key_3, CTRL)
    qtbot.waitUntil(lambda: abs(coronal.width() - window.views["axial"].width()) <= 2, timeout=5000)
    # a 2-D image is one view whatever the layout; layouts, slab and cine are off for it
    _key(coronal, Qt.Key.Key_1, CTRL)
    window.document.set_volume(Volume(np.zeros((50, 40), np.float32)))
    assert _visible(window) == {"axial"} and not window.actions["layout_2x2"].isEnabled()
    assert not window.actions["cine_play"].isEnabled() and not modes.toolbar.slab_mode.isEnabled()


def test_cine_advances_loops_bounces_and_stops(window: MainWindow, modes: ViewModesWorkspace, qtbot) -> None:  # noqa: ANN001
    doc, axial = window.document, window.views["axial"]
    doc.set_volume(_synthetic_ct())
    modes.toolbar.fps.setValue(60)
    seen: list[int] = []
    axial.slice_changed.connect(seen.append)
    doc.set_slice(2, 21)
    seen.clear()
    _key(axial, Qt.Key.Key_Space)
    assert modes.cine.playing and window.actions["cine_play"].text() == "Pause"
    qtbot.waitUntil(lambda: len(seen) >= 6, timeout=10000)
    assert seen[:4] == [22, 23, 0, 1]  # loops
    _key(axial, Qt.Key.Key_Space)
    assert not modes.cine.playing
    stopped = axial.slice_index
    qtbot.wait(150)
    assert axial.slice_index == stopped
    window.actions["cine_bounce"].trigger()
    doc.set_slice(2, 22)
    seen.clear()
    window.actions["cine_play"].trigger()
    qtbot.waitUntil(lambda: len(seen) >= 4, timeout=10000)
    assert seen[:4] == [23, 22, 21, 20]  # bounces off the last slice
    doc.set_volume(_synthetic_ct())  # a new image stops it
    assert not modes.cine.playing and not window.actions["cine_play"].isChecked()


def test_invert_changes_rendered_pixels_and_the_saved_image(
    window: MainWindow, modes: ViewModesWorkspace, load, tmp_path: Path
) -> None:  # noqa: ANN001
    load(window, DEMO_CXR)
    view = window.views["axial"]
    before = view.grab_array().astype(float)
    _key(view, Qt.Key.Key_I)
    assert modes.modes.inverted and "inverted" in view.corner_text(2)
    after = view.grab_array().astype(float)
    h, w, _ = before.shape
    crop = (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
    assert before[crop].std() > 20  # there is an image to invert
    assert np.abs(after[crop] + before[crop] - 255.0).mean() < 4.0  # white ↔ black, window/level kept
    saved = modes.save_view_image(tmp_path / "inverted")
    image = QImage(str(saved)).convertToFormat(QImage.Format.Format_RGB888)
    png = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())[:, : 3 * w]
    assert np.abs(png.reshape(h, w, 3)[crop] - after[crop]).mean() < 1.0  # the exported image is inverted too
    window.document.set_volume(Volume(np.ones((30, 20), np.float32), modality="OT"))
    assert modes.modes.inverted  # paging to another X-ray keeps the inversion
    window.document.set_volume(_synthetic_ct())
    assert not modes.modes.inverted  # a CT after an X-ray is not shown inverted by surprise
    _key(view, Qt.Key.Key_I)
    _key(view, Qt.Key.Key_I)
    assert not modes.modes.inverted and "inverted" not in view.corner_text(2)


def test_flip_and_rotate_move_pixels_letters_and_keep_the_readout_right(
    window: MainWindow, modes: ViewModesWorkspace
) -> None:
    doc, axial = window.document, window.views["axial"]
    doc.set_volume(_synthetic_ct())
    doc.set_slice(2, BRIGHT[2])
    window.actions["crosshair"].trigger()  # hide the crosshair lines: only the image moves
    assert axial.mapping.edge_letters == ("R", "L", "P", "A")
    before = axial.grab_array().astype(float)
    spot = _spot(axial)
    assert spot is not None
    voxel = f"voxel ({BRIGHT[0] + 1}, {BRIGHT[1] + 1}, {BRIGHT[2] + 1})"
    _hover(axial, *spot)  # the readout under the mouse names the voxel drawn there
    assert voxel in window.readout.text() and "3000 HU" in window.readout.text()
    QTest.mouseClick(axial.vtk_widget, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))  # active view
    _key(axial, Qt.Key.Key_H)
    assert axial.mapping.edge_letters == ("L", "R", "P", "A") and "flipped H" in axial.corner_text(2)
    after = axial.grab_array().astype(float)
    flipped = _spot(axial)
    assert flipped is not None and abs(flipped[0] - (axial.vtk_widget.width() - spot[0])) < 3
    assert abs(flipped[1] - spot[1]) < 2
    h, w, _ = before.shape
    rows = slice(h // 4, 3 * h // 4)
    assert np.corrcoef(after[rows, w // 6 : -w // 6, 0].ravel(), before[rows, w // 6 : -w // 6, 0][:, ::-1].ravel()
                       )[0, 1] > 0.95  # the picture is mirrored (the gradient runs the other way)
    _hover(axial, *flipped)  # the spot moved, and the readout follows it
    assert voxel in window.readout.text() and "3000 HU" in window.readout.text()
    _hover(axial, *spot)
    assert voxel not in window.readout.text()
    _key(axial, Qt.Key.Key_H)
    _key(axial, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)  # rotate 90° right
    assert axial.mapping.edge_letters == ("P", "A", "L", "R") and "rotated 90°" in axial.corner_text(2)
    rotated = _spot(axial)
    assert rotated is not None
    index = axial.display_to_index(*rotated)
    assert np.allclose(index[:2], BRIGHT[:2], atol=1.0)
    _hover(axial, *rotated)
    assert "3000 HU" in window.readout.text()
    window.actions["reset_orientation"].trigger()
    assert axial.mapping.edge_letters == ("R", "L", "P", "A") and axial.mode_text == ""
    assert np.abs(axial.grab_array().astype(float) - before).mean() < 1.0
    assert window.views["coronal"].mapping.edge_letters == ("R", "L", "I", "S")  # other views untouched


def test_mip_shows_a_bright_point_on_slices_where_it_is_not(window: MainWindow, modes: ViewModesWorkspace) -> None:
    doc, axial = window.document, window.views["axial"]
    doc.set_volume(_synthetic_ct())
    doc.set_slice(2, 14)  # the spot is on slice 10
    QTest.mouseClick(axial.vtk_widget, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert _spot(axial) is None
    _key(axial, Qt.Key.Key_S)  # off → MIP
    modes.toolbar.slab_mm.setValue(10.0)  # slices 10 … 19
    assert modes.modes.display("axial").slab_mode == "max" and modes.toolbar.slab_mode.currentText() == "MIP"
    assert "MIP 10 mm (10 slices)" in axial.corner_text(2)
    spot = _spot(axial)
    assert spot is not None
    assert np.allclose(axial.display_to_index(*spot)[:2], BRIGHT[:2], atol=1.0)
    _hover(axial, *spot)
    text = window.readout.text()
    assert f"voxel ({BRIGHT[0] + 1}, {BRIGHT[1] + 1}, 15)" in text and "MIP 10 mm: 3000 HU" in text
    voxel = float(doc.volume.array[14, BRIGHT[1], BRIGHT[0]])  # type: ignore[union-attr]
    assert f"mm   {format_pixel_value(voxel, 'HU')}   MIP" in text  # the voxel value itself is still given
    modes.toolbar.slab_mm.setValue(2.0)  # slices 14, 15: the spot is outside the slab
    assert _spot(axial) is None
    modes.toolbar.slab_mm.setValue(10.0)
    _key(axial, Qt.Key.Key_S)  # → MinIP: the spot is the slab's maximum, not its minimum
    assert modes.modes.display("axial").slab_mode == "min" and _spot(axial) is None
    assert window.views["coronal"].mode_text == ""  # a slab belongs to one view


def test_mip_on_the_lung_ct_draws_the_numpy_projection(
    window: MainWindow, modes: ViewModesWorkspace, load, lung1_dir: Path
) -> None:  # noqa: ANN001
    load(window, lung1_dir / "image.nrrd")
    vol, axial = window.document.volume, window.views["axial"]
    assert vol is not None
    modes.modes.set_slab(mode="max", thickness_mm=20.0, view="axial")
    z = axial.slice_index
    start, stop = slab_range(z, vol.shape[0], 20.0, vol.spacing[2])
    assert stop - start == 4
    drawn = vtk_to_numpy(axial.base_slice.GetMapper().GetInput().GetPointData().GetScalars())
    expected = vol.array[start:stop].max(axis=0)  # [y, x]: the reference, straight from the volume
    view_plane = oriented(axial.mapping, project(vol.array, 2, Slab("max", start, stop)))
    np.testing.assert_array_equal(drawn.reshape(view_plane.shape), view_plane)
    np.testing.assert_array_equal(np.sort(drawn), np.sort(expected.ravel()))
    assert "MIP 20 mm (4 slices)" in axial.corner_text(2)


def _left_drag(view: SliceView) -> None:
    """Press, move, release, sent straight to the view. QTest.mouseMove sends the move itself only while
    QTest believes a button is down (its own global record, left by earlier QTest calls); otherwise it
    moves the global cursor and Qt may drop or merge the move (see ``_hover``)."""
    widget = view.vtk_widget
    # ends off the image centre: the cursor starts there, so a drag ending there would look like no move
    w, h = widget.width(), widget.height()
    start, end = QPointF(w // 3, h // 3), QPointF(2 * w // 3, 2 * h // 3)
    send(view, QEvent.Type.MouseButtonPress, start, LEFT, LEFT)
    send(view, QEvent.Type.MouseMove, end, Qt.MouseButton.NoButton, LEFT)
    send(view, QEvent.Type.MouseButtonRelease, end, LEFT, Qt.MouseButton.NoButton)


def _new_window(qtbot, settings: Settings, path: Path) -> tuple[MainWindow, ViewModesWorkspace]:  # noqa: ANN001
    win = MainWindow(settings, settings_path=path)
    qtbot.addWidget(win)
    win.resize(900, 700)
    win.show()
    qtbot.waitExposed(win)
    return win, install_view_modes(win)


def test_left_drag_binding_switches_behaviour_and_survives_a_reload(
    window: MainWindow, modes: ViewModesWorkspace, qtbot, tmp_path: Path
) -> None:  # noqa: ANN001
    doc, axial = window.document, window.views["axial"]
    doc.set_volume(_synthetic_ct())
    assert window.tools.active is not None and window.tools.active.name == "crosshair"
    _left_drag(axial)
    moved = doc.cursor
    assert moved[:2] != (40, 32)  # the crosshair followed the drag
    window.actions["left_drag_window_level"].trigger()
    assert window.tools.active.name == "window_level" and window.actions["tool_window_level"].isChecked()
    level, width, cursor = doc.level, doc.window, doc.cursor
    _left_drag(axial)
    assert (doc.level, doc.window) != (level, width) and doc.cursor == cursor
    path = tmp_path / "settings.json"
    assert json.loads(path.read_text())["left_drag"] == "window_level"
    reloaded, ws = _new_window(qtbot, Settings.load(path), path)
    assert reloaded.tools.active.name == "window_level" and reloaded.actions["left_drag_window_level"].isChecked()
    raw = json.loads(path.read_text())
    raw["left_drag"] = "sideways"  # malformed by hand
    path.write_text(json.dumps(raw))
    fallback, _ws = _new_window(qtbot, Settings.load(path), path)
    assert fallback.tools.active.name == "crosshair" and fallback.actions["left_drag_crosshair"].isChecked()
    fallback.document.set_volume(_synthetic_ct())
    before = fallback.document.cursor
    _left_drag(fallback.views["axial"])
    assert fallback.document.cursor != before


def test_every_shortcut_is_used_once(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from app.browser_install import install_browser
    from app.clinical_install import install_clinical
    from app.comparison_install import install_comparison
    from app.export_install import install_export
    from app.measurements_install import install_measurements
    from app.segmentation_install import install_segmentation
    from app.tag_viewer_install import install_tag_viewer
    from tests.app.clinical_fakes import TinyCasePredictor

    window = MainWindow(Settings(), settings_path=tmp_path / "settings.json")
    qtbot.addWidget(window)
    install_segmentation(window)
    install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    install_export(window, recovery_dir=tmp_path / "recovery")
    install_view_modes(window)
    install_measurements(window)
    install_tag_viewer(window)
    install_browser(window)
    install_comparison(window)
    owners: dict[str, list[str]] = {}
    for name, action in window.actions.items():
        for sequence in action.shortcuts():
            owners.setdefault(sequence.toString(QKeySequence.SequenceFormat.PortableText), []).append(name)
    clashes = {key: names for key, names in owners.items() if len(names) > 1}
    assert not clashes
    for key in ("I", "H", "V", "S", "Space", "Shift+R", "Ctrl+1", "Ctrl+4", "M", "A", "O", "L", "T", "Del",
                "Ctrl+Alt+Z", "Ctrl+I", "Ctrl+Shift+C", "Ctrl+Shift+Y"):
        assert key in owners
