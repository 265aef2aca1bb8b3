"""Mouse gestures and waits for the segmentation tests (real Qt events into the VTK widget of a slice view;
image pixel coordinates), shared by the test_segmentation_*_ui modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.launch import DEMO_CXR
from app.main_window import MainWindow
from app.widgets.slice_view import SliceView

REF_MASK = DEMO_CXR.parents[1] / "lung_masks" / "16660_1_1.png"
LUNG_BOX = (460.0, 53.0, 847.0, 664.0)  # the image's left lung (patient's left), from the bundled mask
AORTA_BOX = (246.0, 283.0, 281.0, 314.0)  # demo CT, slice 10


def wait_idle(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.wait(30)


def open_and_wait(qtbot, window: MainWindow, path: Path) -> None:  # noqa: ANN001
    window.open_path(path)
    wait_idle(qtbot, window)
    assert window.document.volume is not None


def widget_pos(view: SliceView, x: float, y: float) -> QPointF:
    """Image pixel (x = column, y = row) on the shown slice → Qt widget coordinates."""
    wx, wy = view.index_to_world(np.array([x, y, view.slice_index], float))
    view.renderer.SetWorldPoint(wx, wy, 0.0, 1.0)
    view.renderer.WorldToDisplay()
    dx, dy, _ = view.renderer.GetDisplayPoint()
    ratio = view.vtk_widget.devicePixelRatioF()
    return QPointF(dx / ratio, view.vtk_widget.height() - dy / ratio)


def mouse(view: SliceView, kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton,
           buttons: Qt.MouseButton, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    widget = view.vtk_widget
    event = QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(pos.toPoint())), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def drag(view: SliceView, start: tuple[float, float], end: tuple[float, float],
          button: Qt.MouseButton = Qt.MouseButton.LeftButton, steps: int = 4) -> None:
    a, b = widget_pos(view, *start), widget_pos(view, *end)
    mouse(view, QEvent.Type.MouseButtonPress, a, button, button)
    for i in range(1, steps + 1):
        p = a + (b - a) * (i / steps)
        mouse(view, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button)
    mouse(view, QEvent.Type.MouseButtonRelease, b, button, Qt.MouseButton.NoButton)


def click(view: SliceView, x: float, y: float, button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
    pos = widget_pos(view, x, y)
    mouse(view, QEvent.Type.MouseButtonPress, pos, button, button)
    mouse(view, QEvent.Type.MouseButtonRelease, pos, button, Qt.MouseButton.NoButton)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def box_prompt(qtbot, window: MainWindow, view: SliceView, box: tuple[float, float, float, float]) -> None:  # noqa: ANN001
    window.activate_tool("seg_box")
    drag(view, box[:2], box[2:])
    wait_idle(qtbot, window)
