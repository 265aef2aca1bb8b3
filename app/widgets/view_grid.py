"""The central 2×2 layout (axial, coronal / sagittal, 3-D), or one view for 2-D images."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from app.model.document import Document
from app.tools import ToolRegistry
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
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        grid.addWidget(self.views["axial"], 0, 0)
        grid.addWidget(self.views["coronal"], 0, 1)
        grid.addWidget(self.views["sagittal"], 1, 0)
        grid.addWidget(self.view_3d, 1, 1)
        self.maximized: str | None = None  # orientation shown alone after a double-click
        for view in self.views.values():
            view.double_clicked.connect(self.toggle_maximized)
        # Connected after the views so they have updated when the layout changes.
        document.volume_changed.connect(self._on_volume)

    @property
    def single(self) -> bool:
        """True when only one view is shown (2-D image, or a maximised view)."""
        return sum(not w.isHidden() for w in (*self.views.values(), self.view_3d)) == 1

    def toggle_maximized(self, name: str) -> None:
        """Show view ``name`` alone, or restore the 2×2 layout (double-click on a view)."""
        vol = self.document.volume
        if vol is None or vol.is_2d:
            return
        self.maximized = None if self.maximized == name else name
        for other, view in self.views.items():
            view.setVisible(self.maximized in (None, other))
        self.view_3d.setVisible(self.maximized is None)

    def _on_volume(self, volume: object) -> None:
        vol = self.document.volume
        two_d = vol is not None and vol.is_2d
        self.maximized = None
        for name in ("coronal", "sagittal"):
            self.views[name].setVisible(not two_d)
        self.views["axial"].setVisible(True)
        self.view_3d.setVisible(not two_d)
        self.views["axial"].reset_camera()
