"""Guided tour: a small card over the main window, Next/Back, Esc or × closes it at any time (never traps)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


@dataclass(frozen=True)
class TourStep:
    title: str
    text: str
    panel: str = ""  # window.panels key to raise while this step shows


STEPS: tuple[TourStep, ...] = (
    TourStep("Welcome", "A chest X-ray series (days 0–3) of one COVID-19 patient, with the clinical data "
             "recorded at presentation. Research demo — not for diagnosis."),
    TourStep("X-rays over time", "The strip below lists every X-ray by day. Click one to view it; the ones "
             "the model used get an orange frame.", "timeline"),
    TourStep("Clinical data", "Vitals and labs with units and normal ranges; abnormal values are red, missing "
             "ones say so. Double-click a value to try a what-if change.", "ehr"),
    TourStep("Prediction", "Each outcome in plain words, with its probability and the set of answers the model "
             "cannot rule out at the chosen confidence level. Both answers in the set = uncertain.", "prediction"),
    TourStep("Why?", "The heat-map on the X-ray and the bar chart show what pushed the prediction; the gate "
             "says how much came from the image vs the clinical data.", "explanation"),
    TourStep("You are in charge", "Correct a lung mask or a value: the prediction is marked out of date until "
             "you press Predict again. Every AI output and every change is logged.", "audit"),
    TourStep("Start over", "Reset (toolbar) restores the demo; F11 toggles full screen. Press Esc to close "
             "this tour."),
)


class TourOverlay(QFrame):
    """Floating card in the window's bottom-right corner; keyboard: →/Enter next, ← back, Esc close."""

    def __init__(self, window: QWidget, steps: tuple[TourStep, ...] = STEPS) -> None:
        super().__init__(window)
        self.setObjectName("tour_overlay")
        self.window_, self.steps, self.index = window, steps, 0
        self.setStyleSheet("#tour_overlay{background:#1f2f3f;border:2px solid #f0ad4e;border-radius:8px}"
                           "QLabel{color:#f0f0f0}")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.title = QLabel(self)
        close = QPushButton("×", self)
        close.setFixedWidth(28)
        close.setToolTip("Close the tour (Esc)")
        close.clicked.connect(self.close_tour)
        top.addWidget(self.title, 1)
        top.addWidget(close)
        layout.addLayout(top)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        layout.addWidget(self.text)
        row = QHBoxLayout()
        self.back_button = QPushButton("Back", self)
        self.next_button = QPushButton("Next", self)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.counter = QLabel(self)
        row.addWidget(self.counter, 1)
        row.addWidget(self.back_button)
        row.addWidget(self.next_button)
        layout.addLayout(row)
        self.setFixedWidth(380)
        window.installEventFilter(self)
        self.hide()

    def start(self) -> None:
        self.index = 0
        self._show_step()
        self.show()
        self.raise_()
        self.setFocus()

    def next(self) -> None:
        if self.index >= len(self.steps) - 1:
            self.close_tour()
            return
        self.index += 1
        self._show_step()

    def back(self) -> None:
        self.index = max(0, self.index - 1)
        self._show_step()

    def close_tour(self) -> None:
        self.hide()

    def _show_step(self) -> None:
        step = self.steps[self.index]
        self.title.setText(f"<b>{step.title}</b>")
        self.text.setText(step.text)
        self.counter.setText(f"{self.index + 1} / {len(self.steps)} · Esc closes")
        self.back_button.setEnabled(self.index > 0)
        self.next_button.setText("Done" if self.index == len(self.steps) - 1 else "Next")
        dock = getattr(self.window_, "panels", {}).get(step.panel)
        if dock is not None:
            dock.show()
            dock.raise_()
        self.adjustSize()
        self._place()

    def _place(self) -> None:
        """Bottom-right, over the panels (Qt-painted) rather than over the OpenGL image view."""
        w = self.window_
        self.move(max(0, w.width() - self.width() - 16), max(0, w.height() - self.height() - 48))
        self.raise_()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        key = event.key()
        if key == Qt.Key.Key_Escape:
            self.close_tour()
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.next()
        elif key == Qt.Key.Key_Left:
            self.back()
        else:
            super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        """Esc anywhere in the window closes the tour too; the card follows window resizes."""
        if self.isVisible() and event.type() == QEvent.Type.Resize:
            self._place()
        if (self.isVisible() and event.type() == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape):
            self.close_tour()
            return True
        return False
