"""Session behaviour (labels, undo/redo, propagation, cancel, cache) on a fast deterministic backend.

The fake backend segments "bright pixels inside the box" so expected masks are known exactly; the real
model is exercised in test_models_litemedsam.py and test_segmentation_quality.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from inference.errors import Cancelled, InvalidPromptError
from inference.io.volume import Volume
from inference.models.preprocess import PreprocessInfo, resized_size
from inference.progress import CancelToken
from inference.segmentation.agreement import JITTER_PATTERNS
from inference.segmentation.backend import Decoded, Embedding, SegmentationBackend
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.session import SegmentationSession, SessionOptions


class BrightInBox:
    """Mask = pixels > 0.5 inside the box (or within 3 px of positive points), minus negative points' blobs."""

    model_id = "fake"

    def __init__(self) -> None:
        self.encoder_calls = 0
        self.decoder_calls = 0

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding:
        self.encoder_calls += 1
        h, w = slice2d.shape
        return Embedding(
            slice2d.copy(), PreprocessInfo((h, w), resized_size(h, w)), self.model_id, slice2d.nbytes
        )

    def decode(self, embedding: Embedding, boxes, points: Sequence = (), mask_prompt=None) -> Decoded:  # type: ignore[no-untyped-def]
        self.decoder_calls += 1
        img = embedding.features
        region = np.zeros(img.shape, dtype=bool)
        if boxes is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in boxes)
            region[y0 : y1 + 1, x0 : x1 + 1] = True
        yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
        for x, y, positive in points:
            near = (xx - x) ** 2 + (yy - y) ** 2 <= 9
            region = region | near if positive else region & ~near
        mask = region & (img > 0.5)
        return Decoded(mask, iou=0.9 if mask.any() else 0.0, stability=1.0)


def _sphere_volume(nz: int = 9, radius: float = 3.5, size: int = 32) -> Volume:
    zz, yy, xx = np.mgrid[:nz, :size, :size]
    array = ((zz - nz // 2) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2 <= radius**2).astype(np.float32)
    return Volume(array, spacing=(0.5, 0.5, 2.0), modality="MR")


@pytest.fixture()
def session() -> SegmentationSession:
    s = SegmentationSession(BrightInBox(), EmbeddingCache(10**8), options=SessionOptions(min_confidence=0.1))
    s.set_image(_sphere_volume())
    return s


def test_fake_backend_satisfies_protocol() -> None:
    assert isinstance(BrightInBox(), SegmentationBackend)


def test_box_prompt_makes_mask_and_reprompt_hits_the_cache(session: SegmentationSession) -> None:
    backend = session.backend
    assert isinstance(backend, BrightInBox)
    result = session.add_box(4, (10, 10, 22, 22), "a")
    expected = session.volume.array[4] > 0.5  # type: ignore[union-attr]
    assert result.area_px == int(expected.sum()) > 0
    assert np.array_equal(session.mask_for("a")[4], expected)
    session.add_point(4, 16, 16, True, "a")
    session.add_box(4, (12, 12, 20, 20), "a")
    # each prompt: its mask + one per jittered box (the confidence), all on the one cached embedding
    assert backend.encoder_calls == 1 and backend.decoder_calls == 3 * (1 + len(JITTER_PATTERNS))
    assert session.cache.hits == 2


def test_points_refine_box_on_same_slice(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 22, 22), "a")
    session.add_point(4, 13, 16, False, "a")
    prompt = session.prompt("a", 4)
    assert prompt is not None and prompt.box is not None and len(prompt.points) == 1
    assert not session.mask_for("a")[4, 16, 13]
    assert session.mask_for("a")[4, 16, 18]


def test_labels_do_not_overwrite_each_other_unless_asked(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 16, 22), "left")
    left_before = session.mask_for("left").copy()
    session.add_box(4, (10, 10, 22, 22), "right")
    assert np.array_equal(session.mask_for("left"), left_before)
    assert not (session.mask_for("right") & left_before).any()
    session.add_box(4, (10, 10, 22, 22), "right", overwrite=True)
    assert (session.mask_for("right") & left_before).any()
    assert session.label("left").value != session.label("right").value


def test_undo_redo_per_gesture_including_brush(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 22, 22), "a")
    after_box = session.label_map.copy()
    stroke = np.zeros((32, 32), dtype=bool)
    stroke[0:3, 0:3] = True
    session.apply_brush(4, stroke, "a")
    assert session.mask_for("a")[4, 1, 1]
    session.apply_brush(4, stroke, "a", erase=True)
    assert np.array_equal(session.label_map, after_box)
    assert session.undo()  # erase
    assert session.mask_for("a")[4, 1, 1]
    assert session.undo() and np.array_equal(session.label_map, after_box)  # brush
    assert session.undo() and not session.label_map.any()  # box
    assert session.prompt("a", 4) is None
    assert not session.undo()
    assert session.redo() and np.array_equal(session.label_map, after_box)
    assert session.prompt("a", 4) is not None
    session.add_point(4, 16, 16, False, "a")
    assert not session.history.can_redo  # a new gesture drops the redo branch


def test_history_stores_diffs_and_respects_byte_budget() -> None:
    s = SegmentationSession(BrightInBox(), undo_budget_bytes=1000)
    s.set_image(_sphere_volume(size=64))
    for x in range(5):
        stroke = np.zeros((64, 64), dtype=bool)
        stroke[x * 10 : x * 10 + 5, :10] = True
        s.apply_brush(0, stroke, "a")
    assert s.history.nbytes <= 1000  # one 50-pixel diff ≈ 300 bytes: far below a 4 KB slice
    steps = 0
    while s.undo():
        steps += 1
    assert 1 <= steps < 5  # the oldest gestures were dropped
    assert s.label_map.any()


def test_propagate_through_sphere_stops_when_object_vanishes(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 22, 22), "a")
    result = session.propagate("a", direction="both")
    truth = session.volume.array > 0.5  # type: ignore[union-attr]
    assert np.array_equal(session.mask_for("a"), truth)
    assert set(result.confidence) == set(np.flatnonzero(truth.any(axis=(1, 2))))
    assert result.stop_reason == {"up": "object vanished", "down": "object vanished"}
    assert session.undo() and session.mask_for("a").sum() == truth[4].sum()


def test_propagate_respects_range_and_direction(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 22, 22), "a")
    result = session.propagate("a", (3, 6), direction="up")
    assert sorted(result.confidence) == [4, 5, 6]
    assert result.stop_reason == {"up": "end of range"}


def test_cancel_mid_propagation_keeps_done_slices_as_one_gesture(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 22, 22), "a")
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        token.cancel()

    with pytest.raises(Cancelled):
        session.propagate("a", progress=progress, cancel=token)
    assert len(seen) == 1
    done = np.flatnonzero(session.mask_for("a").any(axis=(1, 2)))
    assert len(done) == 2  # seed + one slice
    session.undo()
    assert list(np.flatnonzero(session.mask_for("a").any(axis=(1, 2)))) == [4]


def test_volume_and_area_use_spacing(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 22, 22), "a")
    n = int(session.mask_for("a").sum())
    assert session.area_mm2("a", 4) == pytest.approx(n * 0.25)
    assert session.volume_ml("a") == pytest.approx(n * 0.5 / 1000)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.add_box(99, (1, 1, 5, 5), "a"),
        lambda s: s.add_box(0, (40, 40, 50, 50), "a"),
        lambda s: s.add_box(0, (5, 5, 5.5, 9), "a"),
        lambda s: s.add_point(0, -1, 3, True, "a"),
        lambda s: s.propagate("a"),
        lambda s: s.propagate("nobody"),
    ],
)
def test_bad_prompts_raise_invalid_prompt(session: SegmentationSession, call) -> None:  # type: ignore[no-untyped-def]
    session.add_label("a")
    with pytest.raises(InvalidPromptError):
        call(session)


def test_reset_clears_masks_and_history(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 22, 22), "a")
    session.reset()
    assert not session.label_map.any() and not session.history.can_undo
    assert [lab.name for lab in session.labels] == ["a"]


def test_window_auto_uses_ct_window_only_for_hu() -> None:
    s = SegmentationSession(BrightInBox(), ct_window=(-300.0, 1000.0))
    s.set_image(Volume(np.zeros((1, 8, 8), np.float32), modality="CT", units="HU"))
    assert s.window == (-300.0, 1000.0)
    s.set_image(Volume(np.zeros((1, 8, 8), np.float32), modality="CR"))
    assert s.window is None


def test_deferred_confidence_shows_the_mask_after_one_decode_and_scores_it_later() -> None:
    """The viewer's gestures (issue 17): the mask after one decoder pass, the same confidence a moment later."""
    box = (10, 10, 17, 22)  # cuts the sphere: the jittered boxes' masks differ, the confidence is below 1
    now = SegmentationSession(BrightInBox(), EmbeddingCache(10**8))
    now.set_image(_sphere_volume(radius=4.5))
    expected = now.add_box(4, box, "a").confidence
    assert 0.0 < expected < 1.0

    backend = BrightInBox()
    later = SegmentationSession(backend, EmbeddingCache(10**8), options=SessionOptions(defer_confidence=True))
    later.set_image(_sphere_volume(radius=4.5))
    result = later.add_box(4, box, "a")
    assert backend.decoder_calls == 1 and np.isnan(result.confidence)
    assert np.array_equal(later.label_map, now.label_map)
    assert np.isnan(later.confidence("a")[4])  # the strip shows "being scored", not a colour
    assert later.score_slice("a", 4) == pytest.approx(expected)
    assert later.confidence("a") == {4: pytest.approx(expected)}
    assert later.score_slice("a", 4) is None  # scored once
    assert later.undo() and later.confidence("a") == {}
    assert later.redo() and later.confidence("a") == {4: pytest.approx(expected)}  # redo keeps the score

    later.add_box(4, (10, 10, 22, 22), "a")
    stroke = np.zeros((32, 32), dtype=bool)
    stroke[0:3, 0:3] = True
    later.apply_brush(4, stroke, "a")  # drawn over by hand before the score came: nothing to score
    assert later.score_slice("a", 4) is None and later.confidence("a") == {}


def test_propagation_scores_a_deferred_seed_first() -> None:
    s = SegmentationSession(BrightInBox(), EmbeddingCache(10**8),
                            options=SessionOptions(min_confidence=0.1, defer_confidence=True))
    s.set_image(_sphere_volume())
    s.add_box(4, (10, 10, 22, 22), "a")
    result = s.propagate("a")
    assert not np.isnan(result.slices[4].confidence) and not np.isnan(s.confidence("a")[4])
