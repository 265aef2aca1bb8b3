"""Screenshots that include VTK output (Qt's grab() cannot read VTK's OpenGL buffers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QWidget


def array_to_qimage(pixels: np.ndarray) -> QImage:
    """``uint8[H, W, 3]`` → QImage (copied, so the array may be freed)."""
    pixels = np.ascontiguousarray(pixels[:, :, :3], dtype=np.uint8)
    h, w, _ = pixels.shape
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def save_array(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not array_to_qimage(pixels).save(str(path)):
        raise OSError(f"could not write {path}")


def grab_window(window: QWidget) -> QImage:
    """The whole window: Qt's grab with each visible VTK view's own pixels pasted at its place."""
    image = window.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    painter = QPainter(image)
    ratio = window.devicePixelRatioF()
    for view in _vtk_views(window):
        widget = view.vtk_widget
        if not widget.isVisible() or widget.width() < 2:
            continue
        pixels = view.grab_array()
        top_left = widget.mapTo(window, QPoint(0, 0))
        painter.drawImage(
            QPoint(int(top_left.x() * ratio), int(top_left.y() * ratio)), array_to_qimage(pixels)
        )
    painter.end()
    return image


def _vtk_views(window: QWidget) -> list:
    return [w for w in window.findChildren(QWidget) if hasattr(w, "grab_array") and hasattr(w, "vtk_widget")]


def save_window(window: QWidget, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not grab_window(window).save(str(path)):
        raise OSError(f"could not write {path}")
