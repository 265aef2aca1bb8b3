"""Mouse gestures on a slice view for the viewer tests (real Qt events into the VTK widget)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.widgets.slice_view import SliceView

LEFT = Qt.MouseButton.LeftButton


def widget_pos(view: SliceView, index: tuple[float, float, float] | np.ndarray) -> QPointF:
    """Voxel index (on the shown slice) → Qt widget coordinates."""
    x, y = view.index_to_display(np.asarray(index, float))
    return QPointF(x, y)


def send(view: SliceView, kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton,
         buttons: Qt.MouseButton, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    widget = view.vtk_widget
    event = QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(pos.toPoint())), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def drag(view: SliceView, start: np.ndarray | tuple, end: np.ndarray | tuple, steps: int = 5) -> None:
    """Left press at ``start``, moves, release at ``end`` (voxel indices)."""
    a, b = widget_pos(view, start), widget_pos(view, end)
    send(view, QEvent.Type.MouseButtonPress, a, LEFT, LEFT)
    for i in range(1, steps + 1):
        send(view, QEvent.Type.MouseMove, a + (b - a) * (i / steps), Qt.MouseButton.NoButton, LEFT)
    send(view, QEvent.Type.MouseButtonRelease, b, LEFT, Qt.MouseButton.NoButton)


def click(view: SliceView, index: np.ndarray | tuple) -> None:
    pos = widget_pos(view, index)
    send(view, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    send(view, QEvent.Type.MouseButtonPress, pos, LEFT, LEFT)
    send(view, QEvent.Type.MouseButtonRelease, pos, LEFT, Qt.MouseButton.NoButton)
