"""LRU cache of slice embeddings with a byte budget, so re-prompting a slice only runs the decoder.

Keys are (slice content hash, model id, preprocessing parameters): editing the image, switching model or
window never returns a stale embedding, and two sessions on the same data can share one cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from inference.segmentation.backend import Embedding

CacheKey = tuple[Hashable, ...]


def slice_hash(slice2d: np.ndarray) -> str:
    """Content hash of one slice (shape, dtype and pixels)."""
    digest = hashlib.sha1(str((slice2d.shape, slice2d.dtype.str)).encode())
    digest.update(np.ascontiguousarray(slice2d).tobytes())
    return digest.hexdigest()


def cache_key(slice_digest: str, model_id: str, window: tuple[float, float] | None) -> CacheKey:
    win = None if window is None else (round(float(window[0]), 3), round(float(window[1]), 3))
    return (slice_digest, model_id, win)


class EmbeddingCache:
    """Thread-safe LRU keyed by :func:`cache_key`, evicting least recently used entries over budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self._items: OrderedDict[CacheKey, Embedding] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_megabytes(cls, mb: int) -> EmbeddingCache:
        return cls(int(mb) * 1024 * 1024)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: CacheKey) -> Embedding | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: CacheKey, embedding: Embedding) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if embedding.nbytes > self.max_bytes:
                return
            self._items[key] = embedding
            self._bytes += embedding.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def get_or_compute(self, key: CacheKey, compute: Callable[[], Embedding]) -> Embedding:
        found = self.get(key)
        if found is not None:
            return found
        embedding = compute()
        self.put(key, embedding)
        return embedding

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


class SingleFlightCache(EmbeddingCache):
    """An embedding cache where concurrent requests for one key wait for a single computation.

    Why: the viewer embeds the shown slice and its neighbours in the background while the user may
    already prompt on one of them; the prompt then waits for that embedding instead of computing it twice.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self._flights: dict[CacheKey, threading.Event] = {}
        self._flight_lock = threading.Lock()
        self.computed = 0

    def get_or_compute(self, key: CacheKey, compute: Callable[[], Embedding]) -> Embedding:
        while True:
            found = self.get(key)
            if found is not None:
                return found
            with self._flight_lock:
                event = self._flights.get(key)
                owner = event is None
                if owner:
                    event = self._flights[key] = threading.Event()
            assert event is not None
            if not owner:
                event.wait()  # the other thread finished (or failed): look again
                continue
            try:
                embedding = compute()
                self.put(key, embedding)
                self.computed += 1
                return embedding
            finally:
                with self._flight_lock:
                    self._flights.pop(key, None)
                event.set()
