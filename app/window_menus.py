"""The shell's own File and View menu entries (open image/folder, PET overlay, recent files, presets).

Kept out of ``main_window.py`` so the window stays the registry (menus, panels, tools) and the
host of dialogs; every entry here only calls the window's registry and :class:`AppContext`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog

from app.model.presets import PRESETS

if TYPE_CHECKING:
    from app.main_window import MainWindow

IMAGE_FILTER = (
    "Images (*.dcm *.dicom *.ima *.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.png *.jpg *.jpeg);;All files (*)"
)


def last_dir(window: MainWindow) -> str:
    """The folder of the most recently opened file/series (the home folder otherwise)."""
    if window.settings.recent_files:
        parent = Path(window.settings.recent_files[0]).parent  # folder holding the last file/series
        if parent.is_dir():
            return str(parent)
    return str(Path.home())


def open_file_dialog(window: MainWindow) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Open image", last_dir(window), IMAGE_FILTER)
    if path:
        window.open_path(path)


def open_folder_dialog(window: MainWindow) -> None:
    path = QFileDialog.getExistingDirectory(window, "Open DICOM folder", last_dir(window))
    if path:
        window.open_path(path)


def add_overlay_dialog(window: MainWindow) -> None:
    path = QFileDialog.getExistingDirectory(window, "PET series folder (cancel to pick a file)", last_dir(window))
    if not path:
        path, _ = QFileDialog.getOpenFileName(window, "PET image file", last_dir(window), IMAGE_FILTER)
    if path:
        window.context.loader.add_overlay(Path(path))


def build_file_menu(window: MainWindow) -> None:
    window.add_action("File", "Open file…", lambda: open_file_dialog(window), name="open_file",
                      shortcut=QKeySequence.StandardKey.Open, toolbar=True)
    window.add_action("File", "Open folder…", lambda: open_folder_dialog(window), name="open_folder",
                      shortcut="Ctrl+Shift+O", toolbar=True)
    window.add_action("File", "Add PET overlay…", lambda: add_overlay_dialog(window), name="add_overlay",
                      shortcut="Ctrl+P", tooltip="Resample a PET series onto the open CT and show it in colour")
    window.recent_menu = window.menu("File").addMenu("Open recent")
    window.recent_menu.aboutToShow.connect(lambda: _fill_recent(window))
    window.actions["open_recent"] = window.recent_menu.menuAction()  # an anchor for ``add_action(before=)``
    window.menu("File").addSeparator()
    window.add_action("File", "Quit", window.close, name="quit", shortcut=QKeySequence.StandardKey.Quit)
    window.toolbar.addSeparator()


def _fill_recent(window: MainWindow) -> None:
    window.recent_menu.clear()
    for path in window.settings.recent_files:
        window.recent_menu.addAction(path, partial(window.open_path, path))
    if not window.settings.recent_files:
        window.recent_menu.addAction("(none)").setEnabled(False)


def build_view_menu(window: MainWindow) -> None:
    presets = window.menu("View").addMenu("Window preset")
    for preset in PRESETS:
        action = presets.addAction(f"{preset.name} ({preset.level:g}/{preset.window:g})")
        action.setShortcut(QKeySequence(preset.shortcut))
        action.triggered.connect(lambda *_a, p=preset: window.document.set_window_level(p.window, p.level))
        window.actions[f"preset_{preset.name.lower()}"] = action
    crosshair = window.add_action("View", "Show crosshair", lambda: _show_crosshair(window), name="crosshair",
                                  checkable=True)
    crosshair.setChecked(True)
    window.add_action("View", "Reset views", window.reset_views, name="reset_views", shortcut="Ctrl+0")
    window.menu("View").addSeparator()


def _show_crosshair(window: MainWindow) -> None:
    for view in window.views.values():
        view.set_crosshair_visible(window.actions["crosshair"].isChecked())
