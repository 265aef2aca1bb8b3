"""Box-prompt quality protocols shared by the quality tests and ``benchmarks/seg_quality.py``.

Boxes are derived from reference masks the way a user would draw them: the bounding box of the object
(one per lung: connected components of the lung mask) plus a margin. Corrective clicks after the box
follow the standard interactive-segmentation protocol (NoC evaluation of Xu et al. 2016 / RITM,
Sofiiuk et al. 2022, as used for SAM): each click goes to the pixel deepest inside the error region
(maximum of the distance transform over missed and false-positive pixels, the image border counting as
boundary); positive if that pixel was missed, negative if it is a false positive. This is what a
radiologist does in the viewer: box, then a click or two where the mask is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from inference.io.volume import Volume
from inference.segmentation.backend import Point
from inference.segmentation.postprocess import bbox, dice
from inference.segmentation.session import SegmentationSession


@dataclass
class CaseResult:
    name: str
    dice: float
    n_objects: int


@dataclass
class ClickCurve:
    """Dice after the boxes (``dice[0]``) and after each round of one corrective click per object."""

    name: str
    dice: list[float] = field(default_factory=list)
    n_objects: int = 0
    clicks: list[list[Point]] = field(default_factory=list)  # per object, in order


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


def components(mask2d: np.ndarray, max_objects: int = 2, min_fraction: float = 0.05) -> list[np.ndarray]:
    """The largest connected components (e.g. the two lungs) as masks, left to right."""
    labels, n = ndimage.label(mask2d > 0)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1][:max_objects]
    keep = [labels == (i + 1) for i in order if sizes[i] >= min_fraction * sizes.max()]
    return sorted(keep, key=lambda m: int(np.flatnonzero(m.any(axis=0))[0]))


def component_boxes(
    mask2d: np.ndarray, margin: float = 5.0, max_objects: int = 2, min_fraction: float = 0.05
) -> list[tuple[float, float, float, float]]:
    """Boxes (bbox + ``margin``) of the largest connected components, left to right."""
    return [padded_box(c, margin) for c in components(mask2d, max_objects, min_fraction)]


def _depth(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance to the nearest non-mask pixel, the image border counting as outside."""
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


def next_click(pred: np.ndarray, reference: np.ndarray, clicked: np.ndarray | None = None) -> Point | None:
    """The simulated user's next click (RITM's clicker), or ``None`` when the mask is perfect.

    Why the deepest error pixel: it is where a human clicks (the middle of the biggest mistake), and it
    is deterministic, so click curves are comparable between runs. Already clicked pixels are skipped.
    """
    pred, reference = pred.astype(bool), reference.astype(bool)
    error = pred ^ reference
    if clicked is not None:
        error &= ~clicked
    if not error.any():
        return None
    rows = np.flatnonzero(error.any(axis=1))
    cols = np.flatnonzero(error.any(axis=0))
    y0, y1 = max(rows[0] - 1, 0), rows[-1] + 2  # crop to the errors (+1 px so depth stays exact)
    x0, x1 = max(cols[0] - 1, 0), cols[-1] + 2
    crop = (slice(y0, y1), slice(x0, x1))
    fn = reference[crop] & ~pred[crop]
    fp = pred[crop] & ~reference[crop]
    fn_depth, fp_depth = _depth(fn), _depth(fp)
    if clicked is not None:
        fn_depth[clicked[crop]] = 0
        fp_depth[clicked[crop]] = 0
    positive = fn_depth.max() > fp_depth.max()
    depth = fn_depth if positive else fp_depth
    if depth.max() <= 0:
        return None
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return (float(x + x0), float(y + y0), bool(positive))


def segment_2d_objects(
    session: SegmentationSession, image: Volume, reference: np.ndarray, name: str = ""
) -> CaseResult:
    """One box per component of ``reference`` (a 2-D mask), one label each; Dice of their union."""
    session.set_image(image)
    boxes = component_boxes(reference)
    for i, box in enumerate(boxes):
        session.add_box(0, box, f"object{i + 1}")
    return CaseResult(name, dice(session.label_map[0] > 0, reference > 0), len(boxes))


def interactive_2d_objects(
    session: SegmentationSession,
    image: Volume,
    reference: np.ndarray,
    max_clicks: int = 3,
    margin: float = 5.0,
    name: str = "",
) -> ClickCurve:
    """One box per component of ``reference``, then up to ``max_clicks`` rounds of one simulated
    corrective click per object (:func:`next_click` against that object's component).

    Dice of the union after each round; an object whose mask is already perfect gets no more clicks.
    """
    session.set_image(image)
    parts = components(reference)
    labels = [f"object{i + 1}" for i in range(len(parts))]
    for part, label in zip(parts, labels, strict=True):
        session.add_box(0, padded_box(part, margin), label)
    target = reference > 0
    curve = ClickCurve(name, [dice(session.label_map[0] > 0, target)], len(parts), [[] for _ in parts])
    clicked = [np.zeros(target.shape, dtype=bool) for _ in parts]
    for _ in range(max_clicks):
        for i, (part, label) in enumerate(zip(parts, labels, strict=True)):
            click = next_click(session.mask_for(label)[0], part, clicked[i])
            if click is None:
                continue
            x, y, positive = click
            clicked[i][int(y), int(x)] = True
            curve.clicks[i].append(click)
            session.add_point(0, x, y, positive, label)
        curve.dice.append(dice(session.label_map[0] > 0, target))
    return curve


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
