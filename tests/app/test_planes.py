"""Orientation of the slice views for differently stored volumes (Qt-free)."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.document import Document
from app.rendering.planes import plane_mapping
from inference.io.volume import StudyInfo, Volume


def _marked_volume(direction: np.ndarray) -> Volume:
    """A volume whose voxel at the patient's right-anterior-superior corner is marked."""
    shape_xyz = (6, 5, 4)
    array = np.zeros(shape_xyz[::-1], np.float32)
    vol = Volume(array, spacing=(1.0, 2.0, 3.0), direction=direction)
    # Patient right = -x (LPS), anterior = -y, superior = +z: pick the index with the most R, A, S.
    corners = np.array([[i, j, k] for i in (0, 5) for j in (0, 4) for k in (0, 3)], float)
    lps = vol.index_to_physical(corners)
    best = corners[np.argmax(-lps[:, 0] - lps[:, 1] + lps[:, 2])].astype(int)
    array[best[2], best[1], best[0]] = 1.0
    vol.meta["mark"] = tuple(best)
    return vol


@pytest.mark.parametrize(
    "direction",
    [
        np.eye(3),
        np.diag([-1.0, -1.0, 1.0]),
        np.diag([1.0, 1.0, -1.0]),
        np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]),
    ],
)
def test_views_show_right_on_screen_left_and_anterior_superior_up(direction: np.ndarray) -> None:
    vol = _marked_volume(direction)
    x, y, z = vol.meta["mark"]
    shape_xyz = (vol.shape[2], vol.shape[1], vol.shape[0])
    # Axial: the R-A corner is at screen left (col 0) and top (last row: VTK rows go up).
    for name, expect_left, expect_top in (
        ("axial", True, True),
        ("coronal", True, True),
        ("sagittal", True, True),
    ):
        m = plane_mapping(name, vol.direction)
        index = (x, y, z)[m.normal_axis]
        plane = m.slice_2d(vol.array, index)
        rows, cols = np.nonzero(plane)
        assert len(rows) == 1, name
        assert (cols[0] == 0) == expect_left, f"{name}: marked corner not on screen left"
        assert (rows[0] == plane.shape[0] - 1) == expect_top, f"{name}: marked corner not at the top"
        # display_to_index inverts index_to_display.
        col, row = m.index_to_display(np.array([x, y, z], float), shape_xyz)
        assert np.allclose(m.display_to_index(col, row, index, shape_xyz), [x, y, z])
    assert plane_mapping("axial", vol.direction).edge_letters == ("R", "L", "P", "A")
    assert plane_mapping("sagittal", vol.direction).edge_letters == ("A", "P", "I", "S")


def test_document_cursor_clamps_and_readout_has_units() -> None:
    doc = Document()
    vol = Volume(
        np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        modality="CT",
        units="HU",
        info=StudyInfo(patient_name="DOE^JANE", patient_id="123"),
    )
    seen: list[tuple] = []
    doc.cursor_changed.connect(seen.append)
    doc.set_volume(vol)
    assert doc.cursor == (2, 1, 1) and (doc.window, doc.level) == (400.0, 40.0)
    doc.set_cursor((99, -5, 0.6))
    assert doc.cursor == (3, 0, 1) and seen[-1] == (3, 0, 1)
    # index (3, 0, 1) is shown 1-based, like the views' slice numbers; HU as whole numbers
    assert "voxel (4, 1, 2)" in doc.voxel_readout((3, 0, 1)) and "15 HU" in doc.voxel_readout((3, 0, 1))
    assert "15.00" not in doc.voxel_readout((3, 0, 1))
    assert doc.voxel_readout((9, 9, 9)) == ""
    assert doc.study_info().patient_name == "DOE^JANE"
    doc.set_deidentify(True)
    assert doc.study_info().patient_name == "ANONYMOUS" and doc.study_info().patient_id == ""
