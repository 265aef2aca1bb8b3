"""Box-prompt quality protocols shared by the quality tests and ``benchmarks/seg_quality.py``.

Boxes are derived from reference masks the way a user would draw them: the bounding box of the object
(one per lung: connected components of the lung mask) plus a margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from inference.io.volume import Volume
from inference.segmentation.postprocess import bbox, dice
from inference.segmentation.session import SegmentationSession


@dataclass
class CaseResult:
    name: str
    dice: float
    n_objects: int


def padded_box(mask2d: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    b = bbox(mask2d)
    if b is None:
        raise ValueError("empty mask has no box")
    h, w = mask2d.shape
    x0, y0, x1, y1 = b
    return (
        max(x0 - margin, 0.0),
        max(y0 - margin, 0.0),
        min(x1 + margin, w - 1.0),
        min(y1 + margin, h - 1.0),
    )


def component_boxes(
    mask2d: np.ndarray, margin: float = 5.0, max_objects: int = 2, min_fraction: float = 0.05
) -> list[tuple[float, float, float, float]]:
    """Boxes of the largest connected components (e.g. the two lungs), left to right."""
    labels, n = ndimage.label(mask2d > 0)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1][:max_objects]
    keep = [i + 1 for i in order if sizes[i] >= min_fraction * sizes.max()]
    boxes = [padded_box(labels == k, margin) for k in keep]
    return sorted(boxes, key=lambda b: b[0])


def segment_2d_objects(
    session: SegmentationSession, image: Volume, reference: np.ndarray, name: str = ""
) -> CaseResult:
    """One box per component of ``reference`` (a 2-D mask), one label each; Dice of their union."""
    session.set_image(image)
    boxes = component_boxes(reference)
    for i, box in enumerate(boxes):
        session.add_box(0, box, f"object{i + 1}")
    return CaseResult(name, dice(session.label_map[0] > 0, reference > 0), len(boxes))


def segment_3d_lesion(
    session: SegmentationSession, image: Volume, reference: np.ndarray, margin: float = 5.0, name: str = ""
) -> tuple[CaseResult, dict[int, float]]:
    """Box (mask bbox + margin) on the lesion's centre slice, propagated through its z-range; 3-D Dice."""
    zs = np.flatnonzero(reference.any(axis=(1, 2)))
    if zs.size == 0:
        raise ValueError("empty reference mask")
    z_mid = int(zs[len(zs) // 2])
    session.set_image(image)
    session.add_box(z_mid, padded_box(reference[z_mid] > 0, margin), "lesion")
    result = session.propagate("lesion", (int(zs[0]), int(zs[-1])))
    return CaseResult(name, dice(session.mask_for("lesion"), reference > 0), 1), result.confidence
