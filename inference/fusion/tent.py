"""TENT test-time adaptation (Wang et al., 2021): minimise prediction entropy on the test inputs by
updating only the normalisation layers' affine parameters; everything else stays frozen.

Why only those: they re-centre features under a distribution shift (scanner, site, contrast) without
letting a single case rewrite what the model learned. The caller gets an adapted *copy*; the shipped
model is never modified.
"""

from __future__ import annotations

import copy

import torch

from inference.fusion.model import MedFusionModel


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    return -(p * torch.log(p.clamp(min=1e-6)) + (1 - p) * torch.log((1 - p).clamp(min=1e-6))).mean()


def tent_adapt(model: MedFusionModel, inputs: tuple[torch.Tensor, ...], steps: int = 10, lr: float = 1e-3) -> MedFusionModel:
    adapted = copy.deepcopy(model)
    adapted.eval()  # dropout off; LayerNorm has no running statistics
    for p in adapted.parameters():
        p.requires_grad_(False)
    params = adapted.normalisation_parameters()
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = binary_entropy(adapted(*inputs).logits)
        loss.backward()
        optimiser.step()
    for p in adapted.parameters():
        p.requires_grad_(False)
    return adapted
