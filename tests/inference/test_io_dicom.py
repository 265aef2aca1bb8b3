"""DICOM series reading: shared CT against SimpleITK, synthetic geometry, series selection, cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from inference.errors import Cancelled, SeriesSelectionRequired
from inference.io.dicom_reader import read_series
from inference.io.dicom_scan import scan_folder
from inference.io.loader import estimate_bytes, list_series, open_image
from inference.progress import CancelToken
from tests import synthetic_dicom as sd


@pytest.fixture(scope="module")
def ct_reference(ct_series_dir: Path) -> tuple[sitk.Image, list[str]]:
    reader = sitk.ImageSeriesReader()
    names = list(reader.GetGDCMSeriesFileNames(str(ct_series_dir)))
    reader.SetFileNames(names)
    return reader.Execute(), names


@pytest.fixture(scope="module")
def ct_volume(ct_series_dir: Path):
    return open_image(ct_series_dir)


def test_shared_ct_matches_simpleitk(ct_volume, ct_reference) -> None:
    image, names = ct_reference
    assert ct_volume.shape == (20, 512, 512)
    np.testing.assert_allclose(ct_volume.spacing, image.GetSpacing(), atol=1e-6)
    assert ct_volume.spacing[2] == pytest.approx(2.0)  # positions, not SliceThickness (3 mm)
    np.testing.assert_allclose(ct_volume.origin, image.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(ct_volume.direction.reshape(-1), image.GetDirection(), atol=1e-9)
    np.testing.assert_array_equal(ct_volume.array, sitk.GetArrayFromImage(image).astype(np.float32))
    assert [p.name for p in ct_volume.source_files] == [Path(n).name for n in names]
    assert ct_volume.modality == "CT" and ct_volume.units == "HU"
    assert ct_volume.array.dtype == np.float32 and ct_volume.array.min() >= -1024
    assert ct_volume.info.manufacturer == "SIEMENS"
    assert ct_volume.meta["window"] == (40.0, 300.0)


def test_pydicom_decoder_path_matches(ct_series_dir: Path, ct_volume) -> None:
    """The pylibjpeg/openjpeg path gives the same HU as the GDCM fast path (3 slices for speed)."""
    scan = scan_folder(ct_series_dir)
    (items,) = scan.series.values()
    by_name = {p.name: (p, ds) for p, ds in items}
    subset = [by_name[p.name] for p in ct_volume.source_files[5:8]]
    vol = read_series(subset, use_gdcm=False)
    np.testing.assert_array_equal(vol.array, ct_volume.array[5:8])
    assert vol.origin == pytest.approx(ct_volume.index_to_physical(np.array([0, 0, 5])))


def test_oblique_synthetic_series_geometry(tmp_path: Path) -> None:
    iop = (0.0, 0.8, 0.6, 0.0, -0.6, 0.8)
    truth = sd.write_volume_series(tmp_path / "s", iop=iop, z_spacing=1.75, slope=2.0, intercept=-100.0)
    vol = open_image(truth.folder)
    np.testing.assert_allclose(vol.spacing, truth.spacing, atol=1e-6)
    np.testing.assert_allclose(vol.origin, truth.origin, atol=1e-5)
    np.testing.assert_allclose(vol.direction, truth.direction, atol=1e-6)
    np.testing.assert_allclose(vol.array, truth.values)
    assert vol.source_files == truth.files_in_z_order
    # geometry agrees with SimpleITK's reader on the same files
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in reader.GetGDCMSeriesFileNames(str(truth.folder))])
    ref = reader.Execute()
    np.testing.assert_allclose(vol.direction.reshape(-1), ref.GetDirection(), atol=1e-5)
    np.testing.assert_allclose(vol.origin, ref.GetOrigin(), atol=1e-4)
    corner = vol.index_to_physical(np.array([6, 5, 4]))
    np.testing.assert_allclose(corner, ref.TransformIndexToPhysicalPoint((6, 5, 4)), atol=1e-4)


def test_multi_series_folder_requires_selection(tmp_path: Path) -> None:
    a = sd.write_volume_series(tmp_path, n=3, prefix="A", description="arterial")
    b = sd.write_volume_series(tmp_path, n=4, prefix="B", description="venous", seed=1)
    sd.write_non_image(tmp_path / "report.dcm")
    with pytest.raises(SeriesSelectionRequired) as info:
        open_image(tmp_path)
    uids = {s.series_uid for s in info.value.series}
    assert uids == {a.series_uid, b.series_uid}
    assert "arterial" in str(info.value) and "venous" in str(info.value)
    listed = {s.series_uid: s for s in list_series(tmp_path)}
    assert listed[b.series_uid].n_files == 4 and listed[b.series_uid].rows == 6
    vol = open_image(tmp_path, series_uid=b.series_uid)
    assert vol.shape == (4, 6, 7)
    np.testing.assert_allclose(vol.array, b.values)
    assert estimate_bytes(tmp_path, series_uid=a.series_uid) == 3 * 6 * 7 * 4


def test_single_file_of_series_and_estimate(ct_series_dir: Path, ct_volume) -> None:
    one = ct_volume.source_files[3]
    vol = open_image(one)
    assert vol.shape == (1, 512, 512)
    np.testing.assert_array_equal(vol.array[0], ct_volume.array[3])
    assert vol.origin == pytest.approx(tuple(ct_volume.index_to_physical(np.array([0, 0, 3]))))
    assert estimate_bytes(ct_series_dir) == ct_volume.array.nbytes
    assert estimate_bytes(one) == 512 * 512 * 4


def test_progress_per_file_and_cancel(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path / "s", n=12)
    messages: list[tuple[float, str]] = []
    open_image(truth.folder, progress=lambda f, m: messages.append((f, m)))
    assert sum("slice" in m for _, m in messages) == 12
    assert messages[-1][0] == pytest.approx(1.0)
    token = CancelToken()

    def cancel_after_three(fraction: float, message: str) -> None:
        if "slice 3/" in message:
            token.cancel()

    with pytest.raises(Cancelled):
        open_image(truth.folder, progress=cancel_after_three, cancel=token)


def test_multiframe_enhanced_file(tmp_path: Path) -> None:
    """A multi-frame file with per-frame positions is sorted along the normal like a series."""
    truth = sd.write_volume_series(tmp_path / "s", n=3, slope=0.5, intercept=-1000.0)
    frames = [pydicom.dcmread(p) for p in truth.files_in_z_order]
    ds = frames[0]
    order = [2, 0, 1]  # frames stored out of order
    ds.NumberOfFrames = 3
    ds.PixelData = b"".join(frames[k].PixelData for k in order)
    per_frame = []
    for k in order:
        item = pydicom.Dataset()
        pos = pydicom.Dataset()
        pos.ImagePositionPatient = frames[k].ImagePositionPatient
        item.PlanePositionSequence = [pos]
        per_frame.append(item)
    shared = pydicom.Dataset()
    orient, measures = pydicom.Dataset(), pydicom.Dataset()
    orient.ImageOrientationPatient = ds.ImageOrientationPatient
    measures.PixelSpacing = ds.PixelSpacing
    shared.PlaneOrientationSequence = [orient]
    shared.PixelMeasuresSequence = [measures]
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.SharedFunctionalGroupsSequence = [shared]
    path = tmp_path / "multi.dcm"
    ds.save_as(path, enforce_file_format=True)
    vol = open_image(path)
    np.testing.assert_allclose(vol.array, truth.values)
    np.testing.assert_allclose(vol.spacing, truth.spacing)


def test_raw_dicom_without_preamble_or_suffix(tmp_path: Path) -> None:
    """Old files without the 128-byte preamble/'DICM' are still recognised (pydicom force read)."""
    truth = sd.write_volume_series(tmp_path / "s", n=1)
    ds = pydicom.dcmread(truth.files_in_z_order[0])
    ds.preamble = None
    del ds.file_meta
    raw = tmp_path / "IMG0001"
    pydicom.dcmwrite(raw, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    with raw.open("rb") as fh:
        fh.seek(128)
        assert fh.read(4) != b"DICM"
    vol = open_image(raw)
    np.testing.assert_allclose(vol.array, truth.values)


def test_nested_folders_and_non_image_ignored(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path / "patient" / "study" / "series", n=3)
    sd.write_non_image(tmp_path / "patient" / "sr.dcm")
    (tmp_path / "README.txt").write_text("not dicom")
    (series,) = list_series(tmp_path)
    assert series.series_uid == truth.series_uid and series.n_files == 3 and series.modality == "CT"
    vol = open_image(tmp_path)
    assert vol.info.patient_name == "Synthetic^Patient" and vol.info.series_instance_uid == truth.series_uid
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        open_image(tmp_path, cancel=token)
