"""The shipped outcome model (``resources/models/fusion``): loads from plain JSON, stays small, exposes base
rates and sets at 80/90/95 %, and a lower SpO₂ never lowers any risk with every other input fixed."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from inference.fusion.design import ImageEncoder, PatientRecord
from inference.fusion.lung_features import EMBED_DIM, ZONES, ImageFeatures
from inference.fusion.outcome_model import HEAD_KEYS, SET_ALPHAS, OutcomePredictor

MODEL = Path(__file__).resolve().parents[2] / "resources" / "models" / "fusion"


@pytest.fixture(scope="module")
def shipped() -> OutcomePredictor:
    return OutcomePredictor.load(MODEL)


def test_shipped_files_are_small_plain_json(shipped: OutcomePredictor) -> None:
    files = sorted(p.name for p in MODEL.iterdir() if p.is_file())
    assert not [f for f in files if f.endswith((".pt", ".pth", ".pkl", ".pickle", ".joblib", ".npy", ".npz"))]
    assert all((MODEL / f).stat().st_size < 2_000_000 for f in files)
    assert set(shipped.outcomes) == {"went_icu", "intubated", "death", "needed_supplemental_O2"}
    assert all(0.0 < shipped.base_rates[o] < 1.0 for o in shipped.outcomes)
    # every modality, and the '/auto' heads (X-rays without supplied lung masks) with their own encoders
    assert all(set(shipped.heads[o]) == set(HEAD_KEYS) for o in shipped.outcomes)
    assert shipped.auto_encoders is not None


def _typical_image(enc: ImageEncoder, rng: np.random.Generator, source: str = "supplied") -> ImageFeatures:
    """An image whose features lie in the training range (the encoder's own medians and spreads)."""
    scalars = (np.asarray(enc.medians) + 0.5 * rng.normal(size=len(enc.medians)) * np.asarray(enc.stds))
    source_pool = enc.pca_mean + 0.5 * rng.normal(size=enc.pca_mean.shape) * enc.pca_scale
    pooled = source_pool if source_pool.shape == (2 * EMBED_DIM + 1,) else rng.normal(size=2 * EMBED_DIM + 1)
    inside = source_pool if source_pool.shape == (EMBED_DIM,) else source_pool[:EMBED_DIM]
    return ImageFeatures(scalars.astype(np.float32), inside.astype(np.float32), rng.normal(size=EMBED_DIM).astype(np.float32),
                         rng.normal(size=(len(ZONES), EMBED_DIM)).astype(np.float32), pooled.astype(np.float32), source)


def test_lower_spo2_never_lowers_any_risk(shipped: OutcomePredictor) -> None:
    """Acceptance (issue 13): with everything else fixed, risk is non-increasing in SpO₂ 30 → 100 %, for every
    outcome, with and without X-rays, with supplied and with automatic lung masks ('/auto' heads), across
    ages, sexes, views, fever and missing labs."""
    rng = np.random.default_rng(0)
    heads = ["both", "ehr"]
    images = {"both": [_typical_image(next(iter(shipped.encoders.images.values())), rng) for _ in range(3)]}
    if shipped.auto_encoders is not None and "both/auto" in shipped.heads[shipped.outcomes[0]]:
        heads.append("both/auto")
        enc = next(iter(shipped.auto_encoders.images.values()))
        images["both/auto"] = [_typical_image(enc, rng, "auto") for _ in range(3)]
    images["ehr"] = images["both"]
    spo2 = np.arange(30.0, 100.5, 1.0)
    checked = 0
    for age, sex, view, temp, lymph, n_img in itertools.product(
        (35.0, 80.0, None), ("M", "F"), ("PA", "AP Supine"), (37.0, 39.5, None), (0.5, None), (0, 1, 3)
    ):
        ehr = {"age": age, "sex": sex, "view": view, "temperature": temp, "lymphocyte_count": lymph}
        for outcome, modalities in itertools.product(shipped.outcomes, heads):
            sweep = [PatientRecord("p", {**ehr, "pO2_saturation": v}, images[modalities][:n_img],
                                   [f"{i}.png" for i in range(n_img)], [float(i) for i in range(n_img)]) for v in spo2]
            _, used = shipped.effective(sweep[0], modalities)
            logits = shipped.logits(sweep, outcome, used)  # probability is increasing in the logit
            rises = np.nonzero(np.diff(logits) > 1e-12)[0]
            assert rises.size == 0, f"{outcome} ({used}): risk rises with SpO₂ at {spo2[rises[0]]} % for {ehr}"
            checked += 1
    assert checked == 3 * 2 * 2 * 3 * 2 * 3 * 4 * len(heads)


def test_prediction_carries_sets_per_level_and_base_rates(shipped: OutcomePredictor) -> None:
    record = PatientRecord("p", {"age": 70.0, "sex": "M", "view": "AP Supine", "pO2_saturation": 82.0})
    pred = shipped.predict(record, alpha=0.1, modalities="ehr")
    for o in pred.outcomes:
        assert set(o.sets) == set(SET_ALPHAS) and o.prediction_set == o.sets[0.1]
        assert o.base_rate == shipped.base_rates[o.name] and o.model
        # nested sets: a stricter level never gives a smaller set
        assert o.sets[0.2] <= o.sets[0.1] <= o.sets[0.05] or not o.sets[0.2]
