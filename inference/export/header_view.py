"""A file's header as rows for a tag viewer, with the identifying rows marked for masking.

Why here (next to de-identification): which rows identify the patient is the PS3.15 basic profile's
list (:data:`inference.export.deid.BASIC_PROFILE`), plus every person name (VR PN), every date (VR DA,
DT: a "date of last calibration" gives the exam day away) and every private element (contents unknown). Patient sex and age stay visible, as in the viewer's de-identified
study panel. DICOM is read with pydicom (header only, nested sequences flattened with a depth); other
formats show the metadata SimpleITK reads (NRRD, NIfTI, MetaImage keys), where free-text, date and
patient keys count as identifying. Files are untrusted: sizes are bounded and any failure is one
:class:`~inference.errors.ImageReadError` sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from inference.errors import ImageReadError

__all__ = ["HIDDEN", "HeaderRow", "masked", "read_header"]

HIDDEN = "(hidden: de-identified display)"
MAX_ROWS = 5000
MAX_DEPTH = 8
MAX_VALUE = 240
_SHOWN_WHEN_DEIDENTIFIED = {"PatientSex", "PatientAge"}  # as StudyInfo.deidentified() keeps them
# metadata keys of other formats that may carry identifying free text (ITK's "0010|…" are DICOM patient tags)
_TEXT_KEY_HINTS = ("descrip", "comment", "patient", "date", "institution", "physician", "aux_file", "0010|",
                   "0008|0080", "0008|0090")


@dataclass(frozen=True)
class HeaderRow:
    """One element: ``tag`` "(0010,0010)" (or a metadata key), ``name``, ``vr``, ``value`` as text,
    ``depth`` inside sequences, ``phi``: identifying (masked when the display is de-identified)."""

    tag: str
    name: str
    vr: str
    value: str
    depth: int = 0
    phi: bool = False


def masked(rows: list[HeaderRow]) -> list[HeaderRow]:
    """The rows with identifying values replaced by :data:`HIDDEN` (searching them then finds nothing)."""
    return [replace(r, value=HIDDEN) if r.phi and r.value else r for r in rows]


def _text(value: object, vr: str) -> str:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        try:
            return f"<{len(value)} bytes>"  # type: ignore[arg-type]
        except TypeError:
            return "<binary>"
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)  # type: ignore[attr-defined]
    else:
        text = str(value)
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _dicom_rows(dataset: object, depth: int, inherited_phi: bool, rows: list[HeaderRow]) -> None:
    from inference.export.deid import BASIC_PROFILE  # pydicom is loaded when a header is first shown

    for elem in dataset:  # type: ignore[attr-defined]
        if len(rows) >= MAX_ROWS:
            return
        keyword = elem.keyword or ""
        phi = (inherited_phi or elem.tag.is_private or elem.VR in ("PN", "DA", "DT")
               or (keyword in BASIC_PROFILE and keyword not in _SHOWN_WHEN_DEIDENTIFIED)
               or (elem.tag.group & 0xFF00) in (0x5000, 0x6000))  # overlays/curves may burn in identifiers
        name = "Private tag" if elem.tag.is_private and not keyword else (elem.name or keyword)
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ":
            items = list(elem.value or [])
            rows.append(HeaderRow(tag, name, "SQ", f"{len(items)} item(s)", depth, False))
            if depth + 1 >= MAX_DEPTH:
                continue
            for k, item in enumerate(items):
                rows.append(HeaderRow("", f"Item {k + 1}", "", "", depth + 1, False))
                _dicom_rows(item, depth + 2, phi, rows)
            continue
        try:
            value = _text(elem.value, elem.VR)
        except Exception:  # noqa: BLE001 - a malformed value is shown as such, not a crash
            value = "<unreadable>"
        rows.append(HeaderRow(tag, name, elem.VR, value, depth, phi))


def _read_dicom(path: Path) -> list[HeaderRow] | None:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(str(path), stop_before_pixels=True)
    except InvalidDicomError:
        return None
    rows: list[HeaderRow] = []
    meta = getattr(dataset, "file_meta", None)
    if meta is not None:
        _dicom_rows(meta, 0, False, rows)
    _dicom_rows(dataset, 0, False, rows)
    return rows


def _read_other(path: Path) -> list[HeaderRow]:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    rows = [HeaderRow("size", "Size (x, y, z)", "", str(reader.GetSize())),
            HeaderRow("spacing", "Spacing (mm)", "", str(tuple(round(s, 6) for s in reader.GetSpacing()))),
            HeaderRow("origin", "Origin (LPS mm)", "", str(tuple(round(s, 4) for s in reader.GetOrigin()))),
            HeaderRow("direction", "Direction", "", str(tuple(round(s, 6) for s in reader.GetDirection()))),
            HeaderRow("pixel_type", "Pixel type", "", sitk.GetPixelIDValueAsString(reader.GetPixelID()))]
    for key in reader.GetMetaDataKeys()[:MAX_ROWS]:
        phi = any(hint in key.lower() for hint in _TEXT_KEY_HINTS)
        rows.append(HeaderRow(key, key, "", _text(reader.GetMetaData(key), ""), 0, phi))
    return rows


def read_header(path: Path) -> list[HeaderRow]:
    """The header of ``path``: DICOM elements, else the image metadata SimpleITK reads."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"'{path.name}' is not a file, so it has no header to show.")
    try:
        rows = _read_dicom(path)
        return rows if rows is not None else _read_other(path)
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted file: one sentence for the user
        raise ImageReadError(f"The header of '{path.name}' cannot be read ({type(exc).__name__}).") from exc
