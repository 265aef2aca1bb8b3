"""NIfTI/NRRD via SimpleITK: geometry copied (LPS), non-finite handling, estimate_bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from inference.io.loader import estimate_bytes, open_image


def test_lung1_nrrd_matches_simpleitk(lung1_dir: Path) -> None:
    path = lung1_dir / "image.nrrd"
    ref = sitk.ReadImage(str(path))
    vol = open_image(path)
    assert vol.shape == (48, 512, 512)
    np.testing.assert_allclose(vol.spacing, ref.GetSpacing())
    np.testing.assert_allclose(vol.origin, ref.GetOrigin())
    np.testing.assert_allclose(vol.direction.reshape(-1), ref.GetDirection())
    np.testing.assert_array_equal(vol.array, sitk.GetArrayFromImage(ref).astype(np.float32))
    assert vol.spacing[2] == pytest.approx(5.0)
    assert vol.modality == "CT" and vol.units == "HU" and vol.meta["modality_guessed"]
    assert estimate_bytes(path) == vol.array.nbytes


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_oblique_geometry_round_trip(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(4, 5, 6)).astype(np.float32)
    image = sitk.GetImageFromArray(data)
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    image.SetDirection(direction.reshape(-1).tolist())
    image.SetSpacing((0.5, 0.7, 2.0))
    image.SetOrigin((10.0, -5.0, 3.0))
    path = tmp_path / f"img{suffix}"
    sitk.WriteImage(image, str(path))
    vol = open_image(path)
    np.testing.assert_allclose(vol.array, data, rtol=1e-6)
    np.testing.assert_allclose(vol.direction, direction, atol=1e-5)
    np.testing.assert_allclose(vol.spacing, (0.5, 0.7, 2.0), rtol=1e-6)
    np.testing.assert_allclose(vol.origin, (10.0, -5.0, 3.0), atol=1e-4)
    assert vol.modality == "OT"  # random data is not CT-like


def test_nonfinite_replaced_with_minimum(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4) + 5
    data[0, 0, 0] = np.nan
    data[1, 2, 3] = np.inf
    sitk.WriteImage(sitk.GetImageFromArray(data), str(tmp_path / "x.nrrd"))
    vol = open_image(tmp_path / "x.nrrd")
    assert vol.meta["nonfinite_replaced"] == 2
    assert vol.array[0, 0, 0] == 6.0 and vol.array[1, 2, 3] == 6.0
    assert np.isfinite(vol.array).all()


def test_2d_nifti_is_single_slice(tmp_path: Path) -> None:
    data = np.arange(12, dtype=np.int16).reshape(3, 4)
    image = sitk.GetImageFromArray(data)
    image.SetSpacing((0.4, 0.6))
    sitk.WriteImage(image, str(tmp_path / "x.nii.gz"))
    vol = open_image(tmp_path / "x.nii.gz")
    assert vol.shape == (1, 3, 4)
    assert vol.spacing[:2] == pytest.approx((0.4, 0.6))
    np.testing.assert_array_equal(vol.array[0], data)
