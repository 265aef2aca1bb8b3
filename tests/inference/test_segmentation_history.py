"""Segmentation history: label origins travel with the gestures (undo/redo restore them), the single-flight
embedding cache computes a slice once however many threads ask, backends are found by name and load lazily."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from inference.errors import ModelLoadError
from inference.segmentation.backend import Embedding
from inference.segmentation.cache import SingleFlightCache
from inference.segmentation.factory import (
    BackendSpec,
    LazyBackend,
    backend_names,
    backend_spec,
    create_backend,
    register_backend,
)
from inference.segmentation.history import AI, MANUAL, Gesture, History, SliceDiff
from inference.settings import Settings


def _gesture(name: str, z: int = 0, value: int = 1) -> Gesture:
    diff = SliceDiff.between(z, np.zeros((2, 2), np.uint8), np.full((2, 2), value, np.uint8))
    assert diff is not None
    return Gesture(name, [diff])


def test_origins_follow_gestures_through_undo_and_redo() -> None:
    history = History()
    assert history.origin(1) == "MANUAL"  # never drawn
    history.mark(1, AI)
    history.push(_gesture("box"))
    assert history.origin(1) == "AI"
    history.mark(1, MANUAL)
    history.push(_gesture("brush"))
    assert history.origin(1) == "AI_CORRECTED"
    assert history.pop_undo() is history.last and history.origin(1) == "AI"
    history.pop_undo()
    assert history.origin(1) == "MANUAL" and history.pop_undo() is None and history.last is None
    history.pop_redo()
    history.pop_redo()
    assert history.origin(1) == "AI_CORRECTED"


def test_an_empty_gesture_changes_no_origin_and_clear_keeps_origins() -> None:
    history = History()
    history.mark(2, AI)
    history.push(Gesture("box"))  # the model found nothing: no pixels changed
    assert history.origins == {} and history.pending_origins is None
    history.mark(2, AI)
    history.push(_gesture("box", value=2))
    history.clear()
    assert history.origin(2) == "AI" and not history.can_undo


def test_single_flight_cache_computes_a_slice_once_for_concurrent_requests() -> None:
    cache = SingleFlightCache(1 << 20)
    calls: list[int] = []
    started = threading.Event()

    def compute() -> Embedding:
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return Embedding(features=np.zeros(4), info=None, model_id="m", nbytes=32)  # type: ignore[arg-type]

    results: list[Embedding] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute(("k",), compute)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and cache.computed == 1 and len(results) == 4
    assert all(r is results[0] for r in results)


def test_backends_by_name_and_lazy_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    from inference.segmentation import factory

    monkeypatch.setattr(factory, "_REGISTRY", dict(factory._REGISTRY))  # registering here must not leak
    assert {"litemedsam", "medsam2"} <= set(backend_names())
    assert backend_spec("LiteMedSAM") is not None and backend_spec("LiteMedSAM").display_name == "LiteMedSAM"  # type: ignore[union-attr]
    with pytest.raises(ModelLoadError, match="Unknown segmentation backend 'nope'"):
        create_backend(Settings(device="cpu"), "nope")
    loads: list[str] = []

    class Fake:
        model_id = "fake-1"

        def embed(self, slice2d, window):  # noqa: ANN001, ANN202
            return "embedding"

        def decode(self, embedding, boxes, points=(), mask_prompt=None):  # noqa: ANN001, ANN202
            return "decoded"

    def load(settings: Settings, device: object) -> Fake:
        loads.append(str(device))
        return Fake()

    register_backend(BackendSpec("fake-test", "Fake", "1", load))  # type: ignore[arg-type]
    lazy = LazyBackend(lambda: create_backend(Settings(device="cpu"), "fake-test"))
    assert loads == []  # nothing loads until the backend is used
    assert lazy.model_id == "fake-1" and lazy.embed(np.zeros((2, 2)), None) == "embedding"
    assert loads == ["cpu"]
