"""Brush strokes on coronal/sagittal planes and include/exclude clicks that keep hand strokes (issue 15.5).

Uses the deterministic fake backend of test_segmentation_session.py, so expected masks are exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.errors import InvalidPromptError
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.click_merge import merge_click
from inference.segmentation.plane_edit import brush_plane, plane_axes, plane_of
from inference.segmentation.session import SegmentationSession, SessionOptions
from tests.inference.test_segmentation_session import BrightInBox, _sphere_volume


@pytest.fixture()
def session() -> SegmentationSession:
    s = SegmentationSession(BrightInBox(), EmbeddingCache(10**8), options=SessionOptions(min_confidence=0.1))
    s.set_image(_sphere_volume())  # 9 × 32 × 32
    return s


def test_planes_of_a_zyx_map_are_views_in_array_order() -> None:
    lm = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    assert np.array_equal(plane_of(lm, 2, 1), lm[1])  # axial [y, x]
    assert np.array_equal(plane_of(lm, 1, 2), lm[:, 2, :])  # coronal [z, x]
    assert np.array_equal(plane_of(lm, 0, 3), lm[:, :, 3])  # sagittal [z, y]
    assert plane_axes(2) == (1, 0) and plane_axes(1) == (2, 0) and plane_axes(0) == (2, 1)
    with pytest.raises(InvalidPromptError):
        plane_of(lm, 3, 0)


@pytest.mark.parametrize("axis", [0, 1])
def test_a_stroke_on_a_coronal_or_sagittal_plane_is_one_undoable_gesture(
    session: SegmentationSession, axis: int
) -> None:
    session.add_label("other")
    session.apply_brush(4, np.pad(np.ones((2, 2), bool), ((10, 20), (10, 20))), "other")  # [10:12, 10:12]
    other_before = session.mask_for("other").copy()

    stroke = np.zeros(plane_of(session.label_map, axis, 11).shape, dtype=bool)  # [z, x] or [z, y]
    stroke[2:7, 5:15] = True
    z_range = brush_plane(session, axis, 11, stroke, "a")
    assert z_range == (2, 6)
    mask = session.mask_for("a")
    painted = plane_of(mask, axis, 11)
    expected = stroke.copy()
    expected[4, 10:12] = False  # the other label's pixels on this plane are not taken
    assert np.array_equal(painted.astype(bool), expected)
    assert mask.sum() == expected.sum(), "pixels outside the plane were painted"
    assert np.array_equal(session.mask_for("other"), other_before)
    assert session.undo() and not session.mask_for("a").any(), "a plane stroke must be one undo step"
    assert np.array_equal(session.mask_for("other"), other_before)
    assert session.redo() and np.array_equal(plane_of(session.mask_for("a"), axis, 11).astype(bool), expected)

    erase = np.zeros_like(stroke)
    erase[3, :] = True
    assert brush_plane(session, axis, 11, erase, "a", erase=True) == (3, 3)
    assert not plane_of(session.mask_for("a"), axis, 11)[3].any()
    assert session.undo() and session.undo()
    assert not session.mask_for("a").any() and np.array_equal(session.mask_for("other"), other_before)
    assert session.redo() and np.array_equal(plane_of(session.mask_for("a"), axis, 11).astype(bool), expected)


def test_plane_strokes_are_checked(session: SegmentationSession) -> None:
    with pytest.raises(InvalidPromptError):
        brush_plane(session, 1, 40, np.zeros((9, 32), bool), "a")  # outside the image
    with pytest.raises(InvalidPromptError):
        brush_plane(session, 1, 3, np.zeros((32, 32), bool), "a")  # an axial-shaped stroke
    assert brush_plane(session, 0, 3, np.zeros((9, 32), bool), "a") is None  # nothing to paint
    axial = np.zeros((32, 32), bool)
    axial[16, 16] = True
    assert brush_plane(session, 2, 4, axial, "a") == (4, 4)


def test_merge_click_changes_only_the_regions_at_the_click() -> None:
    current = np.zeros((64, 64), bool)
    current[5:10, 5:10] = True  # a hand stroke far from the click
    current[30:40, 30:40] = True  # the model's earlier mask
    model = np.zeros((64, 64), bool)
    model[30:45, 30:40] = True  # the click grows it downwards ...
    model[50:60, 50:60] = True  # ... and the model also finds a blob elsewhere
    merged = merge_click(current, model, 35.0, 43.0)
    assert merged[5:10, 5:10].all(), "the hand stroke was discarded"
    assert merged[30:45, 30:40].all(), "the change at the click was not applied"
    assert not merged[50:60, 50:60].any(), "a change away from the click was applied"
    assert np.array_equal(merge_click(current, current, 1.0, 1.0), current)
    assert np.array_equal(merge_click(current, model, 0.0, 63.0), current)  # no change near the click
    with pytest.raises(InvalidPromptError):
        merge_click(current, model[:10], 1.0, 1.0)


def test_an_include_click_keeps_brush_work_on_the_slice(session: SegmentationSession) -> None:
    session.add_box(4, (10, 10, 22, 22), "a")
    boxed = session.mask_for("a")[4].copy()
    stroke = np.zeros((32, 32), bool)
    stroke[0:3, 0:6] = True  # a hand stroke in the corner, far from the sphere
    session.apply_brush(4, stroke, "a")
    session.add_point(4, 16, 16, False, "a")  # exclude the centre
    after = session.mask_for("a")[4].astype(bool)
    assert after[0:3, 0:6].all(), "an exclude click discarded the brush stroke"
    assert not after[16, 16] and after.sum() < boxed.sum() + stroke.sum()
    assert session.undo()
    assert np.array_equal(session.mask_for("a")[4].astype(bool), boxed.astype(bool) | stroke)
