"""JPEG Lossless and 12-bit JPEG Extended DICOM decode (through GDCM when pydicom has no decoder).

References: pydicom-data's samples are checked at the pixel positions pydicom's own pixel reference
(``pydicom/tests/pixels/pixels_reference.py``, values decoded by libjpeg through pylibjpeg) lists; files
encoded here with GDCM's JPEG Lossless codec are compared with the array they were encoded from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import JPEGExtended12Bit, JPEGLosslessSV1

from inference.io.loader import open_image
from tests import synthetic_dicom as sd


def _testdata(name: str) -> Path:
    from pydicom.data import get_testdata_file

    try:
        path = get_testdata_file(name)
    except Exception:  # noqa: BLE001 - pydicom-data missing or offline
        path = None
    if path is None:
        pytest.skip(f"pydicom-data's {name} is not installed")
    return Path(str(path))


def _jpeg_lossless(stored: np.ndarray, tmp: Path) -> bytes:
    """Encapsulated JPEG Lossless (process 14, SV1) pixel data of ``stored``, encoded by GDCM."""
    writer = sitk.ImageFileWriter()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(tmp))
    writer.UseCompressionOn()
    writer.SetCompressor("JPEG")
    writer.Execute(sitk.GetImageFromArray(stored[np.newaxis]))
    ds = pydicom.dcmread(tmp)
    assert ds.file_meta.TransferSyntaxUID == JPEGLosslessSV1
    return bytes(ds.PixelData)


def _compress_in_place(path: Path, tmp: Path) -> None:
    """Replace a file's native pixel data by the JPEG Lossless encoding of the same stored values."""
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    ds.PixelData = _jpeg_lossless(stored, tmp)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize(("name", "row", "cols", "expected"), [
    ("JPEG-LL.dcm", 400, slice(124, 132), (60, 58, 61, 68, 59, 65, 64, 67)),
    ("JPEG-LL.dcm", 600, slice(124, 132), (3, 1, 2, 0, 2, 1, 2, 0)),
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", 300, slice(512, 520), (26, 26, 25, 22, 19, 16, 14, 15)),
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", 600, slice(512, 520), (45, 43, 41, 38, 33, 30, 26, 21)),
])
def test_jpeg_lossless_sample_files(name: str, row: int, cols: slice, expected: tuple[int, ...]) -> None:
    vol = open_image(_testdata(name))
    np.testing.assert_array_equal(vol.array[0, row, cols], expected)


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG-lossy.dcm"])
def test_12_bit_jpeg_extended_single_file(name: str) -> None:
    path = _testdata(name)
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == JPEGExtended12Bit
    vol = open_image(path)
    assert vol.shape == (1, 1024, 256)
    assert vol.array[0, 420, 140] == 244 and vol.array[0, 230, 120] == 95
    assert 0 <= vol.array.min() and vol.array.max() < 4096  # 12-bit data


def test_jpeg_lossless_series_equals_encoded_values(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path / "s", n=4, rows=24, cols=20, slope=0.5, intercept=-1024.0)
    for path in truth.files_in_z_order:
        _compress_in_place(path, tmp_path / "enc.dcm")
    (tmp_path / "enc.dcm").unlink()
    vol = open_image(truth.folder)
    np.testing.assert_array_equal(vol.array, truth.values.astype(np.float32))


def test_jpeg_lossless_monochrome1_xray_matches_uncompressed(tmp_path: Path) -> None:
    """Inversion, rescale and windows are applied after GDCM's decode exactly as for native pixels."""
    plain = tmp_path / "plain.dcm"
    sd.write_xray(plain, photometric="MONOCHROME1", bits_stored=12)
    compressed = tmp_path / "jpeg.dcm"
    compressed.write_bytes(plain.read_bytes())
    _compress_in_place(compressed, tmp_path / "enc.dcm")
    expected, got = open_image(plain), open_image(compressed)
    assert got.meta["transfer_syntax"] == JPEGLosslessSV1 and got.meta["monochrome1_inverted"]
    np.testing.assert_array_equal(got.array, expected.array)
    assert got.meta["windows"] == expected.meta["windows"]
