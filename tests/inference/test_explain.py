"""Attribution sanity: IG completeness, single-feature models, occlusion localisation, cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from inference.errors import Cancelled
from inference.explain import (
    Attribution,
    Explainer,
    GradientShapExplainer,
    IntegratedGradientsExplainer,
    OcclusionExplainer,
    attribution_to_heatmap,
    rank_features,
)
from inference.progress import CancelToken

N_EHR = 6


class TinyFusion(nn.Module):
    """Nonlinear image + EHR model; the missing mask is a non-differentiable extra argument."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.ehr = nn.Sequential(nn.Linear(N_EHR, 8), nn.Tanh())
        self.head = nn.Sequential(nn.Linear(4 + 8, 8), nn.Softplus(), nn.Linear(8, 3))

    def forward(self, image: torch.Tensor, ehr: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        img = torch.tanh(self.conv(image)).mean((2, 3))
        e = self.ehr(ehr * (1 - missing))
        return self.head(torch.cat([img, e], 1))


def _inputs(b: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    image = torch.randn(b, 1, 12, 12, generator=g)
    ehr = torch.randn(b, N_EHR, generator=g)
    missing = torch.zeros(b, N_EHR)
    missing[:, 2] = 1.0
    return image, ehr, missing


def test_ig_completeness_and_matches_captum() -> None:
    model = TinyFusion().eval()
    image, ehr, missing = _inputs()
    ig = IntegratedGradientsExplainer(model, n_steps=64, steps_per_chunk=10)
    assert isinstance(ig, Explainer)
    res = ig((image, ehr), target=1, additional_forward_args=(missing,))
    assert isinstance(res, Attribution) and res.method == "integrated_gradients"
    assert res[0].shape == image.shape and res[1].shape == ehr.shape
    with torch.no_grad():
        diff = model(image, ehr, missing)[:, 1] - model(image * 0, ehr * 0, missing)[:, 1]
    torch.testing.assert_close(res.totals(), diff, atol=2e-3 * diff.abs().max().item() + 1e-4, rtol=0)
    assert res.delta is not None and res.delta.abs().max() < 2e-3 * diff.abs().max() + 1e-4
    # Masked feature contributes nothing; identical to Captum's own implementation.
    assert res[1][:, 2].abs().max() == 0
    ref = IntegratedGradients(model).attribute(
        (image, ehr), target=1, additional_forward_args=(missing,), n_steps=64
    )
    for mine, theirs in zip(res.attributions, ref, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)


def test_ig_nonzero_baseline_and_trapezoid() -> None:
    model = TinyFusion().eval()
    image, ehr, missing = _inputs(1)
    base = (torch.full_like(image, 0.5), ehr.mean())
    res = IntegratedGradientsExplainer(model, baselines=base, n_steps=200,
                                       integration="riemann_trapezoid")(
        (image, ehr), 0, additional_forward_args=(missing,))
    with torch.no_grad():
        diff = model(image, ehr, missing)[:, 0] - model(base[0], torch.full_like(ehr, float(ehr.mean())),
                                                        missing)[:, 0]
    assert abs(res.totals().item() - diff.item()) < 0.01 * abs(diff.item()) + 1e-3


class OneFeature(nn.Module):
    """Looks only at EHR feature 4 (nonlinearly); the image is ignored."""

    def forward(self, image: torch.Tensor, ehr: torch.Tensor) -> torch.Tensor:
        z = torch.sigmoid(3 * ehr[:, 4]) * 2 + 0 * image.sum((1, 2, 3))
        return torch.stack([-z, z], 1)


@pytest.mark.parametrize("kind", ["ig", "gshap"])
def test_single_feature_model_gets_all_attribution(kind: str) -> None:
    image, ehr, _ = _inputs(3)
    ehr[:, 4] = torch.tensor([1.5, -1.0, 0.8])
    if kind == "ig":
        explainer: Explainer = IntegratedGradientsExplainer(OneFeature(), n_steps=32)
    else:
        refs = (torch.randn(8, 1, 12, 12), torch.randn(8, N_EHR))
        explainer = GradientShapExplainer(OneFeature(), baselines=refs, n_samples=40, samples_per_chunk=16)
    res = explainer((image, ehr), target=1)
    total = res[0].abs().sum() + res[1].abs().sum()
    assert res[1][:, 4].abs().sum() / total > 0.99
    ranked = rank_features(res[1][0], [f"f{i}" for i in range(N_EHR)])
    assert ranked[0][0] == "f4" and ranked[0][1] > 0


def test_gradient_shap_reproducible_and_leaves_global_rng() -> None:
    model = TinyFusion().eval()
    image, ehr, missing = _inputs(1)
    gs = GradientShapExplainer(model, baselines=(torch.randn(4, 1, 12, 12), torch.randn(4, N_EHR)),
                               n_samples=12, samples_per_chunk=5, seed=3)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = gs((image, ehr), 2, additional_forward_args=(missing,))
    assert torch.rand(1) == expected_next
    b = gs((image, ehr), 2, additional_forward_args=(missing,))
    torch.testing.assert_close(a[0], b[0])
    assert a.delta is not None and a.delta.shape[0] == 12


class PatchModel(nn.Module):
    """Only the 4x4 patch at rows 8:12, cols 4:8 of a 16x16 image matters."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        s = image[:, 0, 8:12, 4:8].sum((1, 2))
        return torch.stack([torch.zeros_like(s), torch.relu(s)], 1)


def test_occlusion_finds_informative_patch_and_reports_progress() -> None:
    image = torch.rand(1, 1, 16, 16) + 0.5
    seen: list[float] = []
    occ = OcclusionExplainer(PatchModel(), sliding_window_shapes=((1, 4, 4),), strides=((1, 4, 4),),
                             perturbations_per_eval=3)
    res = occ((image,), target=1, progress=lambda f, m: seen.append(f))
    heat = res[0][0, 0]
    assert heat[8:12, 4:8].min() > 0
    outside = heat.clone()
    outside[8:12, 4:8] = 0
    assert outside.abs().max() == 0
    # 16 patches in chunks of 3 -> 6 evaluations + 1 unperturbed forward.
    assert res.extra["forward_calls"] == 7
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 8
    hm = attribution_to_heatmap(res[0], (32, 32), smooth_sigma=0)
    assert hm.dtype == np.float32 and hm.shape == (32, 32)
    assert hm[17:23, 9:15].min() > 0.9 and hm[:12].max() == 0 and hm[:, 20:].max() == 0


def test_occlusion_multiple_inputs_with_mask_arg() -> None:
    model = TinyFusion().eval()
    image, ehr, missing = _inputs(1)
    occ = OcclusionExplainer(model, sliding_window_shapes=((1, 6, 6), (1,)), strides=((1, 5, 5), (1,)))
    res = occ((image, ehr), 0, additional_forward_args=(missing,))
    assert res[1][0, 2] == 0 and res[0].abs().sum() > 0
    with torch.no_grad():
        for j in (0, 3, 5):  # window 1 on EHR = drop in the logit when feature j is zeroed
            ablated = ehr.clone()
            ablated[0, j] = 0
            expected = model(image, ehr, missing)[0, 0] - model(image, ablated, missing)[0, 0]
            torch.testing.assert_close(res[1][0, j], expected, atol=1e-5, rtol=1e-4)
        occluded = image.clone()
        occluded[0, 0, :6, :6] = 0  # the first window of the image
        expected = model(image, ehr, missing)[0, 0] - model(occluded, ehr, missing)[0, 0]
        torch.testing.assert_close(res[0][0, 0, 0, 0], expected, atol=1e-5, rtol=1e-4)
    assert res.extra["forward_calls"] == occ._n_evals((image, ehr))


def test_cancel_between_chunks() -> None:
    model = TinyFusion().eval()
    image, ehr, missing = _inputs(1)
    token = CancelToken()
    calls: list[float] = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        if len(calls) == 2:
            token.cancel()

    ig = IntegratedGradientsExplainer(model, n_steps=40, steps_per_chunk=5)
    with pytest.raises(Cancelled):
        ig((image, ehr), 0, additional_forward_args=(missing,), progress=progress, cancel=token)
    assert len(calls) == 2


def test_heatmap_modes_and_rank_errors() -> None:
    a = np.zeros((8, 8))
    a[2, 2], a[5, 5] = 4.0, -4.0
    signed = attribution_to_heatmap(a, mode="signed", smooth_sigma=0, clip_percentile=100)
    assert signed[2, 2] == 1.0 and signed[5, 5] == 0.0 and signed[0, 0] == 0.5
    pos = attribution_to_heatmap(torch.tensor(a)[None, None], mode="positive", smooth_sigma=0,
                                 clip_percentile=100)
    assert pos[2, 2] == 1.0 and pos[5, 5] == 0.0
    smooth = attribution_to_heatmap(a, (16, 16), smooth_sigma=1.0)
    assert 0 <= smooth.min() and smooth.max() <= 1 and smooth.shape == (16, 16)
    assert attribution_to_heatmap(np.zeros((4, 4))).max() == 0
    with pytest.raises(ValueError):
        attribution_to_heatmap(np.zeros(5))
    with pytest.raises(ValueError):
        rank_features(np.zeros(3), ["a", "b"])
    assert rank_features(np.array([0.1, -0.5, 0.3]), ["a", "b", "c"], top_k=2) == [("b", -0.5), ("c", 0.3)]
