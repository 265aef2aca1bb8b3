"""Automatic lungs in the viewer: the chest X-ray on screen → one editable "Lungs (automatic)" label.

Why a controller of its own: the lung segmenter (``inference.segmentation.cxr_lungs``) needs no prompt
and no tool, only the image; it runs on the task runner (progress in the status bar, the shell's cancel
stops it) and its result becomes one undoable model gesture on the current image's labels, so it can be
brushed, erased, undone and saved like any other mask. It is announced as a ``"model"`` gesture: the
clinical feature treats it as an AI mask of the case image, like a box prompt's result.

One label holds both lungs because the case keeps one lung mask per image; the sides (label values
1 = right, 2 = left) stay available from the API and ``segment --auto-lungs``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from inference.errors import UnsupportedInputError
from inference.io.volume import Volume
from inference.progress import CancelToken, ProgressCallback
from inference.segmentation.history import AI, Gesture, SliceDiff

if TYPE_CHECKING:
    from app.context import AppContext
    from inference.segmentation.cxr_lungs import LungSegmenter
    from inference.segmentation.session import SegmentationSession

CHANNEL = "auto_lungs"
LABEL_NAME = "Lungs (automatic)"
LABEL_COLOUR = (255, 170, 60)
GESTURE_KIND = "model"  # model output (the clinical feature's AI kinds include it)


class AutoLungsController:
    """``run()`` segments the shown X-ray's lungs in the background and adds them as one label."""

    def __init__(self, context: AppContext, load: Callable[[], LungSegmenter] | None = None) -> None:
        self.context, self.labels, self.document = context, context.labels, context.document
        self._load = load or self._default_load
        self._segmenter: LungSegmenter | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # the segmenter is not thread-safe

    def _default_load(self) -> LungSegmenter:
        """The verified lung head; shares the segmentation feature's embedding cache when it is installed."""
        from inference.segmentation.cxr_lungs import load_lung_segmenter

        seg = self.context.segmentation
        return load_lung_segmenter("auto", self.context.settings, cache=seg.cache if seg is not None else None)

    def segmenter(self) -> LungSegmenter:
        """Loaded once, on the first worker that needs it (``ModelLoadError`` if the weights are bad)."""
        with self._load_lock:
            if self._segmenter is None:
                self._segmenter = self._load()
            return self._segmenter

    def applicable(self, volume: Volume | None = None) -> bool:
        """True for a 2-D image (a chest X-ray); volumes have no automatic lung model."""
        volume = volume if volume is not None else self.document.volume
        return volume is not None and volume.is_2d

    def run(self) -> None:
        """Start the segmentation of the shown image (a second call replaces a running one)."""
        volume, session = self.document.volume, self.labels.session
        if volume is None:
            self.context.show_status("Open a chest X-ray first.")
            return
        if not self.applicable(volume):
            self.context.show_error(UnsupportedInputError(
                "Automatic lung segmentation works on 2-D chest X-rays only; this image is a volume."))
            return
        if session is None:  # the segmentation feature binds the labels to the image
            self.context.show_status("The lungs need the segmentation tools, which are not installed.")
            return
        image = np.asarray(volume.array[0])

        def work(progress: ProgressCallback, cancel: CancelToken) -> np.ndarray:
            progress(0.0, "Loading the lung model")
            segmenter = self.segmenter()
            with self._run_lock:  # a replaced run may still be finishing: one image at a time
                cancel.raise_if_cancelled()
                return segmenter.segment(image, progress=progress, cancel=cancel)

        self.context.runner.submit(CHANNEL, work, lambda result: self._apply(session, volume, result),
                                   self.context.show_error, "Segmenting the lungs")

    def _apply(self, session: SegmentationSession, volume: Volume, sides: np.ndarray) -> None:
        """On the UI thread: the lungs become a new label, as one undo step (dropped if the image changed)."""
        if self.labels.session is not session or self.document.volume is not volume:
            return
        lungs = np.asarray(sides) > 0
        if not lungs.any():
            self.context.show_status("No lungs found on this image (is it a frontal chest X-ray?).")
            return
        name = self.labels.add_label(free_name(set(self.labels.names()), LABEL_NAME), LABEL_COLOUR)
        with self.labels.lock:
            value = session.labels.find(name).value  # type: ignore[union-attr]  # just added
            place_pixels(session, value, lungs)
        self.labels.notify(GESTURE_KIND, name, (0, 0))
        drawn = int(lungs.sum())
        self.context.show_status(
            f"'{name}': {drawn:,} pixels from the automatic lung model (not a diagnosis). Brush (D) and "
            "eraser (E) edit it; Ctrl+Z removes it."
        )


def free_name(taken: set[str], base: str) -> str:
    """``base``, or ``base 2``, ``base 3``… when a label of that name exists (an earlier run is kept)."""
    if base not in taken:
        return base
    n = 2
    while f"{base} {n}" in taken:
        n += 1
    return f"{base} {n}"


def place_pixels(session: SegmentationSession, value: int, mask: np.ndarray) -> None:
    """Paint ``mask`` (H, W) into label ``value`` of a 2-D session as one undoable AI gesture; pixels of
    other labels are kept (call with the labels lock held)."""
    before = session.label_map[0]
    after = before.copy()
    after[mask & (after == 0)] = value
    gesture = Gesture(GESTURE_KIND)
    diff = SliceDiff.between(0, before, after)
    if diff is None:
        return
    gesture.diffs.append(diff)
    session.label_map[0] = after
    session.history.mark(value, AI)
    session.history.push(gesture)
