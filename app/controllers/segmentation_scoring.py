"""The confidence of a box or click mask, scored on the worker right after the mask is drawn (issue 17).

Why: the confidence (agreement with jittered boxes and the best window, inference/segmentation/agreement.py)
costs 4-5 more decoder passes than the mask itself; the session leaves it unscored
(``SessionOptions.defer_confidence``) so the mask reaches the screen after one pass, and this task fills
the confidence strip and the message a moment later. It scores every unscored mask, not only the newest
(a newer gesture may have cancelled an earlier score), one slice at a time under the gesture lock so a
new stroke never waits for more than one slice's score.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from inference.errors import Cancelled, MedFusionError
from inference.progress import CancelToken, ProgressCallback
from inference.segmentation.session import SegmentationSession

if TYPE_CHECKING:
    from app.controllers.segmentation import SegmentationController

SCORE_CHANNEL = "seg_score"
log = logging.getLogger("medfusion.app.segmentation")


DRAW_GRACE_S = 0.5  # how long the scoring waits for the views to draw the new mask


def _let_the_views_draw(cancel: CancelToken) -> None:
    """Wait (without holding the interpreter lock) while the UI thread draws the mask just delivered.

    The torch-free decoder runs its glue in Python: scoring at once made it compete with the slice and 3-D
    renders for the GIL, and the longest UI stall while a box's mask is drawn rose from 87 to 130-156 ms
    (axial view alone, `python -m benchmarks ui`). The confidence appears half a second later (the strip shows the slice as being scored meanwhile).
    """
    import time

    end = time.monotonic() + DRAW_GRACE_S
    while time.monotonic() < end:
        cancel.raise_if_cancelled()  # a new gesture cancels the score without waiting out the grace
        time.sleep(0.01)


def score_later(controller: SegmentationController, session: SegmentationSession, name: str, z: int,
            words: str) -> None:
    """Score the confidence of every model mask still unscored (the newest gesture's, and any whose
    scoring a newer gesture interrupted), one slice at a time under the gesture lock; the strip and
    the message follow."""
    labels = controller.labels

    def task(progress: ProgressCallback, cancel: CancelToken) -> float | None:
        progress(0.5, "Scoring the mask's confidence")
        _let_the_views_draw(cancel)
        mine: float | None = None
        tried: set[tuple[int, int]] = set()
        while True:
            cancel.raise_if_cancelled()
            with labels.lock:
                pending = [key for key in session.unscored() if key not in tried]
                if not pending:
                    return mine
                value, zz = key = pending[-1]
                tried.add(key)
                score = session.score_slice(value, zz)
                if zz == z and session.labels.find(name) is not None and value == session.label(name).value:
                    mine = score

    def done(score: float | None) -> None:
        if session is not controller.session:
            return
        labels.changed.emit()  # the confidence strip
        if score is not None:
            controller.say(words.format(score))

    def failed(error: BaseException) -> None:
        log.warning("confidence scoring failed: %s", error)
        if isinstance(error, MedFusionError) and not isinstance(error, Cancelled):
            controller.say(f"The mask's confidence could not be scored: {error}")

    controller._submit(  # noqa: SLF001 - the controller's own task plumbing
        SCORE_CHANNEL, task, done, "Scoring confidence", failed)
