"""Pixel decoding for DICOM: stored values -> float32 modality values (HU, Bq/ml, ...).

pydicom (+pylibjpeg/openjpeg) is the reference decoder. For compressed single-frame grayscale
slices of a series we first try GDCM through SimpleITK, because it decodes JPEG 2000 faster and
releases the GIL (so a thread pool helps); any failure falls back to pydicom. MONOCHROME1 images
are inverted so that higher values are always displayed brighter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, get_decoder

from inference.errors import ImageReadError, UnsupportedInputError

_GDCM_MAX_SLOPE_DIGITS = 6


class MissingDecoderError(UnsupportedInputError):
    """The pixel data uses a compression for which no decoder is installed."""


class CorruptPixelDataError(ImageReadError):
    """The pixel data of a file is truncated or cannot be decoded."""


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
    if not uid.is_compressed:
        return
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as exc:
        raise MissingDecoderError(
            f"The file '{name}' is compressed with {uid.name}, which no installed decoder supports."
        ) from exc
    if not decoder.is_available:
        raise MissingDecoderError(
            f"The file '{name}' is compressed with {uid.name} but no decoder for it is installed "
            "(install pylibjpeg, pylibjpeg-openjpeg and pylibjpeg-libjpeg)."
        )


def gdcm_eligible(ds: Dataset) -> bool:
    """Single-frame, grayscale, rescale-only, compressed slice: safe for the GDCM fast path."""
    return (
        transfer_syntax(ds).is_compressed
        and str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME2"
        and int(ds.get("SamplesPerPixel", 1) or 1) == 1
        and int(ds.get("NumberOfFrames", 1) or 1) == 1
        and "ModalityLUTSequence" not in ds
    )


def _decode_gdcm(path: Path, rows: int, cols: int) -> np.ndarray | None:
    """Modality values via SimpleITK/GDCM (which applies RescaleSlope/Intercept); None on failure."""
    try:
        reader = sitk.ImageFileReader()
        reader.SetImageIO("GDCMImageIO")
        reader.SetFileName(str(path))
        image = reader.Execute()
    except RuntimeError:
        return None
    array = sitk.GetArrayViewFromImage(image)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.shape != (rows, cols):
        return None
    return np.asarray(array, dtype=np.float32)


def _stored_range(ds: Dataset) -> tuple[float, float]:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    return 0.0, float(2**bits - 1)


def rescale_params(ds: Dataset) -> tuple[float, float]:
    """(slope, intercept) of a single-frame dataset; identity when absent."""
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return slope, intercept


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


def _to_gray(array: np.ndarray, ds: Dataset) -> tuple[np.ndarray, bool]:
    """Reduce RGB/palette pixels to luminance; returns (array, converted?)."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        array = apply_color_lut(array, ds)
    if array.shape[-1] == 3 and (int(ds.get("SamplesPerPixel", 1) or 1) == 3 or photometric == "PALETTE COLOR"):
        rgb = array.astype(np.float32)
        return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114, True
    return array, False


def decode_dataset(ds: Dataset, name: str, *, frame_rescale: list[tuple[float, float]] | None = None) -> tuple[np.ndarray, dict]:
    """Decode a full dataset to float32 ``(frames, rows, cols)`` modality values.

    ``frame_rescale`` gives per-frame (slope, intercept) for enhanced multi-frame objects.
    Returns the array and notes (``monochrome1_inverted``, ``converted_from``, ``value_range``).
    """
    _ensure_transfer_syntax(ds)
    check_decoder(ds, name)
    try:
        stored = ds.pixel_array
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise CorruptPixelDataError(f"The pixel data of '{name}' is truncated or corrupt and could not be decoded.") from exc
    notes: dict = {}
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    stored, converted = _to_gray(stored, ds)
    if converted:
        notes["converted_from"] = str(ds.get("PhotometricInterpretation", ""))
    if frames == 1 or stored.ndim == 2:
        stored = stored.reshape((1,) + stored.shape[-2:])
    slope, intercept = rescale_params(ds)
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
    if use_gdcm and gdcm_eligible(header):
        values = _decode_gdcm(path, rows, cols)
        if values is not None:
            return values, {}
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise CorruptPixelDataError(f"The file '{path.name}' is truncated or corrupt.") from exc
    values3, notes = decode_dataset(ds, path.name)
    if values3.shape[1:] != (rows, cols):
        raise CorruptPixelDataError(f"The pixel data of '{path.name}' does not match its Rows/Columns.")
    return values3[0], notes
