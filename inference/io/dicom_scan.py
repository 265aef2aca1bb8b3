"""Find DICOM files in a folder and group the image objects into series (headers only).

Headers are read with ``stop_before_pixels`` so grouping a folder never decodes pixels. Files
that are not DICOM are ignored; non-image objects (SR, SEG, RTSTRUCT, PR, ...) are counted so the
user can be told why nothing was shown.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.valuerep import VR

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
    # Patient and study (for a browser): from a DICOMDIR's records, or a folder scan's first header.
    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    study_description: str = ""

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


_MODALITY_RE = re.compile(r"^[A-Za-z0-9_ ]{0,16}$")  # CS value: what a Modality can be


def modality_of(ds: Dataset) -> str | None:
    """The Modality value, stripped; ``None`` when it cannot be one (a corrupt length swallowed other elements).

    Never put the raw value in a message when this is ``None``: it may hold the following header bytes,
    including the patient's name and ID.
    """
    value = ds.get("Modality", "")
    text = "" if value is None else str(value)
    return text.strip() if _MODALITY_RE.match(text) else None


def display_text(value: object, limit: int = 64) -> str:
    """A header text fit for a user-facing message: control characters (raw header bytes) blank it."""
    text = "" if value is None else str(value).strip()
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") for c in text):
        return "(unreadable)"
    return text[:limit]


_VALID_VRS = frozenset(vr.value for vr in VR) | {"OB or OW", "US or SS", "US or OW", "US or SS or OW"}
# Elements the readers read from a header (grouping, geometry, values, StudyInfo, SUV): converted up front.
USED_KEYWORDS = (
    "SOPClassUID", "Modality", "Rows", "Columns", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
    "SeriesDescription", "FrameOfReferenceUID", "NumberOfFrames", "ImagePositionPatient", "ImageOrientationPatient",
    "PixelSpacing", "ImagerPixelSpacing", "RescaleSlope", "RescaleIntercept", "PhotometricInterpretation",
    "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "WindowCenter",
    "WindowWidth", "SliceThickness", "SpacingBetweenSlices", "PatientName", "PatientID", "PatientBirthDate",
    "PatientSex", "PatientAge", "StudyDate", "StudyDescription", "InstitutionName", "Manufacturer", "Units",
    "DecayCorrection", "PatientWeight", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
    "SpecificCharacterSet", "RadiopharmaceuticalInformationSequence", "RadionuclideTotalDose",
    "RadionuclideHalfLife", "RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime",
)

_USED_TAGS = tuple(Tag(k) for k in USED_KEYWORDS)


def touch_elements(ds: Dataset, *, everything: bool = True) -> None:
    """Convert elements now, inside the caller's ``try``: pydicom converts lazily, so a corrupt element
    (bad VR bytes, bad value) would otherwise raise later, from a plain ``ds.get`` far from any handling.

    ``everything=False`` (folder scans, thousands of headers) converts only :data:`USED_KEYWORDS` and checks
    the VR of every other element without converting it (5x cheaper); a single file converts all.
    """
    if everything:
        for _ in ds.iterall():
            pass
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            for _ in meta.iterall():
                pass
        return
    for elem in ds.elements():  # raw elements stay raw: only their VR is looked at
        vr = elem.VR
        if vr is not None and vr not in _VALID_VRS:
            raise ValueError("unknown value representation")
        if vr == "SQ":
            for item in ds[elem.tag].value or ():
                touch_elements(item, everything=False)
    for tag in _USED_TAGS:
        ds.get(tag)  # converts (and caches) the element; the readers read these anyway


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
        if not _plausible(ds):
            return None
        _check_elements(ds)
        return ds
    except Exception as exc:  # truncated header, bad VR lengths, ...
        raise CorruptHeaderError(type(exc).__name__) from exc
    if not _plausible(ds):
        raise CorruptHeaderError("no core DICOM attributes")
    _check_elements(ds)
    return ds


def _check_elements(ds: Dataset) -> None:
    """:class:`CorruptHeaderError` when an element cannot be converted or Modality is not a Modality."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            touch_elements(ds, everything=False)
    except Exception as exc:  # noqa: BLE001 - any conversion failure means a corrupt element
        raise CorruptHeaderError(type(exc).__name__) from exc
    if modality_of(ds) is None:
        raise CorruptHeaderError("invalid Modality value")


def sop_class_uid(ds: Dataset) -> str:
    """SOP class from the dataset, falling back to the file meta (some anonymisers blank it)."""
    uid = str(ds.get("SOPClassUID", "") or "")
    if not uid and getattr(ds, "file_meta", None) is not None:
        uid = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
    return uid


def _declared_non_image(ds: Dataset) -> bool:
    """The header itself says it is not an image: a non-image modality or a known non-image SOP class."""
    if (modality_of(ds) or "").upper() in NON_IMAGE_MODALITIES:
        return True
    uid = sop_class_uid(ds)
    if not uid:
        return False
    name = pydicom.uid.UID(uid).name
    if any(word in name for word in _NON_IMAGE_SOP_WORDS):
        return True
    return name != uid and "Storage" in name and "Image" not in name  # a known, non-image storage class


def is_image(ds: Dataset) -> bool:
    """True for objects with a pixel grid we can display (not SR/SEG/RTSTRUCT/PR/...)."""
    return not _declared_non_image(ds) and "Rows" in ds and "Columns" in ds


def looks_truncated(ds: Dataset) -> bool:
    """No image pixel module and nothing saying it is a non-image object: the header was cut short.

    (A file cut inside the header loses Rows/Columns and often ends in a half SOPClassUID, which
    then names no known class; calling that "a non-image object" would mislead.)
    """
    return not ("Rows" in ds and "Columns" in ds) and not _declared_non_image(ds)


def series_key(ds: Dataset) -> str:
    """SeriesInstanceUID, or a stable synthetic key when an anonymiser blanked it."""
    uid = str(ds.get("SeriesInstanceUID", "") or "")
    if uid:
        return uid
    parts = [str(ds.get(kw) or "") for kw in ("Modality", "SeriesNumber", "SeriesDescription", "FrameOfReferenceUID")]
    return "noUID:" + ":".join(parts)


_reuse = threading.local()  # this thread's scans inside ``reusing_scans()``: {folder: (file stamps, scan)}


@contextmanager
def reusing_scans() -> Iterator[None]:
    """Inside the block, scanning a folder again on this thread returns the first scan if no file was added,
    removed or changed (name, size, modification time): the memory check and the read of one open share one
    header pass. Nothing outlives the block (no headers kept in memory, no stale results later)."""
    outer = getattr(_reuse, "scans", None)
    _reuse.scans = {} if outer is None else outer
    try:
        yield
    finally:
        _reuse.scans = outer


def _stamps(files: list[Path]) -> tuple:
    stamps = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            return ()  # vanished meanwhile: scan again (and report it as the scan finds it)
        stamps.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(stamps)


def scan_folder(
    folder: Path, *, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
) -> FolderScan:
    """Read every file's header once and group image objects by series (see :func:`reusing_scans`)."""
    files = list(iter_files(folder))
    scans: dict | None = getattr(_reuse, "scans", None)
    stamps = _stamps(files) if scans is not None else ()
    if scans is not None and stamps and scans.get(str(folder), ((), None))[0] == stamps:
        progress(1.0, f"Reading headers {len(files)}/{len(files)}")
        return scans[str(folder)][1]
    scan = _scan_files(files, progress, cancel)
    if scans is not None and stamps:
        scans[str(folder)] = (stamps, scan)
    return scan


def _scan_files(files: list[Path], progress: ProgressCallback, cancel: CancelToken | None) -> FolderScan:
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
            modality = display_text(modality_of(ds)) or "unknown"
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
        modality=display_text(modality_of(first)),
        description=display_text(first.get("SeriesDescription", "")),
        n_files=len(items),
        files=[p for p, _ in items],
        study_uid=str(first.get("StudyInstanceUID", "") or ""),
        rows=int(first.get("Rows", 0) or 0),
        cols=int(first.get("Columns", 0) or 0),
        series_number=_int_or_none(first.get("SeriesNumber")),
        n_frames=frames,
        patient_name=display_text(first.get("PatientName", "")),
        patient_id=display_text(first.get("PatientID", "")),
        study_date=display_text(first.get("StudyDate", "")),
        study_description=display_text(first.get("StudyDescription", "")),
    )


def summarize(scan: FolderScan) -> list[SeriesInfo]:
    """Image series of a scan, ordered by series number then description."""
    infos = [describe_series(key, items) for key, items in scan.series.items()]
    return sorted(infos, key=lambda s: (s.series_number is None, s.series_number or 0, s.description, s.series_uid))
