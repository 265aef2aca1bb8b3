"""The labels model's whole-map operations done slice by slice (issue 17 memory) give the values the
whole-map formulas gave: restoring saved masks, deleting a label, the copy every autosave compresses."""

from __future__ import annotations

import numpy as np

from app.model.labels import LabelsModel
from inference.io.volume import Volume
from inference.segmentation.session import SegmentationSession
from tests.inference.test_segmentation_session import BrightInBox


def _bound(shape: tuple[int, int, int]) -> tuple[LabelsModel, SegmentationSession]:
    labels = LabelsModel()
    session = SegmentationSession(BrightInBox())
    session.set_image(Volume(np.zeros(shape, np.float32)))
    labels.bind(session)
    return labels, session


def test_set_masks_and_remove_label_match_the_whole_map_formulas() -> None:
    rng = np.random.default_rng(7)
    saved = np.zeros((10, 24, 20), np.int16)
    saved[2] = rng.integers(0, 6, size=(24, 20))
    saved[5, 3:9, 4:12] = 2
    saved[7, 0, 0] = 300  # only a value without a label on this slice: it stays empty
    saved[8] = rng.integers(0, 6, size=(24, 20))
    strided = np.ascontiguousarray(saved.transpose(0, 2, 1)).transpose(0, 2, 1)  # not C-contiguous
    labels, session = _bound(saved.shape)
    session.label_map[9] = 4  # stale pixels of an earlier image state: replaced
    rows = [("a", 2, (1, 2, 3)), ("b", 3, None), ("c", 5, None)]
    labels.set_masks(strided, rows)
    expected = np.where(np.isin(saved, [2, 3, 5]), saved, 0).astype(np.uint8)
    assert np.array_equal(session.label_map, expected)

    labels.remove_label("b")
    expected[expected == 3] = 0
    assert np.array_equal(session.label_map, expected)

    copy = labels.label_map()
    assert copy.tobytes() == session.label_map.tobytes() and not np.shares_memory(copy, session.label_map)
    copy[5] = 0
    assert (session.label_map[5] == 2).any()  # the snapshot is independent of the live map


def test_clear_all_empties_every_drawn_slice() -> None:
    labels, session = _bound((6, 8, 8))
    data = np.zeros((6, 8, 8), np.uint8)
    data[[0, 3, 5], 2:4, 2:4] = 1
    labels.set_masks(data, [("a", 1, None)])
    labels.clear_all()
    assert not session.label_map.any() and labels.names() == ["a"]
