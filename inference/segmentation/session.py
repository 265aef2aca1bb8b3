"""The interactive segmentation session: prompts → masks in one uint8 label map, 3-D propagation, undo.

Coordinates: boxes/points are ``(x = column, y = row)`` pixels on slice ``z`` (index along
``Volume.array`` axis 0). Each user action is one undoable gesture storing only the changed pixels.
Labels never take pixels owned by another label unless ``overwrite=True``.

CT window (``window="auto"``): each box chooses its own (windowing.py) and the label keeps it on that
slice and through propagation. Per-slice confidence is the agreement of the drawn mask under
perturbed prompts/windows (agreement.py), not the model's IoU guess. Propagation: propagation.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import cast

import numpy as np

from inference.errors import InvalidPromptError
from inference.io.volume import Volume
from inference.models.preprocess import DEFAULT_CT_WINDOW
from inference.progress import CancelToken, ProgressCallback, no_progress
from inference.segmentation.agreement import (
    Levels,
    agreement,
    intensity_agreement,
    jittered_boxes,
    jittered_points,
    object_contrast,
)
from inference.segmentation.backend import Box, Decoded, Embedding, SegmentationBackend
from inference.segmentation.cache import EmbeddingCache, cache_key, slice_hash
from inference.segmentation.click_merge import merge_click
from inference.segmentation.history import Gesture, History, SliceDiff, apply_diffs
from inference.segmentation.label_pages import clear_label_map, slices_in_use
from inference.segmentation.labels import Label, LabelTable
from inference.segmentation.postprocess import (
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
from inference.segmentation.windowing import Window, WindowChoice, choose_window

LabelKey = str | int | Label
Scored = tuple[Decoded, float]  # a mask and its confidence (agreement)


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
        self._windows: dict[tuple[int, int], Window | None] = {}  # (label, z) → window its mask was made in
        self._slice_keys: dict[int, str] = {}
        self._last_prompted: dict[int, int] = {}
        self.last_choice: WindowChoice | None = None  # the latest automatic window choice (for the UI)

    # ---- image and labels -------------------------------------------------------------------------
    def set_image(self, volume: Volume | np.ndarray) -> None:
        """Start on a new image: masks, prompts and history are cleared, labels kept."""
        self.volume = volume if isinstance(volume, Volume) else Volume(np.asarray(volume, dtype=np.float32))
        self.label_map = np.zeros(self.volume.shape, dtype=np.uint8)
        self._slice_keys.clear()
        self.reset()

    @property
    def is_ct(self) -> bool:
        vol = self._vol()
        return vol.units.upper() == "HU" or vol.modality.upper() == "CT"

    @property
    def window(self) -> Window | None:
        """The window for embeddings not yet tied to a prompt (precompute): the latest automatic choice,
        else ``ct_window``; ``None`` = percentile normalisation (X-ray, MR)."""
        if self.window_setting != "auto":
            return self.window_setting  # type: ignore[return-value]
        if not self.is_ct:
            return None
        return self.last_choice.window if self.last_choice is not None else self.ct_window

    def window_for(self, label: LabelKey, z: int, box: Box | None = None) -> Window | None:
        """The window the label's mask on slice ``z`` is (or will be) made in.

        A fixed ``window`` setting wins; on CT in "auto" a new box chooses its own (windowing.py), a
        click keeps the slice's window, and a slice without one takes the label's nearest prompted slice's.
        """
        if self.window_setting != "auto":
            return self.window_setting  # type: ignore[return-value]
        if not self.is_ct:
            return None
        value = self.label(label, create=False).value
        if box is not None:
            self.last_choice = choose_window(self._vol().array[z], box)
            return self.last_choice.window
        if (value, z) in self._windows:
            return self._windows[(value, z)]
        known = sorted((abs(zz - z), w) for (v, zz), w in self._windows.items() if v == value and w is not None)
        return known[0][1] if known else self.window

    def best_window(self, z: int, box: Box | None) -> Window | None:
        """The window showing ``box``'s object best on slice ``z`` (CT with a box showing some contrast)."""
        if box is None or not self.is_ct:
            return None
        choice = choose_window(self._vol().array[z], box)
        return choice.window if choice.shows_object else None

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
        """Per-slice confidence (agreement, see agreement.py) of the label's model-made masks."""
        v = self.label(label, create=False).value
        return {z: c for (lv, z), c in sorted(self._confidence.items(), key=lambda kv: kv[0][1]) if lv == v}

    def score_slice(self, label: LabelKey, z: int) -> float | None:
        """Score the confidence of slice ``z``'s model mask left unscored by a gesture
        (:attr:`SessionOptions.defer_confidence`); None when there is none to score (already scored, drawn
        over by hand, undone). The same decodes as an immediate score, so the value is the same."""
        key = (self.label(label, create=False).value, z)
        prompt, current = self._prompts.get(key), self._confidence.get(key)
        if prompt is None or current is None or not np.isnan(current):
            return None
        _decoded, confidence = self.decode_scored(z, prompt, self._windows.get(key))
        self._confidence[key] = confidence
        self.history.amend(("conf", *key), confidence)
        return confidence

    def unscored(self) -> list[tuple[int, int]]:
        """(label value, z) of model masks whose confidence is still to be scored (defer_confidence)."""
        return [key for key, c in self._confidence.items() if np.isnan(c)]

    def prompt(self, label: LabelKey, z: int) -> SlicePrompt | None:
        return self._prompts.get((self.label(label, create=False).value, z))

    # ---- prompts ----------------------------------------------------------------------------------
    def add_box(self, z: int, box: Sequence[float], label: LabelKey, overwrite: bool = False) -> SliceResult:
        """A new box replaces this label's prompt on slice ``z`` (its clicks are dropped)."""
        lab = self.label(label)
        prompt = SlicePrompt(self._check_box(z, box))
        return self._prompt_gesture("box", z, lab, prompt, self.window_for(lab, z, prompt.box), overwrite)

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
        window = self.window_for(lab, z, None if (lab.value, z) in self._windows else new.box)
        return self._prompt_gesture("point", z, lab, new, window, overwrite)

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
        ckey = (lab.value, z)
        if ckey in self._confidence and not np.array_equal(before, after):  # no longer the model's mask
            gesture.state[("conf", *ckey)] = (self._confidence.pop(ckey), None)
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
        See :mod:`inference.segmentation.propagation` for the prompts and the stop rules. On cancel the
        slices done so far are kept (undoable as one gesture) and :class:`Cancelled` is raised.
        """
        from inference.segmentation.propagation import Propagation

        lab = self.label(label, create=False)
        nz = self.label_map.shape[0]
        z_lo, z_hi = (0, nz - 1) if z_range is None else (min(z_range), max(z_range))
        if z_lo < 0 or z_hi >= nz:
            raise InvalidPromptError(f"Slice range {z_lo}..{z_hi} is outside the image (0..{nz - 1}).")
        if direction not in ("both", "up", "down"):
            raise InvalidPromptError(f"Unknown propagation direction '{direction}'.")
        seed = self._seed_slice(lab, z_lo, z_hi)
        self.score_slice(lab, seed)  # a deferred seed score: the propagation reports it
        return Propagation(self, lab, seed, overwrite).run(z_lo, z_hi, direction, progress, cancel)

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
        clear_label_map(self.label_map)  # only the slices drawn on: a fresh map stays unwritten (no 75 MiB)
        self._prompts.clear()
        self._confidence.clear()
        self._windows.clear()
        self._last_prompted.clear()
        self.history.clear()

    # ---- internals --------------------------------------------------------------------------------
    def _vol(self) -> Volume:
        if self.volume is None:
            raise InvalidPromptError("No image is loaded in the segmentation session.")
        return self.volume

    def embedding(self, z: int, window: Window | None | str = "default") -> Embedding:
        """The slice's embedding in ``window`` (default: :attr:`window`), from the cache when possible."""
        self._check_z(z)
        plane = self._vol().array[z]
        if z not in self._slice_keys:
            self._slice_keys[z] = slice_hash(plane)
        win: Window | None = self.window if window == "default" else window  # type: ignore[assignment]
        key = cache_key(self._slice_keys[z], self.backend.model_id, win)
        return self.cache.get_or_compute(key, lambda: self.backend.embed(plane, win))

    def decode_scored(
        self, z: int, prompt: SlicePrompt, window: Window | None, mask_prompt: object = None,
        levels: Levels | None = None, score: bool = True,
    ) -> Scored:
        """The mask for ``prompt`` and its confidence (agreement.py): the lowest of the mean Dice with
        jittered prompts' masks, the Dice with the best window's mask (when ``window`` is another one)
        and, on CT, the Dice with its half-maximum core (``levels``: the seed's, else this mask's).
        ``score=False``: the mask alone, confidence NaN (scored later by :meth:`score_slice`)."""
        emb = self.embedding(z, window)
        xray = window is None and self._vol().shape[0] == 1
        decoded = self._decode(prompt, emb, xray, mask_prompt)
        shape = self.label_map.shape[1:]
        fraction = self.options.confidence_jitter
        if not score:
            return decoded, float("nan")
        if fraction <= 0:
            return decoded, decoded.iou
        if prompt.box is not None:
            variants = [SlicePrompt(b, prompt.points) for b in jittered_boxes(prompt.box, shape, fraction)]
        else:
            step = max(2.0, fraction * 0.1 * max(shape))
            variants = [SlicePrompt(None, pts) for pts in jittered_points(prompt.points, shape, step)]
        confidence = agreement(decoded.mask, [self._decode(v, emb, xray, mask_prompt).mask for v in variants])
        best = self.best_window(z, prompt.box)
        if best is not None and best != window:  # the weaker of the two sources of doubt counts
            other = self._decode(prompt, self.embedding(z, best), False, mask_prompt).mask
            confidence = min(confidence, agreement(decoded.mask, [other]))
        if self.is_ct and decoded.mask.any():
            plane = self._vol().array[z]
            levels = levels if levels is not None else object_contrast(plane, decoded.mask)
            by_intensity = intensity_agreement(plane, decoded.mask, levels)
            confidence = confidence if by_intensity is None else min(confidence, by_intensity)
        return decoded, confidence

    def _decode(self, prompt: SlicePrompt, emb: Embedding, xray: bool, mask_prompt: object = None) -> Decoded:
        points = prompt.points
        if prompt.box is not None and self.options.box_centre_point and not points:
            x0, y0, x1, y1 = prompt.box
            points = (((x0 + x1) / 2, (y0 + y1) / 2, True),)
        if not xray:
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
        self, name: str, z: int, lab: Label, prompt: SlicePrompt, window: Window | None, overwrite: bool
    ) -> SliceResult:
        decoded, confidence = self.decode_scored(z, prompt, window, score=not self.options.defer_confidence)
        if name == "point":  # a click changes the label only around itself: hand strokes elsewhere stay
            x, y, _positive = prompt.points[-1]
            decoded.mask = merge_click(self.label_map[z] == lab.value, decoded.mask, x, y)
        gesture = Gesture(name)
        key = (lab.value, z)
        gesture.state[("prompt", *key)] = (self._prompts.get(key), prompt)
        self._prompts[key] = prompt
        self.write_model_mask(gesture, z, lab, (decoded, confidence), window, overwrite)
        self.history.push(gesture)
        self._last_prompted[lab.value] = z
        return SliceResult(z, int(decoded.mask.sum()), decoded.iou, decoded.stability, confidence)

    def write_model_mask(
        self, gesture: Gesture, z: int, lab: Label, scored: Scored, window: Window | None, overwrite: bool
    ) -> None:
        """Replace the label's pixels on slice ``z`` by the model's mask, respecting other labels."""
        decoded, confidence = scored
        before = self.label_map[z]
        after = before.copy()
        after[after == lab.value] = 0
        after[decoded.mask & ((after == 0) | overwrite)] = lab.value
        ckey = (lab.value, z)
        gesture.state[("conf", *ckey)] = (self._confidence.get(ckey), confidence)
        self._confidence[ckey] = confidence
        gesture.state[("window", *ckey)] = (self._windows.get(ckey), window)
        self._windows[ckey] = window
        self._commit_slice(gesture, z, after)

    def _commit_slice(self, gesture: Gesture, z: int, after: np.ndarray) -> None:
        diff = SliceDiff.between(z, self.label_map[z], after)
        if diff is not None:
            gesture.diffs.append(diff)
            self.label_map[z] = after

    def _restore_state(self, gesture: Gesture, forward: bool) -> None:
        targets: dict[str, dict] = {"prompt": self._prompts, "conf": self._confidence, "window": self._windows}
        for key, (before, after) in gesture.state.items():
            kind, value, z = cast(tuple[str, int, int], key)
            target = targets[kind]
            state = after if forward else before
            if state is None:
                target.pop((value, z), None)
            else:
                target[(value, z)] = state

    def _seed_slice(self, lab: Label, z_lo: int, z_hi: int) -> int:
        last = self._last_prompted.get(lab.value)
        if last is not None and z_lo <= last <= z_hi and (self.label_map[last] == lab.value).any():
            return last
        areas = np.zeros(z_hi - z_lo + 1, dtype=np.int64)  # slice by slice: no whole-range temporary
        for i in slices_in_use(self.label_map[z_lo : z_hi + 1]):
            areas[i] = np.count_nonzero(self.label_map[z_lo + i] == lab.value)
        if not areas.any():
            raise InvalidPromptError(
                f"Label '{lab.name}' has no mask in slices {z_lo}..{z_hi} to propagate from."
            )
        return z_lo + int(np.argmax(areas))

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
