"""The Qt-free case model: reading a case folder, EHR flags, what-if edits, plain words, stale state."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from app.clinical_install import DEMO_CASE
from app.model.clinical import ClinicalModel, OutcomeResult, PredictionState, is_case_folder, load_case
from inference.errors import EHRDataError

pytestmark = pytest.mark.skipif(not DEMO_CASE.is_dir(), reason="demo case not bundled")


def test_demo_case_reads_series_ehr_and_never_outcomes() -> None:
    case = load_case(DEMO_CASE)
    assert case.patient_id == "178" and len(case.images) == 5
    assert [im.offset for im in case.images] == [0, 0, 1, 2, 3]
    assert all(im.path.is_file() and im.mask_path is not None for im in case.images)
    assert case.presentation["age"] == 72 and case.presentation["sex"] == "F"
    assert case.presentation["leukocyte_count"] is None  # missing stays missing
    assert "went_icu" not in case.presentation and "Eurorad" in case.attribution


def test_ehr_flags_edits_and_stale() -> None:
    model = ClinicalModel()
    model.set_case(load_case(DEMO_CASE))
    assert model.ehr["temperature"].flag == "high" and model.ehr["pO2_saturation"].flag == "low"
    assert model.ehr["lymphocyte_count"].text() == "missing" and model.ehr_inputs()["lymphocyte_count"] is None
    model.set_prediction(PredictionState({"went_icu": OutcomeResult("went_icu", 0.8, frozenset({1}))}, 0.1))
    stale: list[bool] = []
    model.stale_changed.connect(stale.append)
    model.edit_ehr("lymphocyte_count", "0.6")
    assert model.ehr["lymphocyte_count"].edited and model.ehr["lymphocyte_count"].flag == "low"
    assert model.prediction.stale and stale == [True] and "Lymphocytes changed" in model.prediction.stale_reasons
    model.edit_ehr("lymphocyte_count", None)
    assert not model.ehr["lymphocyte_count"].edited  # back to the record
    model.set_mask("a.jpg", np.ones((4, 4)), ai=True)
    model.set_prediction(PredictionState({}, 0.1))
    model.set_mask("a.jpg", np.zeros((4, 4)), ai=False)
    assert model.prediction.stale and model.ai_masks["a.jpg"].sum() == 16


def test_unedited_automatic_masks_are_left_to_the_predictor() -> None:
    """The predictor makes the same automatic mask itself and then uses its heads trained on automatic masks;
    supplied, model-prompted and hand-edited masks are passed as supplied."""
    model = ClinicalModel()
    model.set_mask("auto.jpg", np.ones((4, 4)), ai=True, source="automatic")
    model.set_mask("supplied.jpg", np.ones((4, 4)), ai=True, source="supplied")
    model.set_mask("prompted.jpg", np.ones((4, 4)), ai=True)
    assert set(model.predictor_masks()) == {"supplied.jpg", "prompted.jpg"}
    model.set_mask("auto.jpg", np.zeros((4, 4)), ai=False)  # a human correction of the automatic mask
    assert set(model.predictor_masks()) == {"supplied.jpg", "prompted.jpg", "auto.jpg"}


def test_plain_words() -> None:
    assert OutcomeResult("went_icu", 0.82, frozenset({1})).words(0.1) == "ICU admission: yes at 90 % confidence"
    both = OutcomeResult("death", 0.5, frozenset({0, 1}))
    assert both.uncertain and both.words(0.05) == "Death: the model cannot decide at 95 % confidence"
    assert "{" not in both.words(0.05)
    assert "unusual case" in OutcomeResult("intubated", 0.1, frozenset()).words(0.2)


def test_bad_case_folders(tmp_path: Path) -> None:
    assert not is_case_folder(tmp_path)
    with pytest.raises(EHRDataError):
        load_case(tmp_path)
    shutil.copytree(DEMO_CASE, tmp_path / "case")
    (tmp_path / "case" / "metadata.csv").write_text("patientid,offset,filename\n1,0,a.jpg\n2,0,b.jpg\n")
    with pytest.raises(EHRDataError, match="several patients"):
        load_case(tmp_path / "case")
