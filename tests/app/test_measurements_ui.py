"""Measurement tools in the real window, driven with mouse events on the VTK slice views; every value is
checked against SimpleITK on the shared CT (physical points from ``TransformContinuousIndexToPhysicalPoint``,
ROI statistics from ``LabelStatisticsImageFilter`` on a mask built here from physical coordinates)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.main_window import MainWindow
from app.measurements_install import MeasurementsWorkspace, install_measurements
from app.model.measurements import Measurement
from tests.app.keys import shortcut
from tests.app.mouse import click, drag

NODULE_SLICE = 33  # ct/lung1: the nodule lies on z = 32…34, x 206–229, y 347–368 on this slice


@pytest.fixture
def measure(window: MainWindow) -> MeasurementsWorkspace:
    return install_measurements(window)


@pytest.fixture(scope="module")
def lung1_image(lung1_dir: Path) -> sitk.Image:
    return sitk.ReadImage(str(lung1_dir / "image.nrrd"))


def _open(qtbot, window: MainWindow, path: Path) -> None:  # noqa: ANN001
    window.open_path(path)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.wait(30)
    assert window.document.volume is not None


def _physical(image: sitk.Image, points: tuple | list) -> np.ndarray:
    return np.array([image.TransformContinuousIndexToPhysicalPoint(tuple(float(c) for c in p)) for p in points])


def _only(measure: MeasurementsWorkspace, kind: str) -> Measurement:
    found = [m for m in measure.model.items() if m.kind == kind]
    assert len(found) == 1, f"expected one {kind}, got {measure.model.items()}"
    return found[0]


def test_ruler_on_axial_and_coronal_reads_the_physical_distance(
        qtbot, window: MainWindow, measure: MeasurementsWorkspace, lung1_dir: Path, lung1_image: sitk.Image) -> None:  # noqa: ANN001
    _open(qtbot, window, lung1_dir / "image.nrrd")
    doc = window.document
    doc.set_cursor((256, 300, NODULE_SLICE))
    assert window.actions["tool_measure_ruler"].shortcut().toString() == "M"
    window.actions["tool_measure_ruler"].trigger()
    axial = window.views["axial"]
    qtbot.wait(30)
    before = axial.grab_array().astype(int)
    drag(axial, (150.0, 200.0, NODULE_SLICE), (330.0, 280.0, NODULE_SLICE))

    m = _only(measure, "ruler")
    assert (m.view, m.normal_axis, m.slice_index) == ("axial", 2, NODULE_SLICE)
    assert np.allclose(np.array(m.points)[:, :2], [(150, 200), (330, 280)], atol=0.05)  # where the mouse went
    expected = float(np.linalg.norm(np.subtract(*_physical(lung1_image, m.points))))
    value = measure.controller.value(m)
    assert value is not None and value.numbers["length"] == pytest.approx(expected, abs=1e-6)
    assert value.label == f"{expected:.1f} mm"
    print(f"axial ruler: viewer {value.numbers['length']:.4f} mm, SimpleITK {expected:.4f} mm")
    # ≈ 0.5703 mm × |(180, 80)| on this grid; a ruler that ignored the spacing would read 197
    assert 110 < expected < 115
    label = measure.overlays["axial"].label_of[m.id]
    assert label.GetVisibility() and label.GetInput() == value.label
    changed = np.abs(axial.grab_array().astype(int) - before).sum(axis=2) > 60
    assert changed.sum() > 100, "the ruler and its label were not drawn"

    coronal = window.views["coronal"]
    assert coronal.slice_index == 300
    drag(coronal, (200.0, 300.0, 10.0), (200.0, 300.0, 40.0))
    m2 = [x for x in measure.model.items() if x.view == "coronal"][0]
    assert (m2.normal_axis, m2.slice_index) == (1, 300)
    expected2 = float(np.linalg.norm(np.subtract(*_physical(lung1_image, m2.points))))
    assert measure.controller.value(m2).numbers["length"] == pytest.approx(expected2, abs=1e-6)  # type: ignore[union-attr]
    assert expected2 == pytest.approx(150.0, abs=0.5)  # 30 slices of 5 mm (z anisotropy handled)
    print(f"coronal ruler: viewer {measure.controller.value(m2).numbers['length']:.4f} mm, SimpleITK {expected2:.4f} mm")  # type: ignore[union-attr]

    # each measurement stays on its slice
    overlay = measure.overlays["coronal"]
    assert m2.id in overlay.shown_ids and m.id not in overlay.shown_ids
    doc.step_slice(1, 1)
    assert m2.id not in overlay.shown_ids and not overlay.label_of
    doc.step_slice(2, 1)
    assert m.id not in measure.overlays["axial"].shown_ids
    doc.step_slice(2, -1)
    assert m.id in measure.overlays["axial"].shown_ids


def test_ellipse_roi_statistics_match_simpleitk_label_statistics(
        qtbot, window: MainWindow, measure: MeasurementsWorkspace, lung1_dir: Path, lung1_image: sitk.Image) -> None:  # noqa: ANN001
    _open(qtbot, window, lung1_dir / "image.nrrd")
    window.document.set_cursor((217, 357, NODULE_SLICE))
    window.actions["tool_measure_ellipse"].trigger()
    assert window.actions["tool_measure_ellipse"].shortcut().toString() == "O"
    axial = window.views["axial"]
    drag(axial, (203.4, 344.6, NODULE_SLICE), (232.1, 371.3, NODULE_SLICE))
    m = _only(measure, "ellipse")

    # The same ellipse from SimpleITK's geometry: physical centre and semi-axes of the drawn box; a voxel
    # is in it when its physical centre is.
    corners = _physical(lung1_image, m.points)
    centre, semi = corners.mean(axis=0), np.abs(corners[1] - corners[0]) / 2
    size = lung1_image.GetSize()
    mask = np.zeros(size[::-1], np.uint8)
    for y in range(340, 380):
        for x in range(195, 240):
            p = np.array(lung1_image.TransformIndexToPhysicalPoint((x, y, NODULE_SLICE)))
            if ((p[0] - centre[0]) / semi[0]) ** 2 + ((p[1] - centre[1]) / semi[1]) ** 2 <= 1.0:
                mask[NODULE_SLICE, y, x] = 1
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(lung1_image)
    stats = sitk.LabelStatisticsImageFilter()
    stats.Execute(lung1_image, label)

    value = measure.controller.value(m)
    assert value is not None
    n = value.numbers
    print(f"ellipse ROI: viewer n={n['count']:.0f} mean {n['mean']:.4f} SD {n['sd']:.4f} min {n['min']:.0f} "
          f"max {n['max']:.0f} HU; SimpleITK n={stats.GetCount(1)} mean {stats.GetMean(1):.4f} "
          f"SD {stats.GetSigma(1):.4f} min {stats.GetMinimum(1):.0f} max {stats.GetMaximum(1):.0f}")
    assert n["count"] == stats.GetCount(1)
    assert n["mean"] == pytest.approx(stats.GetMean(1), abs=1e-6)
    assert n["sd"] == pytest.approx(stats.GetSigma(1), abs=1e-6)
    assert (n["min"], n["max"]) == (stats.GetMinimum(1), stats.GetMaximum(1))
    sx, sy = lung1_image.GetSpacing()[:2]
    assert n["area"] == pytest.approx(math.pi * semi[0] * semi[1], rel=1e-9)  # the drawn ellipse, mm²
    assert n["area"] == pytest.approx(stats.GetCount(1) * sx * sy, rel=0.08)  # ≈ its pixels' area
    assert n["mean"] > -600 and n["max"] > 0, "the ROI is on the nodule (soft tissue within aerated lung)"
    assert "HU" in value.label and "mm²" in value.label
    row = [measure.panel.table.item(0, c).text() for c in range(4)]  # type: ignore[union-attr]
    assert row[1] == "Ellipse ROI" and f"{n['mean']:.0f} HU" in row[2] and row[3] == "Axial 34/48"


def test_angle_and_long_short_axis_with_handles(
        qtbot, window: MainWindow, measure: MeasurementsWorkspace, lung1_dir: Path, lung1_image: sitk.Image) -> None:  # noqa: ANN001
    _open(qtbot, window, lung1_dir / "image.nrrd")
    window.document.set_cursor((217, 357, NODULE_SLICE))
    axial = window.views["axial"]

    window.actions["tool_measure_angle"].trigger()  # drag the first arm, click the end of the second
    drag(axial, (150.0, 300.0, NODULE_SLICE), (250.0, 300.0, NODULE_SLICE))
    assert not measure.model.items() and measure.model.draft is not None
    click(axial, (300.0, 230.0, NODULE_SLICE))
    angle = _only(measure, "angle")
    a, v, b = _physical(lung1_image, angle.points)
    expected = math.degrees(math.acos(np.dot(a - v, b - v) / np.linalg.norm(a - v) / np.linalg.norm(b - v)))
    got = measure.controller.value(angle).numbers["angle"]  # type: ignore[union-attr]
    print(f"angle: viewer {got:.4f}°, SimpleITK points {expected:.4f}°")
    assert got == pytest.approx(expected, abs=1e-6) and got == pytest.approx(180 - math.degrees(math.atan2(70, 50)), abs=0.05)
    for p in ((100.0, 100.0), (100.0, 150.0), (150.0, 150.0)):  # three clicks make a right angle too
        click(axial, (*p, NODULE_SLICE))
    right = [m for m in measure.model.items() if m.kind == "angle"][-1]
    assert measure.controller.value(right).numbers["angle"] == pytest.approx(90.0, abs=1e-6)  # type: ignore[union-attr]

    window.actions["tool_measure_axes"].trigger()
    assert window.actions["tool_measure_axes"].shortcut().toString() == "L"
    drag(axial, (206.0, 352.0, NODULE_SLICE), (229.0, 364.0, NODULE_SLICE))
    axes = _only(measure, "bidimensional")
    p = _physical(lung1_image, axes.points)
    assert abs(np.dot(p[1] - p[0], p[3] - p[2])) < 1e-6  # short ⟂ long
    # drag a short-axis end outwards: it stays perpendicular and the value follows
    end = np.array(axes.points[2])
    target = end + (end - np.array(axes.points[3])) * 0.3
    drag(axial, end, target)
    axes = _only(measure, "bidimensional")
    p = _physical(lung1_image, axes.points)
    assert abs(np.dot(p[1] - p[0], p[3] - p[2])) < 1e-6
    long_mm, short_mm = np.linalg.norm(p[1] - p[0]), np.linalg.norm(p[3] - p[2])
    n = measure.controller.value(axes).numbers  # type: ignore[union-attr]
    print(f"long/short axis: viewer {n['long']:.4f} × {n['short']:.4f} mm, SimpleITK {long_mm:.4f} × {short_mm:.4f}")
    assert (n["long"], n["short"]) == pytest.approx((long_mm, short_mm), abs=1e-6)
    assert short_mm > 0.5 * long_mm * 1.1  # it grew from the initial half of the long axis
    # and a long-axis end: the short axis keeps its length and stays perpendicular
    drag(axial, axes.points[1], (232.0, 366.0, NODULE_SLICE))
    axes2 = _only(measure, "bidimensional")
    p = _physical(lung1_image, axes2.points)
    assert abs(np.dot(p[1] - p[0], p[3] - p[2])) < 1e-6
    assert np.linalg.norm(p[3] - p[2]) == pytest.approx(short_mm, abs=1e-6)


def test_edit_move_delete_undo_redo_and_the_panel(
        qtbot, window: MainWindow, measure: MeasurementsWorkspace, lung1_dir: Path) -> None:  # noqa: ANN001
    _open(qtbot, window, lung1_dir / "image.nrrd")
    doc, model = window.document, measure.model
    doc.set_cursor((256, 256, 20))
    window.actions["tool_measure_ruler"].trigger()
    axial = window.views["axial"]
    drag(axial, (100.0, 100.0, 20), (200.0, 100.0, 20))
    m = _only(measure, "ruler")
    length = measure.controller.value(m).numbers["length"]  # type: ignore[union-attr]
    drag(axial, (200.0, 100.0, 20), (250.0, 100.0, 20))  # the end handle
    edited = _only(measure, "ruler")
    assert edited.id == m.id and edited.points[1][0] == pytest.approx(250.0, abs=0.05)
    assert measure.controller.value(edited).numbers["length"] == pytest.approx(length * 1.5, rel=1e-6)  # type: ignore[union-attr]
    drag(axial, (175.0, 100.0, 20), (175.0, 130.0, 20))  # the line itself: moves it
    moved = _only(measure, "ruler")
    assert moved.points[0][1] == pytest.approx(130.0, abs=0.05) and moved.points[1][1] == pytest.approx(130.0, abs=0.05)

    window.actions["measure_undo"].trigger()
    assert _only(measure, "ruler").points[0][1] == pytest.approx(100.0, abs=0.05)
    window.actions["measure_redo"].trigger()
    assert _only(measure, "ruler").points[0][1] == pytest.approx(130.0, abs=0.05)

    # Delete key on the view deletes the selected measurement (after a click selects it)
    click(axial, (175.0, 130.0, 20))
    assert model.selected == m.id
    shortcut(axial.vtk_widget, Qt.Key.Key_Delete)  # a window shortcut: needs the active window (keys.py)
    assert len(model) == 0
    window.actions["measure_undo"].trigger()
    assert len(model) == 1

    # the panel: one row per measurement; a double-click jumps to its slice with the crosshair on it
    doc.set_cursor((256, 256, 5))
    table = measure.panel.table
    assert table.rowCount() == 1 and table.item(0, 1).text() == "Length"  # type: ignore[union-attr]
    assert table.item(0, 3).text() == "Axial 21/48"  # type: ignore[union-attr]
    window.panels["measurements"].raise_()
    qtbot.waitUntil(table.isVisible, timeout=5000)
    rect = table.visualItemRect(table.item(0, 1))  # type: ignore[arg-type]
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert doc.cursor == (175, 130, 20)
    assert model.selected == m.id and m.id in measure.overlays["axial"].shown_ids
    measure.panel.delete_button.click()
    assert len(model) == 0 and table.rowCount() == 0


def test_xray_measures_in_pixels_and_takes_arrow_and_text_annotations(
        qtbot, window: MainWindow, measure: MeasurementsWorkspace) -> None:  # noqa: ANN001
    from app.launch import DEMO_CXR

    _open(qtbot, window, DEMO_CXR)
    view = window.views["axial"]
    assert view.mapping.name == "image" and window.document.volume.meta["spacing_known"] is False  # type: ignore[union-attr]
    window.actions["tool_measure_ruler"].trigger()
    drag(view, (300.0, 260.0, 0), (700.0, 260.0, 0))
    ruler = _only(measure, "ruler")
    assert measure.controller.value(ruler).label == "400.0 px"  # type: ignore[union-attr]
    window.actions["tool_measure_ellipse"].trigger()
    drag(view, (250.0, 350.0, 0), (380.0, 470.0, 0))
    roi = measure.controller.value(_only(measure, "ellipse"))
    assert roi is not None and "intensity" in roi.label and "pixels" in roi.label and "mm" not in roi.label
    pixels = np.asarray(window.document.volume.array[0, 350:471, 250:381], float)  # type: ignore[union-attr]
    assert pixels.min() <= roi.numbers["min"] and roi.numbers["max"] <= pixels.max()

    answers = iter(["effusion?", "", "note"])
    measure.set_ask_text(lambda _title, _initial: next(answers))
    window.actions["tool_measure_annotate"].trigger()
    assert window.actions["tool_measure_annotate"].shortcut().toString() == "T"
    drag(view, (560.0, 640.0, 0), (640.0, 720.0, 0))  # arrow: from the finding to the text
    arrow = _only(measure, "arrow")
    assert arrow.text == "effusion?" and np.allclose(arrow.points[0][:2], (560, 640), atol=0.05)
    assert measure.overlays["axial"].label_of[arrow.id].GetInput() == "effusion?"
    # clicking the arrow's text selects the arrow (no new annotation)
    overlay = measure.overlays["axial"]
    measure.model.select(0)
    x0, x1, y0, y1 = overlay._label_rect(overlay.label_of[arrow.id])
    ratio = view.vtk_widget.devicePixelRatioF()
    from PySide6.QtCore import QEvent, QPointF

    from tests.app.mouse import LEFT, send
    pos = QPointF((x0 + x1) / 2 / ratio, view.vtk_widget.height() - (y0 + y1) / 2 / ratio)
    send(view, QEvent.Type.MouseButtonPress, pos, LEFT, LEFT)
    send(view, QEvent.Type.MouseButtonRelease, pos, LEFT, Qt.MouseButton.NoButton)
    assert measure.model.selected == arrow.id and len(measure.model) == 3
    click(view, (100.0, 100.0, 0))  # click: text only, but an empty answer adds nothing
    assert not [m for m in measure.model.items() if m.kind == "text"]
    click(view, (100.0, 100.0, 0))
    assert _only(measure, "text").text == "note"
    measure.set_ask_text(lambda _title, initial: initial + " (left)")
    measure.model.select(arrow.id)
    measure.panel.text_button.click()
    assert _only(measure, "arrow").text == "effusion? (left)"
    # zoomed in so the ruler's end is off screen: its label slides back into the view
    view.zoom(3.0)
    x0, x1, y0, y1 = overlay._label_rect(overlay.label_of[ruler.id])
    width = view.vtk_widget.width() * view.vtk_widget.devicePixelRatioF()
    assert view.index_to_display(np.array(ruler.points[1]))[0] > view.vtk_widget.width()
    assert 0 <= x0 and x1 <= width
    section = measure.controller.report_section()
    assert section is not None and "pixels" in section.note and len(section.rows) == 4


def test_oblique_sheared_grid_uses_the_direction(qtbot, window: MainWindow, measure: MeasurementsWorkspace,
                                                 tmp_path: Path) -> None:  # noqa: ANN001
    """A tilted, anisotropic, non-orthogonal grid: lengths follow the direction matrix, as SimpleITK's do."""
    array = np.tile(np.linspace(-500, 500, 64, dtype=np.float32), (12, 48, 1))
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 1.3, 2.5))
    t = math.radians(25)
    image.SetDirection((1.0, math.sin(t), 0.0, 0.0, math.cos(t), 0.0, 0.0, 0.0, 1.0))  # y axis sheared towards x
    image.SetOrigin((10.0, -20.0, 30.0))
    path = tmp_path / "sheared.nrrd"
    sitk.WriteImage(image, str(path))
    image = sitk.ReadImage(str(path))
    _open(qtbot, window, path)
    window.actions["tool_measure_ruler"].trigger()
    view = window.views["axial"]
    drag(view, (10.0, 5.0, 6), (40.0, 35.0, 6))
    m = _only(measure, "ruler")
    expected = float(np.linalg.norm(np.subtract(*_physical(image, m.points))))
    naive = float(np.linalg.norm((np.subtract(m.points[1], m.points[0])) * np.array(image.GetSpacing())))
    got = measure.controller.value(m).numbers["length"]  # type: ignore[union-attr]
    print(f"sheared grid ruler: viewer {got:.4f} mm, SimpleITK {expected:.4f} mm (spacing only: {naive:.4f})")
    assert got == pytest.approx(expected, abs=1e-6)
    assert abs(naive - expected) > 1.0  # the direction really matters here


def test_tools_have_their_own_shortcuts(window: MainWindow, measure: MeasurementsWorkspace, tmp_path: Path) -> None:
    from app.clinical_install import install_clinical
    from app.export_install import install_export
    from app.segmentation_install import install_segmentation
    from app.tag_viewer_install import install_tag_viewer
    from tests.app.clinical_fakes import TinyCasePredictor

    install_segmentation(window)
    install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    install_export(window, recovery_dir=tmp_path / "recovery")
    install_tag_viewer(window)
    seen: dict[str, str] = {}
    for name, action in window.actions.items():
        for key in action.shortcuts():
            text = key.toString()
            assert text not in seen, f"{name} and {seen.get(text)} share the shortcut {text}"
            seen[text] = name
    assert {seen[k] for k in ("M", "A", "O", "L", "T")} == {f"tool_{n}" for n in measure.tools}
    assert seen["Del"] == "measure_delete" and seen["Ctrl+I"] == "show_tags"
