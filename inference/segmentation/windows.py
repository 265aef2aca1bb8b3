"""The CT intensity windows a user can choose for the segmentation model, by name.

What the model sees matters more than what the screen shows: MedSAM was trained on soft-tissue windowed
CT, lung lesions segment better at −300/1000. ``None`` means "the viewer's current display window".
"""

from __future__ import annotations

from inference.models.preprocess import DEFAULT_CT_WINDOW, LUNG_LESION_WINDOW, LUNG_WINDOW

__all__ = ["DEFAULT_CT_WINDOW", "MODEL_WINDOWS"]

# name -> (menu text, (level, width) or None = the current display W/L)
MODEL_WINDOWS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "auto": ("Soft tissue 40/400 (MedSAM default)", DEFAULT_CT_WINDOW),
    "lung_lesion": ("Lung lesion −300/1000", LUNG_LESION_WINDOW),
    "lung": ("Lung −437/1174", LUNG_WINDOW),
    "display": ("Current display W/L", None),
}
