"""Mask save/load round trips in the reference geometry (NRRD, NIfTI, PNG) and mismatch errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from inference.errors import ImageReadError, UnsupportedInputError
from inference.io.volume import Volume
from inference.io.writers import load_mask, save_mask


@pytest.fixture
def reference() -> Volume:
    c, s = np.cos(0.2), np.sin(0.2)
    return Volume(np.zeros((3, 5, 4), np.float32), spacing=(0.7, 0.8, 2.5), origin=(-12.0, 30.0, 7.5),
                  direction=np.array([[c, 0, -s], [0, 1.0, 0], [s, 0, c]]))


def _mask(shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[1, 1:3, 0:2] = 1
    mask[2, 4, 3] = 2
    return mask


@pytest.mark.parametrize("name", ["m.nrrd", "m.nii.gz", "m.nii"])
def test_volume_round_trip_keeps_geometry(tmp_path: Path, reference: Volume, name: str) -> None:
    mask = _mask(reference.shape)
    save_mask(mask, reference, tmp_path / name)
    image = sitk.ReadImage(str(tmp_path / name))
    np.testing.assert_allclose(image.GetOrigin(), reference.origin, atol=1e-4)
    np.testing.assert_allclose(image.GetDirection(), reference.direction.reshape(-1), atol=1e-5)
    loaded = load_mask(tmp_path / name, reference)
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, mask)


def test_png_round_trip_2d(tmp_path: Path) -> None:
    ref2d = Volume(np.zeros((1, 6, 5), np.float32))
    mask = np.zeros((1, 6, 5), np.uint8)
    mask[0, 0, 4] = 1  # top-right corner
    save_mask(mask, ref2d, tmp_path / "m.png")
    stored = np.asarray(Image.open(tmp_path / "m.png"))
    assert stored.shape == (6, 5) and stored[0, 4] == 255 and stored.sum() == 255
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png", ref2d), mask)


def test_shape_mismatch_is_clear(tmp_path: Path, reference: Volume) -> None:
    save_mask(_mask(reference.shape), reference, tmp_path / "m.nrrd")
    other = Volume(np.zeros((3, 5, 5), np.float32))
    with pytest.raises(ImageReadError, match=r"has shape \(3, 5, 4\) but the image has shape \(3, 5, 5\)"):
        load_mask(tmp_path / "m.nrrd", other)


def test_geometry_mismatch_is_clear(tmp_path: Path, reference: Volume) -> None:
    save_mask(_mask(reference.shape), reference, tmp_path / "m.nrrd")
    moved = Volume(reference.array, spacing=reference.spacing, origin=(0.0, 0.0, 0.0), direction=reference.direction)
    with pytest.raises(ImageReadError, match="lies elsewhere in space"):
        load_mask(tmp_path / "m.nrrd", moved)


def test_png_refuses_3d_and_unknown_suffix(tmp_path: Path, reference: Volume) -> None:
    with pytest.raises(UnsupportedInputError, match="2-D"):
        save_mask(_mask(reference.shape), reference, tmp_path / "m.png")
    with pytest.raises(UnsupportedInputError, match="not 'm.txt'"):
        save_mask(_mask(reference.shape), reference, tmp_path / "m.txt")
