"""Prompt and result types of the segmentation session, and prompt validation (user errors)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from inference.errors import InvalidPromptError
from inference.segmentation.backend import Box, Point


@dataclass(frozen=True)
class SlicePrompt:
    """What the user gave for one label on one slice (a box and/or clicks)."""

    box: Box | None = None
    points: tuple[Point, ...] = ()


@dataclass
class SessionOptions:
    """Policy knobs, set once. Defaults are what the quality tests measured (docs/segmentation.md)."""

    keep_largest: bool = True  # one prompt = one object
    fill_holes: bool = True
    box_centre_point: bool = False  # add the box centre as a positive click
    clip_to_box: bool = True  # nothing outside the user's box belongs to the object
    # Logit threshold for 2-D X-ray masks (upstream: 0, i.e. sigmoid 0.5). LiteMedSAM under-segments
    # opaque and retro-cardiac lung on CXR (precision 0.98, recall 0.77); a lower threshold inside the
    # box recovers it. Chosen on the CXR dev split only (docs/segmentation.md); CT keeps 0.
    xray_mask_threshold: float = -6.0
    # How clicks refine a box on 2-D X-rays. "model": box + clicks go to the decoder (SAM's way; but
    # LiteMedSAM was trained on boxes only and largely ignores clicks: Dice drops). "threshold": the box's
    # logits are re-thresholded so each clicked pixel lands on its side (postprocess.click_threshold).
    xray_clicks: str = "threshold"
    propagate_margin_256: float = 3.0  # upstream's bbox_shift, in the 256 model frame
    propagate_mask_prompt: bool = True  # also feed the previous slice's logits as a mask prompt
    # Confidence = agreement of the drawn mask with the masks of jittered boxes (each side moved by this
    # fraction of the box size) and of the best-contrast window when another one is in use
    # (inference/segmentation/agreement.py). 0 = no jitter: the strip then shows the model's IoU guess.
    confidence_jitter: float = 0.1
    # Box and click gestures leave the confidence unscored (NaN) and :meth:`score_slice` scores it later: the
    # viewer draws the mask after one decode and fills the strip a moment after (the jittered decodes are 4-5
    # more decoder passes). Propagation always scores: its stop rule needs the confidence.
    defer_confidence: bool = False
    min_area_px: int = 5  # propagation stops when the object is smaller than this …
    min_confidence: float = 0.5  # … or the confidence (agreement) falls below this …
    max_growth: float = 3.0  # … or the area jumps by more than this factor (leaked into a neighbour) …
    min_overlap: float = 0.5  # … or less than this fraction of the mask touches the previous slice's …
    contrast_stop: bool = True  # … or the mask looks like the seed's surround (propagation.py) …
    contrast_fraction: float = 0.5  # … i.e. its median is not half-way from the surround to the object


@dataclass
class SliceResult:
    z: int
    area_px: int
    iou: float  # the model's own predicted IoU (not shown as confidence: it does not track Dice)
    stability: float
    confidence: float = float("nan")  # agreement under perturbations (agreement.py): what the strip shows


@dataclass
class PropagationResult:
    seed_z: int
    slices: dict[int, SliceResult] = field(default_factory=dict)  # z → result, seed included
    stop_reason: dict[str, str] = field(default_factory=dict)  # direction → why it stopped
    window: tuple[float, float] | None = None  # the CT window the model saw

    @property
    def confidence(self) -> dict[int, float]:
        return {z: r.confidence for z, r in sorted(self.slices.items())}

    @property
    def predicted_iou(self) -> dict[int, float]:
        return {z: r.iou for z, r in sorted(self.slices.items())}


def check_box(shape: tuple[int, ...], box: Sequence[float]) -> Box:
    """Order the corners, clip to the image; reject boxes outside it or thinner than a pixel."""
    if len(box) != 4:
        raise InvalidPromptError("A box needs four numbers: x0 y0 x1 y1.")
    if not all(math.isfinite(float(v)) for v in box):
        raise InvalidPromptError(f"A box needs four finite pixel coordinates, not {' '.join(f'{float(v):g}' for v in box)}.")
    x0, x1 = sorted((float(box[0]), float(box[2])))
    y0, y1 = sorted((float(box[1]), float(box[3])))
    h, w = shape
    if x1 < 0 or y1 < 0 or x0 > w - 1 or y0 > h - 1:
        raise InvalidPromptError(f"Box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}×{h} image.")
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, w - 1.0), min(y1, h - 1.0)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidPromptError("The box is too small: drag over the object.")
    return (x0, y0, x1, y1)


def check_point(shape: tuple[int, ...], x: float, y: float) -> None:
    h, w = shape
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidPromptError(f"A point needs finite pixel coordinates, not ({x:g}, {y:g}).")
    if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
        raise InvalidPromptError(f"Point ({x:g}, {y:g}) lies outside the {w}×{h} image.")
