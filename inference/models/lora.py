"""LoRA adapters for the frozen LiteMedSAM image encoder (optional PEFT for the fusion predictor).

Why: the encoder's medical pre-training is kept frozen (and its features cached) by default; a
low-rank update of the attention projections is the light way to adapt it to a new task or site
without retraining 5 M parameters. ``B`` starts at zero, so an adapted encoder gives exactly the
frozen encoder's output until it is trained, and ``merge`` folds the update into the weights for
inference at the original speed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * x @ A.T @ B.T`` with the base layer frozen."""

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError("LoRA rank must be at least 1")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        return out + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def delta(self) -> torch.Tensor:
        return (self.lora_b @ self.lora_a) * self.scale

    def merge(self) -> None:
        """Fold the update into the base weight (inference speed of the plain layer)."""
        if not self.merged:
            with torch.no_grad():
                self.base.weight += self.delta()
            self.merged = True

    def unmerge(self) -> None:
        if self.merged:
            with torch.no_grad():
                self.base.weight -= self.delta()
            self.merged = False


def add_lora(
    module: nn.Module, rank: int = 4, alpha: float = 8.0, targets: Iterable[str] = ("qkv", "proj")
) -> list[nn.Parameter]:
    """Freeze ``module`` and wrap its ``nn.Linear`` children named in ``targets``; returns the new parameters."""
    wanted = set(targets)
    for p in module.parameters():
        p.requires_grad_(False)
    replaced: list[LoRALinear] = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if name in wanted and isinstance(child, nn.Linear):
                wrapped = LoRALinear(child, rank, alpha)
                setattr(parent, name, wrapped)
                replaced.append(wrapped)
    if not replaced:
        raise ValueError(f"no nn.Linear named {sorted(wanted)} found to adapt")
    return [p for layer in replaced for p in (layer.lora_a, layer.lora_b)]


def lora_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter weights (a few hundred kB): what a fine-tuned model needs to ship."""
    return {k: v.detach().clone() for k, v in module.state_dict().items() if ".lora_" in k or k.startswith("lora_")}
