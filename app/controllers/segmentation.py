"""Segmentation controller: runs every model call on the TaskRunner and turns results into label changes.

One :class:`SegmentationSession` per image (a new image gets a fresh session, so a late result of the old
image can never write into the new one), one shared embedding cache (single-flight: a slice being embedded
by the background precompute is awaited, never embedded twice), and one lock serialising gestures.
Channels: ``segment`` (box/point prompts), ``seg_propagate`` (3-D propagation, cancellable midway, the
slices done are kept), ``seg_embed`` (precompute the shown slice and its neighbours), ``seg_io`` (files).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.context import AppContext
from app.controllers.segmentation_scoring import SCORE_CHANNEL, score_later
from app.model.labels import touched
from inference.errors import Cancelled, InvalidPromptError, MedFusionError
from inference.export.mask_files import read_label_table, sidecar_path
from inference.io.volume import Volume
from inference.progress import CancelToken, ProgressCallback
from inference.segmentation.backend import SegmentationBackend
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.plane_edit import brush_plane
from inference.segmentation.session import SegmentationSession, SessionOptions
from inference.segmentation.windowing import choose_window
from inference.segmentation.windows import DEFAULT_CT_WINDOW, MODEL_WINDOWS, window_name

log = logging.getLogger("medfusion.app.segmentation")

class SegmentationBusyError(InvalidPromptError):
    """Another gesture is still changing the masks."""


QUIET_CHANNELS = ("seg_embed", SCORE_CHANNEL)  # background work that does not make segmentation busy


class SegmentationController(QObject):
    """What the tools and the panel call; results reach :class:`LabelsModel` on the UI thread."""

    _ended = Signal(str)  # channel; emitted by worker threads, delivered on the UI thread
    _partial = Signal(object, str, object)  # session, label, z range: a cancelled propagation kept slices
    busy_changed = Signal(bool)
    status = Signal(str)
    window_chosen = Signal(str)  # the automatic window's latest choice ("" = none yet, e.g. a new image)

    def __init__(
        self,
        context: AppContext,
        backend: SegmentationBackend,
        cache: EmbeddingCache,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.context, self.labels = context, context.labels
        self.document, self.runner = context.document, context.runner
        self.backend, self.cache = backend, cache
        self.neighbours = 1  # slices on each side embedded in the background (CPU: 3 embeddings per image)
        self.window_mode = "auto"
        self.brush_radius = 6  # pixels
        self.tools_active = False  # a segmentation tool is active: follow the shown slice with precompute
        self._running: dict[str, int] = {}
        self.precomputed_z: int | None = None  # the slice the background embedding last centred on
        self._ended.connect(self._on_ended)
        self._partial.connect(self._on_partial)
        self._slice_timer = QTimer(self)
        self._slice_timer.setSingleShot(True)
        self._slice_timer.setInterval(350)
        self._slice_timer.timeout.connect(lambda: self.precompute())
        self.document.volume_changed.connect(self._on_volume)
        self.document.cursor_changed.connect(self._on_cursor)

    # ---- state ------------------------------------------------------------------------------------
    @property
    def session(self) -> SegmentationSession | None:
        return self.labels.session

    def busy(self, channel: str | None = None) -> bool:
        if channel is not None:
            return self._running.get(channel, 0) > 0
        return any(self._running.get(c, 0) > 0 for c in ("segment", "seg_propagate"))

    @property
    def propagating(self) -> bool:
        return self.busy("seg_propagate")

    def current_z(self) -> int:
        return int(self.document.cursor[2])

    def _model_window(self) -> tuple[float, float] | str:
        if self.window_mode == "display":
            return (float(self.document.level), float(self.document.window))
        win = MODEL_WINDOWS.get(self.window_mode, MODEL_WINDOWS["auto"])[1]
        return "auto" if self.window_mode == "auto" else win  # type: ignore[return-value]

    def set_window_mode(self, mode: str) -> None:
        """Which CT window the model sees; embeddings for the new window are precomputed."""
        if mode not in MODEL_WINDOWS:
            raise InvalidPromptError(f"Unknown model window '{mode}'.")
        self.window_mode = mode
        if self.session is not None:
            self._apply_window(self.session)
            self.precomputed_z = None
            self.precompute()

    def _apply_window(self, session: SegmentationSession) -> None:
        win = self._model_window()
        session.window_setting = win
        if win == "auto":
            session.ct_window = DEFAULT_CT_WINDOW

    # ---- image changes and background embedding ---------------------------------------------------
    def _on_volume(self, volume: Volume | None) -> None:
        for channel in ("segment", "seg_propagate", "seg_embed", SCORE_CHANNEL):
            self.runner.cancel(channel)
        session = None
        if volume is not None:
            # the mask is drawn after one decoder pass, its confidence scored right after (issue 17)
            session = SegmentationSession(self.backend, self.cache, options=SessionOptions(defer_confidence=True))
            self._apply_window(session)
            session.set_image(volume)
        self.labels.bind(session)
        self.window_chosen.emit("")
        self.precomputed_z = None
        if session is not None:
            self.precompute(defer=True)  # after the views' first renders of the new image (issue 17)

    def _on_cursor(self, _cursor: object) -> None:
        if self.tools_active and self.session is not None and self.current_z() != self.precomputed_z:
            self._slice_timer.start()

    def precompute(self, z: int | None = None, *, defer: bool = False) -> None:
        """Embed slice ``z`` (default: the shown one) and its neighbours off the UI thread (``defer``: see
        :meth:`TaskRunner.submit`; a new image's first start loads the model, ~0.5 s of both cores)."""
        session = self.session
        if session is None or session.volume is None:
            return
        nz = session.label_map.shape[0]
        z = self.current_z() if z is None else int(z)
        order = [z]
        for d in range(1, self.neighbours + 1):
            order += [zz for zz in (z + d, z - d) if 0 <= zz < nz]
        if self.window_mode == "display":
            self._apply_window(session)
        self.precomputed_z = z

        def task(progress: ProgressCallback, cancel: CancelToken) -> int:
            for i, zz in enumerate(order):
                cancel.raise_if_cancelled()
                progress(i / len(order), f"Preparing segmentation: slice {zz + 1}")
                session.embedding(zz)
            return len(order)

        self._submit("seg_embed", task, lambda _n: None, "Preparing segmentation", self._quiet, defer=defer)

    # ---- gestures ---------------------------------------------------------------------------------
    def _ready(self) -> SegmentationSession:
        session = self.session
        if session is None or session.volume is None:
            raise InvalidPromptError("Open an image before segmenting.")
        if self.propagating:
            raise SegmentationBusyError("Propagation is running: wait for it or cancel it (Esc).")
        return session

    def add_box(self, z: int, box: tuple[float, float, float, float]) -> None:
        """Box prompt on slice ``z`` for the active label (replaces that label's mask on the slice)."""
        self._prompt("box", z, lambda s, name: s.add_box(z, box, name))

    def add_point(self, z: int, x: float, y: float, positive: bool) -> None:
        """Include (positive) / exclude click refining the active label on slice ``z``."""
        self._prompt("point", z, lambda s, name: s.add_point(z, x, y, positive, name))

    def _prompt(self, kind: str, z: int, call: Callable[[SegmentationSession, str], Any]) -> None:
        try:
            session = self._ready()
            name = self.labels.ensure_active()
        except MedFusionError as err:
            self.report(err)
            return
        if self.window_mode == "display":
            self._apply_window(session)
        labels = self.labels

        def task(progress: ProgressCallback, cancel: CancelToken) -> Any:
            progress(0.1, "Segmenting…")
            return labels.run_gesture(kind, name, lambda: call(session, name), session)

        def done(result: Any) -> None:
            if session is not self.session:
                return
            labels.notify(kind, name, (z, z))
            how = self._window_words(session, name, z) if kind == "box" else ""
            head = f"{name}: {result.area_px} px on slice {z + 1}"
            if np.isnan(result.confidence):
                self.say(f"{head}{how}; scoring its confidence…")
                score_later(self, session, name, z, f"{head}, confidence {{:.2f}}{how}")
            else:
                self.say(f"{head}, confidence {result.confidence:.2f}{how}")

        self._submit("segment", task, done, f"Segmenting {name}")

    def _window_words(self, session: SegmentationSession, name: str, z: int) -> str:
        """Which CT window the box was segmented in, for the message; a forced window that shows the object
        worse than another standard one says so (the user chose it, the automatic choice would differ)."""
        if not session.is_ct:
            return ""
        if self.window_mode == "auto":
            choice = session.last_choice
            if choice is None:
                return ""
            self.window_chosen.emit(window_name(choice.window))
            return f", {choice.name} window (automatic)"
        used = session.window_for(name, z)
        words = f", {window_name(used)} window (chosen in the panel)"
        prompt = session.prompt(name, z)
        if prompt is None or prompt.box is None or session.volume is None:
            return words
        best = choose_window(session.volume.array[z], prompt.box)
        if best.shows_object and used is not None and best.window != tuple(used):
            words += f"; the {best.name} window shows this object better (Automatic picks it)"
        return words

    def paint(self, z: int, stroke: np.ndarray, erase: bool) -> None:
        """One brush/eraser stroke on axial slice ``z`` (see :meth:`paint_plane`)."""
        self.paint_plane(2, z, stroke, erase)

    def paint_plane(self, axis: int, index: int, stroke: np.ndarray, erase: bool) -> None:
        """One brush/eraser stroke on the plane normal to index ``axis`` (2 axial, 1 coronal, 0 sagittal) at
        ``index`` (UI thread; refused while a model call is changing the masks)."""
        kind = "erase" if erase else "brush"
        try:
            session = self._ready()
            name = self.labels.ensure_active()
            if not self.labels.lock.acquire(blocking=False):
                raise SegmentationBusyError("The model is still working: try again in a moment.")
            try:
                self.labels.begin_gesture(kind, name, session)
                z_range = brush_plane(session, axis, index, stroke, name, erase=erase)
            finally:
                if self.labels.history is not None:
                    self.labels.history.pending_origins = None
                self.labels.lock.release()
        except MedFusionError as err:
            self.report(err)
            return
        if z_range is not None:
            self.labels.notify(kind, name, z_range)

    def propagate(self, z_range: tuple[int, int] | None = None, direction: str = "both") -> None:
        """Carry the active label through ``z_range`` (default: the whole volume) from its seed slice."""
        try:
            session = self._ready()
            name = self.labels.active
            if not name or session.labels.find(name) is None:
                raise InvalidPromptError("Draw a box on one slice first, then propagate it.")
        except MedFusionError as err:
            self.report(err)
            return
        labels, partial = self.labels, self._partial
        requested = z_range if z_range is not None else (0, session.label_map.shape[0] - 1)

        def task(progress: ProgressCallback, cancel: CancelToken) -> Any:
            try:
                return labels.run_gesture(
                    "propagate", name, lambda: session.propagate(name, requested, direction, progress, cancel),
                    session,
                )
            except Cancelled:
                partial.emit(session, name, requested)  # the slices done are kept: show them
                raise

        def done(result: Any) -> None:
            if session is not self.session:
                return
            zs = sorted(result.slices)
            labels.notify("propagate", name, (zs[0], zs[-1]))
            why = "; ".join(f"{d}: {r}" for d, r in result.stop_reason.items())
            seen = window_name(result.window)
            where = f" in the {seen} window" if seen else ""
            self.say(f"Propagated {name} over {len(zs)} slices ({zs[0] + 1}–{zs[-1] + 1}){where}. Stopped {why}.")

        self._submit("seg_propagate", task, done, f"Propagating {name}")

    def _on_partial(self, session: object, name: str, requested: tuple[int, int]) -> None:
        if session is not self.session or self.session is None:
            return
        counts = self.labels.slices_with_mask(name) if name in self.labels.names() else np.zeros(0)
        zs = [z for z in np.flatnonzero(counts) if requested[0] <= z <= requested[1]]
        self.labels.notify("propagate", name, (int(zs[0]), int(zs[-1])) if zs else None)
        self.say(f"Propagation cancelled: {name} kept on {len(zs)} slices (undo removes them).")

    def cancel(self) -> None:
        """Stop propagation / a pending prompt (the slices already propagated stay, undoable)."""
        if self.busy():
            self.runner.cancel("seg_propagate")
            self.runner.cancel("segment")
            self.say("Cancelling segmentation…")

    def undo(self) -> None:
        self._history_step("undo")

    def redo(self) -> None:
        self._history_step("redo")

    def _history_step(self, kind: str) -> None:
        session = self.session
        if session is None:
            return
        if self.busy() or not self.labels.lock.acquire(blocking=False):
            self.say("Wait for the segmentation to finish (or cancel it) before undoing.")
            return
        try:
            ok = session.undo() if kind == "undo" else session.redo()
            history = self.labels.history
            gesture = history.last if history is not None else None
        finally:
            self.labels.lock.release()
        if not ok:
            self.say("Nothing to undo." if kind == "undo" else "Nothing to redo.")
            return
        values, z_range = touched(gesture)
        by_value = {v: n for n, v in self.labels.values().items()}
        for value in sorted(values):
            if value in by_value:
                self.labels.gesture_applied.emit(kind, by_value[value], z_range)
        self.labels.changed.emit()
        self.say(f"{kind.capitalize()}: {gesture.name if gesture else ''}")

    # ---- files ------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write all labels to ``path`` (.nrrd/.nii/.nii.gz, or .png for 2-D) plus a ``.labels.json``."""
        session = self.session
        if session is None or session.volume is None or not self.labels.names():
            self.report(InvalidPromptError("There is no segmentation to save."))
            return
        volume, label_map = session.volume, self.labels.label_map()
        table = [
            {"name": n, "value": v, "colour": list(self.labels.colour(n)), "origin": self.labels.origin(n)}
            for n, v in self.labels.values().items()
        ]
        path = Path(path)

        def task(progress: ProgressCallback, cancel: CancelToken) -> Path:
            from inference.io.writers import save_mask

            progress(0.2, f"Saving {path.name}")
            save_mask(label_map, volume, path)
            sidecar_path(path).write_text(json.dumps({"labels": table}, indent=1))
            return path

        self._submit("seg_io", task, lambda p: self.say(f"Segmentation saved to {p}."), "Saving segmentation")

    def load(self, path: Path) -> None:
        """Open a saved mask as labels (names/colours/origins from its ``.labels.json`` when present)."""
        session = self.session
        if session is None or session.volume is None:
            self.report(InvalidPromptError("Open the image first, then its segmentation."))
            return
        volume, path = session.volume, Path(path)

        def task(progress: ProgressCallback, cancel: CancelToken) -> tuple[np.ndarray, list, dict]:
            from inference.io.writers import load_mask

            progress(0.2, f"Reading {path.name}")
            data = load_mask(path, volume)
            return (data, *read_label_table(path, data))

        def done(result: tuple[np.ndarray, list, dict]) -> None:
            if session is not self.session:
                return
            data, rows, origins = result
            self.labels.set_masks(data, rows, origins)
            self.say(f"Opened {len(rows)} label(s) from {path.name}.")

        self._submit("seg_io", task, done, "Opening segmentation")

    # ---- plumbing ---------------------------------------------------------------------------------
    def _submit(
        self, channel: str, task: Callable, on_done: Callable[[Any], None], description: str,
        on_error: Callable[[BaseException], None] | None = None, *, defer: bool = False,
    ) -> None:
        ended = self._ended

        def wrapped(progress: ProgressCallback, cancel: CancelToken) -> Any:
            try:
                return task(progress, cancel)
            finally:
                ended.emit(channel)

        self._running[channel] = self._running.get(channel, 0) + 1
        if channel not in QUIET_CHANNELS:
            self.busy_changed.emit(True)
        self.runner.submit(channel, wrapped, on_done, on_error or self.report, description, defer=defer)

    def _on_ended(self, channel: str) -> None:
        self._running[channel] = max(self._running.get(channel, 0) - 1, 0)
        if channel not in QUIET_CHANNELS:
            self.busy_changed.emit(self.busy())

    def _quiet(self, error: BaseException) -> None:
        """Background precompute failed (e.g. no model file): say so once, the first prompt shows the error."""
        log.warning("segmentation precompute failed: %s", error)
        if isinstance(error, MedFusionError):
            self.say(f"Segmentation not ready: {error}")

    def report(self, error: BaseException) -> None:
        if isinstance(error, SegmentationBusyError):
            self.say(str(error))
        else:
            self.context.show_error(error)

    def say(self, message: str) -> None:
        self.context.show_status(message)
        self.status.emit(message)

