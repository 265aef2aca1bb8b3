"""Mouse, wheel and key routing for one :class:`~app.widgets.slice_view.SliceView`.

Qt events on the view's VTK widget are taken here before VTK's own interactor sees them, so all
behaviour is ours (see :mod:`app.tools` for the mouse map): left button to the active tool, right drag
window/level (Ctrl: zoom), middle drag pan, a right click without drag to a tool that takes it (e.g.
"exclude"), wheel = slice (Ctrl: zoom), arrows/PageUp/PageDown/Home/End = slice, R = reset the camera.
Kept apart from the view so the view stays about drawing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

from app.tools import PanTool, SliceEvent, WindowLevelTool, ZoomTool

if TYPE_CHECKING:
    from app.widgets.slice_view import SliceView

_SLICE_KEYS = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_Left: -1,
               Qt.Key.Key_PageUp: 5, Qt.Key.Key_PageDown: -5}


class SliceInput(QObject):
    """Event filter on ``view.vtk_widget`` holding the drag state of one view."""

    def __init__(self, view: SliceView) -> None:
        super().__init__(view)
        self.view = view
        self._drag: tuple[Qt.MouseButton, object] | None = None
        self._right_click: tuple[float, float] | None = None  # right press a tool may take as a click
        document = view.document
        self._builtin_wl, self._builtin_pan, self._builtin_zoom = (WindowLevelTool(document), PanTool(document),
                                                                   ZoomTool(document))

    def _event(self, event: QMouseEvent, button: Qt.MouseButton) -> SliceEvent:
        pos = event.position()
        return SliceEvent(
            self.view, self.view.display_to_index(pos.x(), pos.y()), (pos.x(), pos.y()), button, event.modifiers()
        )

    def _handler_for(self, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> object | None:
        if button == Qt.MouseButton.LeftButton:
            return self.view.tools.active
        if button == Qt.MouseButton.RightButton:
            return self._builtin_zoom if modifiers & Qt.KeyboardModifier.ControlModifier else self._builtin_wl
        if button == Qt.MouseButton.MiddleButton:
            return self._builtin_pan
        return None

    def _tool_takes_right_click(self, event: QMouseEvent) -> bool:
        return (
            event.button() == Qt.MouseButton.RightButton
            and not event.modifiers() & Qt.KeyboardModifier.ControlModifier
            and getattr(self.view.tools.active, "takes_right_click", False)
        )

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        view = self.view
        if watched is not view.vtk_widget or view.document.volume is None:
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress:
            assert isinstance(event, QMouseEvent)
            view.vtk_widget.setFocus()
            handler = self._handler_for(event.button(), event.modifiers())
            self._right_click = None
            if self._tool_takes_right_click(event):
                # Right click without drag goes to the tool (e.g. "exclude"); a drag is still window/level.
                self._right_click = (event.position().x(), event.position().y())
            if handler is not None:
                self._drag = (event.button(), handler)
                if self._right_click is None:
                    handler.press(self._event(event, event.button()))  # type: ignore[attr-defined]
            return True
        if kind == QEvent.Type.MouseMove:
            assert isinstance(event, QMouseEvent)
            slice_event = self._event(event, Qt.MouseButton.NoButton)
            if self._drag is not None:
                slice_event.button = self._drag[0]
                if self._right_click is not None:
                    if math.dist(self._right_click, slice_event.pos) < 4:
                        return True
                    self._right_click = None  # it became a drag: window/level from the press point
                    self._drag[1].press(self._event(event, self._drag[0]))  # type: ignore[attr-defined]
                self._drag[1].drag(slice_event)  # type: ignore[attr-defined]
            else:
                if view.tools.active is not None:
                    view.tools.active.hover(slice_event)
                view.hovered.emit(slice_event.index if slice_event.inside else None)
            return True
        if kind == QEvent.Type.MouseButtonRelease:
            assert isinstance(event, QMouseEvent)
            if self._drag is not None and self._drag[0] == event.button():
                if self._right_click is not None and view.tools.active is not None:
                    view.tools.active.right_click(self._event(event, event.button()))  # type: ignore[attr-defined]
                else:
                    self._drag[1].release(self._event(event, event.button()))  # type: ignore[attr-defined]
                self._drag = None
                self._right_click = None
            return True
        if kind == QEvent.Type.MouseButtonDblClick:
            view.double_clicked.emit(view.orientation)
            return True
        if kind == QEvent.Type.Wheel:
            assert isinstance(event, QWheelEvent)
            steps = event.angleDelta().y() / 120.0
            if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                view.zoom(math.pow(1.15, steps))
            elif steps:
                view.document.step_slice(view.mapping.normal_axis, 1 if steps > 0 else -1)
            return True
        if kind == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            return self._on_key(event)
        return False

    def _on_key(self, event: QKeyEvent) -> bool:
        view = self.view
        key = event.key()
        axis = view.mapping.normal_axis
        if key in _SLICE_KEYS:
            view.document.step_slice(axis, _SLICE_KEYS[key])  # type: ignore[index]
        elif key == Qt.Key.Key_Home:
            view.document.set_slice(axis, 0)
        elif key == Qt.Key.Key_End:
            view.document.set_slice(axis, view.document.shape_xyz[axis] - 1)
        elif key == Qt.Key.Key_R:
            view.reset_camera()
        else:
            return False
        return True
