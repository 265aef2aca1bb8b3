"""DICOM SEG export/import on the shared CT, a third-party SEG (pydicom-data), and dciodvfy validation."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from inference.errors import MedFusionError
from inference.export.deid import Deidentifier
from inference.export.seg import SegmentLabel, load_source_datasets, read_seg, write_seg, write_series_copy
from inference.io.loader import open_image
from inference.io.volume import Volume
from tests.orthanc_fixture import copy_series_with_identity


@pytest.fixture(scope="module")
def ct(ct_series_dir: Path) -> Volume:
    return open_image(ct_series_dir)


@pytest.fixture(scope="module")
def identified_ct(ct_series_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Volume:
    folder = copy_series_with_identity(ct_series_dir, tmp_path_factory.mktemp("ct_phi"), "DOE^JANE", "PID-4711")
    return open_image(folder)


def _masks(shape: tuple[int, int, int]) -> tuple[np.ndarray, list[SegmentLabel]]:
    lm = np.zeros(shape, np.uint8)
    lm[4:9, 200:260, 180:300] = 3  # "liver" block on 5 slices
    lm[12, 300:320, 300:330] = 7  # one-slice lesion
    lm[6, 210:220, 190:200] = 7  # lesion inside the liver block on slice 6
    labels = [
        SegmentLabel(3, "Liver", (200, 120, 60), "AI", "LiteMedSAM", "1.2"),
        SegmentLabel(7, "Lesion", (0, 255, 0), "AI-corrected", "LiteMedSAM", "1.2"),
        SegmentLabel(9, "Unused", (0, 0, 255), "MANUAL"),
    ]
    return lm, labels


def test_roundtrip_restores_labels_and_values(ct: Volume, tmp_path: Path) -> None:
    lm, labels = _masks(ct.shape)
    path = write_seg(lm, labels, ct, tmp_path / "seg.dcm")
    back, back_labels = read_seg(path, ct)
    np.testing.assert_array_equal(back, lm)
    assert [(lab.value, lab.name, lab.algorithm_type) for lab in back_labels] == [
        (3, "Liver", "AI"), (7, "Lesion", "AI-corrected")]
    assert all(abs(a - b) <= 2 for a, b in zip(back_labels[0].colour, (200, 120, 60), strict=True))
    assert back_labels[0].property_type == ("10200004", "SCT", "Liver")
    assert back_labels[1].category == ("49755003", "SCT", "Morphologically Abnormal Structure")
    # Frames are matched by referenced SOP instance UID first: a wrong origin does not matter...
    moved = dataclasses.replace(ct, origin=(ct.origin[0] + 50.0, ct.origin[1], ct.origin[2] + 7.0))
    np.testing.assert_array_equal(read_seg(path, moved)[0], lm)
    # ...and without the source files, plane positions place them on the right slices.
    no_files = dataclasses.replace(ct, source_files=[])
    np.testing.assert_array_equal(read_seg(path, no_files)[0], lm)


def test_highdicom_readback_references_source_series(ct: Volume, tmp_path: Path) -> None:
    lm, labels = _masks(ct.shape)
    path = write_seg(lm, labels, ct, tmp_path / "seg.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = hd.seg.segread(path)
    sources = load_source_datasets(ct)
    assert seg.segmentation_type == hd.seg.SegmentationTypeValues.BINARY
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    ref_series = seg.ReferencedSeriesSequence[0]
    assert ref_series.SeriesInstanceUID == sources[0].SeriesInstanceUID
    # Only slices holding a segment are stored: 5 liver slices + 2 lesion slices.
    assert seg.number_of_frames == 7
    assert {r.ReferencedSOPInstanceUID for r in ref_series.ReferencedInstanceSequence} <= {
        str(ds.SOPInstanceUID) for ds in sources}
    # highdicom's own per-source-instance lookup agrees with our label map.
    uid6 = str(sources[6].SOPInstanceUID)
    pixels = seg.get_pixels_by_source_instance([uid6], segment_numbers=[2], combine_segments=False)
    np.testing.assert_array_equal(pixels[0, :, :, 0] > 0, lm[6] == 7)
    desc_ai, desc_corr = seg.get_segment_description(1), seg.get_segment_description(2)
    assert desc_ai.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    assert desc_ai.algorithm_identification[0].AlgorithmName == "LiteMedSAM"
    assert desc_corr.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC


def test_manual_segment_has_no_algorithm_identification(ct: Volume, tmp_path: Path) -> None:
    lm = np.zeros(ct.shape, np.uint8)
    lm[3, 10:20, 10:20] = 1
    path = write_seg(lm, [SegmentLabel(1, "Lung", algorithm_type="MANUAL")], ct, tmp_path / "m.dcm")
    item = pydicom.dcmread(path).SegmentSequence[0]
    assert item.SegmentAlgorithmType == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in item
    assert item.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Organ"
    assert item.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Lung"


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_dciodvfy_reports_no_errors(ct: Volume, tmp_path: Path) -> None:
    lm, labels = _masks(ct.shape)
    path = write_seg(lm, labels, ct, tmp_path / "seg.dcm")
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    report = out.stdout + out.stderr
    assert "Segmentation" in report  # it recognised the IOD
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert errors == []


def test_deidentified_export_keeps_links_and_removes_phi(identified_ct: Volume, tmp_path: Path) -> None:
    lm, labels = _masks(identified_ct.shape)
    deid = Deidentifier(patient_name="ANON^PATIENT", patient_id="ANON42")
    copies = write_series_copy(identified_ct, tmp_path / "images", deidentifier=deid)
    path = write_seg(lm, labels, identified_ct, tmp_path / "seg.dcm", deidentifier=deid)
    # The de-identified images + SEG form a consistent pair: re-read maps frames by SOP instance UID.
    anon_ct = open_image(tmp_path / "images")
    assert anon_ct.info.patient_name in ("ANON^PATIENT", "ANON PATIENT") and len(copies) == 20
    np.testing.assert_array_equal(anon_ct.array, identified_ct.array)
    np.testing.assert_array_equal(read_seg(path, anon_ct)[0], lm)
    assert "DOE" not in pydicom.dcmread(copies[0]).__str__()
    seg = pydicom.dcmread(path)
    original = load_source_datasets(identified_ct)
    assert str(seg.PatientName) == "ANON^PATIENT" and seg.PatientID == "ANON42"
    assert seg.PatientIdentityRemoved == "YES"
    assert "DOE" not in str(seg) and "PID-4711" not in str(seg) and "19700101" not in str(seg)
    assert seg.StudyInstanceUID == deid.uid_map[original[0].StudyInstanceUID] != original[0].StudyInstanceUID
    ref = seg.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == deid.uid_map[original[0].SeriesInstanceUID]
    mapped = {deid.uid_map[str(ds.SOPInstanceUID)] for ds in original}
    assert {r.ReferencedSOPInstanceUID for r in ref.ReferencedInstanceSequence} <= mapped


def test_third_party_seg_maps_by_plane_position(foreign_liver_seg) -> None:  # noqa: ANN001
    path, ds, reference = foreign_liver_seg
    origin = reference.origin
    labelmap, labels = read_seg(Path(path), reference)
    frames = ds.pixel_array
    assert labels[0].name == "Liver" and labels[0].algorithm_type == "AI-corrected"
    assert labels[0].algorithm_name == "SlicerEditor"
    assert labelmap[0].sum() == 0 and labelmap[4].sum() == 0
    for k in range(3):
        np.testing.assert_array_equal(labelmap[k + 1] > 0, frames[k] > 0)
    shifted = Volume(np.zeros((5, 512, 512), np.float32), spacing=reference.spacing,
                     origin=(origin[0] + 3.3, origin[1], origin[2]))
    with pytest.raises(MedFusionError, match="grid"):
        read_seg(Path(path), shifted)


def test_user_errors_are_clear(ct: Volume, tmp_path: Path) -> None:
    lm = np.zeros(ct.shape, np.uint8)
    with pytest.raises(MedFusionError, match="empty"):
        write_seg(lm, [SegmentLabel(1, "Liver")], ct, tmp_path / "a.dcm")
    lm[2, 5, 5] = 4
    with pytest.raises(MedFusionError, match="without a name"):
        write_seg(lm, [SegmentLabel(1, "Liver")], ct, tmp_path / "a.dcm")
    with pytest.raises(MedFusionError, match="does not match"):
        write_seg(lm[:3], [SegmentLabel(4, "Liver")], ct, tmp_path / "a.dcm")
    nifti_like = Volume(np.zeros(ct.shape, np.float32))
    with pytest.raises(MedFusionError, match="DICOM files"):
        write_seg(lm, [SegmentLabel(4, "Liver")], nifti_like, tmp_path / "a.dcm")
    with pytest.raises(MedFusionError, match="not a DICOM Segmentation"):
        read_seg(ct.source_files[0], ct)
