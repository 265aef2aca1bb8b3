"""Window/level presets and values, PET overlay range and opacity."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.model.document import Document
from app.model.presets import PRESETS


def _spin(lo: float, hi: float, decimals: int = 0) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setKeyboardTracking(False)
    return box


class DisplayPanel(QWidget):
    """Two-way bound to the document's window/level and overlay display state."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("display_panel")
        self.document = document
        self.preset = QComboBox(self)
        self.preset.addItem("Preset…")
        for p in PRESETS:
            self.preset.addItem(f"{p.name}  ({p.level:g}/{p.window:g})", p)
        self.preset.activated.connect(self._on_preset)
        self.window_spin = _spin(0.001, 1e6, 1)
        self.level_spin = _spin(-1e6, 1e6, 1)
        self.window_spin.valueChanged.connect(lambda _v: self._push_wl())
        self.level_spin.valueChanged.connect(lambda _v: self._push_wl())
        image_box = QGroupBox("Image window", self)
        form = QFormLayout(image_box)
        form.addRow(self.preset)
        form.addRow("Window", self.window_spin)
        form.addRow("Level", self.level_spin)

        self.overlay_box = QGroupBox("PET overlay", self)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setObjectName("overlay_opacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(document.overlay_opacity * 100))
        self.opacity.valueChanged.connect(lambda v: document.set_overlay_opacity(v / 100.0))
        self.lower_spin = _spin(-1e6, 1e6, 2)
        self.upper_spin = _spin(-1e6, 1e6, 2)
        self.lower_spin.valueChanged.connect(lambda _v: self._push_range())
        self.upper_spin.valueChanged.connect(lambda _v: self._push_range())
        ov_form = QFormLayout(self.overlay_box)
        ov_form.addRow("Opacity", self.opacity)
        ov_form.addRow("Lower", self.lower_spin)
        ov_form.addRow("Upper", self.upper_spin)
        self.overlay_box.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(image_box)
        layout.addWidget(self.overlay_box)
        layout.addStretch(1)
        document.window_level_changed.connect(self._on_wl)
        document.overlay_changed.connect(lambda ov: self.overlay_box.setEnabled(ov is not None))
        document.overlay_range_changed.connect(self._on_range)
        self._on_wl(document.window, document.level)

    def _on_preset(self, row: int) -> None:
        preset = self.preset.itemData(row)
        if preset is not None:
            self.document.set_window_level(preset.window, preset.level)
        self.preset.setCurrentIndex(0)

    def _push_wl(self) -> None:
        self.document.set_window_level(self.window_spin.value(), self.level_spin.value())

    def _push_range(self) -> None:
        if self.document.overlay is not None:
            self.document.set_overlay_range(self.lower_spin.value(), self.upper_spin.value())

    def _on_wl(self, window: float, level: float) -> None:
        for box, value in ((self.window_spin, window), (self.level_spin, level)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    def _on_range(self, lower: float, upper: float) -> None:
        for box, value in ((self.lower_spin, lower), (self.upper_spin, upper)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
