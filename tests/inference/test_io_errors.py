"""Each bad input raises the documented error type with a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from inference.errors import ImageReadError, UnsupportedInputError
from inference.io.loader import estimate_bytes, open_image
from tests import synthetic_dicom as sd


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist"):
        open_image(tmp_path / "nope")
    with pytest.raises(ImageReadError, match="does not exist"):
        estimate_bytes(tmp_path / "nope")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="is empty"):
        open_image(tmp_path)


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "blob").write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(ImageReadError, match="no DICOM files"):
        open_image(tmp_path)


def test_folder_with_only_non_image_objects(tmp_path: Path) -> None:
    sd.write_non_image(tmp_path / "sr1.dcm")
    sd.write_non_image(tmp_path / "sr2.dcm")
    with pytest.raises(UnsupportedInputError, match=r"no images, only non-image DICOM objects \(2 SR\)"):
        open_image(tmp_path)


def test_non_image_single_file(tmp_path: Path) -> None:
    sd.write_non_image(tmp_path / "seg.dcm", modality="SEG")
    with pytest.raises(UnsupportedInputError, match="non-image object"):
        open_image(tmp_path / "seg.dcm")


def test_unsupported_file_type(tmp_path: Path) -> None:
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UnsupportedInputError, match="not supported"):
        open_image(tmp_path / "table.csv")


def test_truncated_single_file(tmp_path: Path) -> None:
    sd.write_xray(tmp_path / "x.dcm")
    sd.truncate(tmp_path / "x.dcm", 0.8)
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        open_image(tmp_path / "x.dcm")


def test_corrupt_png(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ImageReadError, match="corrupt or truncated"):
        open_image(tmp_path / "x.png")


@pytest.mark.parametrize("header_broken", [False, True])
def test_corrupt_end_slice_skipped_with_warning(tmp_path: Path, header_broken: bool) -> None:
    truth = sd.write_volume_series(tmp_path, n=5)
    if header_broken:
        sd.truncate(truth.files_in_z_order[-1], 0.5)
    else:
        sd.truncate(truth.files_in_z_order[-1], drop_bytes=10)  # pixel data cut short
    vol = open_image(tmp_path)
    assert vol.shape[0] == 4
    np.testing.assert_allclose(vol.array, truth.values[:4])
    assert any("skipped" in w for w in vol.meta["warnings"])


@pytest.mark.parametrize("header_broken", [False, True])
def test_corrupt_middle_slice_is_a_gap(tmp_path: Path, header_broken: bool) -> None:
    truth = sd.write_volume_series(tmp_path, n=5)
    sd.truncate(truth.files_in_z_order[2], 0.5 if header_broken else 1.0, drop_bytes=None if header_broken else 10)
    with pytest.raises(ImageReadError, match="not evenly spaced.*missing slices"):
        open_image(tmp_path)


def test_missing_slice_gap(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path, n=6)
    truth.files_in_z_order[3].unlink()
    with pytest.raises(ImageReadError, match="missing slices"):
        open_image(tmp_path)


def _edit(path: Path, **changes: object) -> None:
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)


def test_missing_position_in_3d_series(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path, n=3)
    _edit(truth.files_in_z_order[1], ImagePositionPatient=None)
    with pytest.raises(ImageReadError, match="ImagePositionPatient"):
        open_image(tmp_path)


def test_missing_pixel_spacing_in_3d_series(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path, n=3)
    for p in truth.files_in_z_order:
        _edit(p, PixelSpacing=None)
    with pytest.raises(ImageReadError, match="PixelSpacing"):
        open_image(tmp_path)


def test_single_slice_without_position_defaults_with_warning(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path, n=1)
    _edit(truth.files_in_z_order[0], ImagePositionPatient=None, PixelSpacing=None)
    vol = open_image(tmp_path)
    assert vol.shape == (1, 6, 7) and vol.origin == (0.0, 0.0, 0.0)
    assert vol.meta["spacing_known"] is False and vol.meta["warnings"]


def test_duplicate_positions(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path, n=3)
    first = pydicom.dcmread(truth.files_in_z_order[0])
    _edit(truth.files_in_z_order[1], ImagePositionPatient=first.ImagePositionPatient)
    with pytest.raises(ImageReadError, match="duplicate slice positions"):
        open_image(tmp_path)


def test_mixed_orientations(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path, n=3)
    _edit(truth.files_in_z_order[2], ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    with pytest.raises(ImageReadError, match="mixes slice orientations"):
        open_image(tmp_path)


def test_compressed_without_decoder(tmp_path: Path) -> None:
    sd.write_unsupported_compression(tmp_path / "mpeg.dcm")
    with pytest.raises(UnsupportedInputError, match="compressed with MPEG2.*no installed decoder"):
        open_image(tmp_path / "mpeg.dcm")


def test_all_nonfinite_nrrd(tmp_path: Path) -> None:
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.full((2, 3, 4), np.nan, np.float32)), str(tmp_path / "nan.nrrd"))
    with pytest.raises(ImageReadError, match="no finite values"):
        open_image(tmp_path / "nan.nrrd")


def test_unknown_series_uid(tmp_path: Path) -> None:
    sd.write_volume_series(tmp_path, n=2)
    with pytest.raises(ImageReadError, match="no image series with UID"):
        open_image(tmp_path, series_uid="1.2.3")
