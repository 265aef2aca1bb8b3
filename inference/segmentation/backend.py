"""The one interface the session talks to, so LiteMedSAM and MedSAM2 are interchangeable.

A backend turns a 2-D slice into an :class:`Embedding` (expensive, cached by the caller) and decodes
prompts against it (cheap, run on every click).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from inference.models.preprocess import PreprocessInfo

Point = tuple[float, float, bool]  # (x = column, y = row, positive)
Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in pixels of the original slice


@dataclass
class Embedding:
    """Backend-specific image features of one slice plus the geometry to map prompts into them."""

    features: Any
    info: PreprocessInfo
    model_id: str
    nbytes: int


@dataclass
class Decoded:
    """One object's mask on one slice."""

    mask: np.ndarray  # bool (H, W)
    iou: float  # the model's predicted IoU of this mask
    stability: float  # SAM stability score: IoU of the masks thresholded at +1 and -1
    low_res: Any = None  # backend-specific logits reusable as a mask prompt on a neighbouring slice


@runtime_checkable
class SegmentationBackend(Protocol):
    """``embed`` once per slice, ``decode`` per prompt. ``model_id`` keys the embedding cache."""

    @property
    def model_id(self) -> str: ...

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding: ...

    def decode(
        self,
        embedding: Embedding,
        boxes: Box | None,
        points: Sequence[Point] = (),
        mask_prompt: Any = None,
    ) -> Decoded: ...


def stability_score(logits: np.ndarray, offset: float = 1.0) -> float:
    """SAM's stability: |logits > offset| / |logits > -offset| (1.0 when the mask is crisp)."""
    outer = int((logits > -offset).sum())
    if outer == 0:
        return 0.0
    return float((logits > offset).sum()) / outer
