"""LiteMedSAM behind the :class:`SegmentationBackend` protocol (the default backend)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from inference.models.litemedsam import (
    LiteMedSAM,
    cpu_bf16_supported,
    decode,
    encode,
    load_litemedsam,
    model_device,
)
from inference.models.preprocess import PERCENTILES, preprocess_slice
from inference.segmentation.backend import Box, Decoded, Embedding, Point, stability_score


class LiteMedSAMBackend:
    """Holds one loaded LiteMedSAM; configured once (multimask policy), then called per slice/prompt.

    ``decoder_bf16``: ``"auto"`` = bf16 autocast for the decoder on CPUs with native bf16.
    ``multimask``: ``"auto"`` asks for SAM's three candidate masks only when the prompt is ambiguous
    (points without a box) and keeps the one with the highest predicted IoU; ``True``/``False`` force it.
    """

    def __init__(
        self,
        model: LiteMedSAM,
        *,
        multimask: bool | str = "auto",
        percentiles: tuple[float, float] = PERCENTILES,
        decoder_bf16: bool | str = "auto",
    ) -> None:
        self.model = model
        if decoder_bf16 == "auto":
            decoder_bf16 = model_device(model).type == "cpu" and cpu_bf16_supported()
        # bf16 decoder on capable CPUs: 57 → 42 ms per prompt, 99.97 % identical mask pixels (benchmark).
        self.decoder_dtype = torch.bfloat16 if decoder_bf16 else None
        self.model_id = model.model_id
        self.multimask = multimask
        self.percentiles = percentiles
        self.encoder_calls = 0

    @classmethod
    def load(cls, device: torch.device | str = "cpu", **kwargs: Any) -> LiteMedSAMBackend:
        return cls(load_litemedsam(device), **kwargs)

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding:
        tensor, info = preprocess_slice(slice2d, window, self.percentiles)
        features = encode(self.model, tensor.to(model_device(self.model)))
        self.encoder_calls += 1
        return Embedding(features, info, self.model_id, features.numel() * features.element_size())

    def _use_multimask(self, boxes: Box | None, points: Sequence[Point]) -> bool:
        if isinstance(self.multimask, bool):
            return self.multimask
        return boxes is None and len(points) <= 1

    def decode(
        self,
        embedding: Embedding,
        boxes: Box | None,
        points: Sequence[Point] = (),
        mask_prompt: Any = None,
    ) -> Decoded:
        info = embedding.info
        box_256 = None if boxes is None else info.box_to_model(np.asarray(boxes, dtype=np.float32))
        pts_256 = labels = None
        if len(points):
            arr = np.asarray([(p[0], p[1]) for p in points], dtype=np.float32)
            pts_256 = info.coords_to_model(arr)
            labels = np.asarray([1 if p[2] else 0 for p in points], dtype=np.int64)
        logits, iou = decode(
            self.model,
            embedding.features,
            box_256,
            pts_256,
            labels,
            None if mask_prompt is None else np.asarray(mask_prompt, dtype=np.float32),
            multimask=self._use_multimask(boxes, points),
            cpu_dtype=self.decoder_dtype,
        )
        best = int(torch.argmax(iou))
        low = logits[best : best + 1]
        full = info.logits_to_original(low[None])[0, 0]
        low_np = low[0].cpu().numpy()
        h, w = info.new_size
        return Decoded(
            mask=(full > 0).cpu().numpy(),
            iou=float(iou[best]),
            stability=stability_score(low_np[:h, :w]),
            low_res=low_np,
        )
