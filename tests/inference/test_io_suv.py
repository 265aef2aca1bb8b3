"""PET SUVbw against a hand computation on synthetic PET DICOM."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from inference.io.loader import open_image
from inference.io.suv import SUVUnavailable, suv_bw_factor
from tests import synthetic_dicom as sd

WEIGHT, DOSE, HALF_LIFE = 82.5, 350e6, 6586.2


def _pet(tmp_path: Path, **tags: object) -> sd.SeriesTruth:
    truth = sd.write_volume_series(tmp_path / "pet", modality="PT", n=4, slope=0.75, intercept=0.0)
    sd.add_pet_tags(truth, **{"weight_kg": WEIGHT, "dose_bq": DOSE, "half_life_s": HALF_LIFE, **tags})
    return truth


def test_suv_start_decay_hand_computed(tmp_path: Path) -> None:
    truth = _pet(tmp_path, start_time="093000", series_time="104500.5", decay_correction="START")
    elapsed = 3600 + 15 * 60 + 0.5  # 09:30:00 -> 10:45:00.5
    expected = truth.values * (WEIGHT * 1000) / (DOSE * math.pow(0.5, elapsed / HALF_LIFE))
    vol = open_image(truth.folder)
    assert vol.units == "SUVbw" and vol.modality == "PT"
    np.testing.assert_allclose(vol.array, expected, rtol=1e-5)
    assert vol.meta["suv_details"]["decay_time_s"] == pytest.approx(elapsed)


def test_suv_admin_no_decay(tmp_path: Path) -> None:
    truth = _pet(tmp_path, decay_correction="ADMIN")
    vol = open_image(truth.folder)
    np.testing.assert_allclose(vol.array, truth.values * WEIGHT * 1000 / DOSE, rtol=1e-5)


def test_suv_start_datetime_across_midnight(tmp_path: Path) -> None:
    truth = _pet(tmp_path, start_time=None, start_datetime="20240101233000", series_time="003000")
    ds = pydicom.dcmread(truth.files_in_z_order[0])
    factor = suv_bw_factor(ds)
    assert factor == pytest.approx(WEIGHT * 1000 / (DOSE * 0.5 ** (3600 / HALF_LIFE)), rel=1e-9)


def test_missing_weight_keeps_bqml_with_warning(tmp_path: Path) -> None:
    truth = _pet(tmp_path, weight_kg=None)
    with pytest.raises(SUVUnavailable, match="PatientWeight"):
        suv_bw_factor(pydicom.dcmread(truth.files_in_z_order[0]))
    vol = open_image(truth.folder)
    assert vol.units == "BQML"
    np.testing.assert_allclose(vol.array, truth.values, rtol=1e-6)
    assert any("PatientWeight" in w for w in vol.meta["warnings"])


@pytest.mark.parametrize(("tags", "word"), [
    ({"dose_bq": None}, "RadionuclideTotalDose"),
    ({"start_time": None}, "RadiopharmaceuticalStartTime"),
    ({"units": "CNTS"}, "Units is 'CNTS'"),
])
def test_missing_tags_named(tmp_path: Path, tags: dict, word: str) -> None:
    truth = _pet(tmp_path, **tags)
    with pytest.raises(SUVUnavailable, match=word):
        suv_bw_factor(pydicom.dcmread(truth.files_in_z_order[0]))
