"""The DICOM tag viewer follows the slice on screen, searches, and hides identifying values when the
display is de-identified (compared with pydicom reading the same file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from app.main_window import MainWindow
from app.tag_viewer_install import install_tag_viewer
from inference.export.header_view import HIDDEN


def _value(viewer, tag: str) -> str:  # noqa: ANN001 - TagViewer
    rows = [r for r in viewer.rows if r.tag == tag]
    assert rows, f"{tag} not shown"
    return rows[0].value


def test_tags_follow_the_slice_search_and_mask(qtbot, window: MainWindow, ct_series_dir: Path, lung1_dir: Path) -> None:  # noqa: ANN001
    viewer = install_tag_viewer(window)
    window.open_path(ct_series_dir)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    doc = window.document
    volume = doc.volume
    assert volume is not None and len(volume.source_files) == volume.shape[0]
    window.actions["show_tags"].trigger()
    qtbot.waitUntil(viewer.isVisible, timeout=5000)
    assert window.actions["show_tags"].shortcut().toString() == "Ctrl+I"

    for z in (2, 15):
        doc.set_slice(2, z)
        qtbot.waitUntil(lambda z=z: viewer.path == volume.source_files[z], timeout=5000)
        ds = pydicom.dcmread(str(volume.source_files[z]), stop_before_pixels=True)
        assert _value(viewer, "(0008,0018)") == str(ds.SOPInstanceUID)
        position = [float(v) for v in _value(viewer, "(0020,0032)").split("\\")]
        assert np.allclose(position, volume.index_to_physical(np.array([0.0, 0.0, z])), atol=1e-3)
        assert f"slice {z + 1} of {volume.shape[0]}" in viewer.source.text()

    viewer.search.setText("0028,0030")
    assert [r.name for r in viewer.rows] == ["Pixel Spacing"] and viewer.rows[0].value == "0.9765625\\0.9765625"
    viewer.search.setText("pixel spacing")
    assert "Pixel Spacing" in [r.name for r in viewer.rows]
    viewer.search.setText("")
    assert viewer.tree.topLevelItemCount() == len(viewer.rows) > 50

    date = str(pydicom.dcmread(str(viewer.path), stop_before_pixels=True).StudyDate)
    doc.set_deidentify(True)
    qtbot.waitUntil(lambda: _value(viewer, "(0008,0020)") == HIDDEN, timeout=5000)
    viewer.search.setText(date)
    assert not any(date in r.value for r in viewer.rows)  # a hidden value cannot be found by searching
    assert viewer.path is not None and viewer.path.name not in viewer.source.text()
    viewer.search.setText("")
    assert _value(viewer, "(0028,0030)") == "0.9765625\\0.9765625"  # technical rows stay
    doc.set_deidentify(False)
    qtbot.waitUntil(lambda: _value(viewer, "(0008,0020)") == date, timeout=5000)

    window.open_path(lung1_dir / "image.nrrd")  # not DICOM: the file's metadata
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.waitUntil(lambda: viewer.path == lung1_dir / "image.nrrd", timeout=5000)
    assert _value(viewer, "spacing") == "(0.570312, 0.570312, 5.0)"
