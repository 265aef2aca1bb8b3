"""Thumbnails for a series browser: the middle slice of a series (or one image file) as a small 8-bit image.

Why here and not in the viewer: a thumbnail is a read (headers, one decoded slice, a display window) and
must run headless on a worker thread with ``progress``/``cancel`` like every other read. Only one slice
is decoded: the middle one in patient order (slice positions), so a 300-slice CT costs its headers plus
one file. Every file is untrusted: a series none of whose files can be read raises :class:`ImageReadError`
with one sentence (the browser shows that series as a "could not read" tile and goes on with the others).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.errors import ImageReadError
from inference.io.volume import Volume
from inference.progress import CancelToken, ProgressCallback, no_progress

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

THUMBNAIL_SIZE = 128


@dataclass(frozen=True)
class Thumbnail:
    """``pixels``: ``uint8[h, w]``, row 0 at the top, longest side ``size``; the header fields a tile shows."""

    pixels: np.ndarray
    modality: str = ""
    description: str = ""
    n_images: int = 1
    date: str = ""  # DICOM DA (YYYYMMDD) of the series, else the study; "" when unknown
    time: str = ""
    frame_of_reference: str = ""
    warnings: list[str] = field(default_factory=list)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _position_key(ds: Dataset, fallback: int) -> tuple[int, float]:
    """Order of a slice along its normal (IPP · normal), else InstanceNumber, else file order."""
    try:
        iop = [float(v) for v in ds.get("ImageOrientationPatient") or []]
        ipp = [float(v) for v in ds.get("ImagePositionPatient") or []]
    except (TypeError, ValueError):
        iop, ipp = [], []
    if len(iop) == 6 and len(ipp) == 3 and all(map(math.isfinite, iop + ipp)):
        normal = np.cross(iop[:3], iop[3:])
        if np.linalg.norm(normal) > 1e-6:
            return 0, float(np.dot(ipp, normal))
    number = _number(ds.get("InstanceNumber"))
    return (1, number) if number is not None else (2, float(fallback))


def _date_of(ds: Dataset) -> tuple[str, str]:
    from inference.io.dicom_scan import display_text  # loaded by series_thumbnail (through the loader)

    for date_kw, time_kw in (("SeriesDate", "SeriesTime"), ("StudyDate", "StudyTime"),
                             ("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime")):
        date = display_text(ds.get(date_kw, ""), 8)
        if len(date) == 8 and date.isdigit():
            return date, display_text(ds.get(time_kw, ""), 6)
    return "", ""


def shrink(plane: np.ndarray, spacing_xy: tuple[float, float], size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """``plane`` (``[row, col]``) box-filtered and resampled so its longest physical side is ``size`` pixels."""
    rows, cols = plane.shape
    sx, sy = (float(s) if s and math.isfinite(s) and s > 0 else 1.0 for s in spacing_xy)
    width_mm, height_mm = cols * sx, rows * sy
    scale = size / max(width_mm, height_mm, 1e-9)
    out_w, out_h = max(1, round(width_mm * scale)), max(1, round(height_mm * scale))
    factor = max(1, min(rows // out_h, cols // out_w))
    if factor > 1:  # average factor × factor blocks first: no aliasing of fine structure (noise, grids)
        cropped = plane[: rows // factor * factor, : cols // factor * factor]
        plane = cropped.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))
    r = np.linspace(0, plane.shape[0] - 1, out_h).round().astype(int)
    c = np.linspace(0, plane.shape[1] - 1, out_w).round().astype(int)
    return np.asarray(plane[np.ix_(r, c)], dtype=np.float32)


def display_window(volume: Volume, plane: np.ndarray) -> tuple[float, float]:
    """(low, high) shown as black and white: the file's window, a CT soft-tissue window, else percentiles."""
    window = volume.meta.get("window") if isinstance(volume.meta, dict) else None
    if window and len(window) == 2 and _number(window[1]) and float(window[1]) > 0:
        centre, width = float(window[0]), float(window[1])
        return centre - width / 2, centre + width / 2
    if volume.units == "HU" or volume.modality == "CT":
        return 40.0 - 200.0, 40.0 + 200.0
    finite = plane[np.isfinite(plane)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [1.0, 99.0]) if not volume.is_2d else (finite.min(), finite.max())
    return float(low), float(high) if high > low else float(low) + 1.0


def to_uint8(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    scaled = (np.nan_to_num(plane, nan=low) - low) / max(high - low, 1e-6)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def volume_thumbnail(volume: Volume, size: int = THUMBNAIL_SIZE, index: int | None = None) -> np.ndarray:
    """The middle slice (or ``index``) of an opened volume as ``uint8[h, w]``, row 0 at the top."""
    z = volume.shape[0] // 2 if index is None else int(np.clip(index, 0, volume.shape[0] - 1))
    plane = volume.array[z]
    small = shrink(plane, (volume.spacing[0], volume.spacing[1]), size)
    return to_uint8(small, *display_window(volume, plane))


def series_thumbnail(
    files: Sequence[Path],
    *,
    size: int = THUMBNAIL_SIZE,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Thumbnail:
    """The middle slice of a DICOM series (its files, any order) as a :class:`Thumbnail`.

    Headers of every file are read (``stop_before_pixels``) to find the middle slice in patient order;
    only that file is decoded. Unreadable files are skipped; if none is an image: :class:`ImageReadError`.
    """
    # The DICOM readers (pydicom) load with the first thumbnail, on a worker, not with this module: the
    # viewer imports it (``Thumbnail``) while it starts. Through the loader: see its docstring.
    import inference.io.loader  # noqa: F401
    from inference.io.dicom_reader import read_file
    from inference.io.dicom_scan import (
        CorruptHeaderError,
        display_text,
        is_image,
        looks_truncated,
        read_header,
    )

    headers: list[tuple[Path, Dataset]] = []
    for i, path in enumerate(files):
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            ds = read_header(Path(path))
        except (CorruptHeaderError, OSError):
            continue
        if ds is None or looks_truncated(ds) or not is_image(ds):
            continue
        headers.append((Path(path), ds))
        progress((i + 1) / max(len(files), 1) * 0.8, "Reading headers")
    if not headers:
        raise ImageReadError(f"None of the {len(files)} file(s) of this series could be read as an image.")
    ordered = sorted(enumerate(headers), key=lambda item: _position_key(item[1][1], item[0]))
    skipped = len(files) - len(headers)
    # the middle slice first; a corrupt one falls back to its neighbours (a tile, not an error, if any decodes)
    middle = len(ordered) // 2
    candidates = sorted(range(len(ordered)), key=lambda k: abs(k - middle))[:5]
    last_error: ImageReadError | None = None
    for k in candidates:
        path, ds = ordered[k][1]
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            volume = read_file(path, ds, cancel=cancel)
        except ImageReadError as err:
            last_error = err
            continue
        date, time = _date_of(ds)
        warnings = [f"{skipped} unreadable file(s) skipped"] if skipped else []
        progress(1.0, "Thumbnail ready")
        return Thumbnail(
            pixels=volume_thumbnail(volume, size), modality=volume.modality,
            description=display_text(ds.get("SeriesDescription", "")), n_images=len(headers),
            date=date, time=time, frame_of_reference=display_text(ds.get("FrameOfReferenceUID", ""), 64),
            warnings=warnings,
        )
    assert last_error is not None
    raise last_error


def image_thumbnail(path: Path, size: int = THUMBNAIL_SIZE, *, cancel: CancelToken | None = None) -> Thumbnail:
    """Any single image :func:`inference.io.loader.open_image` reads (JPEG/PNG X-ray, NIfTI, a DICOM file)."""
    from inference.io.loader import open_image  # the loader imports the readers; kept out of module import

    volume = open_image(Path(path), cancel=cancel)
    return Thumbnail(
        pixels=volume_thumbnail(volume, size), modality=volume.info.modality or volume.modality,
        description=volume.info.series_description, n_images=volume.shape[0], date=volume.info.study_date,
        frame_of_reference=volume.info.frame_of_reference_uid,
        warnings=list(volume.meta.get("warnings") or []),
    )
