"""The CT intensity windows a user can choose for the segmentation model, by name.

What the model sees matters more than what the screen shows. "auto" (the default) lets each box choose
among the standard windows from its content (``inference.segmentation.windowing``); the others force
one. ``None`` for "display" means "the viewer's current display window".
"""

from __future__ import annotations

from inference.models.preprocess import DEFAULT_CT_WINDOW, LUNG_LESION_WINDOW, LUNG_WINDOW
from inference.segmentation.windowing import CT_WINDOWS

__all__ = ["DEFAULT_CT_WINDOW", "MODEL_WINDOWS", "window_name"]

# name -> (menu text, (level, width) or None: "auto" = chosen per box, "display" = the current display W/L)
MODEL_WINDOWS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "auto": ("Automatic (from the box)", None),
    "soft": ("Soft tissue 40/400", DEFAULT_CT_WINDOW),
    "lung_lesion": ("Lung lesion −300/1000", LUNG_LESION_WINDOW),
    "lung": ("Lung −437/1174", LUNG_WINDOW),
    "display": ("Current display W/L", None),
}


def window_name(window: tuple[float, float] | None) -> str:
    """How messages name a model window: "lung lesion −300/1000", "W/L −600/1500" for any other, "" for
    none (X-ray, MR: percentile range). Level/width, as in the menu."""
    if window is None:
        return ""
    level, width = (float(v) for v in window)
    numbers = f"{level:g}/{width:g}".replace("-", "\u2212")
    for name, standard in CT_WINDOWS.items():
        if (level, width) == (float(standard[0]), float(standard[1])):
            return f"{name} {numbers}"
    return f"W/L {numbers}"
