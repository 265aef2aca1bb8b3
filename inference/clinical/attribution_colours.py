"""Colours of an attribution, one meaning everywhere: red pushes towards the outcome, blue pushes away.

Why shared (and Qt-free): the heat-map on the X-ray, its colour bar, the clinical-value bars of the
explanation panel and the PDF report's key image must agree, or a clinician reads "red = bad" on the image
and "red = important either way" in the report. Signed maps come from ``inference.explain.anatomy``
(values in [-1, 1], 0 outside the lungs); exactly 0 is always fully transparent, so nothing outside the
lungs is tinted. When the X-rays carry little weight in the prediction, or this X-ray little weight among
the others (``greying_note``), the same map is drawn "greyed": hue kept, colour drained, fainter.
"""

from __future__ import annotations

import numpy as np

TOWARDS = "#d9534f"  # red: this value / this part of the lungs raises the risk of the outcome
AWAY = "#5b9bd5"  # blue: lowers it
TOWARDS_TEXT = "#ff8a80"  # the same hues, lighter, for words on a dark background
AWAY_TEXT = "#8cc4ff"
GREY_TOWARDS = "#a58482"  # the greyed map keeps its hue so the direction stays readable
GREY_AWAY = "#7d8b99"
NEUTRAL = (0.85, 0.85, 0.85)  # the middle of a colour bar: no effect
DEAD_ZONE = 0.08  # |value| below this stays transparent (smoothing ripple, not a finding)
LOW_IMAGE_WEIGHT = 0.20  # under this share of the prediction the X-ray map is greyed
LOW_SHARE_OF_EQUAL = 0.5  # one X-ray of n under half an equal share (0.5 / n) of the X-rays' weight: greyed


def rgb(colour: str) -> tuple[float, float, float]:
    """'#rrggbb' → (r, g, b) in [0, 1]."""
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return r, g, b


def image_weight_is_low(image_share: float | None) -> bool:
    """True when the X-rays' share of the prediction is known and under ``LOW_IMAGE_WEIGHT``."""
    return image_share is not None and image_share < LOW_IMAGE_WEIGHT


def low_weight_note(image_share: float, sep: str = " ") -> str:
    """Why the map is grey, in words (``sep``: a line break where the space is narrow)."""
    return (f"X-ray weight in this prediction {100 * image_share:.0f} % (under {100 * LOW_IMAGE_WEIGHT:.0f} %):"
            f"{sep}the clinical values decided it, so the heat-map is greyed")


def greying_note(image_share: float | None, time_share: float | None = None, n_images: int = 1,
                 sep: str = " ") -> str:
    """"" when this X-ray's map deserves full colour; else, in words, why it is greyed: the X-rays barely
    count in the prediction (``image_share``, the gate), or this X-ray barely counts among the others
    (``time_share`` of the X-rays' weight, under half an equal share)."""
    if image_weight_is_low(image_share):
        return low_weight_note(image_share or 0.0, sep)
    if time_share is not None and n_images > 1 and time_share < LOW_SHARE_OF_EQUAL / n_images:
        return (f"This X-ray carries {100 * time_share:.0f} % of the X-rays' weight (equal share "
                f"{100 / n_images:.0f} %):{sep}the other X-rays decided more, so its heat-map is greyed")
    return ""


def signed_rgba(values: np.ndarray, grey: bool = False) -> np.ndarray:
    """RGBA in [0, 1] (shape ``values.shape + (4,)``) of signed attributions in [-1, 1]: neutral → red
    (positive) or blue (negative) as |value| grows; alpha 0 inside the dead zone (so at exactly 0)."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float64)), -1.0, 1.0)
    t = np.abs(v)[..., None]
    pos = np.asarray(rgb(GREY_TOWARDS if grey else TOWARDS))
    neg = np.asarray(rgb(GREY_AWAY if grey else AWAY))
    end = np.where(v[..., None] > 0, pos, neg)
    mix = np.minimum(1.0, 0.35 + 0.65 * t)  # weak effects already show their hue, strong ones the full colour
    colour = np.asarray(NEUTRAL) + (end - np.asarray(NEUTRAL)) * mix
    alpha = np.where(t < DEAD_ZONE, 0.0, np.minimum(1.0, (t - DEAD_ZONE) / 0.6) * 0.9)
    if grey:
        alpha = alpha * 0.75
    return np.concatenate([colour, alpha], axis=-1)


def blend_signed(rgb_image: np.ndarray, values: np.ndarray, opacity: float = 0.6, grey: bool = False) -> np.ndarray:
    """``rgb_image`` (float [0, 1], H×W×3) with the signed map laid over it; pixels at 0 are unchanged."""
    rgba = signed_rgba(values, grey)
    weight = opacity * rgba[..., 3:]
    return rgb_image * (1 - weight) + rgba[..., :3] * weight
