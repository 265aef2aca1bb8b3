"""Measurements on views the user flipped or rotated (view modes): the mouse lands on the voxel under it,
the value is the physical distance, and the drawn line follows the display transform."""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy

from app.main_window import MainWindow
from app.measurements_install import install_measurements
from app.view_modes_install import install_view_modes
from inference.io.volume import Volume
from tests.app.mouse import drag


def _drawn_points(overlay: object) -> np.ndarray:
    """World points of the drawn lines (plain and selected)."""
    found = [np.empty((0, 2))]
    for layer in (overlay.lines, overlay.selected_lines):  # type: ignore[attr-defined]
        points = layer.poly.GetPoints()
        if points is not None and points.GetNumberOfPoints():
            found.append(vtk_to_numpy(points.GetData())[:, :2])
    return np.concatenate(found)


def test_ruler_on_a_flipped_and_rotated_view(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    measure, modes = install_measurements(window), install_view_modes(window)
    array = np.zeros((12, 40, 60), np.float32)
    window.document.set_volume(Volume(array, spacing=(0.5, 0.8, 2.0), modality="CT", units="HU"))
    doc, axial = window.document, window.views["axial"]
    doc.set_cursor((30, 20, 5))
    modes.modes.set_active("axial")
    window.actions["flip_horizontal"].trigger()
    window.actions["rotate_right"].trigger()
    assert axial.display_transform != type(axial.display_transform)()
    window.actions["tool_measure_ruler"].trigger()
    qtbot.wait(30)
    drag(axial, (10.0, 10.0, 5), (40.0, 30.0, 5))
    (ruler,) = measure.model.items()
    np.testing.assert_allclose(ruler.points, [(10, 10, 5), (40, 30, 5)], atol=0.05)
    assert ruler.view == "axial" and ruler.slice_index == 5
    expected = float(np.hypot(30 * 0.5, 20 * 0.8))
    row = measure.controller.report_section().rows[0]  # type: ignore[union-attr]
    assert f"{expected:.1f} mm" in " ".join(row)
    overlay = measure.overlays["axial"]
    ends = [overlay.world(p) for p in ruler.points]
    drawn = _drawn_points(overlay)
    assert all(np.min(np.hypot(*(drawn - e).T)) < 1e-6 for e in ends)
    window.actions["flip_horizontal"].trigger()  # the line is drawn again where the voxels now are
    moved = [overlay.world(p) for p in ruler.points]
    assert moved != ends
    drawn = _drawn_points(overlay)
    assert all(np.min(np.hypot(*(drawn - e).T)) < 1e-6 for e in moved)
