"""PS3.15 basic-profile de-identification of a real CT header carrying a (fake) identity."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from inference.export.deid import Deidentifier
from tests.orthanc_fixture import copy_series_with_identity


@pytest.fixture(scope="module")
def phi_files(ct_series_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = copy_series_with_identity(ct_series_dir, tmp_path_factory.mktemp("phi"), "ROE^RICHARD", "MRN-0815")
    return sorted(folder.iterdir())[:3]


def test_basic_profile_removes_phi_and_marks_dataset(phi_files: list[Path]) -> None:
    ds = pydicom.dcmread(phi_files[0])
    ds.OtherPatientIDs = "OLD-1"
    ds.add_new(0x00291010, "LO", "private ROE")  # private tags may hold anything
    original_rows = ds.Rows
    Deidentifier(patient_name="ANON^X", patient_id="ANON1").apply(ds)
    text = str(ds)
    for phi in ("ROE", "MRN-0815", "19700101", "ACC123", "Test Hospital", "OLD-1", "Petersgraben"):
        assert phi not in text, phi
    assert str(ds.PatientName) == "ANON^X" and ds.PatientID == "ANON1"
    assert ds.PatientBirthDate == "" and ds.AccessionNumber == ""
    assert ds.PatientIdentityRemoved == "YES" and "Confidentiality" in ds.DeidentificationMethod
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert "StationName" not in ds and "DeviceSerialNumber" not in ds
    assert ds.Rows == original_rows and ds.Modality == "CT"  # image content untouched


def test_uids_replaced_consistently_across_files(phi_files: list[Path]) -> None:
    deid = Deidentifier()
    originals = [pydicom.dcmread(f) for f in phi_files]
    cleaned = [deid.apply(pydicom.dcmread(f)) for f in phi_files]
    assert len({ds.StudyInstanceUID for ds in cleaned}) == 1
    assert len({ds.SeriesInstanceUID for ds in cleaned}) == 1
    assert len({ds.SOPInstanceUID for ds in cleaned}) == len(cleaned)
    for before, after in zip(originals, cleaned, strict=True):
        assert after.StudyInstanceUID != before.StudyInstanceUID
        assert after.SOPInstanceUID == deid.uid_map[before.SOPInstanceUID]
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        assert after.FrameOfReferenceUID == deid.uid_map[before.FrameOfReferenceUID]
        assert after.SOPClassUID == before.SOPClassUID  # well-known UIDs are not identifiers


def test_retain_options(phi_files: list[Path]) -> None:
    before = pydicom.dcmread(phi_files[0])
    after = Deidentifier(retain_uids=True, retain_dates=True).apply(pydicom.dcmread(phi_files[0]))
    assert after.SOPInstanceUID == before.SOPInstanceUID and after.StudyDate == before.StudyDate
    assert {i.CodeValue for i in after.DeidentificationMethodCodeSequence} == {"113100", "113110", "113106"}
