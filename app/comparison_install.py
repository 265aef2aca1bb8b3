"""``install_comparison(window)``: current vs prior side by side, in the window's central region.

The comparison view replaces the view grid while it is on (View > Compare with prior, Ctrl+Shift+C) and
is built on first use (no extra render windows at start-up). The grid is put in a stacked widget once,
here, so no other part of the shell changes: ``window.grid`` and ``window.views`` stay what they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QStackedWidget

from app.controllers.comparison import ComparisonController
from app.model.comparison import ComparisonModel

if TYPE_CHECKING:
    from app.main_window import MainWindow
    from app.widgets.comparison_view import ComparisonView


@dataclass
class ComparisonWorkspace:
    """Handles to the installed parts; ``view()`` builds the comparison view on first call."""

    model: ComparisonModel
    controller: ComparisonController
    stack: QStackedWidget
    _window: MainWindow
    _view: ComparisonView | None = None

    def view(self) -> ComparisonView:
        if self._view is None:
            from app.widgets.comparison_view import ComparisonView  # VTK render windows only when used

            context, controller = self._window.context, self.controller

            def drop_prior(path: Path, uid: str | None, key: str) -> None:
                browser = context.browser
                entry = browser.model.entry(key) if browser is not None and key else None
                if entry is not None:
                    controller.open_prior_entry(entry)
                else:
                    controller.open_prior(path, uid)

            def drop_current(path: Path, uid: str | None, key: str) -> None:
                browser = context.browser
                if browser is not None and key and browser.model.entry(key) is not None:
                    browser.open_entry(key)
                else:
                    context.open_path(path, uid)

            self._view = ComparisonView(self.model, context.labels, on_drop_current=drop_current,
                                        on_drop_prior=drop_prior, on_close=controller.stop)
            self.stack.addWidget(self._view)
        return self._view


def settle_sides(view: ComparisonView) -> None:
    """Both sides the same width, each image fitted (sync then links what the user does next)."""
    view.equalise()
    view.current.view.reset_camera()
    view.prior.view.reset_camera()


def install_comparison(window: MainWindow) -> ComparisonWorkspace:
    """Add View > Compare with prior / Sync and the comparison region."""
    context = window.context
    model = ComparisonModel(context.document)
    controller = ComparisonController(context, model)
    context.comparison = controller
    stack = QStackedWidget(window)
    stack.setObjectName("central_stack")
    grid = window.takeCentralWidget()
    assert grid is not None  # the shell's view grid
    stack.addWidget(grid)
    window.setCentralWidget(stack)
    workspace = ComparisonWorkspace(model, controller, stack, window)

    def toggle() -> None:
        controller.toggle()
        compare.setChecked(model.active)  # stays unchecked when there was nothing to compare

    compare = window.add_action("View", "Compare with prior", toggle, name="compare_prior",
                                shortcut="Ctrl+Shift+C", toolbar=True, checkable=True,
                                tooltip="Current and prior study side by side (the prior is view only)")
    sync = window.add_action("View", "Sync comparison scroll/zoom", lambda: None, name="compare_sync",
                             shortcut="Ctrl+Shift+Y", checkable=True,
                             tooltip="Scroll, zoom and pan both sides together")
    sync.setChecked(model.sync)
    sync.toggled.connect(model.set_sync)
    model.sync_changed.connect(lambda on: sync.setChecked(on) if sync.isChecked() != on else None)

    def on_active(active: bool) -> None:
        if active:
            view = workspace.view()
            view.update_captions()
            stack.setCurrentWidget(view)
            window.fit_panels()  # two images side by side need the room more than the panels do
            settle_sides(view)
            QTimer.singleShot(0, lambda: settle_sides(view))  # again once the docks' new sizes are laid out
        else:
            stack.setCurrentWidget(grid)
        if compare.isChecked() != active:
            compare.setChecked(active)

    model.active_changed.connect(on_active)
    return workspace
