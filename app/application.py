"""QApplication set-up: dark theme, excepthook, headless fallbacks.

Unexpected exceptions in Qt callbacks must never show a traceback to a radiologist: the hook logs the
traceback (PHI-scrubbed log file) and shows one short sentence; user errors
(:class:`MedFusionError`) show their own message.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox

from inference.errors import MedFusionError
from inference.logging_setup import log_file_path

log = logging.getLogger("medfusion.app")


def user_message(error: BaseException) -> str:
    """The sentence shown to the user for ``error``."""
    if isinstance(error, MedFusionError):
        return str(error)
    if isinstance(error, MemoryError):
        return "Not enough memory for this operation; close other studies or use a smaller image."
    return f"Unexpected error ({type(error).__name__}). Details were written to {log_file_path()}."


def install_excepthook(show: Callable[[str], None] | None = None) -> None:
    """Route uncaught exceptions to the log and a short message box (or ``show``)."""

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, error, tb)
            return
        log.error("uncaught exception\n%s", "".join(traceback.format_exception(kind, error, tb)))
        message = user_message(error)
        try:
            if show is not None:
                show(message)
            elif QApplication.instance() is not None:
                QMessageBox.critical(None, "MedFusion Viewer", message)
        except Exception:  # noqa: BLE001 - the hook itself must never raise
            print(message, file=sys.stderr)

    sys.excepthook = hook


def dark_palette() -> QPalette:
    """Reading-room friendly dark palette (low luminance around the images)."""
    p = QPalette()
    base, window, text, accent = (
        QColor(24, 26, 30),
        QColor(36, 39, 45),
        QColor(220, 222, 226),
        QColor(64, 128, 200),
    )
    for role, colour in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.ToolTipBase, window),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.Highlight, accent),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, accent),
        (QPalette.ColorRole.PlaceholderText, QColor(130, 134, 140)),
    ):
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 114, 120))
    return p


def headless_environment() -> bool:
    """Prepare Qt/VTK for machines without a display; True when running offscreen."""
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
        return True
    return os.environ.get("QT_QPA_PLATFORM") == "offscreen"


_PROBE = """
import sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkRenderingCore import vtkRenderer
import vtkmodules.vtkRenderingOpenGL2
from app.rendering.vtk_image import grab_render_window
w = QVTKRenderWindowInteractor(); w.resize(64, 64); w.show()
r = vtkRenderer(); r.SetBackground(0.2, 0.6, 0.4); w.GetRenderWindow().AddRenderer(r)
w.Initialize()
px = grab_render_window(w.GetRenderWindow())
sys.exit(0 if px.size and abs(float(px[..., 1].mean()) - 153) < 20 else 3)
"""


def offscreen_rendering_works(timeout_s: float = 60.0) -> bool:
    """Try Qt+VTK offscreen rendering in a child process (a failing GL stack may abort the process)."""
    root = str(Path(__file__).resolve().parents[1])
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            cwd=root,
            capture_output=True,
            timeout=timeout_s,
            env={**os.environ, "PYTHONPATH": root},
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists, e.g. under pytest-qt) with the dark theme."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("MedFusion Viewer")
    app.setOrganizationName("MedFusion")
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    return app
