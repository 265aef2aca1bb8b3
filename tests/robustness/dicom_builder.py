"""Tiny DICOM datasets for the corpus, with every knob the sweeps turn (bits, photometric, geometry).

Unlike ``tests/synthetic_dicom.py`` (which writes *valid* files), these builders happily produce
inconsistent headers; each returns the stored values so cases can compute the expected reading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

PATIENT_NAME = "Robust^Rita"
PATIENT_ID = "RC-778899"
UID_ROOT = "1.2.826.0.1.3680043.10.999."
CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def uid(*parts: int | str) -> str:
    return UID_ROOT + ".".join(str(p) for p in parts)


def base(
    *,
    rows: int = 8,
    cols: int = 8,
    modality: str = "CT",
    sop_class: str = CTImageStorage,
    series: str = "1",
    study: str = "1",
    instance: int = 1,
    description: str = "robust",
    syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid(9, series, instance)
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.StudyInstanceUID = uid(1, study)
    ds.SeriesInstanceUID = uid(2, series)
    ds.SeriesNumber = int(series) if str(series).isdigit() else 1
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    ds.FrameOfReferenceUID = uid(3, study)
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    return ds


def set_pixels(ds: Dataset, stored: np.ndarray) -> None:
    """Store ``stored`` with the dtype implied by BitsAllocated/PixelRepresentation."""
    bits, signed = int(ds.BitsAllocated), int(ds.PixelRepresentation) == 1
    dtype = {8: np.int8 if signed else np.uint8, 16: np.int16 if signed else np.uint16,
             32: np.int32 if signed else np.uint32}[bits]
    data = np.ascontiguousarray(stored.astype(dtype)).tobytes()
    if len(data) % 2:
        data += b"\x00"
    ds.PixelData = data
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"


def geometry(ds: Dataset, position: np.ndarray, iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
             pixel_spacing: tuple[float, float] = (0.7, 0.7)) -> None:
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
    ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    ds.SliceThickness = "2"
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def marker_values(n: int, rows: int, cols: int, seed: int) -> np.ndarray:
    """Random stored values with slice index markers at pixel (0, 0) so order is checkable."""
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 2000, size=(n, rows, cols)).astype(np.int64)
    stored[:, 0, 0] = np.arange(n) * 100 + 50
    return stored


def write_series(
    folder: Path,
    *,
    n: int = 3,
    rows: int = 8,
    cols: int = 8,
    z_positions: list[float] | None = None,
    positions: list[np.ndarray] | None = None,
    iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    pixel_spacing: tuple[float, float] = (0.7, 0.7),
    series: str = "1",
    description: str = "robust",
    seed: int = 0,
    syntax: str = ExplicitVRLittleEndian,
    mutate=None,  # callable(ds, z) applied to each dataset before saving
) -> tuple[list[Path], np.ndarray]:
    """A regular stack (files named in shuffled order); returns files in z order and stored values."""
    stored = marker_values(n, rows, cols, seed)
    row, col = np.array(iop[:3], float), np.array(iop[3:], float)
    normal = np.cross(row, col)
    zs = z_positions if z_positions is not None else [2.0 * k for k in range(n)]
    names = [f"IM{k:04d}.dcm" for k in np.random.default_rng(seed + 1).permutation(n)]
    files = []
    for z in range(n):
        ds = base(rows=rows, cols=cols, series=series, instance=z + 1, description=description, syntax=syntax)
        pos = positions[z] if positions is not None else np.array([-5.0, -5.0, 0.0]) + zs[z] * normal
        geometry(ds, pos, iop, pixel_spacing)
        set_pixels(ds, stored[z])
        if mutate is not None:
            mutate(ds, z)
        files.append(save(ds, folder / names[z]))
    return files, stored


def write_single(path: Path, *, rows: int = 8, cols: int = 8, seed: int = 0, modality: str = "CT",
                 syntax: str = ExplicitVRLittleEndian, mutate=None) -> tuple[Path, np.ndarray]:
    """One CT slice (or CR when ``modality='CR'``) with full geometry."""
    stored = marker_values(1, rows, cols, seed)[0]
    ds = base(rows=rows, cols=cols, modality=modality, sop_class=CR_STORAGE if modality == "CR" else CTImageStorage,
              syntax=syntax)
    geometry(ds, np.zeros(3))
    if modality == "CR":
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.BitsStored, ds.HighBit = 12, 11
        del ds.RescaleSlope, ds.RescaleIntercept
    set_pixels(ds, stored)
    if mutate is not None:
        mutate(ds, 0)
    return save(ds, path), stored


IMPLICIT = ImplicitVRLittleEndian
SC = SC_STORAGE
