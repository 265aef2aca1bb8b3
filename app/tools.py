"""Mouse tools for the 2-D slice views, and the registry that says which one is active.

A slice view turns Qt mouse events into :class:`SliceEvent` (voxel index already computed) and
hands *left-button* events to the active tool; right-drag (window/level), ctrl+right-drag (zoom),
middle-drag (pan) and the wheel (slices; ctrl: zoom) are fixed so they work whatever tool is active.
A new tool (e.g. a MedSAM box prompt) subclasses :class:`SliceTool` and is registered with
``MainWindow.register_tool`` — see ``docs/dev/app.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal
from PySide6.QtCore import Qt

from app.model.document import Document

if TYPE_CHECKING:
    from app.widgets.slice_view import SliceView


@dataclass
class SliceEvent:
    """A mouse event on a slice view, already mapped to the volume's index space."""

    view: SliceView
    index: np.ndarray  # continuous voxel index (x, y, z); the normal component is the shown slice
    pos: tuple[float, float]  # widget pixel position (Qt coordinates, y down)
    button: Qt.MouseButton
    modifiers: Qt.KeyboardModifier

    @property
    def inside(self) -> bool:
        """True when the event lies on the image (tools usually ignore clicks beside it)."""
        dims = self.view.document.shape_xyz
        return all(-0.5 <= float(i) <= n - 0.5 for i, n in zip(self.index, dims, strict=True))


class SliceTool:
    """Base class: override what you need. ``press``/``drag``/``release`` get left-button events."""

    name = "tool"
    label = "Tool"
    tooltip = ""
    shortcut = ""
    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, document: Document) -> None:
        self.document = document

    def activate(self) -> None:
        """Called when the tool becomes active (e.g. show prompts)."""

    def deactivate(self) -> None:
        """Called when another tool becomes active (e.g. drop half-drawn rubber bands)."""

    def press(self, event: SliceEvent) -> None: ...

    def drag(self, event: SliceEvent) -> None: ...

    def release(self, event: SliceEvent) -> None: ...

    def hover(self, event: SliceEvent) -> None:
        """Mouse moved with no button held."""


class CrosshairTool(SliceTool):
    """Click or drag to move the crosshair; the other views jump to the clicked point."""

    name, label, shortcut = "crosshair", "Crosshair", "C"
    tooltip = "Click to place the crosshair; other views follow (C)"
    cursor = Qt.CursorShape.CrossCursor

    def press(self, event: SliceEvent) -> None:
        if event.inside:
            self.document.set_cursor(event.index)

    drag = press


class WindowLevelTool(SliceTool):
    """Drag: horizontal changes window width, vertical the level (up = brighter image)."""

    name, label, shortcut = "window_level", "Window/Level", "W"
    tooltip = "Drag to change window (left/right) and level (up/down) (W); right-drag works in any tool"
    cursor = Qt.CursorShape.SizeAllCursor

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        self._start: tuple[float, float, float, float] | None = None

    def press(self, event: SliceEvent) -> None:
        self._start = (event.pos[0], event.pos[1], self.document.window, self.document.level)

    def drag(self, event: SliceEvent) -> None:
        if self._start is None:
            return
        x0, y0, window, level = self._start
        step = max(window, 1e-3) / 200.0  # proportional: fine control for narrow windows
        dx, dy = event.pos[0] - x0, event.pos[1] - y0
        self.document.set_window_level(max(window + dx * step, 1e-3), level + dy * step)

    def release(self, event: SliceEvent) -> None:
        self._start = None


class PanTool(SliceTool):
    name, label, shortcut = "pan", "Pan", "P"
    tooltip = "Drag to move the image (P); middle-drag works in any tool"
    cursor = Qt.CursorShape.OpenHandCursor

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        self._last: tuple[float, float] | None = None

    def press(self, event: SliceEvent) -> None:
        self._last = event.pos

    def drag(self, event: SliceEvent) -> None:
        if self._last is not None:
            event.view.pan_pixels(event.pos[0] - self._last[0], event.pos[1] - self._last[1])
            self._last = event.pos

    def release(self, event: SliceEvent) -> None:
        self._last = None


class ZoomTool(SliceTool):
    name, label, shortcut = "zoom", "Zoom", "Z"
    tooltip = "Drag up/down to zoom (Z); ctrl+wheel or ctrl+right-drag work in any tool"
    cursor = Qt.CursorShape.SizeVerCursor

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        self._last_y: float | None = None

    def press(self, event: SliceEvent) -> None:
        self._last_y = event.pos[1]

    def drag(self, event: SliceEvent) -> None:
        if self._last_y is not None:
            event.view.zoom(math.exp((self._last_y - event.pos[1]) * 0.01))
            self._last_y = event.pos[1]

    def release(self, event: SliceEvent) -> None:
        self._last_y = None


class ToolRegistry:
    """Named tools and the active one (emits ``active_changed(name)``)."""

    active_changed = Signal(str)

    def __init__(self) -> None:
        self._tools: dict[str, SliceTool] = {}
        self._active: str = ""

    def register(self, tool: SliceTool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} already registered")
        self._tools[tool.name] = tool
        if not self._active:
            self._active = tool.name

    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> SliceTool:
        return self._tools[name]

    @property
    def active(self) -> SliceTool | None:
        return self._tools.get(self._active)

    def activate(self, name: str) -> None:
        if name == self._active or name not in self._tools:
            return
        if self.active is not None:
            self.active.deactivate()
        self._active = name
        self._tools[name].activate()
        self.active_changed.emit(name)
