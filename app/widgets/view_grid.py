"""The central grid of views: 2×2 (axial, coronal / sagittal, 3-D) by default, 1×1, 1×2 or 1+3
(:mod:`app.model.layouts`), one view alone for 2-D images or after a double-click."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from app.model.document import Document
from app.model.layouts import arrangement
from app.tools import ToolRegistry
from app.widgets.layout_manager import arrange
from app.widgets.slice_view import SliceView
from app.widgets.volume_view_3d import VolumeView3D


class ViewGrid(QWidget):
    """Owns the slice views (``views['axial']`` etc.) and the 3-D view; switches layout per image."""

    def __init__(self, document: Document, tools: ToolRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view_grid")
        self.document = document
        self.views: dict[str, SliceView] = {
            name: SliceView(document, name, tools, self) for name in ("axial", "coronal", "sagittal")
        }
        self.view_3d = VolumeView3D(document, self)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self.layout_name = "2x2"  # app.model.view_modes.LAYOUTS
        self.primary = "axial"  # the large / first view of 1×1, 1×2 and 1+3
        self.maximized: str | None = None  # orientation shown alone after a double-click
        self._arrange()
        for view in self.views.values():
            view.double_clicked.connect(self.toggle_maximized)
        # Connected after the views so they have updated when the layout changes.
        document.volume_changed.connect(self._on_volume)

    @property
    def single(self) -> bool:
        """True when only one view is shown (2-D image, or a maximised view)."""
        return sum(not w.isHidden() for w in (*self.views.values(), self.view_3d)) == 1

    def set_layout(self, name: str, primary: str | None = None) -> None:
        """Show layout ``name`` (1x1, 1x2, 2x2, 1+3) led by view ``primary``; ends a maximised view."""
        self.layout_name, self.primary = name, primary or self.primary
        self.maximized = None
        self._arrange()

    def toggle_maximized(self, name: str) -> None:
        """Show view ``name`` alone, or restore the current layout (double-click on a view)."""
        vol = self.document.volume
        if vol is None or vol.is_2d:
            return
        self.maximized = None if self.maximized == name else name
        self._arrange()

    def _arrange(self) -> None:
        vol = self.document.volume
        two_d = vol is not None and vol.is_2d
        widgets: dict[str, QWidget] = {**self.views, "3d": self.view_3d}
        arrange(self._grid, widgets, arrangement(self.layout_name, self.primary, self.maximized, two_d))

    def _on_volume(self, volume: object) -> None:
        self.maximized = None
        self._arrange()
        self.views["axial"].reset_camera()
