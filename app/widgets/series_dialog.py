"""Choose one series from a folder holding several (optionally a PET series as overlay)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QVBoxLayout,
    QWidget,
)


@dataclass
class SeriesChoice:
    primary_uid: str
    overlay_uid: str | None = None


class SeriesDialog(QDialog):
    """Lists ``SeriesInfo`` items; offers a PT series as colour overlay when the primary is CT."""

    def __init__(self, series: list, folder_name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("series_dialog")
        self.setWindowTitle("Choose a series")
        self.series = list(series)
        self.list = QListWidget(self)
        for info in self.series:
            label = (
                info.label()
                if hasattr(info, "label")
                else f"{info.modality} {info.description} ({info.n_files} files)"
            )
            self.list.addItem(label)
        self.list.setCurrentRow(self._default_row())
        self.list.itemDoubleClicked.connect(lambda _i: self.accept())
        self.list.currentRowChanged.connect(lambda _r: self._update_overlay())
        self.overlay_check = QCheckBox("Add PET series as colour overlay:", self)
        self.overlay_combo = QComboBox(self)
        for info in self.series:
            if info.modality == "PT":
                self.overlay_combo.addItem(
                    info.label() if hasattr(info, "label") else info.description, info.series_uid
                )
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"The folder {folder_name!r} holds {len(self.series)} image series:", self))
        layout.addWidget(self.list)
        layout.addWidget(self.overlay_check)
        layout.addWidget(self.overlay_combo)
        layout.addWidget(buttons)
        self._update_overlay()
        self.resize(560, 320)

    def _default_row(self) -> int:
        """Prefer CT (the anatomical reference for PET/CT), else the largest series."""
        for i, info in enumerate(self.series):
            if info.modality == "CT":
                return i
        return max(range(len(self.series)), key=lambda i: self.series[i].n_files) if self.series else 0

    def _update_overlay(self) -> None:
        row = self.list.currentRow()
        primary_ct = 0 <= row < len(self.series) and self.series[row].modality == "CT"
        usable = primary_ct and self.overlay_combo.count() > 0
        self.overlay_check.setVisible(self.overlay_combo.count() > 0)
        self.overlay_combo.setVisible(self.overlay_combo.count() > 0)
        self.overlay_check.setEnabled(usable)
        self.overlay_combo.setEnabled(usable)
        self.overlay_check.setChecked(usable)

    def choice(self) -> SeriesChoice | None:
        row = self.list.currentRow()
        if not 0 <= row < len(self.series):
            return None
        overlay = (
            self.overlay_combo.currentData()
            if self.overlay_check.isChecked() and self.overlay_check.isEnabled()
            else None
        )
        return SeriesChoice(self.series[row].series_uid, overlay)
