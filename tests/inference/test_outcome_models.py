"""The small-data outcome models: own logistic regression and tree evaluator agree with scikit-learn, the
SpO₂ direction is enforced, lung-zone features see an opacity where it is, nested CV + the shipped
predictor round-trip on a synthetic cohort, and tampered model files are refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from inference.errors import ModelLoadError
from inference.fusion.candidates import CandidateSpec
from inference.fusion.design import EHREncoder, PatientRecord
from inference.fusion.linear import LogisticModel
from inference.fusion.lung_features import (
    EMBED_DIM,
    SCALAR_NAMES,
    ZONES,
    ImageFeatures,
    compute_image_features,
)
from inference.fusion.nested_cv import CANDIDATES, SELECTED, run_outcome
from inference.fusion.trees import TreeEnsemble


def test_logistic_matches_sklearn_and_respects_sign_bounds() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=150) > 0).astype(float)
    ours = LogisticModel(C=0.3).fit(X, y)
    ref = LogisticRegression(C=0.3, tol=1e-10, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(ours.coef, ref.coef_[0], atol=1e-4)
    assert ours.intercept == pytest.approx(ref.intercept_[0], abs=1e-4)
    bounded = LogisticModel(C=0.3, signs={0: -1}).fit(X, y)  # the data say +, the bound says ≤ 0
    assert bounded.coef[0] <= 0.0 and ours.coef[0] > 0.5
    again = LogisticModel.from_dict(json.loads(json.dumps(bounded.to_dict())))
    np.testing.assert_array_equal(again.decision_function(X), bounded.decision_function(X))


def test_tree_evaluator_matches_sklearn_with_missing_values_and_monotone_constraint() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    y = ((np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) + rng.normal(size=200)) > 0).astype(int)
    ref = HistGradientBoostingClassifier(max_iter=30, max_depth=2, learning_rate=0.1, monotonic_cst=[0, -1, 0, 0],
                                         early_stopping=False, random_state=0).fit(X, y)
    ours = TreeEnsemble.from_dict(json.loads(json.dumps(TreeEnsemble.from_sklearn(ref, 4).to_dict())))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X)[:, 1], atol=1e-12)
    sweep = np.tile(np.nanmean(X, axis=0), (50, 1))
    sweep[:, 1] = np.linspace(-3, 3, 50)  # feature 1 trained with a non-increasing constraint
    assert np.all(np.diff(ours.predict_proba(sweep)) <= 1e-12)


def test_tampered_tree_tables_are_refused() -> None:
    X = np.random.default_rng(2).normal(size=(60, 2))
    data = TreeEnsemble.fit(X, (X[:, 0] > 0).astype(int), max_iter=3).to_dict()
    cyclic = json.loads(json.dumps(data))
    inner = cyclic["trees"][0]["is_leaf"].index(0)
    cyclic["trees"][0]["left"][inner] = inner  # a node that points at itself would loop forever
    with pytest.raises(ValueError, match="after their parent"):
        TreeEnsemble.from_dict(cyclic)
    far = json.loads(json.dumps(data))
    far["trees"][0]["feature_idx"][inner] = 99
    with pytest.raises(ValueError, match="feature index"):
        TreeEnsemble.from_dict(far)


def _chest(opaque_zone: bool) -> tuple[np.ndarray, np.ndarray]:
    """A 200×200 'X-ray': dark lungs in a bright body; optionally a bright patch low in the image-left lung."""
    frame = np.full((200, 200), 0.7, np.float32)
    lungs = np.zeros((200, 200), bool)
    lungs[30:170, 25:90] = True
    lungs[30:170, 110:175] = True
    frame[lungs] = 0.25
    if opaque_zone:
        frame[122:170, 25:90] = 0.68
    return frame, lungs


def test_lung_zone_features_locate_an_opacity() -> None:
    emb = np.zeros((EMBED_DIM, 64, 64), np.float32)
    clear = compute_image_features(*_chest(False)[:1], emb, _chest(False)[1], "supplied")
    frame, lungs = _chest(True)
    sick = compute_image_features(frame, emb, lungs, "supplied")
    delta = {n: sick.scalar(n) - clear.scalar(n) for n in SCALAR_NAMES}
    assert delta["right_lower_opaque"] > 0.8 and abs(delta["left_lower_opaque"]) < 1e-6  # image left = patient right
    assert delta["extent_zones"] == 1.0 and delta["lung_to_soft"] > 0
    no_mask = compute_image_features(frame, emb, None, "none")
    assert np.isnan(no_mask.scalars).all() and no_mask.pooled.shape == (2 * EMBED_DIM + 1,)
    with pytest.raises(ValueError, match="shape"):
        ImageFeatures.from_arrays({**sick.as_arrays(), "emb_zones": np.zeros((len(ZONES) + 1, EMBED_DIM))})


def test_ehr_encoder_marks_missing_values_instead_of_hiding_them() -> None:
    records = [PatientRecord(str(i), {"age": 40.0 + i, "pO2_saturation": 90.0 + i % 5, "sex": "M", "view": "PA"})
               for i in range(10)]
    enc = EHREncoder.fit(records)
    row = enc.transform([PatientRecord("x", {"age": None, "sex": "F", "view": "AP Supine"})])[0]
    names = enc.names
    assert row[names.index("age missing")] == 1.0 and row[names.index("temperature missing")] == 1.0
    assert row[names.index("age")] == pytest.approx((enc.medians[0] - enc.means[0]) / enc.stds[0])
    assert row[names.index("sex F")] == 1.0 and row[names.index("view AP Supine")] == 1.0
    assert math.isnan(enc.transform_nan([PatientRecord("x", {})])[0][0])


def _synthetic_cohort(n: int = 70, seed: int = 0) -> tuple[list[PatientRecord], np.ndarray]:
    """EHR drives the outcome (low SpO₂, old age → ICU); images carry a weaker opacity signal."""
    rng = np.random.default_rng(seed)
    records, labels = [], []
    for i in range(n):
        spo2, age = rng.uniform(70, 99), rng.uniform(20, 90)
        opacity = rng.normal()
        risk = -0.15 * (spo2 - 90) + 0.04 * (age - 55) + 0.8 * opacity + rng.normal()
        scal = rng.normal(0.5, 0.1, len(SCALAR_NAMES)).astype(np.float32)
        scal[SCALAR_NAMES.index("lung_to_soft")] = 0.6 + 0.1 * opacity
        image = ImageFeatures(scal, rng.normal(size=EMBED_DIM).astype(np.float32),
                              rng.normal(size=EMBED_DIM).astype(np.float32),
                              rng.normal(size=(len(ZONES), EMBED_DIM)).astype(np.float32),
                              rng.normal(size=2 * EMBED_DIM + 1).astype(np.float32), "supplied")
        ehr = {"age": age, "pO2_saturation": spo2 if rng.uniform() > 0.3 else None, "sex": "MF"[i % 2], "view": "PA"}
        records.append(PatientRecord(f"p{i}", ehr, [image], [f"img{i}.png"], [0.0]))
        labels.append(float(risk > 0) if i % 10 else math.nan)
    return records, np.array(labels)


def test_nested_cv_selection_and_shipped_predictor_round_trip(tmp_path: Path) -> None:
    from inference.fusion.candidates import CandidateFitter
    from inference.fusion.outcome_model import OutcomeHead, OutcomePredictor
    from inference.uncertainty.conformal import MondrianConformal

    records, y = _synthetic_cohort()
    specs = [c for c in CANDIDATES if c.head in ("baseline", "linear", "stack")]
    run = run_outcome(records, y, "went_icu", {}, seed=0, specs=specs, folds=3)
    assert set(run.logits) == {*(s.name for s in specs), *SELECTED.values()}
    assert all(np.isfinite(v).all() for v in run.logits.values())
    assert len(run.chosen["both"]) == 3
    known = ~np.isnan(y)
    fitter = CandidateFitter([r for r, k in zip(records, known, strict=True) if k], y[known],
                             [r for r, k in zip(records, known, strict=True) if not k], {}, ("all",), 0)
    heads = {}
    for outcome in ("went_icu", "death"):
        chosen = {"both": CandidateSpec("early fusion · logistic", "linear", ("ehr", "image")),
                  "ehr": CandidateSpec("EHR · logistic", "linear", ("ehr",)),
                  "image": CandidateSpec("image · boosted trees", "trees", ("image",))}
        conformal = MondrianConformal(0.1).fit(np.linspace(0, 1, 40), np.arange(40) % 2)
        heads[outcome] = {m: OutcomeHead(fitter.fit(spec).model, 1.2, conformal) for m, spec in chosen.items()}
    predictor = OutcomePredictor(fitter.encoders, heads, {"went_icu": 0.5, "death": 0.2}, [None, None], "synthetic")
    predictor.save(tmp_path / "m")
    loaded = OutcomePredictor.load(tmp_path / "m")
    for modalities in ("both", "ehr", "image"):
        a = predictor.predict(records[0], modalities=modalities)
        b = loaded.predict(records[0], modalities=modalities)
        assert [o.probability for o in a.outcomes] == [o.probability for o in b.outcomes]
        assert set(b.outcomes[0].sets) == {0.2, 0.1, 0.05} and b.modalities == modalities
    assert loaded.base_rates == {"went_icu": 0.5, "death": 0.2}
    low = PatientRecord("s", {**records[0].ehr, "pO2_saturation": 75.0}, records[0].images, records[0].filenames, [0.0])
    high = PatientRecord("s", {**records[0].ehr, "pO2_saturation": 98.0}, records[0].images, records[0].filenames, [0.0])
    assert loaded.probability(low, "went_icu") > loaded.probability(high, "went_icu")
    text = (tmp_path / "m" / "model.json").read_text()
    (tmp_path / "m" / "model.json").write_text(text.replace('"temperature":1.2', '"temperature":1.3', 1))
    with pytest.raises(ModelLoadError, match="sha256"):
        OutcomePredictor.load(tmp_path / "m")
