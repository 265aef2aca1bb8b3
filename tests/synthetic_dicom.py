"""Write small synthetic DICOM files for tests: the one DICOM builder of the test suite.

Two flavours share the same core (:func:`image_dataset`, :func:`set_pixels`, :func:`save`):

- *valid* studies (CT, PET with SUV tags, CR/DX X-rays, non-image objects, unsupported compression,
  truncated files) for the reader tests: :func:`write_volume_series`, :func:`write_xray`, ...;
- *knob* builders for the robustness corpus (:func:`base`, :func:`write_series`, :func:`write_single`),
  which happily produce inconsistent headers (the ``mutate`` hooks) with fixed, reproducible UIDs.

Every writer returns what the file should decode to (the "truth"), so tests compare the reader
against values computed here by hand rather than against the reader itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    MPEG2MPML,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
PATIENT_NAME = "Robust^Rita"  # the corpus' identity (PHI-scrubbing tests look for it)
PATIENT_ID = "RC-778899"
UID_ROOT = "1.2.826.0.1.3680043.10.999."
CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
IMPLICIT = ImplicitVRLittleEndian
SC = SC_STORAGE


@dataclass
class SeriesTruth:
    """What a written series must load as."""

    folder: Path
    files_in_z_order: list[Path]
    values: np.ndarray  # float, [z, y, x], modality units before SUV
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    series_uid: str
    extra: dict = field(default_factory=dict)


# ---- the core ------------------------------------------------------------------------------------
def image_dataset(*, modality: str, sop_class: str, rows: int, cols: int, series_uid: str, study_uid: str,
                  sop_uid: str, patient_name: str, patient_id: str,
                  syntax: str = ExplicitVRLittleEndian) -> Dataset:
    """A grey-scale 16-bit image dataset with file meta, identity, UIDs and pixel description (no pixels)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
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


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# ---- valid studies -------------------------------------------------------------------------------
def _base(modality: str, sop_class: str, rows: int, cols: int, series_uid: str, study_uid: str) -> Dataset:
    ds = image_dataset(modality=modality, sop_class=sop_class, rows=rows, cols=cols, series_uid=series_uid,
                       study_uid=study_uid, sop_uid=generate_uid(), patient_name="Synthetic^Patient",
                       patient_id="SYN001")
    ds.PatientSex = "O"
    ds.StudyDate = "20240102"
    ds.SeriesDate = "20240102"
    ds.SeriesNumber = 1
    ds.SeriesDescription = f"synthetic {modality}"
    return ds


def write_volume_series(
    folder: Path,
    *,
    modality: str = "CT",
    n: int = 5,
    rows: int = 6,
    cols: int = 7,
    pixel_spacing: tuple[float, float] = (0.8, 0.6),  # DICOM order: (row spacing, column spacing)
    z_spacing: float = 2.5,
    origin: tuple[float, float, float] = (-10.0, -20.0, 30.0),
    iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    slope: float = 1.0,
    intercept: float = -1024.0,
    series_uid: str | None = None,
    study_uid: str | None = None,
    description: str | None = None,
    slice_thickness: float = 5.0,
    prefix: str = "IM",
    seed: int = 0,
) -> SeriesTruth:
    """A regular stack written with shuffled file names; values are rescaled ramps plus noise."""
    rng = np.random.default_rng(seed)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    row_cos, col_cos = np.array(iop[:3], float), np.array(iop[3:], float)
    normal = np.cross(row_cos, col_cos)
    sop = CTImageStorage if modality == "CT" else PositronEmissionTomographyImageStorage
    stored = rng.integers(0, 3000, size=(n, rows, cols)).astype(np.int64)
    stored[:, 0, 0] = np.arange(n) * 100  # z marker
    names = [f"{prefix}{k:03d}" for k in rng.permutation(n)]
    files: list[Path] = []
    for z in range(n):
        ds = _base(modality, sop, rows, cols, series_uid, study_uid)
        if description is not None:
            ds.SeriesDescription = description
        position = np.asarray(origin, float) + z * z_spacing * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.PixelSpacing = [f"{v}" for v in pixel_spacing]
        ds.SliceThickness = f"{slice_thickness}"
        ds.InstanceNumber = n - z  # deliberately misleading
        ds.FrameOfReferenceUID = "1.2.3.4.5"
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope}", f"{intercept}"
        set_pixels(ds, stored[z])
        files.append(save(ds, folder / names[z]))
    direction = np.column_stack([row_cos, col_cos, normal])
    return SeriesTruth(
        folder=folder, files_in_z_order=files, values=stored * slope + intercept,
        spacing=(pixel_spacing[1], pixel_spacing[0], z_spacing), origin=origin, direction=direction,
        series_uid=series_uid,
    )


def add_pet_tags(
    truth: SeriesTruth,
    *,
    weight_kg: float | None = 70.0,
    dose_bq: float | None = 370e6,
    half_life_s: float = 6586.2,
    start_time: str | None = "100000.00",
    start_datetime: str | None = None,
    series_time: str = "110000.00",
    acquisition_time: str = "110500.00",
    decay_correction: str = "START",
    units: str = "BQML",
) -> None:
    """Rewrite a PT series' files with SUV-relevant tags (``None`` omits a tag)."""
    import pydicom

    for path in truth.files_in_z_order:
        ds = pydicom.dcmread(path)
        ds.Units = units
        ds.DecayCorrection = decay_correction
        ds.SeriesTime = series_time
        ds.AcquisitionDate = ds.SeriesDate
        ds.AcquisitionTime = acquisition_time
        if weight_kg is not None:
            ds.PatientWeight = f"{weight_kg}"
        item = Dataset()
        item.Radiopharmaceutical = "Fluorodeoxyglucose"
        if dose_bq is not None:
            item.RadionuclideTotalDose = f"{dose_bq:.6g}"
        item.RadionuclideHalfLife = f"{half_life_s}"
        if start_time is not None:
            item.RadiopharmaceuticalStartTime = start_time
        if start_datetime is not None:
            item.RadiopharmaceuticalStartDateTime = start_datetime
        ds.RadiopharmaceuticalInformationSequence = Sequence([item])
        ds.save_as(path, enforce_file_format=True)


def xray_pattern(rows: int = 12, cols: int = 9) -> np.ndarray:
    """Asymmetric stored-value pattern: bright top-left block, gradient along columns."""
    img = np.tile(np.arange(cols, dtype=np.int64) * 10, (rows, 1))
    img[:3, :2] = 1000
    return img


def write_xray(
    path: Path,
    *,
    modality: str = "CR",
    photometric: str = "MONOCHROME1",
    stored: np.ndarray | None = None,
    bits_stored: int = 12,
    pixel_spacing: tuple[float, float] | None = None,
    imager_pixel_spacing: tuple[float, float] | None = (0.2, 0.15),
    window: tuple[float, float] | None = (2000.0, 4000.0),
) -> np.ndarray:
    """A CR/DX X-ray; returns the stored values (row 0 = top)."""
    stored = xray_pattern() if stored is None else stored
    sop = ComputedRadiographyImageStorage if modality == "CR" else DigitalXRayImageStorageForPresentation
    ds = _base(modality, sop, stored.shape[0], stored.shape[1], generate_uid(), generate_uid())
    ds.PhotometricInterpretation = photometric
    ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
    if pixel_spacing is not None:
        ds.PixelSpacing = [f"{v}" for v in pixel_spacing]
    if imager_pixel_spacing is not None:
        ds.ImagerPixelSpacing = [f"{v}" for v in imager_pixel_spacing]
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]}", f"{window[1]}"
    set_pixels(ds, stored)
    save(ds, path)
    return stored


def write_non_image(path: Path, modality: str = "SR") -> Path:
    """A DICOM object without pixels (structured report by default)."""
    ds = _base(modality, COMPREHENSIVE_SR, 1, 1, generate_uid(), generate_uid())
    for kw in ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
               "HighBit", "PixelRepresentation"):
        delattr(ds, kw)
    return save(ds, path)


def write_unsupported_compression(path: Path) -> Path:
    """A CT slice claiming MPEG-2 compressed pixels (no decoder exists for it)."""
    from pydicom.encaps import encapsulate

    ds = _base("CT", CTImageStorage, 4, 4, generate_uid(), generate_uid())
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    return save(ds, path)


def truncate(path: Path, keep_fraction: float = 0.5, *, drop_bytes: int | None = None) -> Path:
    """Cut a file short (simulates an interrupted copy); ``drop_bytes`` cuts only the pixel tail."""
    data = path.read_bytes()
    keep = len(data) - drop_bytes if drop_bytes is not None else int(len(data) * keep_fraction)
    path.write_bytes(data[:keep])
    return path


def uid(*parts: int | str) -> str:
    return UID_ROOT + ".".join(str(p) for p in parts)


# ---- knob builders for the robustness corpus -----------------------------------------------------
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
    ds = image_dataset(modality=modality, sop_class=sop_class, rows=rows, cols=cols, series_uid=uid(2, series),
                       study_uid=uid(1, study), sop_uid=uid(9, series, instance), patient_name=PATIENT_NAME,
                       patient_id=PATIENT_ID, syntax=syntax)
    ds.SeriesNumber = int(series) if str(series).isdigit() else 1
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    ds.FrameOfReferenceUID = uid(3, study)
    return ds


def geometry(ds: Dataset, position: np.ndarray, iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
             pixel_spacing: tuple[float, float] = (0.7, 0.7)) -> None:
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
    ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    ds.SliceThickness = "2"
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"


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


# ---- several studies of one patient (series browser, prior comparison) ---------------------------
def restamp(truth: SeriesTruth, **attributes: object) -> SeriesTruth:
    """Rewrite every file of a written series with ``attributes`` (e.g. StudyDate, PatientID); returns it."""
    import pydicom

    for path in truth.files_in_z_order:
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    return truth


def write_study(
    folder: Path,
    *,
    date: str,
    patient_id: str = "SYN001",
    patient_name: str = "Synthetic^Patient",
    series: tuple[tuple[str, int], ...] = (("Chest", 5),),  # (description, slices) per series
    origin_z: float = 30.0,
    z_spacing: float = 2.5,
    frame_of_reference: str | None = None,
    seed: int = 0,
) -> list[SeriesTruth]:
    """One study (own StudyInstanceUID, date and frame of reference) of ``patient_id``: a CT series per entry,
    each in its own subfolder, all sharing the study's frame of reference; returns the series' truths."""
    study_uid, frame = generate_uid(), frame_of_reference or generate_uid()
    truths = []
    for number, (description, n) in enumerate(series, start=1):
        truth = write_volume_series(folder / f"series{number}", n=n, rows=12, cols=10, z_spacing=z_spacing,
                                    origin=(-10.0, -20.0, origin_z), study_uid=study_uid, description=description,
                                    seed=seed + number)
        truths.append(restamp(truth, StudyDate=date, SeriesDate=date, StudyTime="101500", StudyID="1",
                              AccessionNumber="", StudyDescription="CT chest", PatientID=patient_id,
                              PatientName=patient_name, SeriesNumber=number, FrameOfReferenceUID=frame))
    return truths
