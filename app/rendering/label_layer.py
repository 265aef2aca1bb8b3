"""Composing label layers off the UI thread, and spreading the views' renders over event-loop turns.

Why (issue 17): after a box prompt every slice view used to cut its plane of the label map, build the
fill + outline image and render, all in one event-loop turn on the UI thread (the longest UI stall of a
prompt). Now a view only recomposes when its plane changed, the composition (outline, float image) runs on
one background thread, and the views that changed render one per event-loop turn.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal


def outline(plane: np.ndarray) -> np.ndarray:
    """Pixels of a label that touch a different value (4-neighbourhood)."""
    edge = np.zeros(plane.shape, dtype=bool)
    vertical = plane[:-1, :] != plane[1:, :]
    horizontal = plane[:, :-1] != plane[:, 1:]
    edge[:-1, :] |= vertical
    edge[1:, :] |= vertical
    edge[:, :-1] |= horizontal
    edge[:, 1:] |= horizontal
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    return edge & (plane != 0)


def compose(plane: np.ndarray) -> np.ndarray:
    """The layer image of one label plane: value ``v`` = fill of label ``v``, ``256 + v`` = its outline."""
    data = plane.astype(np.float32)
    data[outline(plane)] += 256.0
    return data


class LayerComposer(QObject):
    """One background thread composing label planes; results come back on the UI thread, newest only.

    ``submit(key, plane, deliver)``: ``deliver(image)`` runs on the UI thread with :func:`compose`'s result
    unless a newer plane was submitted under the same ``key`` meanwhile (then the older result is dropped).
    """

    _ready = Signal(object, int, object, object)  # key, generation, image, deliver (queued to the UI thread)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medfusion-labels")
        self._generation: dict[object, int] = {}
        self._ready.connect(self._deliver)

    def submit(self, key: object, plane: np.ndarray, deliver: Callable[[np.ndarray], None]) -> None:
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation
        ready = self._ready

        def work() -> None:
            try:
                ready.emit(key, generation, compose(plane), deliver)
            except RuntimeError:  # the window (and this object) was destroyed meanwhile
                return

        self._pool.submit(work)

    def cancel(self, key: object) -> None:
        """Drop any result still coming for ``key`` (e.g. the view now shows no label)."""
        self._generation[key] = self._generation.get(key, 0) + 1

    def _deliver(self, key: object, generation: int, image: np.ndarray, deliver: Callable[[np.ndarray], None]) -> None:
        if self._generation.get(key) == generation:
            deliver(image)

    def wait(self) -> None:
        """Block until the queued compositions ran (tests, screenshots); their results still arrive as events."""
        self._pool.submit(lambda: None).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class RenderQueue(QObject):
    """Renders the views that asked, one per event-loop turn, so three views changed by one gesture never
    stall the UI for three renders in a row (each render is tens of ms with software OpenGL)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: list[Callable[[], None]] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._next)

    def request(self, render: Callable[[], None]) -> None:
        if render not in self._pending:
            self._pending.append(render)
        if not self._timer.isActive():
            self._timer.start()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Render everything still queued now (tests, screenshots)."""
        while self._pending:
            self._next()

    def _next(self) -> None:
        if self._pending:
            self._pending.pop(0)()
        if self._pending:
            self._timer.start()
