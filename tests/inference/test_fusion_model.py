"""Fusion model: missing-data masking, missing modalities, gradient flow, Mamba scan, TENT, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.errors import ModelLoadError
from inference.fusion.cohort import NUMERIC_FIELDS
from inference.fusion.dataset import EHRNormaliser
from inference.fusion.mamba import MambaBlock, selective_scan
from inference.fusion.model import FusionConfig, MedFusionModel
from inference.fusion.predictor import FusionPredictor, PatientInput
from inference.fusion.tent import tent_adapt
from inference.uncertainty.calibration import TemperatureScaler
from inference.uncertainty.conformal import ConformalRegressor, MondrianConformal

N_EHR = len(NUMERIC_FIELDS) + 2


def inputs(batch: int = 3, length: int = 4, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, length, 513, generator=g),
        torch.rand(batch, length, generator=g) * 10,
        torch.ones(batch, length, dtype=torch.bool),
        torch.randn(batch, len(NUMERIC_FIELDS), generator=g),
        torch.ones(batch, 2, dtype=torch.long),
        torch.zeros(batch, N_EHR, dtype=torch.bool),
    ]


def model(**overrides: object) -> MedFusionModel:
    torch.manual_seed(0)
    return MedFusionModel(FusionConfig(**overrides)).eval()  # type: ignore[arg-type]


def test_missing_ehr_value_is_masked_not_read() -> None:
    m = model()
    x = inputs()
    x[5][:, 2] = True  # temperature missing
    base = m(*x).logits
    x[3][:, 2] = 1e6  # whatever sits in a masked slot must not matter
    assert torch.allclose(m(*x).logits, base, atol=1e-6)


def test_feature_tokens_are_independent() -> None:
    m = model()
    x = inputs()
    tokens = m.ehr.tokens(x[3], x[4])
    x[3][:, 0] += 5.0
    changed = (m.ehr.tokens(x[3], x[4]) - tokens).abs().sum(dim=-1)
    assert bool((changed[:, 0] > 0).all())
    assert float(changed[:, 1:].abs().max()) == 0.0


@pytest.mark.parametrize("fusion", ["gated", "concat"])
@pytest.mark.parametrize("sequence", ["mamba", "transformer", "last"])
def test_patient_without_images_or_without_ehr_still_predicts(fusion: str, sequence: str) -> None:
    m = model(fusion=fusion, sequence=sequence)
    x = inputs()
    x[2][0] = False  # patient 0: no images
    x[5][1] = True  # patient 1: no EHR at all
    out = m(*x)
    assert torch.isfinite(out.logits).all()
    if fusion == "gated":
        assert float(out.gate[0]) == 0.0  # image path closed without images
        assert float(out.gate[1]) == 1.0  # EHR path closed without EHR


def test_gradients_reach_every_used_part() -> None:
    m = model().train()
    out = m(*inputs())
    (out.logits.sum() + out.severity.sum()).backward()
    for prefix in ("image_proj", "time_proj", "sequence", "ehr.", "ehr_to_image", "image_to_ehr", "gate", "heads", "severity"):
        grads = [p.grad for n, p in m.named_parameters() if n.startswith(prefix)]
        assert grads and any(g is not None and float(g.abs().sum()) > 0 for g in grads), prefix


def naive_scan(x, delta, a, b, c, d):  # noqa: ANN001, ANN201 - element-wise reference recurrence
    batch, length, dim = x.shape
    n = a.shape[1]
    y = torch.zeros(batch, length, dim)
    for bi in range(batch):
        h = torch.zeros(dim, n)
        for t in range(length):
            for i in range(dim):
                for s in range(n):
                    h[i, s] = torch.exp(delta[bi, t, i] * a[i, s]) * h[i, s] + delta[bi, t, i] * b[bi, t, s] * x[bi, t, i]
                y[bi, t, i] = (h[i] * c[bi, t]).sum() + d[i] * x[bi, t, i]
    return y


def test_selective_scan_matches_reference_recurrence() -> None:
    g = torch.Generator().manual_seed(1)
    x, delta = torch.randn(2, 5, 3, generator=g), torch.rand(2, 5, 3, generator=g)
    a, b, c = -torch.rand(3, 4, generator=g), torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    d = torch.randn(3, generator=g)
    assert torch.allclose(selective_scan(x, delta, a, b, c, d), naive_scan(x, delta, a, b, c, d), atol=1e-5)


def test_padding_does_not_change_a_sequence() -> None:
    block = MambaBlock(16).eval()
    tokens = torch.randn(1, 3, 16)
    padded = torch.cat([tokens, torch.randn(1, 2, 16)], dim=1)
    mask = torch.tensor([[True, True, True, False, False]])
    alone = block(tokens, torch.ones(1, 3, dtype=torch.bool))
    assert torch.allclose(block(padded, mask)[:, :3], alone, atol=1e-6)


def test_tent_changes_only_normalisation_parameters() -> None:
    m = model()
    x = inputs()
    adapted = tent_adapt(m, tuple(x), steps=3, lr=1e-2)
    norm_ids = {id(p) for p in adapted.normalisation_parameters()}
    changed_norm = 0
    for (name, before), after in zip(m.named_parameters(), adapted.parameters(), strict=True):
        if id(after) in norm_ids:
            changed_norm += int(not torch.equal(before, after))
        else:
            assert torch.equal(before, after), name
    assert changed_norm > 0
    assert all(torch.equal(p, q) for p, q in zip(model().parameters(), m.parameters(), strict=True))  # original untouched


def tiny_predictor() -> FusionPredictor:
    rng = np.random.default_rng(0)
    probs, labels = rng.random(200), rng.integers(0, 2, 200).astype(float)
    conformal = [MondrianConformal(0.1).fit(probs, labels) for _ in range(4)]
    severity = [ConformalRegressor(0.1, clip=(0, 8)).fit(rng.random(50) * 8, rng.random(50) * 8), None]
    normaliser = EHRNormaliser([50.0, 37.0, 95.0, 7.0, 5.0, 1.5], [15.0, 1.0, 5.0, 3.0, 3.0, 0.7])
    return FusionPredictor(model(), normaliser, [TemperatureScaler(1.5) for _ in range(4)], conformal, severity, "test")


def patient() -> PatientInput:
    rng = np.random.default_rng(3)
    images = [(f"img{i}.jpg", float(i), rng.normal(size=513).astype(np.float32)) for i in range(3)]
    return PatientInput("p1", {"age": 70.0, "sex": "F", "temperature": None}, images)


def test_save_load_round_trip_is_bit_exact(tmp_path: Path) -> None:
    predictor = tiny_predictor()
    predictor.save(tmp_path / "m")
    loaded = FusionPredictor.load(tmp_path / "m")
    for (n, p), q in zip(predictor.model.state_dict().items(), loaded.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), n
    a, b = predictor.predict(patient()), loaded.predict(patient())
    assert [o.probability for o in a.outcomes] == [o.probability for o in b.outcomes]
    assert [o.prediction_set for o in a.outcomes] == [o.prediction_set for o in b.outcomes]
    assert a.severity[0].values == b.severity[0].values


def test_tampered_model_file_is_refused(tmp_path: Path) -> None:
    tiny_predictor().save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["model"]["d_model"] = 32
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="sha256"):
        FusionPredictor.load(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="manifest"):
        FusionPredictor.load(tmp_path / "nowhere")


def test_prediction_contents_and_modalities() -> None:
    predictor = tiny_predictor()
    both = predictor.predict(patient(), alpha=0.1)
    assert len(both.outcomes) == 4 and all(0.0 <= o.probability <= 1.0 for o in both.outcomes)
    assert len(both.severity) == 3 and len(both.step_weights) == 3
    assert abs(sum(both.step_weights) - 1.0) < 1e-5
    lo_g = both.severity[0].values["geographic_extent"]
    assert 0.0 <= lo_g[1] <= lo_g[0] <= lo_g[2] <= 8.0
    ehr_only = predictor.predict(patient(), modalities="ehr")
    assert ehr_only.gate == 0.0 and ehr_only.severity == []
    # A wider α can only shrink conformal sets.
    wide = predictor.predict(patient(), alpha=0.4)
    assert all(w.prediction_set <= b.prediction_set for w, b in zip(wide.outcomes, both.outcomes, strict=True))


@pytest.mark.gpu
def test_mamba_ssm_kernel_matches_pure_pytorch() -> None:
    pytest.importorskip("mamba_ssm")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    block = MambaBlock(32).cuda().eval()
    x = torch.randn(2, 16, 32, device="cuda")
    with torch.no_grad():
        kernel = block(x)
        block.use_kernel = False
        reference = block(x)
    assert torch.allclose(kernel, reference, atol=1e-3)
