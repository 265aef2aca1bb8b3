"""``install_auto_lungs(window)``: Segmentation > "Segment lungs (automatic)" for chest X-rays.

The entry is enabled while a 2-D image is shown (the model is for frontal chest X-rays; a CT has no
automatic lung model). The work runs on the task runner (status-bar progress, the shell's cancel), and
the result is an editable label (:mod:`app.controllers.auto_lungs`). No shortcut: it is a rare command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction

from app.controllers.auto_lungs import AutoLungsController

if TYPE_CHECKING:
    from app.main_window import MainWindow
    from inference.segmentation.cxr_lungs import LungSegmenter

ACTION_NAME = "seg_auto_lungs"


@dataclass
class AutoLungsWorkspace:
    """Handles to the installed parts (tests drive them)."""

    controller: AutoLungsController
    action: QAction


def install_auto_lungs(window: MainWindow, load: Callable[[], LungSegmenter] | None = None) -> AutoLungsWorkspace:
    """Add the menu entry; ``load`` replaces the lung-model loader (tests share one loaded segmenter)."""
    context = window.context
    controller = AutoLungsController(context, load)
    action = window.add_action(
        "Segmentation", "Segment lungs (automatic)", controller.run, name=ACTION_NAME,
        tooltip="Both lungs of the chest X-ray on screen as a new, editable label (no prompt needed)",
    )
    context.document.volume_changed.connect(lambda volume: action.setEnabled(controller.applicable(volume)))
    action.setEnabled(controller.applicable())
    return AutoLungsWorkspace(controller, action)
