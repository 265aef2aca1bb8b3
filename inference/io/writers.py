"""Save and load segmentation masks in the geometry of the image they were drawn on.

NRRD/NIfTI keep label values (uint8) and the reference geometry (SimpleITK handles NIfTI's RAS).
PNG is for 2-D images only: a binary mask is written 0/255 and read back as 0/1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image

from inference.errors import ImageReadError, UnsupportedInputError
from inference.io.sitk_io import geometry_from_sitk, volume_to_sitk
from inference.io.volume import Volume

_VOLUME_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".nhdr", ".mha")


def _suffix(path: Path) -> str:
    return ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix.lower()


def save_mask(mask: np.ndarray, reference: Volume, path: Path) -> None:
    """Write ``mask[z, y, x]`` (uint8 labels) next to ``reference``'s geometry; format by suffix."""
    path = Path(path)
    data = np.asarray(mask)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.shape != reference.shape:
        raise ValueError(f"mask shape {data.shape} does not match the image shape {reference.shape}")
    if data.min(initial=0) < 0 or data.max(initial=0) > 255:
        raise ValueError("mask labels must lie in 0..255")
    data = data.astype(np.uint8, copy=False)
    suffix = _suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in _VOLUME_SUFFIXES:
        sitk.WriteImage(volume_to_sitk(reference, data), str(path), useCompression=True)
    elif suffix == ".png":
        if data.shape[0] != 1:
            raise UnsupportedInputError("A PNG mask can only hold a 2-D image; save 3-D masks as NRRD or NIfTI.")
        plane = data[0] * np.uint8(255) if data.max(initial=0) <= 1 else data[0]
        Image.fromarray(np.ascontiguousarray(plane)).save(path)
    else:
        raise UnsupportedInputError(f"Masks can be saved as .nrrd, .nii, .nii.gz or .png, not '{path.name}'.")


def _check_geometry(image: sitk.Image, reference: Volume, name: str) -> None:
    spacing, origin, direction = geometry_from_sitk(image)
    tol = 1e-3 + 1e-4 * max(abs(v) for v in (*reference.origin, 1.0))
    if (not np.allclose(spacing, reference.spacing, rtol=1e-4, atol=1e-4)
            or not np.allclose(origin, reference.origin, atol=tol)
            or not np.allclose(direction, reference.direction, atol=1e-4)):
        raise ImageReadError(f"The mask '{name}' has the right size but lies elsewhere in space than the image.")


def load_mask(path: Path, reference: Volume) -> np.ndarray:
    """Read a mask saved for ``reference``; ``uint8[z, y, x]``. Raises if it does not fit."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"The path '{path}' does not exist.")
    suffix = _suffix(path)
    if suffix in _VOLUME_SUFFIXES:
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            raise ImageReadError(f"The mask file '{path.name}' could not be read (it may be corrupt).") from exc
        array = sitk.GetArrayFromImage(image)
        if array.ndim == 2:
            array = array[np.newaxis]
        if array.shape == reference.shape:
            _check_geometry(image, reference, path.name)
    elif suffix == ".png":
        try:
            with Image.open(path) as img:
                array = np.asarray(img.convert("L"), dtype=np.uint8)[np.newaxis]
        except OSError as exc:
            raise ImageReadError(f"The mask file '{path.name}' could not be read (it may be corrupt).") from exc
        if set(np.unique(array).tolist()) <= {0, 255}:
            array = (array > 0).astype(np.uint8)
    else:
        raise UnsupportedInputError(f"Masks can be loaded from .nrrd, .nii, .nii.gz or .png, not '{path.name}'.")
    if array.shape != reference.shape:
        raise ImageReadError(
            f"The mask '{path.name}' has shape {tuple(array.shape)} but the image has shape {reference.shape}."
        )
    if np.any(array < 0) or np.any(array > 255) or np.any(np.mod(array, 1) != 0):
        raise ImageReadError(f"The mask '{path.name}' holds values that are not labels 0..255.")
    return np.ascontiguousarray(array.astype(np.uint8))
