"""``install_view_modes(window)``: layouts, invert, flip/rotate, thick slab, cine and the left-drag binding.

Everything acts on one Qt-free model (:class:`~app.model.view_modes.ViewModes`): the View menu entries
(with their keys), the "View modes" toolbar and the tests all change it, and
:class:`~app.view_display.ViewDisplayBinder` makes the views show it. The left-drag binding is a user
setting (``Settings.left_drag``, validated on load) saved as soon as it is chosen.

While the prior comparison replaces the view grid (:func:`~app.comparison_view_modes.link_comparison_view_modes`),
:meth:`ViewModesWorkspace.set_comparing` turns off what acts on the grid's views (layout, flip/rotate, slab,
cine, save view image), with "not while comparing" in their tooltips; invert stays on.

Keys (checked against the shell, segmentation and measurement tools): I invert, H / V flip, Shift+R /
Ctrl+Shift+R rotate 90° right / left, S cycles the slab (off → MIP → MinIP → average), Space plays or
pauses cine, Ctrl+1 … Ctrl+4 layouts 1×1, 1×2, 2×2, 1+3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu

from app.cine import CinePlayer
from app.model.view_modes import CINE_MODES, LAYOUT_LABELS, LAYOUTS, SLAB_MODES, ViewModes
from app.screenshot import save_array
from app.view_display import ViewDisplayBinder
from app.widgets.view_modes_toolbar import NOT_WHILE_COMPARING, ViewModesToolbar
from inference.settings import LEFT_DRAG_CHOICES

if TYPE_CHECKING:
    from app.main_window import MainWindow

_SLAB_CYCLE = ("off", "max", "min", "mean")  # S: the radiologist's order (MIP first)
_SLAB_PRESETS_MM = (2.0, 5.0, 10.0, 20.0, 40.0)
_LEFT_DRAG_TEXT = {"crosshair": "Crosshair (click sets the point)", "window_level": "Window/level"}
_NEEDS_SLICES = ("cine_play", "slab_cycle", *(f"layout_{n}" for n in LAYOUTS), *(f"slab_{m}" for m in SLAB_MODES))
_GRID_ONLY = ("flip_horizontal", "flip_vertical", "rotate_right", "rotate_left", "reset_orientation",
              "save_view_image")


@dataclass
class ViewModesWorkspace:
    """Handles to the installed parts (tests, the demo CLI and benchmarks drive them)."""

    modes: ViewModes
    binder: ViewDisplayBinder
    cine: CinePlayer
    toolbar: ViewModesToolbar
    window: MainWindow
    menus: dict[str, QMenu] = field(default_factory=dict)
    comparing: bool = False  # the prior comparison hides the view grid these modes act on
    _tooltips: dict[str, str] = field(default_factory=dict)

    def set_comparing(self, on: bool) -> None:
        """Turn the grid-only modes off (``on``: cine pauses) or back on as the image allows."""
        self.comparing = bool(on)
        if self.comparing:
            self.cine.pause()
        self.update_enabled()

    def update_enabled(self) -> None:
        """Slab, cine and layouts need a 3-D image; none of the grid's modes apply while comparing."""
        vol = self.window.context.document.volume
        slices = vol is not None and not vol.is_2d and not self.comparing
        self.toolbar.set_image_kind(vol is not None and not vol.is_2d, self.comparing)
        for menu in (self.menus["slab"], self.menus["cine"], self.menus["layout"]):
            menu.setEnabled(slices)
        for name in (*_NEEDS_SLICES, *_GRID_ONLY):
            action = self.window.actions[name]
            action.setEnabled(slices if name in _NEEDS_SLICES else not self.comparing)
            base = self._tooltips.setdefault(name, action.toolTip())
            action.setToolTip(f"{base} ({NOT_WHILE_COMPARING})" if self.comparing else base)

    def save_view_image(self, path: Path, view: str | None = None) -> Path:
        """What the active (or named) view shows — invert, flip, slab and corner text included — as PNG."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_name(path.name + ".png")
        save_array(self.window.views[view or self.modes.active].grab_array(), path)
        return path

    def set_left_drag(self, binding: str) -> None:
        """Bind the left-button drag to ``binding`` (a ``LEFT_DRAG_CHOICES`` tool) and save the setting."""
        if binding not in LEFT_DRAG_CHOICES:
            raise ValueError(f"left-drag binding must be one of {LEFT_DRAG_CHOICES}")
        context = self.window.context
        context.settings.left_drag = binding
        self.window.activate_tool(binding)
        self.window.actions[f"left_drag_{binding}"].setChecked(True)
        try:
            context.save_settings()
        except OSError as exc:
            context.show_status(f"The left-drag choice applies now but could not be saved: {exc.strerror or exc}.")


def _radio(window: MainWindow, menu: QMenu, entries: list[tuple[str, str, str | None, Callable[[], None]]]
           ) -> QActionGroup:
    """Exclusive checkable entries ``(name, text, shortcut, callback)`` in ``menu``, registered by name."""
    group = QActionGroup(window)
    group.setExclusive(True)
    for name, text, shortcut, callback in entries:
        action = QAction(text, window)
        action.setCheckable(True)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda *_a, cb=callback: cb())
        group.addAction(action)
        menu.addAction(action)
        window.actions[name] = action
    return group


def _build_menus(window: MainWindow, modes: ViewModes, cine: CinePlayer) -> dict[str, QMenu]:
    view_menu = window.menu("View")
    existing = list(view_menu.actions())
    add = window.add_action
    menus: dict[str, QMenu] = {}
    menus["layout"] = view_menu.addMenu("Layout")
    _radio(window, menus["layout"], [
        (f"layout_{name}", LAYOUT_LABELS[name], f"Ctrl+{i + 1}", lambda n=name: modes.set_layout(n))  # type: ignore[misc]
        for i, name in enumerate(LAYOUTS)])
    add("View", "Invert grey scale", modes.toggle_inverted, name="invert", shortcut="I", checkable=True,
        tooltip="Invert the grey scale of every view (I); window/level still apply")
    add("View", "Flip horizontally", modes.flip_horizontally, name="flip_horizontal", shortcut="H",
        tooltip="Mirror the active view left-right (display only; the letters follow) (H)")
    add("View", "Flip vertically", modes.flip_vertically, name="flip_vertical", shortcut="V",
        tooltip="Mirror the active view top-bottom (display only) (V)")
    add("View", "Rotate 90° right", lambda: modes.rotate(True), name="rotate_right", shortcut="Shift+R",
        tooltip="Turn the active view a quarter clockwise (display only) (Shift+R)")
    add("View", "Rotate 90° left", lambda: modes.rotate(False), name="rotate_left", shortcut="Ctrl+Shift+R")
    add("View", "Reset orientation", modes.reset_orientation, name="reset_orientation",
        tooltip="Undo the active view's flips and rotations")
    menus["slab"] = view_menu.addMenu("Thick slab")
    _radio(window, menus["slab"], [
        (f"slab_{mode}", {"off": "Off (single slice)", "mean": "Average", "max": "MIP (maximum)",
                          "min": "MinIP (minimum)"}[mode], None, lambda m=mode: modes.set_slab(mode=m))  # type: ignore[misc]
        for mode in SLAB_MODES])
    menus["slab"].addSeparator()
    for mm in _SLAB_PRESETS_MM:
        preset = menus["slab"].addAction(f"{mm:g} mm")
        preset.triggered.connect(lambda *_a, m=mm: modes.set_slab(thickness_mm=m))

    def cycle_slab() -> None:
        current = modes.display().slab_mode
        modes.set_slab(mode=_SLAB_CYCLE[(_SLAB_CYCLE.index(current) + 1) % len(_SLAB_CYCLE)])

    add("View", "Next slab mode", cycle_slab, name="slab_cycle", shortcut="S",
        tooltip="Active view: single slice → MIP → MinIP → average (S)")
    menus["cine"] = view_menu.addMenu("Cine")
    play = QAction("Play", window)
    play.setShortcut(QKeySequence("Space"))
    play.setCheckable(True)
    play.setToolTip("Play / pause the active view's slices (Space)")
    play.triggered.connect(lambda *_a: cine.toggle())

    def on_playing(on: bool) -> None:
        play.setChecked(on)
        play.setText("Pause" if on else "Play")

    cine.playing_changed.connect(on_playing)
    menus["cine"].addAction(play)
    window.actions["cine_play"] = play
    menus["cine"].addSeparator()
    _radio(window, menus["cine"], [(f"cine_{mode}", mode.capitalize(), None,
                                    lambda m=mode: modes.set_cine(mode=m))  # type: ignore[misc]
                                   for mode in CINE_MODES])
    window.actions[f"cine_{modes.cine_mode}"].setChecked(True)
    menus["left_drag"] = view_menu.addMenu("Left-drag binding")
    _radio(window, menus["left_drag"], [(f"left_drag_{b}", _LEFT_DRAG_TEXT[b], None, lambda: None)
                                        for b in LEFT_DRAG_CHOICES])
    # Group them after the shell's own entries (presets, crosshair, reset), above the panel toggles.
    anchor_index = next((i + 1 for i, a in enumerate(existing) if a is window.actions.get("reset_views")),
                        len(existing))
    anchor = existing[anchor_index] if anchor_index < len(existing) else None
    if anchor is not None:
        for action in [a for a in view_menu.actions() if a not in existing]:
            view_menu.removeAction(action)
            view_menu.insertAction(anchor, action)
        view_menu.insertSeparator(anchor)
    return menus


def install_view_modes(window: MainWindow) -> ViewModesWorkspace:
    """Add the view modes (see the module docstring) to ``window``; returns their handles."""
    context = window.context
    modes = ViewModes()
    binder = ViewDisplayBinder(window, modes)
    cine = CinePlayer(context.document, window.views, modes, parent=window)
    menus = _build_menus(window, modes, cine)
    for name, short in (("invert", "Invert"), ("flip_horizontal", "Flip H"), ("flip_vertical", "Flip V"),
                        ("rotate_right", "Rotate 90°"), ("cine_play", "Cine")):
        window.actions[name].setIconText(short)  # the toolbar's button text; menus keep the long one
    toolbar = ViewModesToolbar(modes, window.actions, menus["layout"], window)
    window.addToolBarBreak()  # its own row: the main toolbar is full with the tools
    window.addToolBar(toolbar)
    workspace = ViewModesWorkspace(modes, binder, cine, toolbar, window, menus)
    for binding in LEFT_DRAG_CHOICES:
        window.actions[f"left_drag_{binding}"].triggered.connect(
            lambda *_a, b=binding: workspace.set_left_drag(b))
    window.add_action("File", "Save view as image…", lambda: _save_view_dialog(workspace), name="save_view_image",
                      before="quit", tooltip="The active view as shown (invert, flip, slab, text) as a PNG")

    def on_layout(name: str) -> None:
        window.grid.set_layout(name, modes.active)
        window.actions[f"layout_{name}"].setChecked(True)
        binder.update_frames()

    def on_volume(_volume: object) -> None:
        workspace.update_enabled()
        binder.update_frames()

    modes.layout_changed.connect(on_layout)
    modes.inverted_changed.connect(lambda on: window.actions["invert"].setChecked(on))
    modes.view_changed.connect(lambda _n: window.actions[f"slab_{modes.display().slab_mode}"].setChecked(True))
    modes.active_changed.connect(lambda _n: window.actions[f"slab_{modes.display().slab_mode}"].setChecked(True))
    context.document.volume_changed.connect(on_volume)
    window.actions[f"layout_{modes.layout}"].setChecked(True)
    window.actions["slab_off"].setChecked(True)
    binding = context.settings.left_drag
    window.actions[f"left_drag_{binding}"].setChecked(True)
    if binding in window.tools.names():
        window.activate_tool(binding)
    on_volume(context.document.volume)
    return workspace


def _save_view_dialog(workspace: ViewModesWorkspace) -> None:
    path, _ = QFileDialog.getSaveFileName(workspace.window, "Save view as image", str(Path.home() / "view.png"),
                                          "PNG image (*.png)")
    if path:
        try:
            saved = workspace.save_view_image(Path(path))
        except OSError as exc:
            workspace.window.context.show_status(f"Could not save the view image: {exc}")
            return
        workspace.window.context.show_status(f"Saved {saved.name}")
