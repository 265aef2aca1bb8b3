"""DICOMDIR: the index file of a CD/DVD/USB export, offered as a list of studies and series.

A DICOMDIR holds no pixels; it lists patients → studies → series → images and where each image file is
(``ReferencedFileID``, relative to the DICOMDIR's folder), as records linked by byte offsets. :func:`read_dicomdir` returns one
:class:`SeriesInfo` per series (with the patient and study it belongs to, for a browser); opening the
DICOMDIR with :func:`inference.io.loader.open_image` behaves like opening a folder: one series opens
directly, several raise :class:`SeriesSelectionRequired`, and ``series_uid`` picks one.

The index is untrusted like any file: a corrupt DICOMDIR is an :class:`ImageReadError`; a file reference
that would leave the DICOMDIR's folder (``..``, absolute paths) is ignored; references are matched
case-insensitively (media written on Windows list ``IM000001`` for a file stored as ``im000001``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from inference.errors import ImageReadError, SeriesSelectionRequired
from inference.io.dicom_scan import (
    CorruptHeaderError,
    SeriesInfo,
    display_text,
    is_image,
    looks_truncated,
    read_header,
)

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


def is_dicomdir(path: Path) -> bool:
    """True when the file's meta information says Media Storage Directory (whatever it is called)."""
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except (OSError, InvalidDicomError, ValueError, TypeError, KeyError, IndexError, EOFError):
        return False
    except Exception:  # noqa: BLE001 - a broken file is simply not recognised as a DICOMDIR here
        return False
    return str(meta.get("MediaStorageSOPClassUID", "") or "") == MEDIA_STORAGE_DIRECTORY


def _resolve(root: Path, file_id: object) -> Path | None:
    """The file a ReferencedFileID names inside ``root`` (case-insensitive), or None if absent/outside."""
    if isinstance(file_id, str):
        parts = [file_id]
    elif isinstance(file_id, Iterable):
        parts = [str(p) for p in file_id]
    else:
        return None
    if not parts or any(not p or p in (".", "..") or "/" in p or "\\" in p or "\x00" in p for p in parts):
        return None
    current = root
    for part in parts:
        exact = current / part
        if exact.exists():
            current = exact
            continue
        try:
            matches = [c for c in current.iterdir() if c.name.lower() == part.lower()]
        except OSError:
            return None
        if len(matches) != 1:
            return None
        current = matches[0]
    try:
        if not current.is_file() or not current.resolve().is_relative_to(root.resolve()):
            return None
    except OSError:
        return None
    return current


_FIRST = "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"
_NEXT = "OffsetOfTheNextDirectoryRecord"
_LOWER = "OffsetOfReferencedLowerLevelDirectoryEntity"
_LEVELS = {"PATIENT": 0, "STUDY": 1, "SERIES": 2}


def _get(record: Dataset | None, keyword: str) -> object:
    """An element's value, None when absent or not convertible (a corrupt value never escapes)."""
    if record is None:
        return None
    try:
        return record.get(keyword)
    except Exception:  # noqa: BLE001 - lazily converted values of an untrusted file
        return None


def _int(value: object, default: int | None = None) -> int | None:
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return default


def _read_sequence(path: Path) -> tuple[list[Dataset], int]:
    try:
        with warnings.catch_warnings():  # big-endian/implicit DICOMDIRs read fine but warn
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            sequence = list(ds.get("DirectoryRecordSequence") or [])
            return sequence, _int(ds.get(_FIRST), 0) or 0
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure: the index is corrupt
        raise ImageReadError(f"The DICOMDIR '{path.name}' is truncated or corrupt and cannot be browsed.") from exc


def _in_file_order(sequence: list[Dataset]) -> list[tuple[Dataset, dict[str, Dataset]]]:
    """No root link: each record belongs to the latest record of the level above it (writers' usual order)."""
    out: list[tuple[Dataset, dict[str, Dataset]]] = []
    ancestors: dict[str, Dataset] = {}
    for record in sequence:
        kind = str(_get(record, "DirectoryRecordType") or "")
        ancestors = {k: v for k, v in ancestors.items() if _LEVELS[k] < _LEVELS.get(kind, 9)}
        out.append((record, dict(ancestors)))
        if kind in _LEVELS:
            ancestors[kind] = record
    return out


def _records(path: Path) -> list[tuple[Dataset, dict[str, Dataset]]]:
    """Every in-use directory record with its ancestors by type (PATIENT/STUDY/SERIES).

    Records are linked by byte offsets (first child, next sibling); links that point nowhere or in a circle
    make the DICOMDIR corrupt. Inactive records (RecordInUseFlag 0, retired) are left out.
    """
    sequence, first = _read_sequence(path)
    if not sequence:
        raise ImageReadError(f"The DICOMDIR '{path.name}' lists no images.")
    if not first:
        return _in_file_order(sequence)
    by_offset = {int(item.seq_item_tell): item for item in sequence if item.seq_item_tell is not None}
    out: list[tuple[Dataset, dict[str, Dataset]]] = []
    visited: set[int] = set()
    pending: list[tuple[int, dict[str, Dataset]]] = [(first, {})]
    while pending:
        offset, ancestors = pending.pop()
        while offset:
            if offset in visited or offset not in by_offset:
                raise ImageReadError(f"The DICOMDIR '{path.name}' is corrupt (its directory records are not "
                                     "linked correctly) and cannot be browsed.")
            visited.add(offset)
            record = by_offset[offset]
            kind = str(_get(record, "DirectoryRecordType") or "")
            if _int(_get(record, "RecordInUseFlag"), 0xFFFF) != 0:
                out.append((record, ancestors))
            lower = _int(_get(record, _LOWER), 0) or 0
            if lower:
                pending.append((lower, {**ancestors, kind: record}))
            offset = _int(_get(record, _NEXT), 0) or 0
    return out


def _fill_from_header(info: SeriesInfo) -> None:
    """Rows/Columns/description are optional in the index: take them from the series' first file."""
    try:
        header = read_header(info.files[0])
    except CorruptHeaderError:
        return
    if header is None:
        return
    info.rows = info.rows or (_int(header.get("Rows"), 0) or 0)
    info.cols = info.cols or (_int(header.get("Columns"), 0) or 0)
    info.description = info.description or display_text(header.get("SeriesDescription", ""))


def read_dicomdir(path: Path) -> list[SeriesInfo]:
    """Image series listed in a DICOMDIR whose files exist next to it, ordered by patient, study, series number.

    ``SeriesInfo`` carries the patient name/ID and study date/description for a browser. Raises
    :class:`ImageReadError` when the index is corrupt, lists no images, or none of its files are present.
    """
    path = Path(path)
    groups: dict[int, SeriesInfo] = {}
    listed = 0
    for record, ancestors in _records(path):
        if str(_get(record, "DirectoryRecordType") or "") != "IMAGE":
            continue
        listed += 1
        file_path = _resolve(path.parent, _get(record, "ReferencedFileID"))
        if file_path is None:
            continue
        series, study, patient = ancestors.get("SERIES"), ancestors.get("STUDY"), ancestors.get("PATIENT")
        info = groups.get(id(series))
        if info is None:
            uid = str(_get(series, "SeriesInstanceUID") or "")
            info = SeriesInfo(
                series_uid=uid or f"dicomdir:{len(groups)}", modality=display_text(_get(series, "Modality")),
                description=display_text(_get(series, "SeriesDescription")), n_files=0, files=[],
                study_uid=str(_get(study, "StudyInstanceUID") or ""),
                rows=_int(_get(record, "Rows"), 0) or 0, cols=_int(_get(record, "Columns"), 0) or 0,
                series_number=_int(_get(series, "SeriesNumber")),
                patient_name=display_text(_get(patient, "PatientName")),
                patient_id=display_text(_get(patient, "PatientID")),
                study_date=display_text(_get(study, "StudyDate")),
                study_description=display_text(_get(study, "StudyDescription")),
            )
            groups[id(series)] = info
        info.files.append(file_path)
        info.n_files += 1
        info.n_frames += _int(_get(record, "NumberOfFrames"), 1) or 1
    if not listed:
        raise ImageReadError(f"The DICOMDIR '{path.name}' lists no images.")
    if not groups:
        raise ImageReadError(
            f"The DICOMDIR '{path.name}' lists {listed} image file(s), but none of them are in its folder "
            "(copy the whole disc, not only the DICOMDIR file)."
        )
    for info in groups.values():
        if not (info.rows and info.cols and info.description):
            _fill_from_header(info)
    return sorted(groups.values(), key=lambda s: (s.patient_name, s.patient_id, s.study_date, s.study_uid,
                                                  s.series_number is None, s.series_number or 0, s.description))


def choose(path: Path, infos: list[SeriesInfo], series_uid: str | None) -> SeriesInfo:
    """The series to open: the only one, the one asked for, or :class:`SeriesSelectionRequired`."""
    if series_uid is None:
        if len(infos) > 1:
            names = "; ".join(s.label() for s in infos)
            raise SeriesSelectionRequired(
                f"The DICOMDIR '{path.name}' lists {len(infos)} image series; choose one: {names}.", series=infos
            )
        return infos[0]
    for info in infos:
        if info.series_uid == series_uid:
            return info
    raise ImageReadError(f"The DICOMDIR '{path.name}' lists no image series with UID '{series_uid}'.")


def series_headers(info: SeriesInfo) -> tuple[list[tuple[Path, Dataset]], list[str]]:
    """Headers of a series' image files (those that can be read), and warnings for the ones skipped."""
    items: list[tuple[Path, Dataset]] = []
    skipped = 0
    for file_path in info.files:
        try:
            header = read_header(file_path)
        except CorruptHeaderError:
            header = None
        if header is None or looks_truncated(header) or not is_image(header):
            skipped += 1
            continue
        items.append((file_path, header))
    if info.series_uid and not info.series_uid.startswith("dicomdir:"):
        same = [(p, h) for p, h in items if str(h.get("SeriesInstanceUID", "") or "") == info.series_uid]
        skipped += len(items) - len(same) if same else 0
        items = same or items
    warnings_ = [f"{skipped} file(s) listed in the DICOMDIR were unreadable or not part of the series"] if skipped else []
    return items, warnings_
