"""The "View" toolbar: layout, invert, flip/rotate, cine with its rate, thick slab mode and thickness.

Where a radiologist looks for them (beside the navigation tools, always visible), and bound to the same
:class:`~app.model.view_modes.ViewModes` as the View menu: the buttons are the menu's ``QAction``\\s, and
the slab and cine controls show the *active* view's values and follow it when another view is clicked.
"""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QMenu,
    QSpinBox,
    QToolBar,
    QToolButton,
    QWidget,
)

from app.model.view_modes import LAYOUT_LABELS, SLAB_LABELS, SLAB_MAX_MM, SLAB_MODES, ViewModes

NOT_WHILE_COMPARING = "not while comparing: they act on the view grid"


class ViewModesToolbar(QToolBar):
    """Toolbar widgets over ``modes``; ``actions`` are the View menu's actions to show as buttons."""

    def __init__(self, modes: ViewModes, actions: dict[str, QAction], layout_menu: QMenu,
                 parent: QWidget | None = None) -> None:
        super().__init__("View modes", parent)
        self.setObjectName("view_modes_toolbar")
        self.modes = modes
        self.layout_button = QToolButton(self)
        self.layout_button.setObjectName("layout_button")
        self.layout_button.setMenu(layout_menu)
        self.layout_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.layout_button.setToolTip("Layout of the views (Ctrl+1 … Ctrl+4)")
        self.addWidget(self.layout_button)
        for name in ("invert", "flip_horizontal", "flip_vertical", "rotate_right"):
            self.addAction(actions[name])
        self.addSeparator()
        self.addAction(actions["cine_play"])
        self.fps = QSpinBox(self)
        self.fps.setObjectName("cine_fps")
        self.fps.setRange(1, 60)
        self.fps.setSuffix(" fps")
        self.fps.setToolTip("Cine rate (slices per second)")
        self.fps.setValue(round(modes.cine_fps))
        self.fps.valueChanged.connect(lambda v: modes.set_cine(fps=float(v)))
        self.addWidget(self.fps)
        self.addSeparator()
        self.addWidget(QLabel(" Slab ", self))
        self.slab_mode = QComboBox(self)
        self.slab_mode.setObjectName("slab_mode")
        for mode in SLAB_MODES:
            self.slab_mode.addItem(SLAB_LABELS[mode], mode)
        self.slab_mode.setToolTip("Thick slab of the active view: average, maximum (MIP, nodules) or "
                                  "minimum (MinIP, airways) intensity over the slab (S cycles)")
        self.slab_mode.activated.connect(lambda i: modes.set_slab(mode=self.slab_mode.itemData(i)))
        self.addWidget(self.slab_mode)
        self.slab_mm = QDoubleSpinBox(self)
        self.slab_mm.setObjectName("slab_mm")
        self.slab_mm.setRange(0.5, SLAB_MAX_MM)
        self.slab_mm.setDecimals(1)
        self.slab_mm.setSingleStep(1.0)
        self.slab_mm.setSuffix(" mm")
        self.slab_mm.setKeyboardTracking(False)  # typing "15" is one change, not "1" then "15"
        self.slab_mm.setToolTip("Slab thickness of the active view (rounded to whole slices)")
        self.slab_mm.valueChanged.connect(lambda v: modes.set_slab(thickness_mm=float(v)))
        self.addWidget(self.slab_mm)
        modes.layout_changed.connect(lambda _l: self.sync())
        modes.active_changed.connect(lambda _n: self.sync())
        modes.view_changed.connect(lambda _n: self.sync())
        self.sync()

    def sync(self) -> None:
        """Show the layout and the active view's slab (without echoing the change back to the model)."""
        self.layout_button.setText(f"Layout {LAYOUT_LABELS[self.modes.layout]}")
        display = self.modes.display()
        for widget in (self.slab_mode, self.slab_mm):
            widget.blockSignals(True)
        self.slab_mode.setCurrentIndex(SLAB_MODES.index(display.slab_mode))
        self.slab_mm.setValue(display.slab_mm)
        for widget in (self.slab_mode, self.slab_mm):
            widget.blockSignals(False)

    def set_image_kind(self, volume_3d: bool, comparing: bool = False) -> None:
        """Slab and cine need slices; a 2-D image keeps invert and flip/rotate. While the prior comparison
        hides the view grid, the grid's controls are off and their tooltips say so."""
        for widget in (self.slab_mode, self.slab_mm, self.fps, self.layout_button):
            widget.setEnabled(volume_3d and not comparing)
            base = widget.property("base_tooltip") or widget.toolTip()
            widget.setProperty("base_tooltip", base)
            widget.setToolTip(f"{base} ({NOT_WHILE_COMPARING})" if comparing else base)
