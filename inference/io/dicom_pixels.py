"""Pixel decoding for DICOM: stored values -> float32 modality values (HU, Bq/ml, ...).

pydicom (+pylibjpeg/openjpeg) is the reference decoder. For compressed single-frame grayscale
slices of a series we first try GDCM through SimpleITK, because it decodes JPEG 2000 faster and
releases the GIL (so a thread pool helps); any failure falls back to pydicom. Where pydicom has no
decoder (JPEG Lossless) or its decoder fails (12-bit JPEG Extended), GDCM gets the pixels before the
file is called undecodable or corrupt (``dicom_gdcm``). MONOCHROME1 images are inverted so that higher
values are always displayed brighter.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, get_decoder

from inference.errors import ImageReadError, UnsupportedInputError
from inference.io import dicom_gdcm

_GDCM_MAX_SLOPE_DIGITS = 6


class MissingDecoderError(UnsupportedInputError):
    """The pixel data uses a compression for which no decoder is installed."""


class CorruptPixelDataError(ImageReadError):
    """The pixel data of a file is truncated or cannot be decoded."""


# Syntaxes newer than the installed pydicom knows, named so the user learns what is missing.
_UNKNOWN_SYNTAX_NAMES = {"1.2.840.10008.1.2.4.110": "JPEG XL Lossless", "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
                         "1.2.840.10008.1.2.4.112": "JPEG XL"}
_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def header_float(ds: Dataset, keyword: str, default: float, name: str) -> float:
    """A numeric single-valued tag, ``default`` when absent/empty/zero (as before).

    Invalid text or binary bytes (wrong VR) and NaN/Inf raise :class:`ImageReadError` naming the tag,
    never quoting the value: a wrong slope would silently give wrong HU, and raw bytes may hold PHI.
    """
    return value_float(ds.get(keyword), keyword, default, name)


def value_float(value: object, keyword: str, default: float, name: str) -> float:
    """:func:`header_float` for a value already fetched (e.g. from a functional-group sequence)."""
    if value is None or (isinstance(value, str | bytes) and not value.strip()):
        return default
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ImageReadError(f"The DICOM file '{name}' has an invalid {keyword} value (not a number).") from None
    if not math.isfinite(number):
        raise ImageReadError(f"The DICOM file '{name}' has an invalid {keyword} value (not a finite number).")
    return number or default


def number_of_frames(ds: Dataset, name: str) -> int:
    """NumberOfFrames (1 when absent, empty or < 1); :class:`ImageReadError` naming the tag when not an integer."""
    value = ds.get("NumberOfFrames")
    if value is None or (isinstance(value, str) and not value.strip()):
        return 1
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        raise ImageReadError(f"The DICOM file '{name}' has an invalid NumberOfFrames value (not an integer).")
    return max(int(number), 1)


def is_compressed(uid: pydicom.uid.UID) -> bool:
    """``uid.is_compressed``, but a UID pydicom does not know counts as compressed (it cannot be decoded)."""
    try:
        return bool(uid.is_compressed)
    except ValueError:
        return True


def syntax_name(uid: pydicom.uid.UID) -> str:
    """Readable name of a transfer syntax; an unknown one is quoted only when it looks like a UID."""
    if uid in _UNKNOWN_SYNTAX_NAMES:
        return _UNKNOWN_SYNTAX_NAMES[uid]
    if uid.is_transfer_syntax:
        return str(uid.name)
    shown = f" ({uid})" if _UID_RE.match(str(uid)) and len(uid) <= 64 else ""
    return f"an unknown transfer syntax{shown}"


def transfer_syntax(ds: Dataset) -> pydicom.uid.UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return pydicom.uid.UID(str(uid) if uid else pydicom.uid.ImplicitVRLittleEndian)


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Files without file meta (old raw DICOM) get the syntax they were actually read with."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit is None:
        implicit, little = True, True
    uid = (pydicom.uid.ImplicitVRLittleEndian if implicit else
           pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
    if meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid


def check_decoder(ds: Dataset, name: str) -> None:
    """Raise :class:`MissingDecoderError` when the transfer syntax cannot be decoded here."""
    uid = transfer_syntax(ds)
    if not is_compressed(uid):
        return
    try:
        decoder = get_decoder(uid)
    except (NotImplementedError, ValueError) as exc:
        raise MissingDecoderError(
            f"The file '{name}' is compressed with {syntax_name(uid)}, which no installed decoder supports."
        ) from exc
    if not decoder.is_available:
        raise MissingDecoderError(
            f"The file '{name}' is compressed with {syntax_name(uid)} but no decoder for it is installed "
            "(install pylibjpeg, pylibjpeg-openjpeg and pylibjpeg-libjpeg)."
        )


def gdcm_eligible(ds: Dataset, name: str = "") -> bool:
    """Single-frame, grayscale, rescale-only, compressed slice: safe for the GDCM fast path."""
    try:
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError):
        return False
    return (
        is_compressed(transfer_syntax(ds))
        and str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME2"
        and samples == 1
        and number_of_frames(ds, name) == 1
        and "ModalityLUTSequence" not in ds
    )


def pixel_data_too_short(path: Path, header: Dataset) -> bool:
    """True when an uncompressed file is smaller than the pixel data its header claims.

    Checked on headers read without pixels, so a series whose header claims 60000x60000 is refused
    before a 40 GB array is allocated for it. Compressed/deflated data cannot be sized this way (False).
    """
    try:
        uid = transfer_syntax(header)
        if is_compressed(uid) or uid.is_deflated:
            return False
        rows, cols = int(header.Rows), int(header.Columns)
        samples = int(header.get("SamplesPerPixel", 1) or 1)
        bits = int(header.get("BitsAllocated", 16) or 16)
        frames = number_of_frames(header, path.name)
        needed = (rows * cols * samples * frames * bits + 7) // 8
        return path.stat().st_size < needed
    except (ValueError, TypeError, AttributeError, OSError, ImageReadError):
        return False  # the decoder will report what is wrong


def _stored_range(ds: Dataset) -> tuple[float, float]:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    return 0.0, float(2**bits - 1)


def rescale_params(ds: Dataset, name: str = "") -> tuple[float, float]:
    """(slope, intercept) of a single-frame dataset; identity when absent, ImageReadError when invalid."""
    name = name or "image"
    return header_float(ds, "RescaleSlope", 1.0, name), header_float(ds, "RescaleIntercept", 0.0, name)


def invert_monochrome1(values: np.ndarray, ds: Dataset, slope: float, intercept: float) -> tuple[float, float]:
    """Invert in place over the full stored range mapped to modality values; returns that range."""
    lo_s, hi_s = _stored_range(ds)
    if "ModalityLUTSequence" in ds:
        lo, hi = float(values.min()), float(values.max())
    else:
        a, b = slope * lo_s + intercept, slope * hi_s + intercept
        lo, hi = min(a, b), max(a, b)
    np.subtract(lo + hi, values, out=values)
    return lo, hi


def _to_gray(array: np.ndarray, ds: Dataset, name: str) -> tuple[np.ndarray, bool]:
    """Reduce RGB/palette pixels to luminance; returns (array, converted?)."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        try:
            array = apply_color_lut(array, ds)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # no/invalid palette tables: nothing to map the indices through
            raise CorruptPixelDataError(
                f"The DICOM file '{name}' is PALETTE COLOR but its palette lookup table is missing or invalid (corrupt)."
            ) from exc
    if array.shape[-1] == 3 and (int(ds.get("SamplesPerPixel", 1) or 1) == 3 or photometric == "PALETTE COLOR"):
        rgb = array.astype(np.float32)
        return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114, True
    return array, False


def _pillow_cannot(ds: Dataset) -> bool:
    """True when pydicom's only JPEG plugin is Pillow and the data has more than 8 bits (12-bit Extended)."""
    uid = transfer_syntax(ds)
    if uid not in (pydicom.uid.JPEGExtended12Bit, pydicom.uid.JPEGBaseline8Bit):
        return False
    try:
        plugins = get_decoder(uid).available_plugins
        return tuple(plugins) == ("pillow",) and int(ds.get("BitsStored", 8) or 8) > 8
    except (NotImplementedError, ValueError, TypeError):
        return False


def _stored_pixels(ds: Dataset, name: str) -> np.ndarray:
    """Stored values from pydicom, else from GDCM; the errors name what is missing only after both failed."""
    try:
        check_decoder(ds, name)
    except MissingDecoderError:
        stored = dicom_gdcm.stored_values(ds)  # e.g. JPEG Lossless without pylibjpeg-libjpeg
        if stored is None:
            raise
        return stored
    if _pillow_cannot(ds):  # Pillow would fail (and print to stderr) before GDCM got its turn
        stored = dicom_gdcm.stored_values(ds)
        if stored is not None:
            return stored
    try:
        return ds.pixel_array
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        stored = dicom_gdcm.stored_values(ds) if is_compressed(transfer_syntax(ds)) else None
        if stored is not None:  # e.g. 12-bit JPEG Extended, which pydicom's Pillow plugin refuses
            return stored
        raise CorruptPixelDataError(f"The pixel data of '{name}' is truncated or corrupt and could not be decoded.") from exc


def decode_dataset(ds: Dataset, name: str, *, frame_rescale: list[tuple[float, float]] | None = None) -> tuple[np.ndarray, dict]:
    """Decode a full dataset to float32 ``(frames, rows, cols)`` modality values.

    ``frame_rescale`` gives per-frame (slope, intercept) for enhanced multi-frame objects.
    Returns the array and notes (``monochrome1_inverted``, ``converted_from``, ``value_range``).
    """
    _ensure_transfer_syntax(ds)
    frames = number_of_frames(ds, name)
    slope, intercept = rescale_params(ds, name)
    stored = _stored_pixels(ds, name)
    notes: dict = {}
    stored, converted = _to_gray(stored, ds, name)
    if converted:
        notes["converted_from"] = str(ds.get("PhotometricInterpretation", ""))
    if frames == 1 or stored.ndim == 2:
        stored = stored.reshape((1,) + stored.shape[-2:])
    if "ModalityLUTSequence" in ds and not converted:
        values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    elif frame_rescale is not None and not converted:
        values = stored.astype(np.float32)
        for i, (s, b) in enumerate(frame_rescale):
            values[i] = values[i] * s + b
        slope, intercept = frame_rescale[0]
    else:
        values = stored.astype(np.float32)
        if not converted and (slope != 1.0 or intercept != 0.0):
            values = values * np.float32(slope) + np.float32(intercept)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        notes["value_range"] = invert_monochrome1(values, ds, slope, intercept)
        notes["monochrome1_inverted"] = True
    return np.ascontiguousarray(values, dtype=np.float32), notes


def decode_slice(path: Path, header: Dataset, *, use_gdcm: bool) -> tuple[np.ndarray, dict]:
    """One single-frame file of a series -> float32 ``(rows, cols)`` modality values."""
    rows, cols = int(header.Rows), int(header.Columns)
    rescale_params(header, path.name)  # GDCM applies the rescale itself: validate it first
    missing: MissingDecoderError | None = None
    try:
        check_decoder(header, path.name)
    except MissingDecoderError as exc:  # GDCM may still decode it (JPEG Lossless): say so only if it cannot
        missing = exc
    if use_gdcm and gdcm_eligible(header, path.name):
        values = dicom_gdcm.read_modality_values(path, rows, cols)
        if values is not None:
            return values, {}
    try:
        ds = pydicom.dcmread(path)
        values3, notes = decode_dataset(ds, path.name)
    except (ImageReadError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a lazily converted corrupt element: this slice is corrupt
        if missing is not None:
            raise missing from exc
        raise CorruptPixelDataError(f"The file '{path.name}' is truncated or corrupt.") from exc
    if values3.shape[1:] != (rows, cols):
        raise CorruptPixelDataError(f"The pixel data of '{path.name}' does not match its Rows/Columns.")
    return values3[0], notes
