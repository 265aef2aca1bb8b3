"""Cine: play the active view's slices at a chosen rate, looping or bouncing, until paused.

A ``QTimer`` on the UI thread moves the document's cursor one slice per tick (the view redraws as for
the wheel); the stepping rule is the Qt-free :func:`app.model.view_modes.next_cine_index`. Playback
stops on pause, on a new image, or when the played view has a single slice (a 2-D X-ray).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from app.model.document import Document
from app.model.view_modes import ViewModes, next_cine_index
from app.widgets.slice_view import SliceView


class CinePlayer(QObject):
    """Plays ``views[modes.active]``; ``playing_changed(bool)`` drives the Play/Pause action."""

    playing_changed = Signal(bool)

    def __init__(self, document: Document, views: dict[str, SliceView], modes: ViewModes,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document, self.views, self.modes = document, views, modes
        self.view_name = ""
        self._direction = 1
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.step)
        modes.cine_changed.connect(self._apply_rate)
        document.volume_changed.connect(lambda _v: self.pause())
        self._apply_rate()

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def can_play(self, name: str | None = None) -> bool:
        view = self.views.get(name or self.modes.active)
        if view is None or self.document.volume is None:
            return False
        return self.document.shape_xyz[view.mapping.normal_axis] > 1

    def play(self) -> None:
        if not self.can_play():
            return
        self.view_name = self.modes.active
        self._direction = 1
        self.timer.start()
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.playing_changed.emit(False)

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def step(self) -> None:
        """One frame: the next slice of the played view (or stop if it cannot play any more)."""
        if not self.can_play(self.view_name):
            self.pause()
            return
        axis = self.views[self.view_name].mapping.normal_axis
        count = self.document.shape_xyz[axis]
        index, self._direction = next_cine_index(self.document.cursor[axis], count, self._direction,
                                                 self.modes.cine_mode)
        self.document.set_slice(axis, index)

    def _apply_rate(self) -> None:
        self.timer.setInterval(max(1, round(1000.0 / self.modes.cine_fps)))
