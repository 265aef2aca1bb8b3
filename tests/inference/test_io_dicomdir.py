"""DICOMDIR: listed as studies/series, opened like a folder, untrusted references refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.fileset import FileSet

from inference.errors import ImageReadError, SeriesSelectionRequired
from inference.io.dicomdir import is_dicomdir, read_dicomdir
from inference.io.loader import estimate_bytes, list_series, open_image
from tests import synthetic_dicom as sd


def _disc(tmp_path: Path) -> tuple[Path, list[sd.SeriesTruth]]:
    """Two synthetic series (one study) written as a DICOM File-set with pydicom's DICOMDIR writer."""
    study = pydicom.uid.generate_uid()
    truths = [sd.write_volume_series(tmp_path / "src" / "a", n=4, rows=8, cols=6, study_uid=study, description="A"),
              sd.write_volume_series(tmp_path / "src" / "b", n=3, rows=5, cols=7, study_uid=study, description="B",
                                     seed=1)]
    fs = FileSet()
    for truth in truths:
        for path in truth.files_in_z_order:
            ds = pydicom.dcmread(path)
            ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.StudyDescription = "101500", "1", "", "Chest"
            ds.save_as(path)
            fs.add(path)
    fs.write(tmp_path / "disc")
    return tmp_path / "disc" / "DICOMDIR", truths


def test_dicomdir_lists_and_opens_series(tmp_path: Path) -> None:
    dicomdir, truths = _disc(tmp_path)
    assert is_dicomdir(dicomdir) and not is_dicomdir(truths[0].files_in_z_order[0])
    infos = list_series(dicomdir)
    assert sorted((i.series_uid, i.n_files, i.rows, i.cols, i.description) for i in infos) == sorted(
        (t.series_uid, len(t.files_in_z_order), t.values.shape[1], t.values.shape[2], d)
        for t, d in zip(truths, "AB", strict=True))
    assert {i.patient_name for i in infos} == {"Synthetic^Patient"} and {i.study_date for i in infos} == {"20240102"}
    with pytest.raises(SeriesSelectionRequired) as err:
        open_image(dicomdir)
    assert len(err.value.series) == 2
    for truth in truths:
        vol = open_image(dicomdir, series_uid=truth.series_uid)
        np.testing.assert_array_equal(vol.array, truth.values.astype(np.float32))
        np.testing.assert_allclose(vol.spacing, truth.spacing, atol=1e-6)
        assert estimate_bytes(dicomdir, series_uid=truth.series_uid) == vol.array.nbytes
    with pytest.raises(ImageReadError, match="no image series with UID"):
        open_image(dicomdir, series_uid="1.2.3")


def test_file_names_matched_case_insensitively(tmp_path: Path) -> None:
    dicomdir, truths = _disc(tmp_path)
    for path in sorted((dicomdir.parent).rglob("*"), key=lambda p: -len(p.parts)):
        if path.name != "DICOMDIR":
            path.rename(path.with_name(path.name.lower()))
    vol = open_image(dicomdir, series_uid=truths[1].series_uid)
    np.testing.assert_array_equal(vol.array, truths[1].values.astype(np.float32))


def test_missing_files_and_escaping_references(tmp_path: Path) -> None:
    dicomdir, _ = _disc(tmp_path)
    ds = pydicom.dcmread(dicomdir)
    for record in ds.DirectoryRecordSequence:
        if record.DirectoryRecordType == "IMAGE":
            record.ReferencedFileID = ["..", "src", "a", "IM000"]  # outside the disc: never followed
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0  # byte offsets changed: use the file order
    ds.save_as(tmp_path / "disc" / "ESCAPE", enforce_file_format=True)
    with pytest.raises(ImageReadError, match="none of them are in its folder"):
        read_dicomdir(tmp_path / "disc" / "ESCAPE")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(dicomdir, alone / "DICOMDIR")  # only the index was copied
    with pytest.raises(ImageReadError, match="copy the whole disc"):
        open_image(alone / "DICOMDIR")


def test_corrupt_dicomdir_is_a_clean_error(tmp_path: Path) -> None:
    dicomdir, _ = _disc(tmp_path)
    data = dicomdir.read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "DICOMDIR").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="DICOMDIR 'DICOMDIR'"):
        open_image(cut / "DICOMDIR")
    with pytest.raises(ImageReadError):
        estimate_bytes(cut / "DICOMDIR")


def test_pydicom_sample_dicomdir(tmp_path: Path) -> None:
    """pydicom's DCMTK-made sample: 3 patients' worth of records; a 5-slice CT series opens like its folder."""
    from pydicom.data import get_testdata_file

    path = Path(str(get_testdata_file("DICOMDIR")))
    records = pydicom.dcmread(path).DirectoryRecordSequence
    infos = read_dicomdir(path)
    assert sum(i.n_files for i in infos) == sum(r.DirectoryRecordType == "IMAGE" for r in records)
    assert len(infos) == sum(r.DirectoryRecordType == "SERIES" for r in records)
    ct = next(i for i in infos if i.modality == "CT" and i.n_files == 5)
    folder = tmp_path / "ct"
    folder.mkdir()
    for f in ct.files:
        shutil.copy(f, folder / f.name)
    np.testing.assert_array_equal(open_image(path, series_uid=ct.series_uid).array, open_image(folder).array)


@pytest.mark.parametrize("variant", ["DICOMDIR-reordered", "DICOMDIR-nooffset", "DICOMDIR-implicit",
                                     "DICOMDIR-bigEnd"])
def test_pydicom_sample_variants_list_the_same_series(variant: str) -> None:
    """Reordered records, missing zero offsets, other transfer syntaxes: the same index."""
    from pydicom.data import get_testdata_file

    reference = read_dicomdir(Path(str(get_testdata_file("DICOMDIR"))))
    infos = read_dicomdir(Path(str(get_testdata_file(variant))))
    key = sorted((i.series_uid, i.n_files, i.modality, i.patient_name) for i in infos)
    assert key == sorted((i.series_uid, i.n_files, i.modality, i.patient_name) for i in reference)


def test_broken_links_never_escape_as_exceptions() -> None:
    """pydicom's 'nopatient' sample (root link to an image, unknown record type): a list or a clean error."""
    from pydicom.data import get_testdata_file

    path = Path(str(get_testdata_file("DICOMDIR-nopatient")))
    try:
        infos = read_dicomdir(path)
    except ImageReadError as exc:
        assert "DICOMDIR" in str(exc)
    else:
        assert all(i.files and all(f.is_file() for f in i.files) for i in infos)
