"""The uncompressed fast path gives pydicom's values exactly, and steps aside for anything unusual."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from inference.io.dicom_native import read_native_slice
from inference.io.dicom_pixels import decode_dataset
from inference.io.dicom_scan import read_header
from inference.io.loader import open_image
from tests import synthetic_dicom as sd

_DTYPE = {(8, 0): np.uint8, (8, 1): np.int8, (16, 0): np.uint16, (16, 1): np.int16, (32, 0): np.uint32,
          (32, 1): np.int32}


def _write(path: Path, stored: np.ndarray, *, bits: int = 16, bits_stored: int | None = None, signed: int = 1,
           syntax: str = ExplicitVRLittleEndian, slope: str = "1.5", intercept: str = "-1024.25",
           trailing: bool = False) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored = bits, bits_stored or bits
    ds.HighBit, ds.PixelRepresentation = (bits_stored or bits) - 1, signed
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    dtype = np.dtype(_DTYPE[(bits, signed)]).newbyteorder(">" if syntax == ExplicitVRBigEndian else "<")
    ds.PixelData = stored.astype(dtype).tobytes()
    if trailing:
        ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 8)  # Data Set Trailing Padding after the pixels
    ds.save_as(path, enforce_file_format=True)
    return path


def _pydicom_values(path: Path) -> np.ndarray:
    return decode_dataset(pydicom.dcmread(path), path.name)[0][0]


def _native(path: Path) -> tuple[bool, np.ndarray]:
    header = read_header(path)
    assert header is not None
    out = np.full((int(header.Rows), int(header.Columns)), np.nan, dtype=np.float32)
    return read_native_slice(path, header, out), out


@pytest.mark.parametrize(("bits", "bits_stored", "signed", "syntax", "shape"), [
    (16, 16, 1, ExplicitVRLittleEndian, (6, 7)),
    (16, 12, 1, ExplicitVRLittleEndian, (6, 7)),  # garbage above bit 12 must be sign-corrected like pydicom
    (16, 12, 0, ImplicitVRLittleEndian, (5, 4)),
    (8, 8, 0, ExplicitVRLittleEndian, (3, 5)),  # odd length: padded to even
    (32, 32, 1, ImplicitVRLittleEndian, (4, 4)),
])
def test_fast_path_equals_pydicom(tmp_path: Path, bits: int, bits_stored: int, signed: int, syntax: str,
                                  shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(bits + bits_stored)
    info = np.iinfo(_DTYPE[(bits, signed)])
    stored = rng.integers(max(info.min, -(2**20)), min(info.max, 2**20), size=shape, endpoint=True)
    path = _write(tmp_path / "f.dcm", stored, bits=bits, bits_stored=bits_stored, signed=signed, syntax=syntax)
    taken, values = _native(path)
    assert taken
    np.testing.assert_array_equal(values, _pydicom_values(path))
    if bits_stored == bits:  # independent of pydicom: the rescale computed here
        np.testing.assert_allclose(values, stored * 1.5 - 1024.25, rtol=1e-6)


@pytest.mark.parametrize("case", ["trailing", "big_endian", "truncated", "monochrome1", "frames"])
def test_fast_path_steps_aside(tmp_path: Path, case: str) -> None:
    stored = np.arange(42, dtype=np.int16).reshape(6, 7)
    path = _write(tmp_path / "f.dcm", stored, trailing=case == "trailing",
                  syntax=ExplicitVRBigEndian if case == "big_endian" else ExplicitVRLittleEndian)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    if case in ("monochrome1", "frames"):
        ds = pydicom.dcmread(path)
        if case == "monochrome1":
            ds.PhotometricInterpretation = "MONOCHROME1"
        else:
            ds.NumberOfFrames = 2
        ds.save_as(path)
    taken, values = _native(path)
    assert not taken
    assert np.isnan(values).all()  # nothing written when declined


def test_series_through_fast_path_matches_truth(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path / "s", n=6, rows=9, cols=11, slope=2.0, intercept=-100.0)
    vol = open_image(truth.folder)
    np.testing.assert_array_equal(vol.array, truth.values.astype(np.float32))
    header = read_header(truth.files_in_z_order[0])
    assert header is not None and read_native_slice(truth.files_in_z_order[0], header,
                                                    np.empty((9, 11), np.float32))
