"""GDCM (through SimpleITK, already a dependency) as a second pixel decoder.

pydicom's own plugins cover JPEG 2000, JPEG-LS, RLE and 8-bit JPEG here; JPEG Lossless (…4.57/…4.70) needs
pylibjpeg-libjpeg (GPL, not installed) and 12-bit JPEG Extended (…4.51) is not decoded by Pillow. GDCM
decodes both, so a file is only called undecodable or corrupt after GDCM failed on it too.

Two entry points:
- :func:`read_modality_values`: a whole file → float32 modality values (GDCM applies the rescale); the
  series fast path for compressed single-frame MONOCHROME2 slices (GDCM decodes JPEG 2000 faster than
  openjpeg and releases the GIL).
- :func:`stored_values`: a dataset → the *stored* values, shaped like ``ds.pixel_array``. GDCM only reads
  files, and applies rescale / palette / MONOCHROME1 handling of its own, so a minimal copy (pixel module +
  pixel data, one-sample images declared MONOCHROME2) goes through a temporary file; everything after the
  decode (Modality LUT, per-frame rescale, MONOCHROME1 inversion, colour → luminance) stays with the caller.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset

_PIXEL_MODULE = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
                 "HighBit", "PixelRepresentation", "PlanarConfiguration", "NumberOfFrames")


def _execute(path: Path) -> sitk.Image | None:
    try:
        reader = sitk.ImageFileReader()
        reader.SetImageIO("GDCMImageIO")
        reader.SetFileName(str(path))
        return reader.Execute()
    except RuntimeError:
        return None


def read_modality_values(path: Path, rows: int, cols: int) -> np.ndarray | None:
    """Float32 ``(rows, cols)`` modality values of a single-frame file (rescale applied by GDCM); None on failure."""
    image = _execute(path)
    if image is None or image.GetNumberOfComponentsPerPixel() != 1:
        return None
    array = sitk.GetArrayViewFromImage(image)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.shape != (rows, cols):
        return None
    return np.asarray(array, dtype=np.float32)


def _minimal_copy(ds: Dataset) -> Dataset | None:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax or "PixelData" not in ds:
        return None
    copy = Dataset()
    copy.file_meta = FileMetaDataset()
    copy.file_meta.TransferSyntaxUID = syntax
    copy.SOPClassUID = str(ds.get("SOPClassUID", "") or "1.2.840.10008.5.1.4.1.1.7")  # else Secondary Capture
    copy.SOPInstanceUID = pydicom.uid.generate_uid()
    copy.file_meta.MediaStorageSOPClassUID = copy.SOPClassUID
    copy.file_meta.MediaStorageSOPInstanceUID = copy.SOPInstanceUID
    for keyword in (*_PIXEL_MODULE, "PixelData"):  # new elements: the caller's dataset must stay untouched
        if keyword in ds:
            elem = ds[keyword]
            copy[keyword] = DataElement(elem.tag, elem.VR, elem.value, is_undefined_length=elem.is_undefined_length)
    if int(ds.get("SamplesPerPixel", 1) or 1) == 1:
        copy.PhotometricInterpretation = "MONOCHROME2"  # indices / raw grey values, no inversion or palette
    return copy


def stored_values(ds: Dataset) -> np.ndarray | None:
    """Stored pixel values decoded by GDCM, shaped like pydicom's ``pixel_array``; None when GDCM cannot."""
    try:
        copy = _minimal_copy(ds)
        if copy is None:
            return None
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = max(int(float(ds.get("NumberOfFrames", 1) or 1)), 1)
        with tempfile.TemporaryDirectory(prefix="medfusion-gdcm-") as tmp:
            path = Path(tmp) / "pixels.dcm"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                copy.save_as(path, enforce_file_format=True)
            image = _execute(path)
            if image is None or image.GetNumberOfComponentsPerPixel() != samples:
                return None
            array = sitk.GetArrayFromImage(image)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - any failure here only means "GDCM cannot decode it either"
        return None
    expected = (frames, rows, cols) + ((samples,) if samples > 1 else ())
    if array.shape == expected[1:]:
        array = array[np.newaxis]
    if array.shape != expected:
        return None
    return array[0] if frames == 1 else array
