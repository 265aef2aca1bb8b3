"""Main window: menus/toolbar registry, dock panels, view grid, status bar, file opening.

Extension points (see ``docs/dev/app.md``):

- ``add_panel(title, widget, area)`` docks a panel and lists it under View > Panels;
- ``add_action(menu, text, callback, ...)`` puts a command in a menu (created on demand, "Tools"
  etc.) and optionally on the toolbar; ``actions`` maps names to the QActions;
- ``register_tool(tool)`` adds a left-button slice tool (exclusive, with toolbar button/shortcut);
- ``context`` (:class:`~app.context.AppContext`: document, labels, case, runner, settings, openers —
  what controllers receive), ``views`` (slice views by orientation).

The window is also the context's :class:`~app.context.UiHost` (message boxes, series and downsample
questions). Features install themselves from ``app.launch.FEATURES``; see ``docs/dev/architecture.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QToolBar,
    QWidget,
)

from app.application import user_message
from app.context import AppContext
from app.tools import CrosshairTool, PanTool, SliceTool, ToolRegistry, WindowLevelTool, ZoomTool
from app.widgets.display_panel import DisplayPanel
from app.widgets.info_panel import InfoPanel, attribution_for
from app.widgets.progress_widget import ProgressWidget
from app.widgets.series_dialog import SeriesDialog
from app.widgets.slice_view import SliceView
from app.widgets.view_grid import ViewGrid
from app.window_menus import build_file_menu, build_view_menu
from app.workers import TaskRunner
from inference.errors import Cancelled, MedFusionError
from inference.gpu_fallback import GPU_LOG, MessageHandler
from inference.io.memory_budget import MemoryCheck
from inference.settings import Settings

log = logging.getLogger("medfusion.app")
_MENU_ORDER = ("File", "View", "Tools", "Help")


class MainWindow(QMainWindow):
    """The viewer shell; later features plug in through the registry methods below."""

    _notice = Signal(str)  # status messages from worker threads (GPU → CPU fallback), delivered on the UI thread

    def __init__(
        self,
        settings: Settings | None = None,
        settings_path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setWindowTitle("MedFusion Viewer")
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.runner = TaskRunner(self)
        self.context = AppContext(self.settings, self.runner, self, settings_path)
        self.document = self.context.document
        self.loader = self.context.loader
        self.tools = ToolRegistry()
        self.menus: dict[str, QMenu] = {}
        self.actions: dict[str, QAction] = {}  # type: ignore[assignment]  # by name; hides QWidget.actions()
        self.panels: dict[str, QDockWidget] = {}
        self.errors: list[str] = []  # messages shown to the user this session (newest last)
        self.error_sink: Callable[[str], None] | None = None  # headless runs print instead of a dialog
        self._tool_group = QActionGroup(self)
        self._tool_group.setExclusive(True)
        self.toolbar = QToolBar("Main toolbar", self)
        self.toolbar.setObjectName("main_toolbar")
        self.toolbar.setMovable(False)
        self.addToolBar(self.toolbar)
        for name in _MENU_ORDER:
            self.menu(name)

        self.grid = ViewGrid(self.document, self.tools, self)
        self.setCentralWidget(self.grid)

        self.readout = QLabel(self)
        self.readout.setObjectName("voxel_readout")
        self.progress = ProgressWidget(self.runner, self)
        self.statusBar().addPermanentWidget(self.readout, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.progress.cancel_button.clicked.connect(lambda: self.show_status("Cancelled."))
        for view in self.views.values():
            view.hovered.connect(self._on_hover)
        self.document.cursor_changed.connect(lambda c: self.readout.setText(self.document.voxel_readout(c)))
        self.document.deidentify_changed.connect(self._on_deidentify)
        self.document.volume_changed.connect(self._on_volume)
        self._notice.connect(self.show_status)
        self._gpu_handler = gpu_handler = MessageHandler(self._notice.emit)
        GPU_LOG.addHandler(gpu_handler)
        self.destroyed.connect(lambda *_: GPU_LOG.removeHandler(gpu_handler))
        self._persist_deidentify = True  # False in demo mode: de-identified for this session only
        self._panels_fitted = False  # fit_panels() once, when the window is first shown

        self.recent_menu: QMenu
        build_file_menu(self)
        build_view_menu(self)
        for tool_cls in (CrosshairTool, WindowLevelTool, PanTool, ZoomTool):
            self.register_tool(tool_cls(self.document))
        self.add_action("Help", "About MedFusion Viewer", self.show_about, name="about")
        self.info_panel = InfoPanel(self.document, self)
        self.display_panel = DisplayPanel(self.document, self)
        # scrolls instead of squeezing its word-wrapped rows on top of each other when docks crowd it
        info_scroll = QScrollArea(self)
        info_scroll.setWidgetResizable(True)
        info_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        info_scroll.setWidget(self.info_panel)
        self.add_panel("Patient / study", info_scroll, name="info")
        self.add_panel("Display", self.display_panel, name="display")
        self.resize(1400, 900)

    # --- registry API --------------------------------------------------------------------------
    @property
    def views(self) -> dict[str, SliceView]:
        return self.grid.views

    def menu(self, title: str) -> QMenu:
        """The top-level menu ``title`` (created at the end of the menu bar if new)."""
        if title not in self.menus:
            menu = self.menuBar().addMenu(f"&{title}")
            menu.setObjectName(f"menu_{title.lower()}")
            if "Help" in self.menus and title != "Help":  # keep Help last
                self.menuBar().insertMenu(self.menus["Help"].menuAction(), menu)
            self.menus[title] = menu
        return self.menus[title]

    def add_action(
        self,
        menu: str,
        text: str,
        callback: Callable[[], object] | None = None,
        *,
        name: str | None = None,
        shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
        toolbar: bool = False,
        checkable: bool = False,
        tooltip: str = "",
        before: str | None = None,
    ) -> QAction:
        """Add a command to ``menu`` (and the toolbar); registered as ``actions[name]``.

        ``before`` names a registered action (e.g. ``"quit"``, ``"open_recent"``) to insert it above,
        instead of at the end of the menu.
        """
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        if tooltip:
            action.setToolTip(tooltip)
            action.setStatusTip(tooltip)
        if callback is not None:
            action.triggered.connect(lambda *_args: callback())
        anchor = self.actions.get(before) if before else None
        if anchor is not None:
            self.menu(menu).insertAction(anchor, action)
        else:
            self.menu(menu).addAction(action)
        if toolbar:
            self.toolbar.addAction(action)
        key = name or text.lower().replace(" ", "_").replace("…", "")
        self.actions[key] = action
        return action

    def add_separator(self, menu: str, before: str | None = None) -> None:
        """A separator in ``menu`` (above the action named ``before``, or at the end)."""
        anchor = self.actions.get(before) if before else None
        if anchor is not None:
            self.menu(menu).insertSeparator(anchor)
        else:
            self.menu(menu).addSeparator()

    def add_panel(
        self,
        title: str,
        widget: QWidget,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
        *,
        name: str | None = None,
    ) -> QDockWidget:
        """Dock ``widget`` as a panel (tabified with others in the same area); View > Panels toggles it."""
        key = name or title.lower().replace(" ", "_")
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        same_area = [d for d in self.panels.values() if self.dockWidgetArea(d) == area]
        self.addDockWidget(area, dock)
        if same_area and len(same_area) >= 2:
            self.tabifyDockWidget(same_area[-1], dock)
        self.menu("View").addAction(dock.toggleViewAction())
        self.panels[key] = dock
        return dock

    def register_tool(self, tool: SliceTool) -> QAction:
        """Add a left-button tool for the slice views (exclusive; toolbar button + shortcut)."""
        self.tools.register(tool)
        action = self.add_action(
            "Tools",
            tool.label,
            lambda: self.activate_tool(tool.name),
            name=f"tool_{tool.name}",
            shortcut=tool.shortcut or None,
            toolbar=True,
            checkable=True,
            tooltip=tool.tooltip,
        )
        self._tool_group.addAction(action)
        action.setChecked(self.tools.active is tool)
        return action

    def fit_panels(self) -> None:
        """Give the right-hand panels about a third of the window: Qt sizes a dock area by its tab bar's full
        width, so each tabbed panel would otherwise squeeze the image views further."""
        right = [d for d in self.panels.values()
                 if self.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea and d.isVisible()]
        if right:
            width = int(min(max(self.width() * 0.34, 300), 520))
            self.resizeDocks(right[:1], [width], Qt.Orientation.Horizontal)

    def showEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt API
        super().showEvent(event)
        if not self._panels_fitted:
            self._panels_fitted = True
            self.fit_panels()

    def activate_tool(self, name: str) -> None:
        self.tools.activate(name)
        self.actions[f"tool_{name}"].setChecked(True)
        cursor = self.tools.get(name).cursor
        for view in self.views.values():
            view.vtk_widget.setCursor(cursor)

    def reset_views(self) -> None:
        for view in self.views.values():
            view.reset_camera()
        self.grid.view_3d.reset_camera()

    # --- opening -------------------------------------------------------------------------------
    def open_path(self, path: str | Path, series_uid: str | None = None) -> int:
        """Open ``path`` through the context (registered openers first, else the image loader)."""
        return self.context.open_path(path, series_uid)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    # --- UiHost --------------------------------------------------------------------------------
    def dialog_parent(self) -> QWidget:
        return self

    def choose_series(self, series: list, path: Path) -> tuple[str, str | None] | None:
        dialog = SeriesDialog(series, path.name, self)
        if dialog.exec() != SeriesDialog.DialogCode.Accepted:
            return None
        choice = dialog.choice()
        return (choice.primary_uid, choice.overlay_uid) if choice else None

    def choose_downsample(self, check: MemoryCheck, path: Path) -> int | None:
        """Over-budget study: ask to load it downsampled ×``check.factor`` (None = cancel). Headless runs
        (``error_sink`` set) have nobody to ask and take the recommended factor, which the status bar reports."""
        if self.error_sink is not None:
            return check.factor
        box = QMessageBox(QMessageBox.Icon.Question, "Study larger than the memory budget", check.question(),
                          parent=self)
        load = box.addButton(f"Load downsampled ×{check.factor}", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(load)
        box.exec()
        return check.factor if box.clickedButton() is load else None

    def show_error(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            self.show_status("Cancelled.")
            return
        if not isinstance(error, Exception):
            raise error
        log.warning("operation failed: %s", error, exc_info=not isinstance(error, MedFusionError))
        message = user_message(error)
        self.show_status(message)
        self.errors.append(message)
        if self.error_sink is not None:
            self.error_sink(message)
        else:
            QMessageBox.warning(self, "MedFusion Viewer", message)

    def show_status(self, message: str) -> None:
        self.statusBar().showMessage(message, 8000)

    # --- misc ----------------------------------------------------------------------------------
    def _on_hover(self, index: object) -> None:
        self.readout.setText(
            self.document.voxel_readout(index)  # type: ignore[arg-type]  # a voxel index from the view
            if index is not None
            else self.document.voxel_readout(self.document.cursor)
        )

    def deidentify_for_session(self) -> None:
        """Demo mode: de-identify the display now, without writing it into the user's settings file."""
        self._persist_deidentify = False
        self.document.set_deidentify(True)

    def _on_deidentify(self, on: bool) -> None:
        if self._persist_deidentify:
            self.settings.deidentify_display = on
        self._on_volume(self.document.volume)

    def _on_volume(self, volume: object) -> None:
        vol = self.document.volume
        title = "MedFusion Viewer"
        if vol is not None:
            info = self.document.study_info()
            name = info.patient_name.replace("^", " ").strip() or "(no name)"
            title = f"{name} — {info.modality or vol.modality} {info.series_description} — MedFusion Viewer"
            factor = vol.meta.get("downsample_factor")
            if factor:  # stays visible after the status message times out
                title = f"{name} — {info.modality or vol.modality} {info.series_description} "\
                        f"(downsampled ×{factor}) — MedFusion Viewer"
        self.setWindowTitle(title)
        self.actions["add_overlay"].setEnabled(vol is not None and not vol.is_2d)

    def show_about(self) -> None:
        vol = self.document.volume
        attribution = attribution_for(vol.source) if vol is not None else ""
        demo = attribution or attribution_for(
            str(Path(__file__).resolve().parents[1] / "resources" / "demo" / "ct")
        )
        QMessageBox.about(
            self,
            "About MedFusion Viewer",
            "<b>MedFusion Viewer</b><br>CT / PET-CT / X-ray viewer with MedSAM segmentation and "
            "multimodal outcome prediction. Research use only, not for diagnosis.<br><br>"
            f"<small>Data: {demo}</small>",
        )

    def closeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt API
        self.context.closing.emit()  # features flush their work (e.g. the session's recovery file)
        GPU_LOG.removeHandler(self._gpu_handler)
        self.runner.cancel()
        self.runner.wait(5000)
        if self.loader.remember_recent:
            try:
                self.context.save_settings()
            except OSError as exc:
                log.warning("could not save settings: %s", exc)
        super().closeEvent(event)
