"""Status-bar progress bar with a Cancel button, driven by the TaskRunner.

Progress is shown at most every ``INTERVAL_MS``: ``QProgressBar.setValue`` repaints synchronously, and a
series load reports every header and slice (a few ms of UI-thread painting each, which delayed the first
image at start-up when the reports queued up behind the first renders).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app.workers import TaskRunner


class ProgressWidget(QWidget):
    """Hidden while idle; shows the newest task's message and fraction; Cancel stops all tasks."""

    INTERVAL_MS = 100

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("progress_widget")
        self.runner = runner
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancel_button")
        self.cancel_button.clicked.connect(self._on_cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self._latest: tuple[str, float, str] | None = None  # the newest report, shown when the timer fires
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self._show_latest)
        runner.progress.connect(self._on_progress)
        runner.busy_changed.connect(self._on_busy)
        self.setVisible(False)

    def _on_busy(self, busy: bool) -> None:
        self._latest = None
        self._timer.stop()
        self.bar.setValue(0)
        self.label.setText("Working…" if busy else "")
        self.setVisible(busy)

    def _on_progress(self, description: str, fraction: float, message: str) -> None:
        self._latest = (description, fraction, message)
        if not self._timer.isActive():
            self._timer.start()

    def _show_latest(self) -> None:
        if self._latest is None:
            return
        description, fraction, message = self._latest
        self._latest = None
        self.bar.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))
        self.label.setText(message or description)

    def _on_cancel(self) -> None:
        self.runner.cancel()
        self._latest = None
        self._timer.stop()
        self.label.setText("Cancelling…")
