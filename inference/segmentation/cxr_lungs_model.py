"""The lung head: LiteMedSAM's mask decoder with a learned prompt, fine-tuned to output both lungs.

Why this shape: the frozen image encoder already separates lung from mediastinum; what the bare model
lacks on CXR is the V7 annotators' notion of "lung" (consolidated parenchyma, retro-cardiac and
costophrenic parts) and a prompt. Here the user's box is replaced by learned prompt tokens, and one
decoder pass returns two masks through SAM's multimask tokens 1 and 2: the patient's right lung (image
left on a frontal film) and the left lung. Only the tensors that differ from the LiteMedSAM checkpoint
are shipped (see :data:`SHIPPED_PREFIXES`); the rest (the transformer's token MLPs) stays as published.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from inference.errors import ModelLoadError
from inference.models.preprocess import MODEL_SIDE

N_SIDES = 2
PROMPT_TOKENS = 2
SIDE_TOKENS = (1, 2)  # SAM's multimask tokens → right lung, left lung
FORMAT_VERSION = 1
# Parameter-name prefixes that are fine-tuned and shipped. The transformer's token MLPs (2.1 M of the
# decoder's 4.1 M parameters) and SAM's IoU head (unused) keep the LiteMedSAM weights.
SHIPPED_PREFIXES = (
    "prompt_tokens",
    "no_mask_embed",
    "decoder.iou_token",
    "decoder.mask_tokens",
    "decoder.output_upscaling",
    *(f"decoder.output_hypernetworks_mlps.{i}." for i in SIDE_TOKENS),
    "decoder.transformer.final_attn_token_to_image",
    "decoder.transformer.norm_final_attn",
    *(f"decoder.transformer.layers.{i}.{part}" for i in range(2)
      for part in ("self_attn", "norm1", "cross_attn_token_to_image", "norm2", "norm3", "norm4",
                   "cross_attn_image_to_token")),
)


class LungDecoder(nn.Module):
    """(B, 256, 64, 64) LiteMedSAM embeddings → (B, 2, 256, 256) logits (right, left lung) in the model frame."""

    def __init__(self, prompt_encoder: Any, mask_decoder: Any) -> None:
        """``prompt_encoder`` / ``mask_decoder``: LiteMedSAM's modules (SAM's attribute layout; copied)."""
        super().__init__()
        self.decoder: Any = copy.deepcopy(mask_decoder)
        self.pe_layer: Any = copy.deepcopy(prompt_encoder.pe_layer)  # fixed random Fourier features (a buffer)
        self._pe: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            self.no_mask_embed = nn.Parameter(prompt_encoder.no_mask_embed.weight.detach().clone().reshape(1, -1))
            # Start from the box prompt "whole lung field" (two corner tokens), as the pre-trained decoder knows it.
            box = torch.tensor([[[24.0, 20.0], [232.0, 220.0]]])
            corners = prompt_encoder.pe_layer.forward_with_coords(box + 0.5, prompt_encoder.input_image_size)
            corners[:, 0, :] += prompt_encoder.point_embeddings[2].weight[0]
            corners[:, 1, :] += prompt_encoder.point_embeddings[3].weight[0]
            self.prompt_tokens = nn.Parameter(corners[0].clone())
        self.threshold = 0.0  # logit threshold of "lung" (chosen on the val patients at export)
        self.keep_largest = True  # post-processing: one region per side, holes filled
        self.pool = 1  # token pooling the head was trained for (2: 32×32 tokens, logits at 128 px)

    def grid_pe(self, side: int, device: torch.device) -> torch.Tensor:
        """SAM's dense positional encoding for a side×side token grid over the same image frame."""
        pe = self._pe.get(side)
        if pe is None or pe.device != device:
            with torch.no_grad():
                pe = self.pe_layer((side, side)).unsqueeze(0).to(device)
            self._pe[side] = pe
        return pe

    def forward(self, embeddings: torch.Tensor, pool: int | None = None) -> torch.Tensor:
        """Logits at 4× the token grid. ``pool=2`` averages 2×2 tokens first (4× cheaper; logits at 128 px)."""
        pool = self.pool if pool is None else pool
        if pool > 1:
            embeddings = torch.nn.functional.avg_pool2d(embeddings, pool)
        d = self.decoder
        b = embeddings.shape[0]
        output_tokens = torch.cat([d.iou_token.weight, d.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens, self.prompt_tokens], dim=0).unsqueeze(0).expand(b, -1, -1)
        src = embeddings + self.no_mask_embed.reshape(1, -1, 1, 1)
        pos = self.grid_pe(embeddings.shape[-1], embeddings.device).expand(b, -1, -1, -1)
        hs, src = d.transformer(src, pos, tokens)
        c, h, w = embeddings.shape[1:]
        upscaled = d.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper = torch.stack([d.output_hypernetworks_mlps[i](hs[:, 1 + i, :]) for i in SIDE_TOKENS], dim=1)
        bu, cu, hu, wu = upscaled.shape
        return (hyper @ upscaled.reshape(bu, cu, hu * wu)).reshape(bu, N_SIDES, hu, wu)

    def frame_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, 2, 256, 256) logits in the padded model frame (bilinear up from a pooled head's 128 px)."""
        logits = self(embeddings)
        if logits.shape[-1] != MODEL_SIDE:
            logits = torch.nn.functional.interpolate(logits, size=(MODEL_SIDE, MODEL_SIDE), mode="bilinear",
                                                     align_corners=False)
        return logits

    def shipped_names(self) -> list[str]:
        return [n for n, _ in self.named_parameters() if n.startswith(SHIPPED_PREFIXES)]

    def set_trainable(self) -> list[nn.Parameter]:
        """Freeze everything but the shipped parameters; returns those."""
        wanted = set(self.shipped_names())
        params = []
        for name, p in self.named_parameters():
            p.requires_grad_(name in wanted)
            if name in wanted:
                params.append(p)
        return params

    def export_state(self) -> dict[str, torch.Tensor]:
        """The shipped tensors in fp16, plus the decision threshold and a format version."""
        named = dict(self.named_parameters())
        state = {n: named[n].detach().to(torch.float16).clone() for n in self.shipped_names()}
        state["threshold"] = torch.tensor(float(self.threshold))
        state["keep_largest"] = torch.tensor(bool(self.keep_largest))
        state["pool"] = torch.tensor(int(self.pool))
        state["format_version"] = torch.tensor(FORMAT_VERSION)
        return state

    def load_shipped(self, state: dict[str, torch.Tensor], name: str) -> None:
        """Overwrite the fine-tuned tensors from ``state``; any missing, extra or mis-shaped key is an error."""
        expected = set(self.shipped_names()) | {"threshold", "keep_largest", "pool", "format_version"}
        if not isinstance(state, dict) or set(state) != expected:
            got = set(state) if isinstance(state, dict) else set()
            detail = sorted(expected ^ got)[:3]
            raise ModelLoadError(f"Model file {name} is not a CXR lung decoder (keys differ: {', '.join(detail)}).")
        if int(state["format_version"]) != FORMAT_VERSION:
            raise ModelLoadError(f"Model file {name} has format {int(state['format_version'])}, expected {FORMAT_VERSION}.")
        named = dict(self.named_parameters())
        with torch.no_grad():
            for key in self.shipped_names():
                value = state[key]
                if not isinstance(value, torch.Tensor) or value.shape != named[key].shape:
                    raise ModelLoadError(f"Model file {name} does not match the lung decoder ({key}).")
                if not torch.isfinite(value).all():
                    raise ModelLoadError(f"Model file {name} holds non-finite weights ({key}).")
                named[key].copy_(value.float())
        threshold = float(state["threshold"])
        if not math.isfinite(threshold):
            raise ModelLoadError(f"Model file {name} holds a non-finite threshold.")
        self.threshold = threshold
        self.keep_largest = bool(state["keep_largest"])
        pool = int(state["pool"])
        if pool not in (1, 2):
            raise ModelLoadError(f"Model file {name} asks for token pooling {pool}; only 1 or 2 exist.")
        self.pool = pool
