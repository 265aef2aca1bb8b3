"""Volumes as slice sequences: real LiteMedSAM slice features for CT (+ PET), MINT-style per-slice fusion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inference.errors import InvalidPromptError
from inference.fusion.cohort import NUMERIC_FIELDS
from inference.fusion.model import FusionConfig, MedFusionModel
from inference.fusion.volume_features import roi_slices, volume_slice_features
from inference.io.volume import Volume

DEMO_CT = Path(__file__).resolve().parents[2] / "resources" / "demo" / "ct"
N_EHR = len(NUMERIC_FIELDS) + 2


def ehr(batch: int = 1) -> list[torch.Tensor]:
    return [torch.zeros(batch, len(NUMERIC_FIELDS)), torch.ones(batch, 2, dtype=torch.long),
            torch.ones(batch, N_EHR, dtype=torch.bool)]


def test_roi_slices_follow_the_mask_and_are_thinned() -> None:
    mask = np.zeros((10, 4, 4), np.uint8)
    mask[[2, 3, 7], 1, 1] = 1
    assert roi_slices(mask, 10) == [2, 3, 7]
    assert roi_slices(None, 5) == [0, 1, 2, 3, 4]
    assert roi_slices(None, 200, max_slices=5) == [0, 50, 100, 149, 199]
    with pytest.raises(InvalidPromptError):
        roi_slices(np.zeros((3, 4, 4)), 3)


@pytest.fixture(scope="module")
def encoder():  # noqa: ANN201 - the real LiteMedSAM model in the X-ray feature extractor, loaded once
    from inference.fusion.features import FeatureExtractor
    from inference.models.litemedsam import load_litemedsam

    return FeatureExtractor(load_litemedsam("cpu"))


def test_ct_and_pet_slice_features_from_the_real_encoder(encoder) -> None:  # noqa: ANN001
    from inference.io.loader import open_image

    ct = open_image(DEMO_CT)
    z0 = ct.array.shape[0] // 2
    mask = np.zeros(ct.array.shape, np.uint8)
    mask[z0:z0 + 2, 200:300, 200:300] = 1
    pet_array = np.full(ct.array.shape, 0.5, np.float32)
    pet_array[z0:z0 + 2, 230:270, 230:270] = 8.0  # a hot lesion, SUV 8, inside the ROI
    pet = Volume(pet_array, ct.spacing, ct.origin, ct.direction, modality="PT", units="SUVbw")
    seen: list[float] = []
    seq = volume_slice_features(encoder, ct, mask, pet, progress=lambda f, _m: seen.append(f))
    assert seq.slices == [z0, z0 + 1] and seq.ct.shape == (2, 513) and seq.pet is not None
    assert seq.positions_mm == pytest.approx([0.0, float(ct.spacing[2])])
    assert seen[-1] == pytest.approx(1.0) and len(seen) == 4
    assert np.isfinite(seq.ct).all() and np.isfinite(seq.pet).all()
    assert np.abs(seq.ct - seq.pet).max() > 0.1  # PET is encoded on its own, not a copy of CT
    assert seq.ct[:, -1] == pytest.approx(seq.pet[:, -1])  # same ROI area on both

    model = MedFusionModel(FusionConfig(secondary_dim=513)).eval()
    with torch.no_grad():
        out = model(**seq.tensors(), numeric=ehr()[0], categorical=ehr()[1], ehr_missing=ehr()[2])
    assert out.logits.shape == (1, 4) and torch.isfinite(out.logits).all()
    with pytest.raises(InvalidPromptError):
        volume_slice_features(encoder, ct, mask[:, :10], pet)
    with pytest.raises(InvalidPromptError):
        volume_slice_features(encoder, ct, mask, Volume(pet_array[:, :100]))


def _slice_inputs(length: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"features": torch.randn(2, length, 513, generator=g), "times": torch.arange(length).float()[None].repeat(2, 1) * 2.5,
            "image_mask": torch.ones(2, length, dtype=torch.bool), "secondary": torch.randn(2, length, 513, generator=g)}


def _run(model: MedFusionModel, **kw: torch.Tensor) -> torch.Tensor:
    return model.encode_images(kw["features"], kw["times"], kw["image_mask"], kw.get("secondary"),
                               kw.get("secondary_mask"))


def test_pet_is_fused_per_slice_before_the_sequence_model() -> None:
    torch.manual_seed(0)
    model = MedFusionModel(FusionConfig(secondary_dim=513)).eval()
    x = _slice_inputs()
    with torch.no_grad():
        ct_only = _run(model, features=x["features"], times=x["times"], image_mask=x["image_mask"])
        no_pet = _run(model, **x, secondary_mask=torch.zeros(2, 5, dtype=torch.bool))
        both = _run(model, **x)
        changed = dict(x)
        changed["secondary"] = x["secondary"].clone()
        changed["secondary"][:, 1] = torch.randn(2, 513, generator=torch.Generator().manual_seed(9))  # not a shift: LayerNorm removes those
        later = _run(model, **changed)
    assert torch.equal(ct_only, no_pet)  # slices without PET keep the CT token exactly
    assert (both - ct_only).abs().max() > 1e-3
    # PET of slice 1 is mixed into slice 1's token, then the causal scan carries it to later slices only
    assert torch.equal(later[:, 0], both[:, 0]) and (later[:, 3] - both[:, 3]).abs().max() > 1e-4


def test_pet_branch_trains_and_xray_models_are_unchanged() -> None:
    torch.manual_seed(0)
    model = MedFusionModel(FusionConfig(secondary_dim=513)).train()
    x = _slice_inputs()
    numeric, categorical, missing = ehr(2)
    out = model(**x, numeric=numeric, categorical=categorical, ehr_missing=missing)
    out.logits.sum().backward()
    grads = [p.grad for p in (*model.secondary_proj.parameters(), *model.slice_gate.parameters())]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    plain = MedFusionModel(FusionConfig())  # the shipped X-ray config: no PET parameters at all
    assert not any(name.startswith(("secondary_proj", "slice_gate")) for name, _ in plain.named_parameters())
