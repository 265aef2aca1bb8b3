"""Selective state-space (Mamba) block in pure PyTorch, with the ``mamba_ssm`` CUDA kernel when present.

Why pure PyTorch: ``mamba-ssm`` needs nvcc and a GPU to build, and the app must run on a laptop CPU.
The scan below is the reference recurrence of Gu & Dao (2023):
``h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t``, ``y_t = C_t h_t + D x_t``, with input-dependent Δ, B, C,
applied after a causal depthwise convolution and gated by SiLU(z). Sequences here are short (images over
time, slices of a volume), so a sequential scan over time is fast enough on CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def selective_scan(
    x: torch.Tensor, delta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
    d: torch.Tensor, mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """x, delta: (B, L, D); a: (D, N); b, c: (B, L, N); d: (D,); mask (B, L) bool = valid step.

    Padded steps (mask False) leave the state unchanged and output zero, so a padded batch gives the
    same result as running each sequence alone.
    """
    batch, length, dim = x.shape
    state = x.new_zeros(batch, dim, a.shape[1])
    outputs = []
    for t in range(length):
        dt = delta[:, t].unsqueeze(-1)  # (B, D, 1)
        decay = torch.exp(dt * a)  # (B, D, N)
        update = dt * b[:, t].unsqueeze(1) * x[:, t].unsqueeze(-1)
        new_state = decay * state + update
        if mask is not None:
            keep = mask[:, t].view(batch, 1, 1)
            new_state = torch.where(keep, new_state, state)
        state = new_state
        y = (state * c[:, t].unsqueeze(1)).sum(-1) + d * x[:, t]
        if mask is not None:
            y = y * mask[:, t].unsqueeze(-1)
        outputs.append(y)
    return torch.stack(outputs, dim=1)


def _cuda_kernel_available(x: torch.Tensor) -> bool:
    if not x.is_cuda:
        return False
    try:
        import mamba_ssm  # noqa: F401
    except ImportError:
        return False
    return True


class MambaBlock(nn.Module):
    """Pre-norm residual Mamba block over (B, L, d_model) with a key mask for padded steps."""

    def __init__(self, d_model: int, d_state: int = 16, expand: int = 2, d_conv: int = 4) -> None:
        super().__init__()
        inner = expand * d_model
        self.norm = nn.LayerNorm(d_model)
        self.in_proj = nn.Linear(d_model, 2 * inner)
        self.conv = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1)
        self.dt_rank = max(1, math.ceil(d_model / 16))
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, inner)
        a_init = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(inner, 1)
        self.a_log = nn.Parameter(torch.log(a_init))
        self.d = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, d_model)
        self.d_state = d_state
        self.use_kernel = True

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(tokens)
        if mask is not None:
            h = h * mask.unsqueeze(-1)
        x, z = self.in_proj(h).chunk(2, dim=-1)
        length = x.shape[1]
        x = F.silu(self.conv(x.transpose(1, 2))[..., :length].transpose(1, 2))
        dt_bc = self.x_proj(x)
        dt, b, c = torch.split(dt_bc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        a = -torch.exp(self.a_log)
        if self.use_kernel and mask is None and _cuda_kernel_available(x):
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

            y = selective_scan_fn(
                x.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous(), a,
                b.transpose(1, 2).contiguous(), c.transpose(1, 2).contiguous(), self.d.float(),
            ).transpose(1, 2)
        else:
            y = selective_scan(x, delta, a, b, c, self.d, mask)
        out = self.out_proj(y * F.silu(z))
        if mask is not None:
            out = out * mask.unsqueeze(-1)
        return tokens + out


class TransformerSequence(nn.Module):
    """Same-width transformer encoder layer, for the Mamba vs attention comparison."""

    def __init__(self, d_model: int, heads: int = 4) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=0.1, batch_first=True, norm_first=True
        )

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return self.layer(tokens)
        safe = mask.clone()
        safe[:, 0] |= ~mask.any(dim=1)  # an all-padded row would give NaN attention
        return self.layer(tokens, src_key_padding_mask=~safe) * mask.unsqueeze(-1)
