"""Measurement maths against SimpleITK (lengths, angles, pixel area, ROI statistics on any plane), the
short-axis geometry, the header rows of the tag viewer, session sections and report sections."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from inference.errors import ImageReadError
from inference.export.header_view import HIDDEN, masked, read_header
from inference.export.report import ReportContent, write_report
from inference.export.report_sections import ReportSection
from inference.io.volume import StudyInfo, Volume
from inference.measure import (
    angle_deg,
    distance_mm,
    ellipse_statistics,
    from_plane_coords,
    initial_short_axis,
    move_long_end,
    move_short_end,
    pixel_area_mm2,
    plane_coords,
    short_axis_params,
)
from inference.persistence import SessionError, SessionState, load_session, save_session
from tests.synthetic_dicom import write_volume_series


def _pair(direction: np.ndarray, spacing: tuple[float, float, float], shape_zyx: tuple[int, int, int],
          seed: int = 0) -> tuple[Volume, sitk.Image]:
    rng = np.random.default_rng(seed)
    array = rng.normal(0, 100, size=shape_zyx).astype(np.float32)
    origin = (12.0, -30.0, 7.5)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(tuple(float(v) for v in np.asarray(direction).ravel()))
    return Volume(array, spacing, origin, np.asarray(direction, float), "CT", "HU"), image


def _rotation() -> np.ndarray:
    a, b = math.radians(30), math.radians(-20)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return rz @ rx


@pytest.mark.parametrize("direction", [np.eye(3), _rotation(), np.array([[1, 0.4, 0], [0, 0.9, 0.2], [0, 0, 1.0]])],
                         ids=["identity", "oblique", "sheared"])
def test_lengths_and_angles_match_simpleitk(direction: np.ndarray) -> None:
    volume, image = _pair(direction, (0.57, 0.9, 5.0), (6, 20, 24))
    a, v, b = (2.3, 4.1, 1.0), (15.7, 11.2, 4.5), (20.0, 3.0, 2.0)
    pa, pv, pb = (np.array(image.TransformContinuousIndexToPhysicalPoint(p)) for p in (a, v, b))
    assert distance_mm(volume, a, b) == pytest.approx(float(np.linalg.norm(pb - pa)), abs=1e-9)
    cosine = np.dot(pa - pv, pb - pv) / np.linalg.norm(pa - pv) / np.linalg.norm(pb - pv)
    assert angle_deg(volume, a, v, b) == pytest.approx(math.degrees(math.acos(cosine)), abs=1e-9)
    assert angle_deg(volume, a, a, b) == 0.0  # degenerate arm


@pytest.mark.parametrize("normal_axis", [0, 1, 2])
def test_pixel_area_is_the_physical_area_of_one_pixel(normal_axis: int) -> None:
    sheared = np.array([[1, 0.4, 0], [0, 0.9, 0.2], [0, 0, 1.0]])
    volume, image = _pair(sheared, (0.5, 0.8, 3.0), (3, 4, 5))
    h, v = [a for a in range(3) if a != normal_axis]
    origin = np.array(image.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, 0.0)))
    step_h = np.array(image.TransformContinuousIndexToPhysicalPoint(tuple(float(i == h) for i in range(3)))) - origin
    step_v = np.array(image.TransformContinuousIndexToPhysicalPoint(tuple(float(i == v) for i in range(3)))) - origin
    assert pixel_area_mm2(volume, normal_axis) == pytest.approx(float(np.linalg.norm(np.cross(step_h, step_v))))


@pytest.mark.parametrize("normal_axis", [0, 1, 2])
def test_ellipse_statistics_match_label_statistics_on_every_plane(normal_axis: int) -> None:
    volume, image = _pair(np.eye(3), (0.7, 0.7, 2.0), (12, 30, 34), seed=normal_axis)
    corner_a, corner_b = [6.3, 5.2, 2.6], [25.8, 21.4, 9.7]
    slice_index = 5 if normal_axis == 2 else 11
    corner_a[normal_axis] = corner_b[normal_axis] = slice_index
    stats = ellipse_statistics(volume.array, normal_axis, slice_index, tuple(corner_a), tuple(corner_b))  # type: ignore[arg-type]
    h, v = [a for a in range(3) if a != normal_axis]
    centre = [(corner_a[i] + corner_b[i]) / 2 for i in range(3)]
    radius = [abs(corner_b[i] - corner_a[i]) / 2 for i in range(3)]
    mask = np.zeros(volume.shape, np.uint8)
    for idx in np.ndindex(*volume.shape[::-1]):  # (x, y, z)
        if idx[normal_axis] == slice_index and \
                ((idx[h] - centre[h]) / radius[h]) ** 2 + ((idx[v] - centre[v]) / radius[v]) ** 2 <= 1:
            mask[idx[2], idx[1], idx[0]] = 1
    label = sitk.GetImageFromArray(mask)
    label.CopyInformation(image)
    reference = sitk.LabelStatisticsImageFilter()
    reference.Execute(image, label)
    assert stats is not None and stats.count == reference.GetCount(1) > 50
    assert stats.mean == pytest.approx(reference.GetMean(1), abs=1e-5)
    assert stats.sd == pytest.approx(reference.GetSigma(1), abs=1e-5)
    assert (stats.minimum, stats.maximum) == pytest.approx((reference.GetMinimum(1), reference.GetMaximum(1)))


def test_ellipse_outside_the_image_or_flat_has_no_statistics() -> None:
    volume, _ = _pair(np.eye(3), (1.0, 1.0, 1.0), (2, 10, 10))
    assert ellipse_statistics(volume.array, 2, 0, (20.0, 20.0, 0), (30.0, 30.0, 0)) is None
    assert ellipse_statistics(volume.array, 2, 0, (2.0, 2.0, 0), (2.0, 8.0, 0)) is None
    assert ellipse_statistics(volume.array, 2, 5, (2.0, 2.0, 5), (8.0, 8.0, 5)) is None  # no such slice


def test_short_axis_stays_perpendicular_through_edits() -> None:
    volume, _ = _pair(np.eye(3), (0.6, 0.6, 5.0), (3, 40, 40))
    a, b = plane_coords(volume, 2, [(5.0, 6.0, 1), (30.0, 20.0, 1)])
    s0, s1 = initial_short_axis(a, b)
    assert np.dot(b - a, s1 - s0) == pytest.approx(0.0, abs=1e-9)
    assert np.linalg.norm(s1 - s0) == pytest.approx(0.5 * np.linalg.norm(b - a))
    assert short_axis_params(a, b, s0, s1)[0] == pytest.approx(0.5)
    s0b, s1b = move_short_end(a, b, s0, s1, 0, s0 + (b - a) * 0.2 + (s0 - s1) * 0.5)
    t, d0, d1 = short_axis_params(a, b, s0b, s1b)
    assert np.dot(b - a, s1b - s0b) == pytest.approx(0.0, abs=1e-9)
    assert t == pytest.approx(0.7) and d1 == pytest.approx(np.linalg.norm(s1 - s0) / 2)
    assert d0 == pytest.approx(d1 * 2)
    a2, b2, s0c, s1c = move_long_end(a, b, s0b, s1b, 1, b + np.array([3.0, -8.0]))
    assert np.dot(b2 - a2, s1c - s0c) == pytest.approx(0.0, abs=1e-9)
    assert np.linalg.norm(s1c - s0c) == pytest.approx(np.linalg.norm(s1b - s0b))
    back = from_plane_coords(volume, 2, 1, np.stack([a2, b2]))
    assert np.allclose(back[0], (5.0, 6.0, 1))


def test_header_rows_mark_identifying_elements(tmp_path: Path) -> None:
    truth = write_volume_series(tmp_path / "s", n=2)
    path = truth.files_in_z_order[0]
    import pydicom

    ds = pydicom.dcmread(str(path))
    ds.add_new(0x00091010, "LO", "site secret")  # a private element
    ds.add_new(0x00181200, "DA", "20240102")  # date of last calibration: gives the exam day away
    ds.save_as(path)
    rows = {r.tag: r for r in read_header(path)}
    assert rows["(0010,0010)"].value == "Synthetic^Patient" and rows["(0010,0010)"].phi
    assert rows["(0009,1010)"].phi and rows["(0018,1200)"].phi and rows["(0008,0020)"].phi
    assert not rows["(0010,0040)"].phi and not rows["(0028,0030)"].phi  # sex and pixel spacing stay
    hidden = {r.tag: r.value for r in masked(list(rows.values()))}
    assert hidden["(0010,0010)"] == HIDDEN and hidden["(0028,0030)"] == rows["(0028,0030)"].value
    assert not any("Synthetic" in v or "20240102" in v or "secret" in v for v in hidden.values())
    with pytest.raises(ImageReadError):
        read_header(tmp_path / "s")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01" * 50)
    with pytest.raises(ImageReadError, match="junk.bin"):
        read_header(junk)


def test_session_sections_round_trip_and_old_files_open(tmp_path: Path) -> None:
    state = SessionState(image_source="/x/ct.nrrd", sections={"measurements": {"format": 1, "items": [{"kind": "ruler"}]}})
    path = save_session(state, tmp_path / "a.mfsession")
    assert load_session(path).sections == state.sections
    old = tmp_path / "old.mfsession"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(old, "w") as zout:
        header = json.loads(zin.read("state.json"))
        header.pop("sections")
        zout.writestr("state.json", json.dumps(header))
    assert load_session(old).sections == {}
    header["sections"] = ["not", "a", "record"]
    with zipfile.ZipFile(tmp_path / "bad.mfsession", "w") as zout:
        zout.writestr("state.json", json.dumps(header))
    with pytest.raises(SessionError, match="sections"):
        load_session(tmp_path / "bad.mfsession")


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
def test_report_prints_feature_sections(tmp_path: Path) -> None:
    section = ReportSection("Measurements and annotations", ["#", "Measurement", "Value", "Where"],
                            [["1", "Length", "23.4 mm", "Axial 34/48"],
                             ["2", "Ellipse ROI", "mean 41 HU, SD 12.0, min 3, max 80; area 88.2 mm²", "Axial 34/48"]],
                            "SD is the sample SD.")
    empty = ReportSection("Nothing", ["a"], [])
    pdf = write_report(ReportContent(StudyInfo(), sections=[section, empty]), tmp_path / "r.pdf")
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
                                   ).stdout.split())
    assert "Measurements and annotations" in text and "23.4 mm" in text and "mean 41 HU" in text
    assert "SD is the sample SD." in text and "Nothing" not in text
