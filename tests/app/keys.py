"""Keyboard shortcuts in the viewer tests, pressed the way that works on every machine.

Qt matches a window shortcut only while its window is the active one. Whether a shown window is active
depends on the machine: with a window manager it usually is, under ``xvfb-run`` (no window manager, as on
CI) it never is until asked, and another window (a second viewer, a dialog) can take it. A key sent to an
inactive window's widget skips the shortcut and reaches the widget itself, so the test would see nothing
happen. ``shortcut`` makes the window active first and waits until Qt says so.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget


def activate(widget: QWidget) -> None:
    """Make ``widget``'s window the active one (a no-op when it already is)."""
    window = widget.window()
    if not window.isActiveWindow():
        window.activateWindow()
        assert QTest.qWaitForWindowActive(window, 5000), "the window never became active: shortcuts cannot work"


def shortcut(widget: QWidget, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """Press ``key`` (a window shortcut) over ``widget``, with its window active."""
    activate(widget)
    QTest.keyClick(widget, key, modifiers)
