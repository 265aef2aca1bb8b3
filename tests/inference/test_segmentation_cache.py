"""Embedding cache: LRU byte budget, keys, and that re-prompting a slice never re-runs the real encoder."""

from __future__ import annotations

import numpy as np

from inference.io.volume import Volume
from inference.models.preprocess import PreprocessInfo
from inference.segmentation.backend import Embedding
from inference.segmentation.cache import EmbeddingCache, cache_key, slice_hash
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
from inference.segmentation.session import SegmentationSession


def _emb(nbytes: int) -> Embedding:
    return Embedding(None, PreprocessInfo((8, 8), (256, 256)), "m", nbytes)


def test_lru_evicts_least_recently_used_over_budget() -> None:
    cache = EmbeddingCache(max_bytes=250)
    cache.put(("a",), _emb(100))
    cache.put(("b",), _emb(100))
    assert cache.get(("a",)) is not None  # a is now most recent
    cache.put(("c",), _emb(100))
    assert cache.get(("b",)) is None and cache.get(("a",)) is not None and cache.get(("c",)) is not None
    assert cache.nbytes == 200 and len(cache) == 2
    cache.put(("huge",), _emb(1000))  # larger than the whole budget: not kept
    assert cache.get(("huge",)) is None and cache.nbytes == 200


def test_keys_change_with_content_model_and_window() -> None:
    a = np.zeros((4, 4), np.float32)
    b = a.copy()
    b[0, 0] = 1
    assert slice_hash(a) != slice_hash(b)
    assert cache_key(slice_hash(a), "m1", None) != cache_key(slice_hash(a), "m2", None)
    assert cache_key(slice_hash(a), "m1", (40, 400)) != cache_key(slice_hash(a), "m1", (-300, 1000))


def test_reprompt_runs_only_the_decoder_with_the_real_model() -> None:
    backend = LiteMedSAMBackend.load("cpu")
    rng = np.random.default_rng(1)
    img = rng.normal(0, 0.2, (2, 96, 96)).astype(np.float32)
    img[:, 30:70, 30:60] += 3.0
    session = SegmentationSession(backend)
    session.set_image(Volume(img))
    first = session.add_box(0, (25, 25, 65, 75), "a")
    session.add_point(0, 45, 50, True, "a")
    session.add_box(0, (28, 28, 62, 72), "b", overwrite=True)
    assert backend.encoder_calls == 1
    assert first.area_px > 0.7 * 40 * 30
    session.add_box(1, (25, 25, 65, 75), "a")
    assert backend.encoder_calls == 2
