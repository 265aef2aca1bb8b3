"""Run long synchronous calls (loading, resampling, inference) off the UI thread.

A task is ``fn(progress, cancel) -> result`` — exactly the signature of the ``inference`` API. Tasks
are grouped in *channels* ("load", "overlay", "segment", ...): submitting a new task on a channel
cancels the previous one and gives it a new request id; results of anything but the latest id are
dropped, so a slow old load can never overwrite a newer one. Callbacks run on the UI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from inference.progress import CancelToken

log = logging.getLogger("medfusion.app.workers")

TaskFn = Callable[[Callable[[float, str], None], CancelToken], Any]


class _JobSignals(QObject):
    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, object)


class _Job(QRunnable):
    def __init__(self, request_id: int, fn: TaskFn, token: CancelToken, signals: _JobSignals) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._id, self._fn, self._token, self._signals = request_id, fn, token, signals

    def run(self) -> None:
        def progress(fraction: float, message: str) -> None:
            self._signals.progress.emit(self._id, float(fraction), str(message))

        try:
            try:
                result = self._fn(progress, self._token)
            except BaseException as exc:  # noqa: BLE001 - handed to the UI thread, which decides what the user sees
                self._signals.failed.emit(self._id, exc)
            else:
                self._signals.finished.emit(self._id, result)
        except RuntimeError:  # the window (and its signal object) was destroyed meanwhile: nobody to tell
            return


@dataclass
class _Pending:
    channel: str
    token: CancelToken
    on_done: Callable[[Any], None]
    on_error: Callable[[BaseException], None] | None
    description: str
    signals: _JobSignals = field(repr=False, default=None)  # type: ignore[assignment]


class TaskRunner(QObject):
    """Thread pool with per-channel request ids, progress and cancellation.

    Signals: ``progress(description, fraction, message)`` for the newest running task, and
    ``busy_changed(bool)`` when the first task starts / the last one ends.
    """

    progress = Signal(str, float, str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._next_id = 0
        self._latest: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(
        self,
        channel: str,
        fn: TaskFn,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None = None,
        description: str = "",
        *,
        defer: bool = False,
    ) -> int:
        """Start ``fn`` on a worker thread; returns its request id.

        ``defer``: the worker starts it on the next event-loop turn, after what the UI thread has already
        been asked to do in this one (a new image's first renders): background work that is not needed on
        screen (precomputing embeddings) then does not compete with them for the cores. The task counts as
        running (``busy``) from now on.
        """
        self.cancel(channel)
        self._next_id += 1
        request_id = self._next_id
        signals = _JobSignals()
        signals.progress.connect(self._on_progress)
        signals.finished.connect(self._on_finished)
        signals.failed.connect(self._on_failed)
        was_busy = self.busy
        token = CancelToken()
        self._pending[request_id] = _Pending(
            channel, token, on_done, on_error, description or channel, signals
        )
        self._latest[channel] = request_id
        if not was_busy:
            self.busy_changed.emit(True)
        job = _Job(request_id, fn, token, signals)
        if defer:
            QTimer.singleShot(0, self, lambda: self._pool.start(job))
        else:
            self._pool.start(job)
        return request_id

    def cancel(self, channel: str | None = None) -> None:
        """Ask the task(s) on ``channel`` (all channels if None) to stop; their results are dropped."""
        for pending in list(self._pending.values()):
            if channel is None or pending.channel == channel:
                pending.token.cancel()
                if channel is None:
                    self._latest.pop(pending.channel, None)

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the pool is idle (tests, shutdown); queued callbacks still need the event loop."""
        return self._pool.waitForDone(msecs)

    def _is_current(self, request_id: int) -> bool:
        pending = self._pending.get(request_id)
        return pending is not None and self._latest.get(pending.channel) == request_id

    def _finish(self, request_id: int) -> _Pending | None:
        current = self._is_current(request_id)
        pending = self._pending.pop(request_id, None)
        if not self._pending:
            self.busy_changed.emit(False)
        if pending is None or not current:
            log.debug("dropping stale result of request %s", request_id)
            return None
        if pending.token.cancelled:
            return None
        return pending

    @Slot(int, float, str)
    def _on_progress(self, request_id: int, fraction: float, message: str) -> None:
        if self._is_current(request_id):
            self.progress.emit(self._pending[request_id].description, fraction, message)

    @Slot(int, object)
    def _on_finished(self, request_id: int, result: object) -> None:
        pending = self._finish(request_id)
        if pending is not None:
            pending.on_done(result)

    @Slot(int, object)
    def _on_failed(self, request_id: int, error: object) -> None:
        token_cancelled = request_id in self._pending and self._pending[request_id].token.cancelled
        pending = self._finish(request_id)
        if token_cancelled:
            log.info("request %s cancelled", request_id)
            return
        if pending is None:
            return
        if pending.on_error is not None:
            pending.on_error(error)  # type: ignore[arg-type]
        else:
            raise error  # type: ignore[misc]  # reaches the app's excepthook: logged, short message shown
