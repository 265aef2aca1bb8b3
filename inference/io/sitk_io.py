"""NIfTI / NRRD / MetaImage reading through SimpleITK, and Volume <-> SimpleITK conversion.

SimpleITK already reports geometry in LPS (it converts NIfTI's RAS on read/write), so the
geometry is copied as-is. Non-finite voxels are replaced (see ``docs/dev/io.md``) because every
downstream consumer (windowing, resampling, models) breaks on NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from inference.errors import ImageReadError, UnsupportedInputError
from inference.io import nifti_raw
from inference.io.volume import Volume

ITK_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def volume_to_sitk(volume: Volume, array: np.ndarray | None = None) -> sitk.Image:
    """A SimpleITK image with ``volume``'s geometry holding ``array`` (default: the volume's)."""
    data = volume.array if array is None else array
    image = sitk.GetImageFromArray(np.ascontiguousarray(data), isVector=False)
    image.SetSpacing(tuple(float(s) for s in volume.spacing))
    image.SetOrigin(tuple(float(o) for o in volume.origin))
    image.SetDirection(tuple(float(d) for d in np.asarray(volume.direction, dtype=float).reshape(-1)))
    return image


def geometry_from_sitk(
    image: sitk.Image,
) -> tuple[tuple[float, float, float], tuple[float, float, float], np.ndarray]:
    """``(spacing, origin, direction 3x3)`` of a 2-D or 3-D SimpleITK image, padded to 3-D."""
    dim = image.GetDimension()
    spacing = list(image.GetSpacing()) + [1.0] * (3 - dim)
    origin = list(image.GetOrigin()) + [0.0] * (3 - dim)
    direction = np.eye(3)
    direction[:dim, :dim] = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)
    return (
        (float(spacing[0]), float(spacing[1]), float(spacing[2])),
        (float(origin[0]), float(origin[1]), float(origin[2])),
        direction,
    )


def replace_nonfinite(array: np.ndarray, name: str) -> int:
    """Replace NaN/Inf in place with the minimum finite value; return how many were replaced.

    Raises :class:`ImageReadError` when no voxel is finite (nothing sensible to show).
    """
    finite = np.isfinite(array)
    count = int(array.size - np.count_nonzero(finite))
    if count == 0:
        return 0
    if count == array.size:
        raise ImageReadError(f"The image '{name}' contains no finite values (all NaN or infinite).")
    array[~finite] = array[finite].min()
    return count


def _looks_like_ct(array: np.ndarray) -> bool:
    """Heuristic for headerless formats: integer-valued data with air near -1000 HU."""
    lo, hi = float(array.min()), float(array.max())
    return -1200.0 <= lo <= -900.0 and hi > 100.0 and bool(np.all(np.mod(array[::7, ::7, ::7], 1) == 0))


def read_itk_image(path: Path) -> Volume:
    """Read a NIfTI/NRRD/MetaImage file; 4-D data keeps its first volume (with a warning)."""
    warnings: list[str] = []
    lower = path.name.lower()
    gz = lower.endswith(".nii.gz")
    nifti = nifti_raw.read_header(path, gz) if gz or lower.endswith(".nii") else None
    if nifti is not None:
        nifti_raw.check_complete(path, nifti, gz)  # before SimpleITK: it would pad missing voxels with 0
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ImageReadError(f"The file '{path.name}' could not be read as NIfTI/NRRD (it may be corrupt).") from exc
    if image.GetNumberOfComponentsPerPixel() == 3:
        channels = [sitk.VectorIndexSelectionCast(image, i, sitk.sitkFloat32) for i in range(3)]
        image = channels[0] * 0.299 + channels[1] * 0.587 + channels[2] * 0.114
        warnings.append("colour image converted to grayscale (luminance)")
    elif image.GetNumberOfComponentsPerPixel() != 1:
        raise UnsupportedInputError(
            f"The file '{path.name}' has {image.GetNumberOfComponentsPerPixel()} values per voxel; "
            "only scalar images can be shown."
        )
    if image.GetDimension() == 4:
        size = list(image.GetSize())
        warnings.append(f"4-D image with {size[3]} volumes: only the first is shown")
        image = sitk.Extract(image, size[:3] + [0], [0, 0, 0, 0])
    elif image.GetDimension() not in (2, 3):
        raise UnsupportedInputError(f"The file '{path.name}' is {image.GetDimension()}-D; only 2-D and 3-D images are supported.")
    spacing, origin, direction = geometry_from_sitk(image)
    # One conversion straight from ITK's buffer (GetArrayFromImage would first copy it as stored, so an
    # int16 CT briefly took 2× its own size on top of the float32 result).
    view = sitk.GetArrayViewFromImage(image)
    floating = np.issubdtype(view.dtype, np.floating)
    array = view.astype(np.float32)
    del view, image
    if array.ndim == 2:
        array = array[np.newaxis]
    meta: dict = {"warnings": warnings, "spacing_known": True}
    if nifti is not None and not np.all(array):  # SimpleITK turned NaN/Inf into 0: find them in the raw data
        hidden = nifti_raw.nonfinite_mask(path, nifti, gz)
        if hidden is not None and hidden.shape == array.shape:
            array[hidden] = np.nan
            floating = True
    replaced = replace_nonfinite(array, path.name) if floating else 0  # integers are always finite
    if replaced:
        meta["nonfinite_replaced"] = replaced
        warnings.append(f"{replaced} non-finite voxels replaced by the minimum value")
    modality, units = "OT", ""
    if array.shape[0] > 1 and _looks_like_ct(array):
        modality, units = "CT", "HU"
        meta["modality_guessed"] = True
    return Volume(
        array=array,
        spacing=spacing,
        origin=origin,
        direction=direction,
        modality=modality,
        units=units,
        source=str(path),
        meta=meta,
    )
