"""The predictor's forward function works with the shared explainers: IG completeness holds, a missing
EHR value gets exactly zero attribution, and padded time steps are never read by the full model."""

from __future__ import annotations

import numpy as np
import torch

from inference.explain import IntegratedGradientsExplainer
from inference.fusion.dataset import EHRNormaliser
from inference.fusion.mamba import MambaBlock
from inference.fusion.model import FusionConfig, MedFusionModel
from inference.fusion.predictor import FusionPredictor, PatientInput
from inference.uncertainty.calibration import TemperatureScaler

CFG = FusionConfig(feature_dim=12, d_model=16, heads=2, dropout=0.0)


def predictor() -> FusionPredictor:
    torch.manual_seed(0)
    normaliser = EHRNormaliser([50.0, 37.0, 95.0, 8.0, 6.0, 1.0], [15.0, 1.0, 4.0, 3.0, 3.0, 0.5])
    return FusionPredictor(MedFusionModel(CFG).eval(), normaliser, [TemperatureScaler() for _ in range(4)],
                           [None] * 4, [None, None], "test")


def patient() -> PatientInput:
    rng = np.random.default_rng(1)
    images: list[tuple[str, float | None, np.ndarray]] = [
        (f"img{i}.png", float(i * 2), rng.normal(size=CFG.feature_dim).astype(np.float32)) for i in range(3)
    ]
    return PatientInput("p1", {"age": 64.0, "sex": "F", "temperature": 38.2, "pO2_saturation": None}, images)


def test_integrated_gradients_on_the_fusion_forward_fn() -> None:
    pred = predictor()
    batch = pred.batch_for(patient())
    fn = pred.forward_fn(batch)
    with torch.no_grad():
        assert torch.equal(fn(batch.features, batch.numeric), pred.model(*batch.model_inputs()).logits)
    result = IntegratedGradientsExplainer(fn, n_steps=32)((batch.features, batch.numeric), target=2)
    image_attr, ehr_attr = result.attributions
    assert image_attr.shape == batch.features.shape and ehr_attr.shape == batch.numeric.shape
    assert result.delta is not None and float(result.delta.abs().max()) < 0.05  # completeness: attributions sum to f(x) - f(baseline)
    spo2 = 2  # pO2_saturation is missing → masked → it cannot have contributed
    assert bool(batch.ehr_missing[0, spo2]) and float(ehr_attr[0, spo2]) == 0.0
    assert float(ehr_attr[0, 0].abs()) > 0.0  # age is present and read


def test_padded_time_steps_are_never_read() -> None:
    torch.manual_seed(0)
    model = MedFusionModel(CFG).eval()
    features = torch.randn(2, 4, CFG.feature_dim)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    rest = (torch.zeros(2, 4), mask, torch.randn(2, 6), torch.ones(2, 2, dtype=torch.long),
            torch.zeros(2, 8, dtype=torch.bool))
    with torch.no_grad():
        a = model(features * mask.unsqueeze(-1), *rest)
        garbage = features.clone()
        garbage[0, 2:] = 50.0
        b = model(garbage, *rest)
    assert torch.allclose(a.logits, b.logits, atol=1e-5) and torch.allclose(a.gate, b.gate, atol=1e-6)
    assert torch.all(a.step_weights[0, 2:] == 0)


def test_mamba_block_is_causal() -> None:
    torch.manual_seed(0)
    block = MambaBlock(8).eval()
    seq = torch.randn(1, 6, 8)
    later = seq.clone()
    later[:, 4:] += 3.0  # a later image cannot change what the model says about earlier ones
    with torch.no_grad():
        assert torch.allclose(block(seq)[:, :4], block(later)[:, :4], atol=1e-6)
