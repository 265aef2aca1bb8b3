"""3-D propagation of one label from its seed slice, slice by slice, stopping where the object ends.

Each next slice is prompted with the previous mask's bounding box (+ ``propagate_margin_256`` in the
model frame) and, optionally, the previous mask as a mask prompt, in the window the seed was drawn in.
A box alone always yields *some* mask, so the run stops (and the slice is not drawn) when the new mask

- is smaller than ``min_area_px`` (the object vanished),
- has a confidence (agreement.py) under ``min_confidence``,
- grew more than ``max_growth`` times the previous area (leaked into a neighbour),
- overlaps the previous slice's mask for less than ``min_overlap`` of its area (jumped to another
  structure: an object moves continuously between adjacent slices),
- or looks like the seed's surround rather than like the object (``contrast_stop``): its median
  intensity is not at least ``contrast_fraction`` (0.5: half-way, the half-maximum edge of a
  partial-volume boundary) of the seed's object–surround contrast away from the surround (checked
  when that contrast exceeds two robust SDs of the surround). Past a lesion's end the model still
  outlines a patch of lung or liver; on a lesion's last, partial-volume slice it often outlines a
  faint blob several times the size of the lesion's part there (mostly surround): both are dropped,
  which costs less Dice than drawing them (docs/segmentation.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from inference.errors import Cancelled
from inference.progress import CancelToken, ProgressCallback
from inference.segmentation.agreement import object_contrast
from inference.segmentation.backend import Box, Decoded
from inference.segmentation.history import Gesture
from inference.segmentation.labels import Label
from inference.segmentation.postprocess import bbox
from inference.segmentation.prompts import PropagationResult, SlicePrompt, SliceResult

if TYPE_CHECKING:
    from inference.segmentation.session import Scored, SegmentationSession

Step = tuple[int, "Scored | None", str]


class Propagation:
    """One propagation run of ``lab`` from ``seed`` in ``session`` (one undoable gesture)."""

    def __init__(self, session: SegmentationSession, lab: Label, seed: int, overwrite: bool) -> None:
        self.session, self.lab, self.seed, self.overwrite = session, lab, seed, overwrite
        self.options = session.options
        self.window = session.window_for(lab, seed)
        self.volume = session._vol().array  # noqa: SLF001 - the session's own image
        seed_mask = session.label_map[seed] == lab.value
        self.contrast = object_contrast(self.volume[seed], seed_mask) if session.is_ct else None

    def run(
        self, z_lo: int, z_hi: int, direction: str, progress: ProgressCallback, cancel: CancelToken | None
    ) -> PropagationResult:
        session, lab, seed = self.session, self.lab, self.seed
        result = PropagationResult(seed, window=self.window)
        seed_conf = session.confidence(lab).get(seed, 1.0)
        result.slices[seed] = SliceResult(
            seed, int((session.label_map[seed] == lab.value).sum()), float("nan"), float("nan"), seed_conf
        )
        runs = [(d, s) for d, s in (("up", 1), ("down", -1)) if direction in (d, "both")]
        total = sum((z_hi - seed) if s > 0 else (seed - z_lo) for _, s in runs) or 1
        done = 0
        gesture = Gesture("propagate")
        try:
            for name, step in runs:
                for z, scored, reason in self._steps(step, z_lo, z_hi, cancel):
                    if scored is None:
                        result.stop_reason[name] = reason
                        break
                    decoded, confidence = scored
                    session.write_model_mask(gesture, z, lab, scored, self.window, self.overwrite)
                    result.slices[z] = SliceResult(
                        z, int(decoded.mask.sum()), decoded.iou, decoded.stability, confidence
                    )
                    done += 1
                    progress(done / total, f"Propagating {lab.name}: slice {z}")
        except Cancelled:
            session.history.push(gesture)
            raise
        session.history.push(gesture)
        progress(1.0, f"Propagated {lab.name} over {len(result.slices)} slices")
        return result

    def _steps(self, step: int, z_lo: int, z_hi: int, cancel: CancelToken | None) -> Iterator[Step]:
        """Slices after the seed in one direction; a ``None`` mask ends the run with a reason."""
        prev = self.session.label_map[self.seed] == self.lab.value
        memory = getattr(self.session.backend, "propagate_volume", None)
        if memory is not None:  # MedSAM2: the model's memory carries the object
            frames = memory(self.volume, self.seed, prev, (z_lo, z_hi), step < 0, self.window, cancel)
            for z, decoded in frames:
                decoded = self.session._clean(decoded, None)  # noqa: SLF001 - same clean-up as prompts
                reason = self._stop_reason(z, decoded, decoded.iou, prev)
                yield (z, None, reason) if reason else (z, (decoded, decoded.iou), "")
                if reason:
                    return
                prev = decoded.mask
            yield self.seed, None, "end of range"
            return
        z = self.seed + step
        while z_lo <= z <= z_hi:
            if cancel is not None:
                cancel.raise_if_cancelled()
            scored, reason = self._next(z, prev)
            yield z, scored, reason
            if scored is None:
                return
            prev = scored[0].mask
            z += step
        yield z, None, "end of range"

    def _next(self, z: int, prev: np.ndarray) -> tuple[Scored | None, str]:
        box = bbox(prev)
        if box is None or int(prev.sum()) < self.options.min_area_px:
            return None, "object vanished"
        session = self.session
        emb = session.embedding(z, self.window)
        h, w = prev.shape
        margin = self.options.propagate_margin_256 / min(emb.info.scale_xy)
        x0, y0, x1, y1 = box
        grown: Box = (
            max(x0 - margin, 0.0),
            max(y0 - margin, 0.0),
            min(x1 + margin, w - 1.0),
            min(y1 + margin, h - 1.0),
        )
        mask_prompt = None
        if self.options.propagate_mask_prompt:
            mask_prompt = (emb.info.mask_to_model(prev) * 2.0 - 1.0) * 8.0
        decoded, confidence = session.decode_scored(z, SlicePrompt(grown), self.window, mask_prompt, self.contrast)
        reason = self._stop_reason(z, decoded, confidence, prev)
        return (None, reason) if reason else ((decoded, confidence), "")

    def _stop_reason(self, z: int, decoded: Decoded, confidence: float, prev: np.ndarray) -> str:
        opts = self.options
        mask = decoded.mask
        area, prev_area = int(mask.sum()), int(prev.sum())
        if area < opts.min_area_px:
            return "object vanished"
        if confidence < opts.min_confidence:
            return f"low confidence ({confidence:.2f})"
        if area > opts.max_growth * max(prev_area, opts.min_area_px):
            return "area jumped (leak into a neighbour)"
        near_prev = ndimage.binary_dilation(prev, iterations=2)
        if float((mask & near_prev).sum()) < opts.min_overlap * area:
            return "mask moved away from the previous slice's"
        if opts.contrast_stop and self.contrast is not None:
            obj, surround, spread = self.contrast
            if abs(obj - surround) > 2.0 * spread:  # the seed object stands out from its surround
                here = float(np.median(self.volume[z][mask]))
                if (here - surround) * np.sign(obj - surround) < opts.contrast_fraction * abs(obj - surround):
                    return "mask looks like the surround, not the object"
        return ""
