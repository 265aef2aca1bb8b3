"""Automatic CT window, agreement confidence and propagation stop rules (issue 15), on fast fakes.

The fake backend thresholds the *windowed* image inside the box, so its masks depend on the window the
session picks, as LiteMedSAM's do; the real model is exercised in test_segmentation_quality.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from inference.io.volume import Volume
from inference.models.preprocess import (
    DEFAULT_CT_WINDOW,
    LUNG_LESION_WINDOW,
    PreprocessInfo,
    resized_size,
    to_uint8_range,
)
from inference.segmentation.agreement import agreement, intensity_agreement, jittered_boxes, object_contrast
from inference.segmentation.backend import Decoded, Embedding
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.prompts import SessionOptions
from inference.segmentation.session import SegmentationSession
from inference.segmentation.synthetic import LesionSpec, insert_lesion, place_lesions
from inference.segmentation.windowing import CT_WINDOWS, choose_window


class WindowedThreshold:
    """Mask = box pixels brighter than mid-grey in the window the slice was embedded with.

    ``fill_box_when_empty``: like a real model, answer *something* for a box over background (the whole
    box), so the stop rules, not an empty mask, have to end propagation.
    """

    model_id = "fake-windowed"

    def __init__(self, fill_box_when_empty: bool = False) -> None:
        self.fill_box_when_empty = fill_box_when_empty
        self.windows: list[tuple[float, float] | None] = []

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding:
        self.windows.append(window)
        grey = to_uint8_range(slice2d, window) / 255.0
        h, w = slice2d.shape
        return Embedding(grey, PreprocessInfo((h, w), resized_size(h, w)), self.model_id, grey.nbytes)

    def decode(self, embedding: Embedding, boxes, points: Sequence = (), mask_prompt=None) -> Decoded:  # type: ignore[no-untyped-def]
        grey = embedding.features
        region = np.zeros(grey.shape, dtype=bool)
        x0, y0, x1, y1 = (int(round(v)) for v in boxes)
        region[y0 : y1 + 1, x0 : x1 + 1] = True
        mask = region & (grey > 0.5)
        if self.fill_box_when_empty and not mask.any():
            mask = region
        return Decoded(mask, iou=0.9, stability=1.0)


def _disk(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _nodule_ct(nz: int = 9, size: int = 64) -> tuple[Volume, np.ndarray]:
    """Lung (-850 HU) with a sphere whose core is solid (80 HU) and rim ground glass (-250 HU)."""
    rng = np.random.default_rng(0)
    array = rng.normal(-850.0, 20.0, (nz, size, size)).astype(np.float32)
    truth = np.zeros(array.shape, dtype=bool)
    for z, r in zip(range(2, 7), (4, 8, 10, 8, 4), strict=True):
        outer = _disk((size, size), 32, 32, r)
        array[z][outer] = -250.0
        array[z][_disk((size, size), 32, 32, r * 0.6)] = 80.0
        truth[z] = outer
    return Volume(array, spacing=(0.7, 0.7, 5.0), modality="CT", units="HU"), truth


def test_window_follows_the_boxed_contrast() -> None:
    rng = np.random.default_rng(1)
    lung = rng.normal(-850.0, 30.0, (96, 96)).astype(np.float32)
    lung[_disk(lung.shape, 48, 48, 10)] = 20.0
    assert choose_window(lung, (33, 33, 63, 63)).name == "lung lesion"  # nodule in lung
    liver = rng.normal(100.0, 15.0, (96, 96)).astype(np.float32)
    liver[_disk(liver.shape, 48, 48, 10)] = 40.0
    choice = choose_window(liver, (33, 33, 63, 63))
    assert choice.name == "soft tissue" and choice.contrast["soft tissue"] > choice.contrast["lung"]
    flat = np.full((96, 96), 60.0, dtype=np.float32)  # no contrast: MedSAM's default
    assert choose_window(flat, (33, 33, 63, 63)).window == CT_WINDOWS["soft tissue"]


def test_agreement_and_jittered_boxes() -> None:
    boxes = jittered_boxes((2.0, 3.0, 40.0, 30.0), (32, 48), 0.1)
    assert len(boxes) == 4 and all(0 <= b[0] < b[2] <= 47 and 0 <= b[1] < b[3] <= 31 for b in boxes)
    a = _disk((32, 32), 16, 16, 6)
    assert agreement(a, [a, a]) == 1.0
    assert agreement(a, [~a]) == 0.0
    assert agreement(a, []) == 1.0


def test_intensity_agreement_flags_a_mask_reaching_into_the_surround() -> None:
    rng = np.random.default_rng(4)
    plane = rng.normal(-850.0, 20.0, (64, 64)).astype(np.float32)
    lesion = _disk(plane.shape, 32, 32, 8)
    plane[lesion] = 40.0
    levels = object_contrast(plane, lesion)
    assert levels is not None and levels[0] == pytest.approx(40.0) and levels[1] < -800
    right = intensity_agreement(plane, lesion, levels)
    too_big = intensity_agreement(plane, _disk(plane.shape, 32, 32, 14), levels)
    assert right is not None and right > 0.97
    assert too_big is not None and too_big < 0.6
    flat = np.full((64, 64), 40.0, dtype=np.float32)  # no contrast: nothing to say
    assert intensity_agreement(flat, lesion, object_contrast(flat, lesion)) is None


def test_auto_window_is_chosen_per_box_and_kept_through_propagation() -> None:
    volume, truth = _nodule_ct()
    backend = WindowedThreshold()
    session = SegmentationSession(backend, EmbeddingCache(10**8))
    session.set_image(volume)
    result = session.add_box(4, (20, 20, 44, 44), "nodule")
    assert session.last_choice is not None and session.last_choice.window == LUNG_LESION_WINDOW
    prop = session.propagate("nodule")
    assert prop.window == LUNG_LESION_WINDOW and set(backend.windows) == {LUNG_LESION_WINDOW}
    got = session.mask_for("nodule").astype(bool)
    assert np.array_equal(got, truth)  # rim included: -250 HU is above mid-grey of [-800, 200]
    assert result.confidence > 0.95 and all(c > 0.95 for c in prop.confidence.values())
    assert sorted(prop.slices) == [2, 3, 4, 5, 6]


def test_a_forced_window_that_hides_the_rim_loses_confidence() -> None:
    volume, truth = _nodule_ct()
    session = SegmentationSession(WindowedThreshold(), EmbeddingCache(10**8), window=DEFAULT_CT_WINDOW)
    session.set_image(volume)
    result = session.add_box(4, (20, 20, 44, 44), "nodule")
    drawn = session.mask_for("nodule")[4].astype(bool)
    dice = 2 * (drawn & truth[4]).sum() / (drawn.sum() + truth[4].sum())
    assert dice < 0.6  # the soft-tissue window shows only the solid core …
    assert result.confidence < 0.6  # … and the confidence says so (the best window disagrees)


@pytest.mark.parametrize(
    ("min_confidence", "reason"),
    [(0.5, "low confidence (0.00)"),  # the confidence's half-maximum check sees a box of bare lung …
     (0.0, "mask looks like the surround, not the object")],  # … and so does the contrast rule alone
)
def test_propagation_stops_where_the_object_ends_even_if_the_model_answers(
    min_confidence: float, reason: str
) -> None:
    volume, truth = _nodule_ct()
    backend = WindowedThreshold(fill_box_when_empty=True)  # a box over bare lung still gives a mask
    options = SessionOptions(min_confidence=min_confidence)
    session = SegmentationSession(backend, EmbeddingCache(10**8), options=options)
    session.set_image(volume)
    session.add_box(4, (20, 20, 44, 44), "nodule")
    prop = session.propagate("nodule")
    assert sorted(prop.slices) == [2, 3, 4, 5, 6]
    assert prop.stop_reason == {"up": reason, "down": reason}
    assert np.array_equal(session.mask_for("nodule").astype(bool), truth)


def test_propagation_stops_when_the_mask_jumps_away() -> None:
    array = np.full((6, 64, 64), -850.0, dtype=np.float32)
    for z in (1, 2, 3):
        array[z][_disk((64, 64), 20, 20, 5)] = 40.0
    array[4][_disk((64, 64), 34, 34, 5)] = 40.0  # a different structure, just inside the grown box
    volume = Volume(array, spacing=(0.7, 0.7, 5.0), modality="CT", units="HU")
    options = SessionOptions(propagate_margin_256=40.0, confidence_jitter=0.0)  # only the overlap rule
    session = SegmentationSession(WindowedThreshold(), EmbeddingCache(10**8), options=options)
    session.set_image(volume)
    session.add_box(2, (12, 12, 28, 28), "a")
    prop = session.propagate("a", direction="up")
    assert sorted(prop.slices) == [2, 3]
    assert prop.stop_reason["up"] == "mask moved away from the previous slice's"


def test_brush_over_a_model_slice_drops_its_confidence_until_undone() -> None:
    volume, _ = _nodule_ct()
    session = SegmentationSession(WindowedThreshold(), EmbeddingCache(10**8))
    session.set_image(volume)
    session.add_box(4, (20, 20, 44, 44), "nodule")
    assert 4 in session.confidence("nodule")
    stroke = _disk((64, 64), 5, 5, 3)
    session.apply_brush(4, stroke, "nodule")
    assert 4 not in session.confidence("nodule")  # the drawn mask is no longer the model's
    session.undo()
    assert 4 in session.confidence("nodule")


def test_synthetic_lesion_has_partial_volume_edges_and_an_exact_reference() -> None:
    rng = np.random.default_rng(2)
    array = rng.normal(-850.0, 15.0, (20, 80, 80)).astype(np.float32)
    ct = Volume(array, spacing=(0.6, 0.6, 2.5), modality="CT", units="HU")
    host = np.ones(array.shape, dtype=bool)
    (centre,) = place_lesions(ct, 1, 12.0, host, seed=3)
    assert 5 < centre[0] < 14  # room for propagation to be seen stopping at both ends
    image, truth = insert_lesion(ct, LesionSpec("n", centre, 12.0, 30.0, lobulation=0.0))
    expected = 4 / 3 * np.pi * 6.0**3 / (0.6 * 0.6 * 2.5)  # voxels of a 12 mm sphere
    assert truth.sum() == pytest.approx(expected, rel=0.1)
    z, y, x = centre
    assert image.array[z, y, x] == pytest.approx(30.0, abs=60.0)
    edge = truth & ~np.roll(truth, 1, axis=2)
    values = image.array[edge]
    assert -850 < float(np.median(values)) < 30  # edge voxels are a mix of lesion and lung
    from scipy import ndimage

    far = ~ndimage.binary_dilation(truth, iterations=2)
    assert np.array_equal(image.array[far], array[far])  # nothing painted away from the lesion
