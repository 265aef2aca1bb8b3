"""Attributions on the anatomy: lung-occlusion maps are zero outside the lungs, normalised inside them,
and credit the region that drives the score."""

from __future__ import annotations

import numpy as np

from inference.explain.anatomy import lung_occlusion, restrict_to_lungs


def test_occlusion_credits_the_opaque_region_and_stays_inside_the_lungs() -> None:
    frame = np.full((128, 128), 0.2, np.float32)
    lungs = np.zeros((128, 128), bool)
    lungs[16:112, 10:58] = True
    lungs[16:112, 70:118] = True
    frame[80:112, 10:42] = 0.9  # an opacity low in the image-left lung

    def logit(mask: np.ndarray) -> float:  # risk = mean brightness inside the lungs
        return float(frame[mask].mean() * 10) if mask.any() else 0.0

    attr = lung_occlusion(logit, lungs, cell=16)
    assert np.all(attr[~lungs] == 0)
    assert attr[90, 20] > 0 and attr[40, 90] < 0  # opacity pushes up, clear lung pushes down

    full = np.zeros((256, 256), bool)
    full[32:224, 20:116] = True
    full[32:224, 140:236] = True
    result = restrict_to_lungs(attr, full, cell=16)
    assert result.values.shape == (256, 256) and np.all(result.values[~full] == 0)
    assert np.abs(result.values[full]).max() == 1.0 and result.scale > 0
    assert result.values[190, 40] == 1.0 or result.values[190, 40] > 0.5
    assert result.positive().min() >= 0 and result.positive()[80, 180] == 0


def test_no_lungs_no_map() -> None:
    empty = np.zeros((64, 64), bool)
    assert not lung_occlusion(lambda m: 1.0, empty).any()
    assert restrict_to_lungs(np.zeros((64, 64)), np.zeros((100, 100), bool)).scale == 0.0
