"""The interactive segmentation session: prompts → masks in one uint8 label map, 3-D propagation, undo.

Coordinates: boxes/points are ``(x = column, y = row)`` pixels on slice ``z`` (index along
``Volume.array`` axis 0). Each user action is one undoable gesture storing only the changed pixels.
Labels never take pixels owned by another label unless ``overwrite=True``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import cast

import numpy as np

from inference.errors import Cancelled, InvalidPromptError
from inference.io.volume import Volume
from inference.models.preprocess import DEFAULT_CT_WINDOW
from inference.progress import CancelToken, ProgressCallback, no_progress
from inference.segmentation.backend import Box, Decoded, Embedding, SegmentationBackend
from inference.segmentation.cache import EmbeddingCache, cache_key, slice_hash
from inference.segmentation.click_merge import merge_click
from inference.segmentation.history import Gesture, History, SliceDiff, apply_diffs
from inference.segmentation.labels import Label, LabelTable
from inference.segmentation.postprocess import (
    bbox,
    click_threshold,
    fill_holes,
    largest_component,
    low_res_to_logits,
)
from inference.segmentation.prompts import (
    PropagationResult,
    SessionOptions,
    SlicePrompt,
    SliceResult,
    check_box,
    check_point,
)

LabelKey = str | int | Label


class SegmentationSession:
    """One image, many labels; calls a backend and caches its embeddings."""

    def __init__(
        self,
        backend: SegmentationBackend,
        cache: EmbeddingCache | None = None,
        *,
        window: tuple[float, float] | None | str = "auto",
        ct_window: tuple[float, float] = DEFAULT_CT_WINDOW,
        options: SessionOptions | None = None,
        undo_budget_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.backend = backend
        self.cache = cache if cache is not None else EmbeddingCache.from_megabytes(1024)
        self.window_setting = window
        self.ct_window = ct_window
        self.options = options or SessionOptions()
        self.labels = LabelTable()
        self.history = History(undo_budget_bytes)
        self.volume: Volume | None = None
        self.label_map = np.zeros((1, 1, 1), dtype=np.uint8)
        self._prompts: dict[tuple[int, int], SlicePrompt] = {}
        self._confidence: dict[tuple[int, int], float] = {}
        self._slice_keys: dict[int, str] = {}
        self._last_prompted: dict[int, int] = {}

    # ---- image and labels -------------------------------------------------------------------------
    def set_image(self, volume: Volume | np.ndarray) -> None:
        """Start on a new image: masks, prompts and history are cleared, labels kept."""
        self.volume = volume if isinstance(volume, Volume) else Volume(np.asarray(volume, dtype=np.float32))
        self.label_map = np.zeros(self.volume.shape, dtype=np.uint8)
        self._slice_keys.clear()
        self.reset()

    @property
    def window(self) -> tuple[float, float] | None:
        """The intensity window used for the model input (``None``: percentile normalisation)."""
        if self.window_setting != "auto":
            return self.window_setting  # type: ignore[return-value]
        vol = self._vol()
        is_ct = vol.units.upper() == "HU" or vol.modality.upper() == "CT"
        return self.ct_window if is_ct else None

    def add_label(
        self, name: str, colour: tuple[int, int, int] | None = None, value: int | None = None
    ) -> Label:
        return self.labels.add(name, colour, value)

    def label(self, key: LabelKey, create: bool = True) -> Label:
        found = self.labels.find(key)
        if found is not None:
            return found
        if create and isinstance(key, str):
            return self.labels.add(key)
        raise InvalidPromptError(f"Unknown label {key!r}.")

    def mask_for(self, label: LabelKey) -> np.ndarray:
        return self.label_map == self.label(label, create=False).value

    def volume_ml(self, label: LabelKey) -> float:
        sx, sy, sz = self._vol().spacing
        return float(self.mask_for(label).sum()) * sx * sy * sz / 1000.0

    def area_mm2(self, label: LabelKey, z: int) -> float:
        sx, sy, _ = self._vol().spacing
        return float((self.label_map[z] == self.label(label, create=False).value).sum()) * sx * sy

    def confidence(self, label: LabelKey) -> dict[int, float]:
        """Per-slice predicted IoU of the label's model-made masks."""
        v = self.label(label, create=False).value
        return {z: c for (lv, z), c in sorted(self._confidence.items(), key=lambda kv: kv[0][1]) if lv == v}

    def prompt(self, label: LabelKey, z: int) -> SlicePrompt | None:
        return self._prompts.get((self.label(label, create=False).value, z))

    # ---- prompts ----------------------------------------------------------------------------------
    def add_box(self, z: int, box: Sequence[float], label: LabelKey, overwrite: bool = False) -> SliceResult:
        """A new box replaces this label's prompt on slice ``z`` (its clicks are dropped)."""
        lab = self.label(label)
        return self._prompt_gesture("box", z, lab, SlicePrompt(self._check_box(z, box)), overwrite)

    def add_point(
        self, z: int, x: float, y: float, positive: bool, label: LabelKey, overwrite: bool = False
    ) -> SliceResult:
        """A click refines this label's prompt on slice ``z``: its box plus all clicks so far. The label
        changes only in the regions around the click where the model's new mask differs from what is drawn
        (:func:`~inference.segmentation.click_merge.merge_click`): brush work elsewhere on the slice stays."""
        lab = self.label(label)
        self._check_point(z, x, y)
        old = self._prompts.get((lab.value, z), SlicePrompt())
        new = replace(old, points=(*old.points, (float(x), float(y), bool(positive))))
        return self._prompt_gesture("point", z, lab, new, overwrite)

    def apply_brush(
        self, z: int, mask2d: np.ndarray, label: LabelKey, erase: bool = False, overwrite: bool = False
    ) -> None:
        """Manual paint/erase of ``mask2d`` pixels on slice ``z``, undoable like any prompt."""
        lab = self.label(label)
        self._check_z(z)
        stroke = np.asarray(mask2d, dtype=bool)
        if stroke.shape != self.label_map.shape[1:]:
            raise InvalidPromptError(
                f"Brush mask shape {stroke.shape} does not match the slice {self.label_map.shape[1:]}."
            )
        before = self.label_map[z].copy()
        after = before.copy()
        if erase:
            after[stroke & (before == lab.value)] = 0
        else:
            after[stroke & ((before == 0) | overwrite)] = lab.value
        gesture = Gesture("erase" if erase else "brush")
        self._commit_slice(gesture, z, after)
        self.history.push(gesture)

    # ---- 3-D propagation --------------------------------------------------------------------------
    def propagate(
        self,
        label: LabelKey,
        z_range: tuple[int, int] | None = None,
        direction: str = "both",
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
        overwrite: bool = False,
    ) -> PropagationResult:
        """Carry the label from its seed slice to neighbours, one slice at a time (one gesture).

        The seed is the label's most recently prompted slice in ``z_range`` (else its largest slice).
        Each next slice is prompted with the previous mask's bounding box (+ margin); propagation
        stops when the object vanishes, confidence drops, the area explodes, or the range ends. On
        cancel the slices done so far are kept (undoable as one gesture) and :class:`Cancelled` is raised.
        """
        lab = self.label(label, create=False)
        nz = self.label_map.shape[0]
        z_lo, z_hi = (0, nz - 1) if z_range is None else (min(z_range), max(z_range))
        if z_lo < 0 or z_hi >= nz:
            raise InvalidPromptError(f"Slice range {z_lo}..{z_hi} is outside the image (0..{nz - 1}).")
        if direction not in ("both", "up", "down"):
            raise InvalidPromptError(f"Unknown propagation direction '{direction}'.")
        seed = self._seed_slice(lab, z_lo, z_hi)
        result = PropagationResult(seed)
        result.slices[seed] = SliceResult(
            seed,
            int((self.label_map[seed] == lab.value).sum()),
            self._confidence.get((lab.value, seed), 1.0),
            1.0,
        )
        runs = [(d, s) for d, s in (("up", 1), ("down", -1)) if direction in (d, "both")]
        total = sum((z_hi - seed) if s > 0 else (seed - z_lo) for _, s in runs) or 1
        done = 0
        gesture = Gesture("propagate")
        try:
            for name, step in runs:
                for z, decoded, reason in self._steps(lab, seed, step, z_lo, z_hi, cancel):
                    if decoded is None:
                        result.stop_reason[name] = reason
                        break
                    self._write_model_mask(gesture, z, lab, decoded, overwrite)
                    result.slices[z] = SliceResult(z, int(decoded.mask.sum()), decoded.iou, decoded.stability)
                    done += 1
                    progress(done / total, f"Propagating {lab.name}: slice {z}")
        except Cancelled:
            self.history.push(gesture)
            raise
        self.history.push(gesture)
        progress(1.0, f"Propagated {lab.name} over {len(result.slices)} slices")
        return result

    # ---- undo -------------------------------------------------------------------------------------
    def undo(self) -> bool:
        gesture = self.history.pop_undo()
        if gesture is None:
            return False
        apply_diffs(self.label_map, gesture, forward=False)
        self._restore_state(gesture, forward=False)
        return True

    def redo(self) -> bool:
        gesture = self.history.pop_redo()
        if gesture is None:
            return False
        apply_diffs(self.label_map, gesture, forward=True)
        self._restore_state(gesture, forward=True)
        return True

    def reset(self) -> None:
        """Clear all masks, prompts and history (labels and cached embeddings stay)."""
        self.label_map[...] = 0
        self._prompts.clear()
        self._confidence.clear()
        self._last_prompted.clear()
        self.history.clear()

    # ---- internals --------------------------------------------------------------------------------
    def _vol(self) -> Volume:
        if self.volume is None:
            raise InvalidPromptError("No image is loaded in the segmentation session.")
        return self.volume

    def embedding(self, z: int) -> Embedding:
        """The slice's embedding, from the cache when possible (only a miss runs the image encoder)."""
        self._check_z(z)
        plane = self._vol().array[z]
        if z not in self._slice_keys:
            self._slice_keys[z] = slice_hash(plane)
        window = self.window
        key = cache_key(self._slice_keys[z], self.backend.model_id, window)
        return self.cache.get_or_compute(key, lambda: self.backend.embed(plane, window))

    def _decode(self, z: int, prompt: SlicePrompt, mask_prompt: object = None) -> Decoded:
        points = prompt.points
        if prompt.box is not None and self.options.box_centre_point and not points:
            x0, y0, x1, y1 = prompt.box
            points = (((x0 + x1) / 2, (y0 + y1) / 2, True),)
        emb = self.embedding(z)
        if not (self.window is None and self._vol().shape[0] == 1):  # not a 2-D X-ray
            return self._clean(self.backend.decode(emb, prompt.box, points, mask_prompt), prompt.box)
        by_threshold = self.options.xray_clicks == "threshold" and prompt.box is not None
        decoded = self.backend.decode(emb, prompt.box, () if by_threshold else points, mask_prompt)
        logits = low_res_to_logits(decoded.low_res, emb.info)  # X-ray: own threshold (SessionOptions)
        if logits is not None:
            t = self.options.xray_mask_threshold
            decoded.mask = logits > (click_threshold(logits, points, t) if by_threshold else t)
        elif by_threshold and points:  # logits in another frame (MedSAM2): let the model take the clicks
            decoded = self.backend.decode(emb, prompt.box, points, mask_prompt)
        return self._clean(decoded, prompt.box)

    def _clean(self, decoded: Decoded, box: Box | None) -> Decoded:
        """Post-process a model mask: largest component, holes filled, clipped to the prompt box."""
        mask = decoded.mask
        if box is not None and self.options.clip_to_box:
            x0, y0, x1, y1 = (int(round(c)) for c in box)
            region = (slice(max(y0, 0), y1 + 1), slice(max(x0, 0), x1 + 1))
            clipped = np.zeros_like(mask)
            clipped[region] = self._tidy(mask[region])  # post-process the box crop only: cheaper
            decoded.mask = clipped
        else:
            decoded.mask = self._tidy(mask)
        return decoded

    def _tidy(self, mask: np.ndarray) -> np.ndarray:
        if self.options.keep_largest and mask.any():
            mask = largest_component(mask)
        if self.options.fill_holes and mask.any():
            mask = fill_holes(mask)
        return mask

    def _prompt_gesture(
        self, name: str, z: int, lab: Label, prompt: SlicePrompt, overwrite: bool
    ) -> SliceResult:
        decoded = self._decode(z, prompt)
        if name == "point":  # a click changes the label only around itself: hand strokes elsewhere stay
            x, y, _positive = prompt.points[-1]
            decoded.mask = merge_click(self.label_map[z] == lab.value, decoded.mask, x, y)
        gesture = Gesture(name)
        key = (lab.value, z)
        gesture.state[("prompt", *key)] = (self._prompts.get(key), prompt)
        self._prompts[key] = prompt
        self._write_model_mask(gesture, z, lab, decoded, overwrite)
        self.history.push(gesture)
        self._last_prompted[lab.value] = z
        return SliceResult(z, int(decoded.mask.sum()), decoded.iou, decoded.stability)

    def _write_model_mask(
        self, gesture: Gesture, z: int, lab: Label, decoded: Decoded, overwrite: bool
    ) -> None:
        """Replace the label's pixels on slice ``z`` by the model's mask, respecting other labels."""
        before = self.label_map[z]
        after = before.copy()
        after[after == lab.value] = 0
        after[decoded.mask & ((after == 0) | overwrite)] = lab.value
        ckey = (lab.value, z)
        gesture.state[("conf", *ckey)] = (self._confidence.get(ckey), decoded.iou)
        self._confidence[ckey] = decoded.iou
        self._commit_slice(gesture, z, after)

    def _commit_slice(self, gesture: Gesture, z: int, after: np.ndarray) -> None:
        diff = SliceDiff.between(z, self.label_map[z], after)
        if diff is not None:
            gesture.diffs.append(diff)
            self.label_map[z] = after

    def _restore_state(self, gesture: Gesture, forward: bool) -> None:
        for key, (before, after) in gesture.state.items():
            kind, value, z = cast(tuple[str, int, int], key)
            target: dict = self._prompts if kind == "prompt" else self._confidence
            state = after if forward else before
            if state is None:
                target.pop((value, z), None)
            else:
                target[(value, z)] = state

    def _seed_slice(self, lab: Label, z_lo: int, z_hi: int) -> int:
        last = self._last_prompted.get(lab.value)
        if last is not None and z_lo <= last <= z_hi and (self.label_map[last] == lab.value).any():
            return last
        areas = (self.label_map[z_lo : z_hi + 1] == lab.value).sum(axis=(1, 2))
        if not areas.any():
            raise InvalidPromptError(
                f"Label '{lab.name}' has no mask in slices {z_lo}..{z_hi} to propagate from."
            )
        return z_lo + int(np.argmax(areas))

    def _steps(
        self, lab: Label, seed: int, step: int, z_lo: int, z_hi: int, cancel: CancelToken | None
    ) -> Iterator[tuple[int, Decoded | None, str]]:
        """Slices after the seed in one direction; a ``None`` mask ends the run with a reason."""
        prev = self.label_map[seed] == lab.value
        memory = getattr(self.backend, "propagate_volume", None)
        if memory is not None:  # MedSAM2: the model's memory carries the object
            vol = self._vol().array
            for z, decoded in memory(vol, seed, prev, (z_lo, z_hi), step < 0, self.window, cancel):
                reason = self._stop_reason(decoded, int(prev.sum()))
                yield (z, None, reason) if reason else (z, self._clean(decoded, None), "")
                if reason:
                    return
                prev = decoded.mask
            yield seed, None, "end of range"
            return
        z = seed + step
        while z_lo <= z <= z_hi:
            if cancel is not None:
                cancel.raise_if_cancelled()
            found, reason = self._propagate_one(z, prev)
            yield z, found, reason
            if found is None:
                return
            prev = found.mask
            z += step
        yield z, None, "end of range"

    def _stop_reason(self, decoded: Decoded, prev_area: int) -> str:
        area = int(decoded.mask.sum())
        if area < self.options.min_area_px:
            return "object vanished"
        if decoded.iou < self.options.min_confidence:
            return f"low confidence ({decoded.iou:.2f})"
        if area > self.options.max_growth * max(prev_area, self.options.min_area_px):
            return "area jumped (leak into a neighbour)"
        return ""

    def _propagate_one(self, z: int, prev: np.ndarray) -> tuple[Decoded | None, str]:
        prev_area = int(prev.sum())
        box = bbox(prev)
        if box is None or prev_area < self.options.min_area_px:
            return None, "object vanished"
        emb = self.embedding(z)
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
        decoded = self._decode(z, SlicePrompt(grown), mask_prompt)
        reason = self._stop_reason(decoded, prev_area)
        return (None, reason) if reason else (decoded, "")

    def _check_z(self, z: int) -> None:
        nz = self.label_map.shape[0]
        if self.volume is None:
            raise InvalidPromptError("No image is loaded in the segmentation session.")
        if not 0 <= int(z) < nz:
            raise InvalidPromptError(f"Slice {z} is outside the image (0..{nz - 1}).")

    def _check_box(self, z: int, box: Sequence[float]) -> Box:
        self._check_z(z)
        return check_box(self.label_map.shape[1:], box)

    def _check_point(self, z: int, x: float, y: float) -> None:
        self._check_z(z)
        check_point(self.label_map.shape[1:], x, y)
