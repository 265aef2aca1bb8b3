"""Per-slice confidence strip of the active label: which slices hold it and how far to trust them.

One cell per slice: empty (dark), model mask coloured by its confidence (green ≥ 0.85, amber ≥ 0.6, red
below; the bar height is the value; outlined grey while it is being scored, a moment after the mask is
drawn), or hand-drawn / hand-edited (blue-grey, full height). The
confidence is the session's agreement measure (inference/segmentation/agreement.py): the mean Dice
between the drawn mask and the masks of slightly different boxes and, if another window shows the
object better, of that window. It is not the model's own IoU guess, which stays high on wrong masks.
The shown slice is outlined; clicking a cell jumps there, so weak slices are quick to review.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.model.document import Document
from app.model.labels import LabelsModel

GOOD, FAIR, POOR = QColor(70, 200, 90), QColor(240, 180, 40), QColor(230, 60, 60)
MANUAL, EMPTY, SCORING = QColor(110, 140, 170), QColor(45, 45, 45), QColor(150, 150, 150)


GREEN_AT, AMBER_AT = 0.85, 0.6  # green = agreement at the Dice the lesion work needs (issue 15)


def confidence_colour(confidence: float) -> QColor:
    return GOOD if confidence >= GREEN_AT else FAIR if confidence >= AMBER_AT else POOR


class ConfidenceStrip(QWidget):
    """Paints :meth:`cells` of the active label; ``refresh`` recomputes them from the labels model."""

    def __init__(self, labels: LabelsModel, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confidence_strip")
        self.labels, self.document = labels, document
        self.setMinimumHeight(30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "Per-slice confidence of the active label: agreement of the drawn mask with the masks of "
            "slightly different boxes and windows (green ≥ 0.85). Click a slice to go there."
        )
        self._present = np.zeros(0, dtype=bool)
        self._conf: dict[int, float] = {}
        self._refresh_timer = QTimer(self)  # one recount per event-loop turn, however many changes came
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh)
        labels.changed.connect(lambda: self._refresh_timer.start())
        labels.active_changed.connect(lambda _n: self._refresh_timer.start())
        document.cursor_changed.connect(lambda _c: self.update())

    def refresh(self) -> None:
        name = self.labels.active
        if self.labels.session is None or self.labels.raw_label_map() is None or name not in self.labels.names():
            nz = self.document.volume.shape[0] if self.document.volume is not None else 0
            self._present, self._conf = np.zeros(nz, dtype=bool), {}
        else:
            self._present = self.labels.slices_with_mask(name) > 0
            self._conf = self.labels.confidence(name)
        self.update()

    def cells(self) -> list[tuple[str, float | None]]:
        """Per slice: ("empty" | "model" | "manual", confidence or None)."""
        out: list[tuple[str, float | None]] = []
        for z, present in enumerate(self._present):
            if not present:
                out.append(("empty", None))
            elif z in self._conf:
                out.append(("model", self._conf[z]))
            else:
                out.append(("manual", None))
        return out

    def _cell_rect(self, z: int, n: int) -> QRectF:
        width = max(self.width() - 2, 1) / max(n, 1)
        return QRectF(1 + z * width, 1, width, self.height() - 2)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 30))
        cells = self.cells()
        n = len(cells)
        if n == 0:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No image")
            return
        for z, (kind, iou) in enumerate(cells):
            rect = self._cell_rect(z, n)
            painter.fillRect(rect.adjusted(0.5, 0, -0.5, 0), EMPTY)
            if kind == "model" and iou is not None and np.isnan(iou):  # drawn, confidence being scored
                painter.setPen(QPen(SCORING, 1.0, Qt.PenStyle.DotLine))
                painter.drawRect(rect.adjusted(1.0, 1.0, -1.0, -1.0))
            elif kind == "model" and iou is not None:
                h = rect.height() * min(max(iou, 0.05), 1.0)
                painter.fillRect(QRectF(rect.x() + 0.5, rect.bottom() - h, rect.width() - 1, h),
                                 confidence_colour(iou))
            elif kind == "manual":
                painter.fillRect(rect.adjusted(0.5, 0, -0.5, 0), MANUAL)
        current = int(self.document.cursor[2]) if self.document.volume is not None else -1
        if 0 <= current < n:
            painter.setPen(QPen(QColor(255, 255, 255), 1.5))
            painter.drawRect(self._cell_rect(current, n).adjusted(0.5, 0.5, -0.5, -0.5))
        if not self._present.any():
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no mask yet")
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        n = len(self._present)
        if n and self.document.volume is not None:
            z = int((event.position().x() - 1) / max(self.width() - 2, 1) * n)
            self.document.set_slice(2, min(max(z, 0), n - 1))
