"""Progress reporting and cooperative cancellation for long synchronous calls.

Long calls in ``inference`` are synchronous; the app runs them in worker threads. They take a
``progress`` callback (fraction in [0, 1], short message) and a :class:`CancelToken` they poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from inference.errors import Cancelled

ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """Default progress sink that ignores updates."""


class CancelToken:
    """Thread-safe flag set by the UI, polled by the worker."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def scaled(progress: ProgressCallback, start: float, stop: float) -> ProgressCallback:
    """Map a sub-task's 0..1 progress into ``[start, stop]`` of the parent's range."""

    def report(fraction: float, message: str) -> None:
        progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return report
