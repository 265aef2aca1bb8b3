"""Label-map operations that touch only the slices in use (issue 17): same values as the whole-map
operations they replace, and a mostly empty map stays mostly unwritten (resident memory measured)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from inference.io.volume import Volume
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.label_pages import clear_label_map, slices_in_use, sparse_copy
from inference.segmentation.session import SegmentationSession, SessionOptions
from tests.inference.test_segmentation_session import BrightInBox, _sphere_volume
from tests.resident_memory import resident_mib

linux_rss = pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self/status").exists(),
                               reason="resident memory is read from /proc/self/status")


def _drawn_map(nz: int = 12, size: int = 40) -> np.ndarray:
    rng = np.random.default_rng(3)
    label_map = np.zeros((nz, size, size), dtype=np.uint8)
    for z in (2, 3, 9):
        label_map[z] = rng.integers(0, 4, size=(size, size), dtype=np.uint8)
    label_map[3, :, :] = 0  # a slice written back to zero is not "in use"
    label_map[11, 0, 0] = 255
    return label_map


def test_slices_in_use_contiguous_and_strided_maps_agree() -> None:
    label_map = _drawn_map()
    assert slices_in_use(label_map).tolist() == [2, 9, 11]
    assert slices_in_use(label_map.transpose(0, 2, 1)).tolist() == [2, 9, 11]  # not contiguous
    assert slices_in_use(label_map[:, 1:, :]).tolist() == [2, 9]  # the 255 at row 0 is cut away
    assert slices_in_use(np.zeros((0, 4, 4), np.uint8)).size == 0


def test_sparse_copy_equals_a_full_copy_and_shares_nothing() -> None:
    label_map = _drawn_map()
    copy = sparse_copy(label_map)
    assert copy.dtype == label_map.dtype and copy.shape == label_map.shape
    assert copy.tobytes() == label_map.copy().tobytes()  # the bytes an autosave compresses and hashes
    assert not np.shares_memory(copy, label_map)
    copy[9] = 0
    assert label_map[9].any()
    strided = label_map.transpose(0, 2, 1)
    assert np.array_equal(sparse_copy(strided), strided)


def test_clear_label_map_zeroes_every_slice_in_place() -> None:
    label_map = _drawn_map()
    before = label_map
    clear_label_map(label_map)
    assert label_map is before and not label_map.any()
    strided = _drawn_map().transpose(0, 2, 1)  # a view: cleared through the fallback
    clear_label_map(strided)
    assert not strided.any()


def test_session_seed_is_still_the_largest_slice_when_nothing_was_prompted() -> None:
    """``_seed_slice`` now counts slice by slice: the seed without a prompted slice is the largest one."""
    session = SegmentationSession(BrightInBox(), EmbeddingCache(10**8), options=SessionOptions(min_confidence=0.1))
    session.set_image(_sphere_volume())
    small, large = np.zeros((32, 32), bool), np.zeros((32, 32), bool)
    small[15:17, 15:17] = True
    large[14:19, 14:19] = True
    session.apply_brush(3, small, "lesion")
    session.apply_brush(5, large, "lesion")
    assert session.propagate("lesion", (0, 8)).seed_z == 5


@linux_rss
def test_a_fresh_session_map_and_its_snapshots_stay_unwritten() -> None:
    """A 64 MiB map: binding an image, resetting it and copying it with one slice drawn commit only a few
    pages (writing zeros over it or ``ndarray.copy`` made all 64 MiB resident)."""
    session = SegmentationSession(BrightInBox(), EmbeddingCache(10**8))
    volume = Volume(np.zeros((4, 4, 4), np.float32))
    session.volume = volume
    start = resident_mib()
    session.label_map = np.zeros((256, 512, 512), dtype=np.uint8)
    session.reset()
    session.label_map[100, 10:20, 10:20] = 1
    snapshot = sparse_copy(session.label_map)
    grown = resident_mib() - start
    assert grown < 16, f"{grown:.0f} MiB resident for a 64 MiB map with one slice drawn"
    assert snapshot[100, 10:20, 10:20].all() and int(snapshot.sum(dtype=np.int64)) == 100
    session.reset()
    assert not session.label_map.any()


@linux_rss
def test_set_image_does_not_write_the_new_map() -> None:
    session = SegmentationSession(BrightInBox(), EmbeddingCache(10**8))
    volume = Volume(np.broadcast_to(np.float32(0), (256, 512, 512)))  # no pixel memory either
    start = resident_mib()
    session.set_image(volume)
    assert session.label_map.shape == (256, 512, 512)
    assert resident_mib() - start < 16
