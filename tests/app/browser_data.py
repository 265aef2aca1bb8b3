"""Multi-study test data for the series browser and the prior comparison.

- :func:`two_studies`: one patient, a prior (2023-01-10) and a current (2024-03-01) CT study with their own
  frames of reference and table positions, plus a series whose pixel data is cut short (a "could not
  read" tile), all in one folder;
- :func:`sample_disc`: a DICOMDIR (pydicom's File-set writer) holding the bundled demo CT and pydicom-data's
  CR chest, MR and US samples (one US copy cut short), i.e. several patients, studies and series.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.fileset import FileSet

from tests import synthetic_dicom as sd

REPO = Path(__file__).resolve().parents[2]
DEMO_CT = REPO / "resources" / "demo" / "ct"


@dataclass
class TwoStudies:
    folder: Path
    prior: sd.SeriesTruth  # 2023-01-10, "Chest", 6 slices of 2.5 mm from z = 20 mm
    prior_soft: sd.SeriesTruth  # 2023-01-10, "Soft tissue", 4 slices
    current: sd.SeriesTruth  # 2024-03-01, "Chest", 8 slices of 2.0 mm from z = 10 mm
    broken: sd.SeriesTruth  # 2024-03-01, pixel data of every file cut short


def two_studies(root: Path) -> TwoStudies:
    folder = root / "patient"
    prior, prior_soft = sd.write_study(folder / "2023", date="20230110", patient_id="P1",
                                       series=(("Chest", 6), ("Soft tissue", 4)), origin_z=20.0, z_spacing=2.5)
    current, broken = sd.write_study(folder / "2024", date="20240301", patient_id="P1",
                                     series=(("Chest", 8), ("Broken", 3)), origin_z=10.0, z_spacing=2.0, seed=5)
    for path in broken.files_in_z_order:
        sd.truncate(path, drop_bytes=120)
    return TwoStudies(folder, prior, prior_soft, current, broken)


def _fill_record_tags(ds: pydicom.Dataset, patient_id: str) -> None:
    """The tags a DICOMDIR's patient/study/series/image records need, where a sample lacks them."""
    ds.PatientID = ds.get("PatientID") or patient_id
    ds.PatientName = ds.get("PatientName") or patient_id.replace("-", "^")
    for keyword, default in (("StudyDate", "20221208"), ("StudyTime", "120000"), ("StudyID", "1"),
                             ("AccessionNumber", ""), ("SeriesNumber", 1), ("InstanceNumber", 1)):
        if keyword not in ds or ds.get(keyword) in (None, "") and keyword != "AccessionNumber":
            setattr(ds, keyword, default)


def sample_disc(root: Path) -> tuple[Path, str]:
    """(DICOMDIR path, series UID of the broken US copy)."""
    from pydicom.data import get_testdata_file

    staging = root / "staging"
    staging.mkdir(parents=True)
    fs = FileSet()
    ct_study, ct_series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()  # the demo's were blanked
    for i, path in enumerate(sorted(DEMO_CT.glob("CT.*"))):
        ds = pydicom.dcmread(path)
        _fill_record_tags(ds, "DEMO-CT")
        ds.StudyInstanceUID = ds.get("StudyInstanceUID") or ct_study
        ds.SeriesInstanceUID = ds.get("SeriesInstanceUID") or ct_series
        ds.SOPInstanceUID = ds.get("SOPInstanceUID") or ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyDescription = ds.get("StudyDescription") or "CT abdomen"
        out = staging / f"ct{i:03d}.dcm"
        ds.save_as(out)
        fs.add(out)
    broken_uid = ""
    for name, study in (("RG1_UNCR.dcm", "Chest X-ray"), ("MR2_UNCR.dcm", "MR"), ("US1_UNCR.dcm", "Ultrasound"),
                        ("US1_UNCR.dcm", "Ultrasound (damaged copy)")):
        ds = pydicom.dcmread(get_testdata_file(name))
        _fill_record_tags(ds, name.split("_")[0])
        ds.StudyDescription = study
        out = staging / f"{len(list(staging.iterdir())):03d}_{name}"
        if "damaged" in study:
            ds.SeriesInstanceUID = broken_uid = pydicom.uid.generate_uid()
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.SeriesDescription = "damaged copy"
            ds.SeriesNumber = 2
        ds.save_as(out)
        fs.add(out)
    fs.write(root / "disc")
    shutil.rmtree(staging)
    for path in (root / "disc").rglob("*"):
        if path.is_file() and path.name != "DICOMDIR":
            header = pydicom.dcmread(path, stop_before_pixels=True)
            if header.SeriesInstanceUID == broken_uid:
                sd.truncate(path, keep_fraction=0.3)
    return root / "disc" / "DICOMDIR", broken_uid
