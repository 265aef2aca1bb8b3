"""Attributions on the anatomy: lung-occlusion maps are zero outside the lungs, normalised inside them,
and credit the region that drives the score."""

from __future__ import annotations

import numpy as np

from inference.explain.anatomy import lung_occlusion, restrict_to_lungs, scored_pixels


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


def _ellipse_lungs(shape: tuple[int, int]) -> np.ndarray:
    """Two tilted ellipses: curved edges cut many occlusion cells to a sliver of lung (the real case)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    left = ((xx - 0.27) / 0.17) ** 2 + ((yy - 0.52) / 0.36) ** 2 + 0.6 * (xx - 0.27) * (yy - 0.52) < 1
    right = ((xx - 0.72) / 0.18) ** 2 + ((yy - 0.5) / 0.38) ** 2 - 0.6 * (xx - 0.72) * (yy - 0.5) < 1
    return left | right


def test_lung_edges_get_their_neighbours_values_not_zero() -> None:
    """Cells under 20 % lung are never scored; their lung pixels must take the scored neighbours' values,
    not stay 0 ("no effect" holes and steps along the lung edge in the viewer)."""
    frame_lungs = _ellipse_lungs((128, 128))
    rng = np.random.default_rng(0)
    weights = rng.normal(0.5, 0.2, size=(128, 128))  # every region pushes up: no true zero anywhere

    def logit(mask: np.ndarray) -> float:
        return float(weights[mask].sum() / 100)

    attr = lung_occlusion(logit, frame_lungs, cell=16)
    scored = scored_pixels(frame_lungs, cell=16)
    assert (frame_lungs & ~scored).sum() > 50  # the test has unscored lung pixels to fill
    assert np.all(attr[~scored] == 0) and np.all(attr[scored] != 0)
    image_lungs = _ellipse_lungs((300, 260))  # image size, its own (slightly different) mask outline
    result = restrict_to_lungs(attr, image_lungs, cell=16, scored=scored)
    assert np.all(result.values[~image_lungs] == 0)
    assert np.all(result.values[image_lungs] > 0)  # no zero-valued (or flipped) lung pixel
    # the same without the explicit mask (non-zero pixels taken as scored)
    assert np.all(restrict_to_lungs(attr, image_lungs, cell=16).values[image_lungs] > 0)


def test_a_scored_cell_with_no_effect_stays_near_zero() -> None:
    """With ``scored``, a cell the model was asked about and that changed nothing is not overwritten."""
    lungs = np.zeros((64, 64), bool)
    lungs[8:56, 8:56] = True
    attr = np.where(lungs, 1.0, 0.0)
    attr[24:40, 24:40] = 0.0  # scored, no effect
    scored = scored_pixels(lungs, cell=16)
    result = restrict_to_lungs(attr, lungs, smooth_cells=0.0, cell=16, scored=scored)
    assert result.values[32, 32] == 0.0 and result.values[12, 12] == 1.0
