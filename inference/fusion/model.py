"""MedFusion model: image-sequence encoder (Mamba or transformer) + FT-Transformer EHR encoder +
gated cross-attention fusion + multilabel outcome heads and per-image severity regression.

Configured once (:class:`FusionConfig`), then called. Every part is swappable for the ablation ladder:
``modalities`` ('both' | 'image' | 'ehr'), ``sequence`` ('mamba' | 'transformer' | 'last'), ``fusion``
('gated' | 'concat').

Volumes (CT, PET/CT): the sequence runs over slices (``times`` = mm along the slice axis). With
``secondary_dim > 0`` a second modality's per-slice features (PET) are projected on their own and
fused into each slice token through a learned, per-channel gate *before* the sequence model
(MINT-style intermediate fusion); slices without PET keep the CT token unchanged.

Missing data (NAIM): a missing EHR value is a *masked token* in attention, never imputed; a patient
without images or without EHR runs with that branch masked and the gate closed on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from inference.fusion.mamba import MambaBlock, TransformerSequence


@dataclass
class FusionConfig:
    feature_dim: int = 513
    n_numeric: int = 6
    categorical_sizes: tuple[int, ...] = (3, 6)  # categories + 'unknown' per categorical field
    d_model: int = 48
    heads: int = 4
    ehr_layers: int = 1
    dropout: float = 0.2
    n_outcomes: int = 4
    n_severity: int = 2
    modalities: str = "both"
    sequence: str = "mamba"
    fusion: str = "gated"
    secondary_dim: int = 0  # > 0: per-slice features of a second image modality (PET), fused per slice

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> FusionConfig:
        raw = dict(raw)
        raw["categorical_sizes"] = tuple(raw.get("categorical_sizes", (3, 6)))
        return cls(**raw)


@dataclass
class FusionOutput:
    logits: torch.Tensor  # (B, K)
    severity: torch.Tensor  # (B, L, 2) per image
    gate: torch.Tensor  # (B,) weight of the image path in [0, 1]
    step_weights: torch.Tensor  # (B, L) attention of the EHR query over time steps


class FTTransformer(nn.Module):
    """Feature tokenizer (one learned embedding per feature, scaled by its value) + transformer + CLS."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        d = config.d_model
        self.num_weight = nn.Parameter(torch.randn(config.n_numeric, d) * 0.1)
        self.num_bias = nn.Parameter(torch.zeros(config.n_numeric, d))
        self.cat_embeddings = nn.ModuleList(nn.Embedding(n, d) for n in config.categorical_sizes)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        layer = nn.TransformerEncoderLayer(
            d, config.heads, dim_feedforward=2 * d, dropout=config.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.ehr_layers, enable_nested_tensor=False)

    def tokens(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """(B, F) → (B, F, d): token i depends only on feature i (so masking one changes no other)."""
        num = numeric.unsqueeze(-1) * self.num_weight + self.num_bias
        cats = [emb(categorical[:, i]) for i, emb in enumerate(self.cat_embeddings)]
        return torch.cat([num, torch.stack(cats, dim=1)], dim=1) if cats else num

    def forward(
        self, numeric: torch.Tensor, categorical: torch.Tensor, missing: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """missing: (B, F) bool over numeric then categorical features → (CLS (B, d), tokens (B, 1+F, d))."""
        feats = self.tokens(torch.where(missing[:, : numeric.shape[1]], 0.0, numeric), categorical)
        batch = feats.shape[0]
        x = torch.cat([self.cls.expand(batch, -1, -1), feats], dim=1)
        pad = torch.cat([torch.zeros(batch, 1, dtype=torch.bool, device=x.device), missing], dim=1)
        x = self.encoder(x, src_key_padding_mask=pad)
        return x[:, 0], x


class MedFusionModel(nn.Module):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.image_proj = nn.Sequential(nn.LayerNorm(config.feature_dim), nn.Linear(config.feature_dim, d), nn.GELU())
        self.time_proj = nn.Linear(1, d)
        if config.secondary_dim > 0:  # created only when used: the shipped X-ray model's weights are unchanged
            self.secondary_proj = nn.Sequential(
                nn.LayerNorm(config.secondary_dim), nn.Linear(config.secondary_dim, d), nn.GELU())
            self.slice_gate = nn.Linear(2 * d, d)
        if config.sequence == "mamba":
            self.sequence: nn.Module = MambaBlock(d)
        elif config.sequence == "transformer":
            self.sequence = TransformerSequence(d, config.heads)
        else:
            self.sequence = nn.Identity()
        self.ehr = FTTransformer(config)
        self.ehr_to_image = nn.MultiheadAttention(d, config.heads, dropout=config.dropout, batch_first=True)
        self.image_to_ehr = nn.MultiheadAttention(d, config.heads, dropout=config.dropout, batch_first=True)
        self.gate = nn.Linear(2 * d, 1)
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)
        self.concat = nn.Linear(2 * d, d)
        self.heads = nn.Linear(d, config.n_outcomes)
        self.severity = nn.Linear(d, config.n_severity)

    def encode_images(
        self,
        features: torch.Tensor,
        times: torch.Tensor,
        image_mask: torch.Tensor,
        secondary: torch.Tensor | None = None,
        secondary_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        tokens = self.image_proj(features)
        if secondary is not None and self.config.secondary_dim > 0:
            present = (secondary_mask if secondary_mask is not None else image_mask).bool().unsqueeze(-1)
            sec = self.secondary_proj(secondary)
            gate = torch.sigmoid(self.slice_gate(torch.cat([tokens, sec], -1)))
            tokens = tokens + torch.where(present, gate * sec, torch.zeros_like(sec))
        tokens = tokens + self.time_proj(times.unsqueeze(-1) / 30.0)
        tokens = tokens * image_mask.unsqueeze(-1)
        if self.config.sequence in ("mamba", "transformer"):
            tokens = self.sequence(tokens, image_mask)
        return tokens

    def forward(
        self,
        features: torch.Tensor,  # (B, L, feature_dim) image features in time order (zeros where padded)
        times: torch.Tensor,  # (B, L) days
        image_mask: torch.Tensor,  # (B, L) bool, True = real image
        numeric: torch.Tensor,  # (B, n_numeric) standardised values (anything where missing)
        categorical: torch.Tensor,  # (B, n_cat) category indices
        ehr_missing: torch.Tensor,  # (B, n_numeric + n_cat) bool, True = missing
        secondary: torch.Tensor | None = None,  # (B, L, secondary_dim) PET features per slice
        secondary_mask: torch.Tensor | None = None,  # (B, L) bool, True = that slice has PET
    ) -> FusionOutput:
        cfg = self.config
        image_mask = image_mask.bool()
        if cfg.modalities == "ehr":
            image_mask = torch.zeros_like(image_mask)
        if cfg.modalities == "image":
            ehr_missing = torch.ones_like(ehr_missing, dtype=torch.bool)
        ehr_missing = ehr_missing.bool()
        img_tokens = self.encode_images(features, times, image_mask, secondary, secondary_mask)
        has_img = image_mask.any(dim=1)
        has_ehr = ~ehr_missing.all(dim=1)
        ehr_cls, ehr_tokens = self.ehr(numeric, categorical, ehr_missing)
        batch, length = image_mask.shape

        if cfg.sequence == "last":  # image-only baseline: the most recent image
            idx = (image_mask.long().cumsum(1).argmax(1)).clamp(min=0)
            weights = torch.zeros(batch, length, device=features.device)
            weights[torch.arange(batch), idx] = has_img.float()
        else:  # EHR CLS (or a neutral query when EHR is absent) attends over time steps
            safe = image_mask.clone()
            safe[:, 0] |= ~has_img
            query = ehr_cls.unsqueeze(1)
            _, weights = self.ehr_to_image(query, img_tokens, img_tokens, key_padding_mask=~safe)
            weights = weights[:, 0] * image_mask
            weights = weights / weights.sum(1, keepdim=True).clamp(min=1e-8)
        img_summary = (weights.unsqueeze(-1) * img_tokens).sum(1)

        if cfg.fusion == "gated":
            ehr_pad = torch.cat([torch.zeros(batch, 1, dtype=torch.bool, device=features.device), ehr_missing], 1)
            ctx, _ = self.image_to_ehr(img_summary.unsqueeze(1), ehr_tokens, ehr_tokens, key_padding_mask=ehr_pad)
            ehr_summary = ehr_cls + ctx[:, 0]
            gate = torch.sigmoid(self.gate(torch.cat([img_summary, ehr_summary], -1))).squeeze(-1)
            gate = torch.where(has_img & ~has_ehr, torch.ones_like(gate), gate)
            gate = torch.where(~has_img, torch.zeros_like(gate), gate)
            fused = gate.unsqueeze(-1) * img_summary + (1 - gate.unsqueeze(-1)) * ehr_summary
        else:
            gate = has_img.float() / (has_img.float() + has_ehr.float()).clamp(min=1.0)
            fused = self.concat(torch.cat([img_summary * has_img.unsqueeze(-1), ehr_cls * has_ehr.unsqueeze(-1)], -1))
        hidden = self.dropout(self.norm(fused))
        return FusionOutput(self.heads(hidden), self.severity(self.norm(img_tokens)), gate, weights)

    def normalisation_parameters(self) -> list[nn.Parameter]:
        """LayerNorm affine parameters: the only ones TENT may adapt."""
        return [p for m in self.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()]
