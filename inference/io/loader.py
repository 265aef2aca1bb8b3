"""Single entry point for opening images: dispatch by what the path is.

Folders are DICOM (grouped by series); files are recognised by the DICOM preamble ('DICM' at
byte 128), by suffix (NIfTI, NRRD, MetaImage, PNG, JPEG), or, for files without a known suffix,
by pydicom accepting them. Every failure a user can cause raises an ``ImageReadError`` subclass
with one sentence (catalogue in docs/dev/io.md).

Importing this module imports every reader (pydicom, SimpleITK, Pillow: ~0.4 s). The viewer does that on
the worker that opens the first image, not while it starts; code that imports parts of the reader stack
lazily on a worker thread imports this module first, so two threads never import pydicom's modules in
different orders at once (one holds ``inference.io.loader``'s import lock, the others wait for the whole
stack instead of each taking a part of it: Python's import locks can fail with a deadlock error otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image

from inference.errors import ImageReadError, SeriesSelectionRequired, UnsupportedInputError
from inference.io import dicomdir
from inference.io.dicom_pixels import number_of_frames
from inference.io.dicom_reader import read_file, read_series
from inference.io.dicom_scan import (
    CorruptHeaderError,
    FolderScan,
    SeriesInfo,
    display_text,
    is_image,
    looks_truncated,
    modality_of,
    read_header,
    scan_folder,
    summarize,
)
from inference.io.raster import RASTER_SUFFIXES, raster_size, read_raster
from inference.io.sitk_io import ITK_SUFFIXES, read_itk_image
from inference.io.volume import Volume
from inference.progress import CancelToken, ProgressCallback, no_progress, scaled

__all__ = ["FileReader", "SeriesInfo", "estimate_bytes", "list_series", "open_image", "register_reader"]

_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima", "")


@dataclass(frozen=True)
class FileReader:
    """A non-DICOM image format recognised by suffix: ``read`` decodes it, ``estimate`` reads only the header
    (bytes of the float32 volume, for the memory budget). DICOM needs no suffix: it is the content-sniffed
    fallback after every registered reader."""

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Path], Volume]
    estimate: Callable[[Path], int]


_READERS: list[FileReader] = []


def register_reader(reader: FileReader) -> None:
    """Open files ending in ``reader.suffixes`` with ``reader`` (checked in registration order)."""
    _READERS.append(reader)


def _reader_for(suffix: str) -> FileReader | None:
    return next((r for r in _READERS if suffix in r.suffixes), None)


def _itk_bytes(path: Path) -> int:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ImageReadError(f"The file '{path.name}' could not be read as NIfTI/NRRD (it may be corrupt).") from exc
    return int(np.prod(reader.GetSize())) * 4


def _raster_bytes(path: Path) -> int:
    size = raster_size(path)  # from the header: Pillow refuses huge claims before telling the size
    if size is not None:
        return size[0] * size[1] * 4
    try:
        with Image.open(path) as img:
            return img.width * img.height * 4
    except Image.DecompressionBombError:
        raise ImageReadError(f"The image file '{path.name}' is too large to open (it may be corrupt).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"The image file '{path.name}' is corrupt or truncated and could not be read.") from exc


register_reader(FileReader("NIfTI / NRRD / MetaImage", ITK_SUFFIXES, read_itk_image, _itk_bytes))
register_reader(FileReader("PNG / JPEG", RASTER_SUFFIXES, read_raster, _raster_bytes))


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def has_dicom_preamble(path: Path) -> bool:
    """True when the file carries the Part 10 ``DICM`` marker at byte 128 (whatever its suffix)."""
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(f"The path '{path}' does not exist.")


def _no_image_message(folder: Path, scan: FolderScan) -> ImageReadError:
    if scan.n_files == 0:
        return ImageReadError(f"The folder '{folder.name}' is empty.")
    if scan.n_dicom == 0:
        return ImageReadError(f"The folder '{folder.name}' contains no DICOM files.")
    if scan.non_image:
        kinds = ", ".join(f"{n} {m}" for m, n in sorted(scan.non_image.items()))
        return UnsupportedInputError(
            f"The folder '{folder.name}' holds no images, only non-image DICOM objects ({kinds})."
        )
    return ImageReadError(
        f"The folder '{folder.name}' contains only corrupt or truncated DICOM files ({len(scan.unreadable)})."
    )


def list_series(folder: Path) -> list[SeriesInfo]:
    """Image series in a folder (headers only) or listed in a DICOMDIR file; empty when there are none."""
    folder = Path(folder)
    _check_exists(folder)
    if folder.is_file() and dicomdir.is_dicomdir(folder):
        return dicomdir.read_dicomdir(folder)
    if not folder.is_dir():
        raise ImageReadError(f"The path '{folder}' is not a folder.")
    return summarize(scan_folder(folder))


def _open_dicomdir(path: Path, series_uid: str | None, progress: ProgressCallback,
                   cancel: CancelToken | None) -> Volume:
    """The chosen series of a DICOMDIR, read like a folder's series (one file: like that file alone)."""
    info = dicomdir.choose(path, dicomdir.read_dicomdir(path), series_uid)
    items, warnings = dicomdir.series_headers(info)
    if not items:
        raise ImageReadError(f"None of the files the DICOMDIR '{path.name}' lists for series {info.label()} "
                             "could be read.")
    if len(items) == 1:
        volume = read_file(items[0][0], items[0][1], progress=progress, cancel=cancel)
    else:
        volume = read_series(items, progress=progress, cancel=cancel)
    volume.meta["warnings"].extend(warnings)
    volume.meta["dicomdir"] = str(path)
    return volume


def _open_folder(folder: Path, series_uid: str | None, progress: ProgressCallback, cancel: CancelToken | None) -> Volume:
    scan = scan_folder(folder, progress=scaled(progress, 0.0, 0.1), cancel=cancel)
    if not scan.series:
        raise _no_image_message(folder, scan)
    infos = summarize(scan)
    if series_uid is None:
        if len(infos) > 1:
            names = "; ".join(s.label() for s in infos)
            raise SeriesSelectionRequired(
                f"The folder '{folder.name}' holds {len(infos)} image series; choose one: {names}.", series=infos
            )
        series_uid = infos[0].series_uid
    if series_uid not in scan.series:
        raise ImageReadError(f"The folder '{folder.name}' has no image series with UID '{series_uid}'.")
    volume = read_series(scan.series[series_uid], progress=scaled(progress, 0.1, 1.0), cancel=cancel)
    if scan.unreadable:
        volume.meta["warnings"].append(f"{len(scan.unreadable)} unreadable DICOM file(s) in the folder were skipped")
    return volume


def _open_dicom_file(path: Path, progress: ProgressCallback, cancel: CancelToken | None) -> Volume:
    try:
        header = read_header(path)
    except CorruptHeaderError as exc:
        raise ImageReadError(f"The DICOM file '{path.name}' is truncated or corrupt.") from exc
    if header is None:
        raise UnsupportedInputError(f"The file '{path.name}' is not a supported image type.")
    if looks_truncated(header):
        raise ImageReadError(f"The DICOM file '{path.name}' is truncated or corrupt.")
    if not is_image(header):
        modality = display_text(modality_of(header)) or "unknown"
        raise UnsupportedInputError(
            f"The DICOM file '{path.name}' is a non-image object (modality {modality}) and cannot be displayed."
        )
    return read_file(path, header, progress=progress, cancel=cancel)


def open_image(
    path: Path,
    *,
    series_uid: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Volume:
    """Open a DICOM folder/file, NIfTI, NRRD, PNG or JPEG as a :class:`Volume`.

    Raises :class:`SeriesSelectionRequired` when a folder holds several image series and
    ``series_uid`` is not given (the exception's ``series`` lists them).
    """
    path = Path(path)
    _check_exists(path)
    if cancel is not None:
        cancel.raise_if_cancelled()
    if path.is_dir():
        return _open_folder(path, series_uid, progress, cancel)
    suffix = _suffix(path)
    reader = _reader_for(suffix)
    if reader is None:
        if has_dicom_preamble(path) and dicomdir.is_dicomdir(path):
            return _open_dicomdir(path, series_uid, progress, cancel)
        if has_dicom_preamble(path) or suffix in _DICOM_SUFFIXES or read_header_safe(path):
            return _open_dicom_file(path, progress, cancel)
        raise UnsupportedInputError(
            f"The file type of '{path.name}' is not supported (use DICOM, NIfTI, NRRD, PNG or JPEG)."
        )
    volume = reader.read(path)
    progress(1.0, f"Read {path.name}")
    return volume


def read_header_safe(path: Path) -> bool:
    """True when pydicom accepts a file with an unknown suffix as DICOM."""
    try:
        return read_header(path) is not None
    except CorruptHeaderError:
        return True


def _dicom_bytes(headers: list) -> int:
    total = 0
    for ds in headers:
        frames = number_of_frames(ds, "image")
        try:
            rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        except (TypeError, ValueError):
            raise ImageReadError("A DICOM file has an invalid Rows/Columns value (not an integer).") from None
        total += max(rows, 0) * max(cols, 0) * frames
    return total * np.dtype(np.float32).itemsize


def estimate_bytes(path: Path, *, series_uid: str | None = None) -> int:
    """Bytes of the float32 volume that :func:`open_image` would return (headers only, no decoding).

    For a folder with several series and no ``series_uid``, the largest series counts.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        scan = scan_folder(path)
        if not scan.series:
            raise _no_image_message(path, scan)
        if series_uid is not None:
            if series_uid not in scan.series:
                raise ImageReadError(f"The folder '{path.name}' has no image series with UID '{series_uid}'.")
            return _dicom_bytes([ds for _, ds in scan.series[series_uid]])
        return max(_dicom_bytes([ds for _, ds in items]) for items in scan.series.values())
    reader = _reader_for(_suffix(path))
    if reader is not None:
        return reader.estimate(path)
    if has_dicom_preamble(path) and dicomdir.is_dicomdir(path):
        infos = dicomdir.read_dicomdir(path)
        chosen = [dicomdir.choose(path, infos, series_uid)] if series_uid is not None else infos
        return max(_dicom_bytes([h for _, h in dicomdir.series_headers(info)[0]]) for info in chosen)
    try:
        header = read_header(path)
    except CorruptHeaderError as exc:
        raise ImageReadError(f"The DICOM file '{path.name}' is truncated or corrupt.") from exc
    if header is None:
        raise UnsupportedInputError(
            f"The file type of '{path.name}' is not supported (use DICOM, NIfTI, NRRD, PNG or JPEG)."
        )
    return _dicom_bytes([header])

