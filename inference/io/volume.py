"""The in-memory image every part of the app shares.

Conventions (documented once, used everywhere):
- ``array`` is indexed ``[z, y, x]`` (SimpleITK/NumPy order): ``z`` is the slice index along the
  reader's slice axis, ``y`` the row, ``x`` the column. A 2-D image (X-ray) has shape ``(1, H, W)``.
- ``spacing``, ``origin`` are in ``(x, y, z)`` order, millimetres, patient LPS coordinates (DICOM).
- ``direction`` is a 3x3 matrix whose *columns* are the patient-space directions of the x, y, z
  index axes (as SimpleITK's ``GetDirection()`` reshaped row-major to 3x3).
- Values are float32 in physical units: HU for CT, SUVbw for PET, raw intensity otherwise
  (``units`` says which).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class StudyInfo:
    """Patient/study header fields shown in the info panel (and hidden in de-identified mode)."""

    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    study_date: str = ""
    study_description: str = ""
    series_description: str = ""
    institution: str = ""
    manufacturer: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    frame_of_reference_uid: str = ""
    modality: str = ""

    def deidentified(self) -> StudyInfo:
        """Copy with identifying fields blanked (for demos and screenshots)."""
        return StudyInfo(
            patient_name="ANONYMOUS",
            patient_id="",
            patient_birth_date="",
            patient_sex=self.patient_sex,
            patient_age=self.patient_age,
            study_date="",
            study_description=self.study_description,
            series_description=self.series_description,
            institution="",
            manufacturer=self.manufacturer,
            study_instance_uid="",
            series_instance_uid="",
            frame_of_reference_uid="",
            modality=self.modality,
        )


@dataclass
class Volume:
    """A 3-D (or single-slice 2-D) image with its geometry and header."""

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    modality: str = "OT"
    units: str = ""
    info: StudyInfo = field(default_factory=StudyInfo)
    source: str = ""
    # DICOM files in slice order (z ascending), empty for non-DICOM sources; used by SEG export.
    source_files: list[Path] = field(default_factory=list)
    # Free-form extra header values (e.g. PET SUV factor, rescale, window from the file).
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim == 2:
            self.array = self.array[np.newaxis]
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 2-D or 3-D, got shape {self.array.shape}")
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(z, y, x)``."""
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def is_2d(self) -> bool:
        return self.array.shape[0] == 1

    def signature(self) -> str:
        """Content hash (pixels + geometry) used to key caches; cheap enough to call once per load."""
        digest = hashlib.sha1()
        digest.update(str((self.array.shape, self.array.dtype.str, self.spacing)).encode())
        digest.update(np.ascontiguousarray(self.array).reshape(-1).data)  # the buffer: tobytes() copied the volume
        return digest.hexdigest()

    def index_to_physical(self, index_xyz: np.ndarray) -> np.ndarray:
        """Continuous voxel index ``(x, y, z)`` (N×3 or 3) → patient LPS millimetres."""
        idx = np.asarray(index_xyz, dtype=float)
        return np.asarray(self.origin) + (idx * np.asarray(self.spacing)) @ self.direction.T

    def physical_to_index(self, point_lps: np.ndarray) -> np.ndarray:
        """Patient LPS millimetres → continuous voxel index ``(x, y, z)``."""
        p = np.asarray(point_lps, dtype=float) - np.asarray(self.origin)
        return (p @ np.linalg.inv(self.direction).T) / np.asarray(self.spacing)
