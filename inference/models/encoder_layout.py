"""The image encoder's ONNX export layout: its widest activations computed over channel groups.

Why: LiteMedSAM's TinyViT runs its first stage at the full 256 × 256 resolution, where each inverted-
residual block widens 64 channels to 256: one hidden activation is 64 MiB (float32, one image). ONNX
Runtime keeps the 1×1 conv's output, its GELU and the depthwise conv's output alive together, so these
blocks set the encoder's working-memory peak (161 MiB), and the CPU arena keeps that much resident for
the rest of the session (185 MiB after the first encode). The hidden channels are independent until the
last 1×1 conv, which sums over them: in 4 groups of 64 channels (conv1 rows, the depthwise conv and
conv3 columns of each group, the partial results added up) only a quarter of the hidden activation
exists at a time. The stage-0 merge (64 → 128 channels, then a stride-2 depthwise conv) is split the
same way, and so is every transformer block's MLP (fc1 rows, GELU, fc2 columns: stage 1's 16384 tokens ×
512 hidden are the next largest activations). Same function up to the order of the float sums (~4e-6
relative, far inside the export check's tolerance). Measured with ONNX Runtime 1.32 on 2 threads:
working-memory peak 161 → 80 MiB, arena resident after an encode 185 → 91 MiB, encoder time unchanged
(interleaved A/B: 0.98-0.99×).

Only the export uses this layout; the PyTorch engines keep the checkpoint's modules.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from inference.models.tinyvit import BasicLayer, Conv2d_BN, ConvLayer, MBConv, Mlp, PatchMerging, TinyViT

EXPORT_GROUPS = 4  # hidden-channel groups (8 measured no lower: stage 1's attention then sets the peak)


def _folded(module: Conv2d_BN) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of ``module``'s conv with its BatchNorm folded in (eval statistics), if not yet folded."""
    conv, bn = module.c, module.bn
    assert isinstance(conv, nn.Conv2d)
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype)
    if isinstance(bn, nn.BatchNorm2d):
        assert bn.running_var is not None and bn.running_mean is not None
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        weight = weight * scale.reshape(-1, 1, 1, 1)
        bias = bn.bias.detach() + (bias - bn.running_mean) * scale
    return weight, bias


def _conv(weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1, depthwise: bool = False) -> nn.Conv2d:
    out_ch, k = weight.shape[0], weight.shape[-1]
    conv = nn.Conv2d(out_ch if depthwise else weight.shape[1], out_ch, k, stride, k // 2,
                     groups=out_ch if depthwise else 1, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            assert conv.bias is not None
            conv.bias.copy_(bias)
    return conv


class GroupedConvBlock(nn.Module):
    """``conv3(gelu(dwconv2(gelu(conv1(x)))))`` (+ ``x``, then GELU, for an inverted-residual block) summed
    over groups of the hidden channels."""

    def __init__(self, conv1: Conv2d_BN, conv2: Conv2d_BN, conv3: Conv2d_BN, groups: int, residual: bool) -> None:
        super().__init__()
        (w1, b1), (w2, b2), (w3, b3) = _folded(conv1), _folded(conv2), _folded(conv3)
        assert isinstance(conv2.c, nn.Conv2d)
        stride = int(conv2.c.stride[0])
        hidden = w1.shape[0]
        if hidden % groups or w2.shape[0] != hidden or w2.shape[1] != 1 or w3.shape[1] != hidden:
            raise ValueError(f"not a 1×1 → depthwise → 1×1 block with {groups} equal channel groups")
        parts = [slice(g * hidden // groups, (g + 1) * hidden // groups) for g in range(groups)]
        self.residual = residual
        self.expand = nn.ModuleList(_conv(w1[p], b1[p]) for p in parts)
        self.depthwise = nn.ModuleList(_conv(w2[p], b2[p], stride, depthwise=True) for p in parts)
        self.project = nn.ModuleList(_conv(w3[:, p], b3 if i == 0 else None) for i, p in enumerate(parts))  # bias once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x if self.residual else None
        for expand, depthwise, project in zip(self.expand, self.depthwise, self.project, strict=True):
            y = project(F.gelu(depthwise(F.gelu(expand(x)))))
            total = y if total is None else total + y
        assert total is not None
        return F.gelu(total) if self.residual else total


class GroupedMerge(nn.Module):
    """:class:`~inference.models.tinyvit.PatchMerging` (4-D input) over hidden-channel groups."""

    def __init__(self, merge: PatchMerging, groups: int) -> None:
        super().__init__()
        self.block = GroupedConvBlock(merge.conv1, merge.conv2, merge.conv3, groups, residual=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x).flatten(2).transpose(1, 2)


class GroupedMlp(nn.Module):
    """:class:`~inference.models.tinyvit.Mlp` (LayerNorm, fc1, GELU, fc2) summed over hidden-unit groups."""

    def __init__(self, mlp: Mlp, groups: int) -> None:
        super().__init__()
        hidden = mlp.fc1.out_features
        if hidden % groups:
            raise ValueError(f"an MLP of {hidden} hidden units cannot be split into {groups} equal channel groups")
        parts = [slice(g * hidden // groups, (g + 1) * hidden // groups) for g in range(groups)]
        self.norm = mlp.norm
        self.fc1 = nn.ModuleList(_linear(mlp.fc1.weight[p], mlp.fc1.bias[p]) for p in parts)
        self.fc2 = nn.ModuleList(_linear(mlp.fc2.weight[:, p], mlp.fc2.bias if i == 0 else None)
                                 for i, p in enumerate(parts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        total: torch.Tensor | None = None
        for fc1, fc2 in zip(self.fc1, self.fc2, strict=True):
            y = fc2(F.gelu(fc1(x)))
            total = y if total is None else total + y
        assert total is not None
        return total


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight.detach())
        if bias is not None:
            assert layer.bias is not None
            layer.bias.copy_(bias.detach())
    return layer


def export_layout(encoder: nn.Module, groups: int = EXPORT_GROUPS) -> nn.Module:
    """A CPU copy of ``encoder``; for a :class:`~inference.models.tinyvit.TinyViT`, its stage-0 blocks and
    its MLPs run over ``groups`` channel groups (same function). The caller's encoder is not changed."""
    copied = copy.deepcopy(encoder).cpu().to(memory_format=torch.contiguous_format)
    if not (isinstance(copied, TinyViT) and isinstance(copied.layers[0], ConvLayer)):
        return copied
    stage0 = copied.layers[0]
    for i, block in enumerate(stage0.blocks):
        if isinstance(block, MBConv):
            stage0.blocks[i] = GroupedConvBlock(block.conv1, block.conv2, block.conv3, groups, residual=True)
    if isinstance(stage0.downsample, PatchMerging):
        stage0.downsample = GroupedMerge(stage0.downsample, groups)  # type: ignore[assignment]
    for layer in copied.layers[1:]:
        if isinstance(layer, BasicLayer):
            for block in layer.blocks:
                if isinstance(block.mlp, Mlp):
                    block.mlp = GroupedMlp(block.mlp, groups)  # type: ignore[assignment]
    return copied
