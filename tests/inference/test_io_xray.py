"""X-rays: MONOCHROME1 inversion, orientation (row 0 = top), spacing, PNG/JPEG via Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from inference.io.loader import estimate_bytes, open_image
from tests import synthetic_dicom as sd


def test_monochrome1_inverted_and_oriented(tmp_path: Path) -> None:
    stored = sd.write_xray(tmp_path / "cr.dcm", photometric="MONOCHROME1", bits_stored=12, window=(1000.0, 500.0))
    vol = open_image(tmp_path / "cr.dcm")
    assert vol.shape == (1, 12, 9) and vol.modality == "CR"
    np.testing.assert_array_equal(vol.array[0], 4095 - stored)  # full 12-bit range flipped
    # bright block (stored 1000 = dark on a MONOCHROME1 display) is now low, top-left as stored
    assert vol.array[0, 0, 0] == 4095 - 1000 and vol.array[0, -1, 0] == 4095
    assert vol.meta["monochrome1_inverted"] is True
    assert vol.meta["window"] == (4095 - 1000.0, 500.0)
    # ImagerPixelSpacing (row 0.2, column 0.15) -> spacing (x, y) = (0.15, 0.2)
    assert vol.spacing[:2] == pytest.approx((0.15, 0.2))
    assert vol.meta["spacing_known"] is True


def test_monochrome2_dx_not_inverted_pixel_spacing_preferred(tmp_path: Path) -> None:
    stored = sd.write_xray(tmp_path / "dx.dcm", modality="DX", photometric="MONOCHROME2",
                           pixel_spacing=(0.3, 0.25), imager_pixel_spacing=(0.2, 0.15))
    vol = open_image(tmp_path / "dx.dcm")
    np.testing.assert_array_equal(vol.array[0], stored)
    assert "monochrome1_inverted" not in vol.meta
    assert vol.spacing[:2] == pytest.approx((0.25, 0.3))


def test_missing_spacing_defaults_with_warning(tmp_path: Path) -> None:
    sd.write_xray(tmp_path / "x.dcm", imager_pixel_spacing=None)
    vol = open_image(tmp_path / "x.dcm")
    assert vol.spacing == (1.0, 1.0, 1.0)
    assert vol.meta["spacing_known"] is False
    assert any("PixelSpacing" in w for w in vol.meta["warnings"])


def test_real_cr_from_pydicom_data() -> None:
    data = pytest.importorskip("pydicom.data")
    try:
        path = data.get_testdata_file("RG3_UNCR.dcm")
    except Exception:  # pragma: no cover - pydicom-data not installed / offline
        path = None
    if path is None:
        pytest.skip("pydicom-data CR file not available")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    vol = open_image(Path(path))
    assert vol.shape == (1, ds.Rows, ds.Columns)
    np.testing.assert_array_equal(vol.array[0], (2 ** ds.BitsStored - 1) - ds.pixel_array.astype(np.float32))
    assert vol.meta["window"][0] == pytest.approx(2 ** ds.BitsStored - 1 - float(ds.WindowCenter))


def test_shared_cxr_jpeg(cxr_dir: Path) -> None:
    path = sorted((cxr_dir / "images").glob("*.jpg"))[0]
    with Image.open(path) as img:
        expected = np.asarray(img.convert("L"), dtype=np.float32)
    vol = open_image(path)
    assert vol.shape == (1, expected.shape[0], expected.shape[1])
    np.testing.assert_array_equal(vol.array[0], expected)
    assert vol.meta["spacing_known"] is False and vol.spacing == (1.0, 1.0, 1.0)
    assert estimate_bytes(path) == vol.array.nbytes


def test_png_16bit_kept_and_orientation(tmp_path: Path) -> None:
    data = (np.arange(6 * 5, dtype=np.uint16).reshape(6, 5) * 2000).astype(np.uint16)
    Image.fromarray(data).save(tmp_path / "x16.png")
    vol = open_image(tmp_path / "x16.png")
    np.testing.assert_array_equal(vol.array[0], data.astype(np.float32))
    assert vol.array.max() > 255 and vol.meta["bit_depth"] == 16


def test_colour_png_converted_with_note(tmp_path: Path) -> None:
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[3, 5] = (0, 0, 255)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    vol = open_image(tmp_path / "c.png")
    assert vol.shape == (1, 4, 6)
    assert vol.array[0, 0, 0] == pytest.approx(76, abs=1)  # 0.299 * 255
    assert vol.meta["converted_from"] == "RGB"
    assert any("colour" in w for w in vol.meta["warnings"])
