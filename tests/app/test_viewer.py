"""Viewer shell: loading through the real loader, scrolling, window/level, crosshair, X-ray, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

from app.main_window import MainWindow


def _mouse(
    widget: QWidget,
    kind: QEvent.Type,
    pos: QPointF,
    button: Qt.MouseButton,
    buttons: Qt.MouseButton,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    event = QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(pos.toPoint())), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def _drag(widget: QWidget, start: QPointF, end: QPointF, button: Qt.MouseButton) -> None:
    _mouse(widget, QEvent.Type.MouseButtonPress, start, button, button)
    _mouse(widget, QEvent.Type.MouseMove, end, Qt.MouseButton.NoButton, button)
    _mouse(widget, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


def _wheel(widget: QWidget, steps: int) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        pos,
        QPointF(widget.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_ct_loads_scrolls_and_renders_new_pixels(
    window: MainWindow, load, ct_series_dir: Path, tmp_path: Path
) -> None:
    load(window, ct_series_dir)
    doc, axial = window.document, window.views["axial"]
    assert doc.volume is not None and doc.volume.shape == (20, 512, 512)
    assert not window.grid.single and window.grid.view_3d.isVisible()
    assert axial.slice_index == doc.cursor[2] == 10

    before = axial.grab_array().astype(float)
    _wheel(axial.vtk_widget, +1)
    assert axial.slice_index == 11
    for _ in range(4):
        QApplication.sendEvent(axial.vtk_widget, _key(Qt.Key.Key_Up))
    assert axial.slice_index == 15
    after = axial.grab_array().astype(float)
    assert before.shape == after.shape
    assert np.abs(before - after).mean() > 1.0, "axial pixels did not change between slices"

    axial.slider.setValue(3)
    assert doc.cursor[2] == 3
    QApplication.sendEvent(axial.vtk_widget, _key(Qt.Key.Key_PageDown))
    assert doc.cursor[2] == 0  # clamped at the first slice
    # Recent files are persisted through Settings.save.
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert saved["recent_files"][0] == str(ct_series_dir.resolve())


def _key(key: Qt.Key):  # noqa: ANN202 - QKeyEvent
    from PySide6.QtGui import QKeyEvent

    return QKeyEvent(QEvent.Type.KeyPress, key, Qt.KeyboardModifier.NoModifier)


def test_window_level_changes_brightness(window: MainWindow, load, ct_series_dir: Path) -> None:
    load(window, ct_series_dir)
    doc, axial = window.document, window.views["axial"]
    doc.set_window_level(400, 40)
    base = axial.grab_array().astype(float).mean()
    doc.set_window_level(400, 300)  # higher level: the same HU map to darker grey
    darker = axial.grab_array().astype(float).mean()
    window.actions["preset_lung"].trigger()
    assert (doc.window, doc.level) == (1500.0, -600.0)
    lung = axial.grab_array().astype(float).mean()
    assert darker < base - 5 and lung > base + 5
    assert window.display_panel.level_spin.value() == -600.0

    # Right-drag adjusts window/level whatever the active tool: down = higher level, right = wider window.
    widget = axial.vtk_widget
    level, width = doc.level, doc.window
    _drag(widget, QPointF(100, 100), QPointF(160, 160), Qt.MouseButton.RightButton)
    assert doc.level > level and doc.window > width


def test_crosshair_click_moves_other_views(window: MainWindow, load, ct_series_dir: Path) -> None:
    load(window, ct_series_dir)
    doc, views = window.document, window.views
    widget = views["axial"].vtk_widget
    target = QPointF(widget.width() * 0.35, widget.height() * 0.4)
    expected = views["axial"].display_to_index(target.x(), target.y())
    _drag(widget, target, target, Qt.MouseButton.LeftButton)
    x, y, z = doc.cursor
    assert (x, y) == (round(expected[0]), round(expected[1])) and z == 10
    # Radiological convention: screen left is the patient's right (low x in LPS), up is anterior (low y).
    assert x < 256 and y < 256
    assert views["sagittal"].slice_index == x and views["coronal"].slice_index == y
    # one numbering for people: the status bar counts from 1 like "Axial 11/20" (index 10)
    assert f"voxel ({x + 1}, {y + 1}, 11)" in window.readout.text() and "HU" in window.readout.text()
    assert "Axial  11/20" in views["axial"].corner_text(2)
    # Clicking in the coronal view moves the axial slice.
    coronal_view = views["coronal"]
    coronal = coronal_view.vtk_widget
    wx, wy = coronal_view.index_to_world(np.array([200, y, 15]))
    coronal_view.renderer.SetWorldPoint(wx, wy, 0.0, 1.0)
    coronal_view.renderer.WorldToDisplay()
    dx, dy, _ = coronal_view.renderer.GetDisplayPoint()
    ratio = coronal.devicePixelRatioF()
    click = QPointF(dx / ratio, coronal.height() - dy / ratio)
    _drag(coronal, click, click, Qt.MouseButton.LeftButton)
    assert doc.cursor == (200, y, 15) and views["axial"].slice_index == 15
    # Superior slices are drawn higher up in the coronal view.
    assert (
        coronal_view.index_to_world(np.array([200, y, 15]))[1]
        > coronal_view.index_to_world(np.array([200, y, 2]))[1]
    )
    wheel_before = doc.cursor[1]
    _wheel(coronal, -1)
    assert doc.cursor[1] == wheel_before - 1


def test_xray_uses_single_view(window: MainWindow, load, cxr_dir: Path) -> None:
    image = sorted((cxr_dir / "images").glob("*.jp*g"))[0]
    load(window, image)
    vol = window.document.volume
    assert vol is not None and vol.is_2d
    assert window.grid.single and not window.grid.view_3d.isVisible()
    axial = window.views["axial"]
    assert axial.mapping.name == "image" and not axial.slider.isVisible()
    pixels = axial.grab_array()
    assert pixels.std() > 10
    assert not window.actions["add_overlay"].isEnabled()


def test_bad_inputs_show_a_message_not_a_traceback(
    window: MainWindow, load, messages: list[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"this is not an image")
    load(window, broken)
    load(window, tmp_path / "missing_folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    load(window, empty)
    assert len(messages) == 3, messages
    assert all("Traceback" not in m and m.endswith(".") for m in messages)
    assert "missing_folder" in messages[1] and "empty" in messages[2]
    assert window.document.volume is None


def test_overlay_without_volume_is_refused(window: MainWindow, messages: list[str], tmp_path: Path) -> None:
    window.loader.add_overlay(tmp_path)
    assert messages and "CT" in messages[0]


def test_cancel_button_stops_a_load(window: MainWindow, qtbot, ct_series_dir: Path) -> None:  # noqa: ANN001
    window.open_path(ct_series_dir)
    assert window.progress.isVisible()
    window.progress.cancel_button.click()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30000)
    qtbot.wait(20)
    assert window.document.volume is None and not window.progress.isVisible()


def test_zoom_pan_deidentify_and_drop(window: MainWindow, load, ct_series_dir: Path, tmp_path: Path) -> None:
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    from inference.io.volume import StudyInfo

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ct_series_dir))])
    drop = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(drop)
    load(window, ct_series_dir)  # waits; the drop already started the same load
    axial = window.views["axial"]
    camera = axial.renderer.GetActiveCamera()
    scale = camera.GetParallelScale()
    pos = QPointF(50, 50)
    event = QWheelEvent(
        pos,
        QPointF(axial.vtk_widget.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(axial.vtk_widget, event)
    assert camera.GetParallelScale() < scale * 0.8 and window.document.cursor[2] == 10  # zoom, not scroll
    focal = camera.GetFocalPoint()
    _drag(axial.vtk_widget, QPointF(100, 100), QPointF(140, 100), Qt.MouseButton.MiddleButton)
    assert camera.GetFocalPoint()[0] < focal[0]  # image follows the mouse to the right
    window.actions["reset_views"].trigger()
    assert abs(camera.GetParallelScale() - scale) < 1e-6
    # Double-click maximises a view; a second double-click restores the 2x2 layout.
    sagittal = window.views["sagittal"].vtk_widget
    _mouse(
        sagittal,
        QEvent.Type.MouseButtonDblClick,
        QPointF(20, 20),
        Qt.MouseButton.LeftButton,
        Qt.MouseButton.LeftButton,
    )
    assert window.grid.single and window.views["sagittal"].isVisible() and not axial.isVisible()
    _mouse(
        sagittal,
        QEvent.Type.MouseButtonDblClick,
        QPointF(20, 20),
        Qt.MouseButton.LeftButton,
        Qt.MouseButton.LeftButton,
    )
    assert not window.grid.single and axial.isVisible() and window.grid.view_3d.isVisible()

    vol = window.document.volume
    vol.info = StudyInfo(patient_name="DOE^JANE", patient_id="PID123", modality="CT")
    window.document.set_volume(vol)
    assert window.info_panel.values["Patient"].text() == "DOE^JANE"
    window.info_panel.deidentify.setChecked(True)
    assert window.info_panel.values["Patient"].text() == "ANONYMOUS"
    assert window.info_panel.values["Patient ID"].text() == "—" and "DOE" not in window.windowTitle()
    assert window.settings.deidentify_display


def test_about_shows_demo_attribution(window: MainWindow, monkeypatch) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", lambda _parent, _title, text: shown.append(text))
    window.actions["about"].trigger()
    assert shown and "TotalSegmentator" in shown[0] and "Apache" in shown[0]
