"""LiteMedSAM behind the :class:`SegmentationBackend` protocol on the CPU, without importing PyTorch.

Same embeddings as the PyTorch backend running its ONNX encoder (the same verified export), masks equal
to float rounding (numpy decoder, checked against PyTorch when it was written); the viewer process then
stays ~490 MiB smaller (``inference.models.cpu_runtime`` says why and when this path is used). The
prompt handling shared with the PyTorch backend lives here, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from inference.models.cpu_runtime import CpuLiteMedSAM
from inference.models.preprocess import PERCENTILES, PreprocessInfo, preprocess_slice_array
from inference.segmentation.backend import Box, Decoded, Embedding, Point, stability_score


def use_multimask(policy: bool | str, boxes: Box | None, points: Sequence[Point]) -> bool:
    """``"auto"``: SAM's three candidates only for an ambiguous prompt (points without a box)."""
    if isinstance(policy, bool):
        return policy
    return boxes is None and len(points) <= 1


def prompts_in_model_frame(
    info: PreprocessInfo, boxes: Box | None, points: Sequence[Point]
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Image-pixel box and clicks → (box, points, labels) in the model's 256 frame."""
    box_256 = None if boxes is None else info.box_to_model(np.asarray(boxes, dtype=np.float32))
    pts_256 = labels = None
    if len(points):
        pts_256 = info.coords_to_model(np.asarray([(p[0], p[1]) for p in points], dtype=np.float32))
        labels = np.asarray([1 if p[2] else 0 for p in points], dtype=np.int64)
    return box_256, pts_256, labels


def decoded_from_low_res(low: np.ndarray, iou: float, info: PreprocessInfo) -> Decoded:
    """The chosen mask token's (256, 256) logits → full-size mask, confidence inputs, mask-prompt logits."""
    h, w = info.new_size
    full = info.logits_to_original_array(low)
    return Decoded(mask=full > 0, iou=iou, stability=stability_score(low[:h, :w]), low_res=low)


class CpuLiteMedSAMBackend:
    """The torch-free LiteMedSAM; configured once (multimask policy), then called per slice/prompt."""

    def __init__(self, model: CpuLiteMedSAM, *, multimask: bool | str = "auto",
                 percentiles: tuple[float, float] = PERCENTILES) -> None:
        self.model = model
        self.model_id = model.model_id
        self.multimask = multimask
        self.percentiles = percentiles
        self.encoder_calls = 0
        self.encoder_engine = f"onnx, {model.threads} threads, without PyTorch ({model.engine})"
        self.on_message: Callable[[str], None] | None = None  # the protocol's; nothing to fall back from here

    def _embedding(self, features: np.ndarray, info: PreprocessInfo) -> Embedding:
        features = np.ascontiguousarray(features, dtype=np.float32)
        features.flags.writeable = False  # the decoder keeps per-embedding work keyed by this array
        return Embedding(features, info, self.model_id, features.nbytes)

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding:
        image, info = preprocess_slice_array(slice2d, window, self.percentiles)
        features = self.model.encode(image)
        self.encoder_calls += 1
        return self._embedding(features, info)

    def embed_many(
        self, slices: Sequence[np.ndarray], window: tuple[float, float] | None, batch: int = 8
    ) -> list[Embedding]:
        """Embeddings of several slices, ``batch`` per encoder call (same result as ``embed``)."""
        out: list[Embedding] = []
        step = max(1, batch)
        for start in range(0, len(slices), step):
            prepared = [preprocess_slice_array(s, window, self.percentiles) for s in slices[start : start + step]]
            features = self.model.encode(np.concatenate([image for image, _ in prepared]))
            self.encoder_calls += len(prepared)
            out.extend(self._embedding(features[i : i + 1].copy(), info) for i, (_, info) in enumerate(prepared))
        return out

    def decode(
        self, embedding: Embedding, boxes: Box | None, points: Sequence[Point] = (), mask_prompt: Any = None
    ) -> Decoded:
        from inference.models.numpy_decoder import decode

        info = embedding.info
        box_256, pts_256, labels = prompts_in_model_frame(info, boxes, points)
        features = embedding.features  # a PyTorch tensor if the lung segmenter embedded it into a shared cache
        logits, iou = decode(
            self.model.decoder, features if isinstance(features, np.ndarray) else np.asarray(features), box_256, pts_256, labels,
            None if mask_prompt is None else np.asarray(mask_prompt, dtype=np.float32),
            multimask=use_multimask(self.multimask, boxes, points), best=True, valid_size=info.new_size,
        )
        return decoded_from_low_res(np.asarray(logits[0], dtype=np.float32), float(iou[0]), info)
