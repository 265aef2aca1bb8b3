"""An include/exclude click changes the label only around the click: brush and eraser work elsewhere stays.

Why: a click re-runs the model on the whole slice (box + all clicks so far), and writing its new mask over
the label threw away the hand strokes done on that slice. A click now changes the label only where the
model's answer differs from what is drawn *in the regions of that difference connected to the click*
(:func:`merge_click`); everything else on the slice, hand strokes included, stays as it was.
"""

from __future__ import annotations

import numpy as np

from inference.errors import InvalidPromptError

CLICK_REACH = 0.02  # a click's change counts within this fraction of the slice size (at least 3 px)


def merge_click(current: np.ndarray, model: np.ndarray, x: float, y: float) -> np.ndarray:
    """The label's new pixels on a slice after a click at ``(x, y)``: ``current`` (what is drawn now)
    changed to ``model`` (the model's mask for box + clicks) only in the connected regions of their
    difference that touch the click (within :data:`CLICK_REACH`). Hand strokes elsewhere are kept."""
    from scipy import ndimage  # imported on first use (viewer start-up)

    current, model = np.asarray(current, bool), np.asarray(model, bool)
    if current.shape != model.shape:
        raise InvalidPromptError(f"Mask shapes differ: {current.shape} vs {model.shape}.")
    changed = current != model
    if not changed.any():
        return current.copy()
    regions, _n = ndimage.label(changed, structure=np.ones((3, 3), dtype=bool))
    h, w = current.shape
    reach = max(3.0, CLICK_REACH * max(h, w))
    y0, y1 = max(int(y - reach), 0), min(int(y + reach) + 1, h)
    x0, x1 = max(int(x - reach), 0), min(int(x + reach) + 1, w)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    near = (yy - y) ** 2 + (xx - x) ** 2 <= reach * reach
    hit = np.unique(regions[y0:y1, x0:x1][near])
    hit = hit[hit > 0]
    if hit.size == 0:
        return current.copy()
    local = np.isin(regions, hit)
    return np.where(local, model, current)

