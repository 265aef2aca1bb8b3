"""LoRA on the real LiteMedSAM encoder: identity at start, only adapters train, merge is exact."""

from __future__ import annotations

import pytest
import torch

from inference.models.lora import LoRALinear, add_lora, lora_state_dict


@pytest.fixture(scope="module")
def encoder():  # noqa: ANN201 - a fresh copy of the real TinyViT encoder (weights from the shipped checkpoint)
    from inference.models.litemedsam import load_litemedsam

    return load_litemedsam("cpu").image_encoder.float().eval()


def test_lora_on_the_encoder_starts_as_identity_and_trains_only_adapters(encoder) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        before = encoder(x)
    n_frozen = sum(p.numel() for p in encoder.parameters())
    params = add_lora(encoder, rank=2)
    assert params and all(p.requires_grad for p in params)
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in params}
    assert sum(p.numel() for p in params) < 0.05 * n_frozen
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), before, rtol=0, atol=0)
    out = encoder(x)
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in params)
    assert any(float(p.grad.abs().sum()) > 0 for p in params)
    assert set(lora_state_dict(encoder)) and all(".lora_" in k for k in lora_state_dict(encoder))


def test_merge_and_unmerge_are_exact_inverse() -> None:
    torch.manual_seed(0)
    layer = LoRALinear(torch.nn.Linear(16, 8), rank=3)
    with torch.no_grad():
        layer.lora_b.normal_()
    x = torch.randn(5, 16)
    with torch.no_grad():
        live = layer(x)
        layer.merge()
        merged = layer(x)
        layer.unmerge()
        back = layer(x)
    torch.testing.assert_close(merged, live, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(back, live, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        add_lora(torch.nn.Sequential(torch.nn.ReLU()))
