"""Find DICOM files in a folder and group the image objects into series (headers only).

Headers are read with ``stop_before_pixels`` so grouping a folder never decodes pixels. Files
that are not DICOM are ignored; non-image objects (SR, SEG, RTSTRUCT, PR, ...) are counted so the
user can be told why nothing was shown.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from inference.progress import CancelToken, ProgressCallback, no_progress

# Modalities that never carry a displayable image grid.
NON_IMAGE_MODALITIES = frozenset(
    {"SR", "RTSTRUCT", "RTPLAN", "RTRECORD", "RTDOSE", "RTIMAGE_PLAN", "SEG", "PR", "KO", "REG", "DOC",
     "FID", "RWV", "AU", "ECG", "HD", "PLAN", "RESP", "SMR", "M3D", "OTHER_NONIMAGE"}
)
# Fragments of SOP class names that mark non-image storage classes.
_NON_IMAGE_SOP_WORDS = ("SR Storage", "Presentation State", "Segmentation", "RT Structure", "RT Plan",
                        "RT Dose", "Key Object", "Encapsulated", "Registration", "Waveform", "Raw Data",
                        "Surface", "Measurement Report", "Document")
_SKIP_SUFFIXES = frozenset({".txt", ".json", ".xml", ".csv", ".md", ".png", ".jpg", ".jpeg", ".nii", ".gz",
                           ".nrrd", ".nhdr", ".html", ".pdf", ".zip", ".py", ".ini", ".log", ".mha", ".mhd"})
_PREAMBLE_KEYWORDS = ("SOPClassUID", "Modality", "Rows", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass
class SeriesInfo:
    """One image series in a folder, as offered to the user when several are present."""

    series_uid: str
    modality: str
    description: str
    n_files: int
    files: list[Path]
    study_uid: str = ""
    rows: int = 0
    cols: int = 0
    series_number: int | None = None
    n_frames: int = 0

    def label(self) -> str:
        """Short human-readable name for pickers and error messages."""
        number = f"#{self.series_number} " if self.series_number is not None else ""
        desc = self.description or "(no description)"
        return f"{number}{self.modality} {desc} ({self.n_files} files, {self.cols}x{self.rows})"


@dataclass
class FolderScan:
    """Result of scanning a folder: image series plus counts explaining what was skipped."""

    series: dict[str, list[tuple[Path, Dataset]]] = field(default_factory=dict)
    non_image: dict[str, int] = field(default_factory=dict)  # modality -> count
    unreadable: list[Path] = field(default_factory=list)
    n_files: int = 0
    n_dicom: int = 0


def iter_files(folder: Path) -> Iterator[Path]:
    """All regular, non-hidden files below ``folder`` in a stable order (DICOMDIR excluded)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            yield Path(root) / name


def _plausible(ds: Dataset) -> bool:
    """A force-read dataset is only believed if it carries core DICOM attributes."""
    return any(kw in ds for kw in _PREAMBLE_KEYWORDS)


class CorruptHeaderError(Exception):
    """Internal: a file starts like DICOM but its header cannot be parsed."""


def read_header(path: Path) -> Dataset | None:
    """Header without pixel data; ``None`` if not DICOM; :class:`CorruptHeaderError` if broken."""
    if path.suffix.lower() in _SKIP_SUFFIXES:
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        try:
            with warnings.catch_warnings():  # force-reading a non-DICOM file warns about garbage VRs
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:
            return None
        return ds if _plausible(ds) else None
    except Exception as exc:  # truncated header, bad VR lengths, ...
        raise CorruptHeaderError(str(exc)) from exc
    if not _plausible(ds):
        raise CorruptHeaderError("no core DICOM attributes")
    return ds


def sop_class_uid(ds: Dataset) -> str:
    """SOP class from the dataset, falling back to the file meta (some anonymisers blank it)."""
    uid = str(ds.get("SOPClassUID", "") or "")
    if not uid and getattr(ds, "file_meta", None) is not None:
        uid = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
    return uid


def is_image(ds: Dataset) -> bool:
    """True for objects with a pixel grid we can display (not SR/SEG/RTSTRUCT/PR/...)."""
    modality = str(ds.get("Modality", "") or "").upper()
    if modality in NON_IMAGE_MODALITIES:
        return False
    uid = sop_class_uid(ds)
    if uid:
        name = pydicom.uid.UID(uid).name
        if any(word in name for word in _NON_IMAGE_SOP_WORDS):
            return False
    return "Rows" in ds and "Columns" in ds


def looks_truncated(ds: Dataset) -> bool:
    """An image SOP class without the image pixel module: the header was cut short."""
    uid = sop_class_uid(ds)
    return bool(uid) and "Image Storage" in pydicom.uid.UID(uid).name and not ("Rows" in ds and "Columns" in ds)


def series_key(ds: Dataset) -> str:
    """SeriesInstanceUID, or a stable synthetic key when an anonymiser blanked it."""
    uid = str(ds.get("SeriesInstanceUID", "") or "")
    if uid:
        return uid
    parts = [str(ds.get(kw) or "") for kw in ("Modality", "SeriesNumber", "SeriesDescription", "FrameOfReferenceUID")]
    return "noUID:" + ":".join(parts)


def scan_folder(
    folder: Path, *, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
) -> FolderScan:
    """Read every file's header once and group image objects by series."""
    files = list(iter_files(folder))
    scan = FolderScan(n_files=len(files))
    for i, path in enumerate(files):
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            ds = read_header(path)
        except CorruptHeaderError:
            scan.unreadable.append(path)
            scan.n_dicom += 1
            continue
        if ds is None:
            continue
        scan.n_dicom += 1
        if looks_truncated(ds):
            scan.unreadable.append(path)
            continue
        if not is_image(ds):
            modality = str(ds.get("Modality", "") or "") or "unknown"
            scan.non_image[modality] = scan.non_image.get(modality, 0) + 1
            continue
        scan.series.setdefault(series_key(ds), []).append((path, ds))
        progress((i + 1) / max(len(files), 1), f"Reading headers {i + 1}/{len(files)}")
    return scan


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def describe_series(key: str, items: list[tuple[Path, Dataset]]) -> SeriesInfo:
    """Summary of one grouped series (from its first header)."""
    first = items[0][1]
    frames = sum(_int_or_none(ds.get("NumberOfFrames", 1)) or 1 for _, ds in items)
    return SeriesInfo(
        series_uid=key,
        modality=str(first.get("Modality", "") or ""),
        description=str(first.get("SeriesDescription", "") or ""),
        n_files=len(items),
        files=[p for p, _ in items],
        study_uid=str(first.get("StudyInstanceUID", "") or ""),
        rows=int(first.get("Rows", 0) or 0),
        cols=int(first.get("Columns", 0) or 0),
        series_number=_int_or_none(first.get("SeriesNumber")),
        n_frames=frames,
    )


def summarize(scan: FolderScan) -> list[SeriesInfo]:
    """Image series of a scan, ordered by series number then description."""
    infos = [describe_series(key, items) for key, items in scan.series.items()]
    return sorted(infos, key=lambda s: (s.series_number is None, s.series_number or 0, s.description, s.series_uid))
