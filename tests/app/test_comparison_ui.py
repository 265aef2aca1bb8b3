"""Prior comparison in the real window: the most recent earlier series opens beside the current one (view
only), captions say when and how long before, scroll follows by patient position (or says there is no prior
slice there), zoom and pan follow, sync can be switched off, "Back to views" restores the grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from app.model.comparison import matching_slice, sync_mode
from tests.app.browser_data import two_studies
from tests.app.browser_helpers import install, screenshot, wait_idle


def _wheel(widget: QWidget, steps: int, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def _middle_drag(widget: QWidget, dx: float, dy: float) -> None:
    start = QPointF(widget.width() / 2, widget.height() / 2)
    end = QPointF(start.x() + dx, start.y() + dy)
    middle, none = Qt.MouseButton.MiddleButton, Qt.MouseButton.NoButton
    for kind, pos, button, buttons in ((QEvent.Type.MouseButtonPress, start, middle, middle),
                                       (QEvent.Type.MouseMove, end, none, middle),
                                       (QEvent.Type.MouseButtonRelease, end, middle, none)):
        QApplication.sendEvent(widget, QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(pos.toPoint())), button,
                                                   buttons, Qt.KeyboardModifier.NoModifier))


def _z_mm(volume, cursor: tuple[int, int, int]) -> float:  # noqa: ANN001 - Volume
    return float(volume.index_to_physical(np.asarray(cursor, float))[2])


def _camera(view) -> tuple[float, float, float]:  # noqa: ANN001 - SliceView
    """(parallel scale, focal point offset from the image centre in x and y), in mm."""
    cam = view.renderer.GetActiveCamera()
    shape = view.document.shape_xyz
    cx = (shape[view.mapping.h_axis] - 1) * view.display_spacing[0] / 2
    cy = (shape[view.mapping.v_axis] - 1) * view.display_spacing[1] / 2
    fx, fy, _ = cam.GetFocalPoint()
    return cam.GetParallelScale(), fx - cx, fy - cy


def test_prior_opens_beside_the_current_study_and_follows_it(window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    data = two_studies(tmp_path)
    ws = install(window, tmp_path)
    window.resize(1200, 800)
    monkeypatch.setattr(window, "choose_series", lambda series, path: (data.current.series_uid, None))
    window.open_path(data.folder)
    qtbot.waitUntil(lambda: bool(ws.browser.model.entries), timeout=60000)
    wait_idle(qtbot, window)
    current_volume = window.document.volume
    assert current_volume.info.series_instance_uid == data.current.series_uid

    window.actions["compare_prior"].trigger()
    wait_idle(qtbot, window)
    model, view = ws.comparison.model, ws.comparison.view()
    assert model.active and window.actions["compare_prior"].isChecked()
    assert ws.comparison.stack.currentWidget() is view
    # the most recent earlier series of the patient, same modality and description: the 2023 "Chest"
    prior = model.prior.volume
    assert prior is not None and prior.info.series_instance_uid == data.prior.series_uid
    assert ws.browser.model.prior_key == data.prior.series_uid
    assert window.document.volume is current_volume  # the current study, its labels and tools stay
    current_caption, prior_caption = view.current.caption.text(), view.prior.caption.text()
    assert "CURRENT" in current_caption and "2024-03-01" in current_caption and "Chest" in current_caption
    assert "PRIOR" in prior_caption and "2023-01-10" in prior_caption and "(14 months earlier)" in prior_caption
    assert "view only" in prior_caption and "different patient" not in prior_caption
    # two studies, two frames of reference, real positions on both: sync by patient position
    assert sync_mode(current_volume, prior) == "physical" and "by position" in view.mode_label.text()

    # scrolling the current side moves the prior to the slice nearest the same table position
    current_view, prior_view = view.current.view.vtk_widget, view.prior.view.vtk_widget
    QTest.keyClick(current_view, Qt.Key.Key_End)  # z = 24 mm (slices 10 … 24 mm, 2 mm apart)
    qtbot.wait(20)
    assert window.document.cursor[2] == 7
    assert abs(_z_mm(prior, model.prior.cursor) - 24.0) <= 1.25  # prior slices 20 … 32.5 mm, 2.5 mm apart
    assert model.prior.cursor[2] == 2 and not model.prior_outside
    for _ in range(7):
        _wheel(current_view, -1)
    assert window.document.cursor[2] == 0  # z = 10 mm: before the prior's first slice
    assert model.prior_outside and model.prior.cursor[2] == 0
    assert "no prior slice at this position" in view.prior.caption.text()
    for _ in range(5):
        _wheel(current_view, +1)  # z = 20 mm: the prior's first slice
    assert not model.prior_outside and model.prior.cursor[2] == 0
    assert "no prior slice" not in view.prior.caption.text()
    # scrolling the prior moves the current side back (both ways)
    _wheel(prior_view, +1)  # prior z = 22.5 mm -> current 22 or 24 mm, the nearest
    assert model.prior.cursor[2] == 1 and window.document.cursor[2] in (6, 7)
    assert abs(_z_mm(current_volume, window.document.cursor) - 22.5) <= 1.0

    # zoom (ctrl + wheel) and pan (middle-drag) on one side: the other side shows the same millimetres
    _wheel(current_view, +3, Qt.KeyboardModifier.ControlModifier)
    _middle_drag(current_view, 40, -25)
    qtbot.wait(20)
    scale_c, dx_c, dy_c = _camera(view.current.view)
    scale_p, dx_p, dy_p = _camera(view.prior.view)
    assert scale_c < 0.7 * view._fit_scale(view.current.view)  # it did zoom in
    assert (dx_c, dy_c) != pytest.approx((0.0, 0.0), abs=0.5)  # and pan
    assert (scale_p, dx_p, dy_p) == pytest.approx((scale_c, dx_c, dy_c), rel=0.02, abs=0.05)

    # sync off: each side on its own
    QTest.mouseClick(view.sync_box, Qt.MouseButton.LeftButton)
    assert not model.sync and not window.actions["compare_sync"].isChecked()
    before = model.prior.cursor[2]
    _wheel(current_view, +1)
    _wheel(current_view, +2, Qt.KeyboardModifier.ControlModifier)
    assert model.prior.cursor[2] == before and _camera(view.prior.view)[0] == pytest.approx(scale_p)
    window.actions["compare_sync"].trigger()  # back on: the prior jumps to the current position
    assert model.sync and view.sync_box.isChecked()
    index, _inside = matching_slice(current_volume, window.document.cursor, 2, prior, 2, "physical")
    assert model.prior.cursor[2] == index

    # window/level is per side: the prior is read with its own window
    level_before = window.document.level
    model.prior.set_window_level(300.0, 40.0)
    assert window.document.level == level_before

    # de-identified display: no study dates in the captions (the interval stays: it identifies no one)
    window.document.set_deidentify(True)
    texts = view.current.caption.text() + view.prior.caption.text()
    assert "2024-03-01" not in texts and "2023-01-10" not in texts and texts.count("date hidden") == 2
    assert "(14 months earlier)" in view.prior.caption.text()
    window.document.set_deidentify(False)
    assert "2023-01-10" in view.prior.caption.text()

    # back to the 2×2 views; the prior stays open for the next comparison
    QTest.mouseClick(view.findChild(QWidget, "comparison_back"), Qt.MouseButton.LeftButton)
    assert not model.active and not window.actions["compare_prior"].isChecked()
    assert ws.comparison.stack.currentWidget() is window.grid
    window.actions["compare_prior"].trigger()
    wait_idle(qtbot, window)
    assert model.active and model.prior.volume is prior  # not read again


def test_compare_without_an_earlier_series_says_what_to_do(window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    data = two_studies(tmp_path)
    ws = install(window, tmp_path)
    statuses: list[str] = []
    monkeypatch.setattr(window.context, "show_status", statuses.append)
    monkeypatch.setattr(window, "choose_series", lambda series, path: (data.prior.series_uid, None))
    window.open_path(data.folder)  # the oldest series is the current one: nothing earlier
    qtbot.waitUntil(lambda: bool(ws.browser.model.entries), timeout=60000)
    wait_idle(qtbot, window)
    window.actions["compare_prior"].trigger()
    wait_idle(qtbot, window)
    view = ws.comparison.view()
    assert ws.comparison.model.prior.volume is None and view.prior.empty.isVisible()
    assert "none open" in view.prior.caption.text()
    assert any("No earlier series of this patient" in s for s in statuses)
    # a later series chosen by the user (context menu "Compare as prior") opens on the prior side anyway
    ws.browser.controller.open_prior(data.current.series_uid)
    wait_idle(qtbot, window)
    assert ws.comparison.model.prior.volume.info.series_instance_uid == data.current.series_uid
    assert "(14 months later)" in view.prior.caption.text() and not view.prior.empty.isVisible()


def test_a_prior_of_another_patient_is_flagged(window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from tests import synthetic_dicom as sd

    data = two_studies(tmp_path)
    (other,) = sd.write_study(tmp_path / "other", date="20220505", patient_id="P2", series=(("Chest", 4),))
    ws = install(window, tmp_path)
    monkeypatch.setattr(window, "choose_series", lambda series, path: (data.current.series_uid, None))
    window.open_path(data.folder)
    wait_idle(qtbot, window)
    window.actions["compare_prior"].trigger()
    wait_idle(qtbot, window)
    ws.comparison.controller.open_prior(other.folder)  # a file dropped from outside the browser
    wait_idle(qtbot, window)
    view = ws.comparison.view()
    assert ws.comparison.model.prior.volume.info.series_instance_uid == other.series_uid
    assert ws.comparison.model.patients_differ and "different patient ID" in view.prior.caption.text()


def test_nothing_open_nothing_to_compare(window, qtbot, tmp_path) -> None:  # noqa: ANN001
    ws = install(window, tmp_path)
    window.actions["compare_prior"].trigger()
    assert not ws.comparison.model.active and not window.actions["compare_prior"].isChecked()
    assert ws.comparison.stack.currentWidget() is window.grid


def _restamped_ct(source: Path, folder: Path, date: str, study: str) -> str:
    """A copy of the shared CT as a study of patient CT1 on ``date`` (own study, series and frame UIDs; pixels
    untouched, still compressed); returns its series UID."""
    import pydicom
    from pydicom.uid import generate_uid

    series, frame = generate_uid(), generate_uid()
    folder.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        ds = pydicom.dcmread(path)
        ds.PatientID, ds.PatientName = "CT1", "Shared^CT"
        ds.StudyDate = ds.SeriesDate = date
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyDescription, ds.SeriesDescription = "CT abdomen", "Abdomen venous"
        ds.save_as(folder / path.name)
    return series


def test_shared_ct_against_itself_as_a_prior_shows_the_same_anatomy(window, qtbot, tmp_path,  # noqa: ANN001
                                                                     monkeypatch, ct_series_dir: Path) -> None:
    """The shared CT restamped as a 2023 prior of itself: synced by position, every slice and zoom of the prior
    side must show exactly what the current side shows."""
    from pydicom.uid import generate_uid

    folder = tmp_path / "patient"
    current_uid = _restamped_ct(ct_series_dir, folder / "2024", "20240301", generate_uid())
    prior_uid = _restamped_ct(ct_series_dir, folder / "2023", "20230110", generate_uid())
    ws = install(window, tmp_path)
    window.resize(1500, 950)
    monkeypatch.setattr(window, "choose_series", lambda series, path: (current_uid, None))
    window.open_path(folder)
    qtbot.waitUntil(lambda: len(ws.browser.model.thumbnails) == 2, timeout=120000)
    wait_idle(qtbot, window)
    window.actions["compare_prior"].trigger()
    wait_idle(qtbot, window, timeout=120000)
    view, model = ws.comparison.view(), ws.comparison.model
    assert model.prior.volume.info.series_instance_uid == prior_uid
    assert "2023-01-10" in view.prior.caption.text() and "(14 months earlier)" in view.prior.caption.text()
    current_view, prior_view = view.current.view, view.prior.view
    QTest.keyClick(current_view.vtk_widget, Qt.Key.Key_Home)
    for _ in range(12):
        _wheel(current_view.vtk_widget, +1)
    _wheel(current_view.vtk_widget, +3, Qt.KeyboardModifier.ControlModifier)
    assert window.document.cursor[2] == 12 and model.prior.cursor[2] == 12
    # the sides are sized alike once Qt has laid the comparison out (posted events): waited for, not slept
    qtbot.waitUntil(lambda: current_view.vtk_widget.size() == prior_view.vtk_widget.size(), timeout=5000)
    left, right = current_view.grab_array(), prior_view.grab_array()
    assert left.shape == right.shape and left.std() > 20
    assert np.abs(left.astype(int) - right.astype(int)).mean() < 1.0  # same slice, same window, same zoom
    for _ in range(3):
        _wheel(prior_view.vtk_widget, +1)  # scrolling the prior moves the current side too
    other = prior_view.grab_array()
    assert model.prior.cursor[2] == 15 and window.document.cursor[2] == 15
    assert np.abs(other.astype(int) - left.astype(int)).mean() > 2.0  # a different slice looks different
    window.panels["series"].raise_()
    window.resizeDocks([window.panels["series"]], [330], Qt.Orientation.Horizontal)  # tile text in full
    QApplication.processEvents()
    view.equalise()
    current_view.reset_camera()  # the whole slice for the picture; sync puts the prior at the same scale
    current_view.zoom(1.0)
    QApplication.processEvents()
    assert _camera(prior_view) == pytest.approx(_camera(current_view), rel=0.02, abs=0.05)
    screenshot(window, "prior_comparison_ct", tmp_path)
