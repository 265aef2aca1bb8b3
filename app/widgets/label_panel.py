"""The Segmentation panel: label list (colour, name, visibility, size, origin), display and tool settings,
propagation with a slice range, undo/redo and the per-slice confidence strip.

Sizes are volumes in ml for 3-D images and areas in mm² for 2-D ones (counted slice by slice on
each change, ``app/model/label_stats.py``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.segmentation import SegmentationController
from app.model.document import Document
from app.model.label_stats import label_counts
from app.model.labels import LabelsModel
from app.widgets.confidence_strip import ConfidenceStrip
from inference.segmentation.windows import MODEL_WINDOWS

COLUMNS = ("", "Label", "Show", "Size", "Origin")
ORIGIN_TEXT = {"AI": "AI", "MANUAL": "manual", "AI_CORRECTED": "AI, edited"}


def swatch_icon(colour: tuple[int, int, int]) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)


class LabelPanel(QWidget):
    """Edits the labels model; gestures and files go through the controller."""

    def __init__(
        self, labels: LabelsModel, controller: SegmentationController, document: Document,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("label_panel")
        self.labels, self.controller, self.document = labels, controller, document
        self._filling = False
        layout = QVBoxLayout(self)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("label_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(110)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        layout.addWidget(self.table)

        buttons = QHBoxLayout()
        self.new_button = self._button("New label", self._new_label, buttons, "Add an empty label (Ctrl+Shift+N)")
        self.delete_button = self._button("Delete", self._delete_label, buttons, "Delete the selected label")
        self.undo_button = self._button("Undo", controller.undo, buttons, "Undo the last gesture (Ctrl+Z)")
        self.redo_button = self._button("Redo", controller.redo, buttons, "Redo (Ctrl+Shift+Z)")
        layout.addLayout(buttons)

        form = QFormLayout()
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(labels.default_opacity * 100))
        self.opacity.valueChanged.connect(self._on_opacity)
        form.addRow("Opacity", self.opacity)
        self.brush_size = QSpinBox(self)
        self.brush_size.setRange(1, 60)
        self.brush_size.setSuffix(" px")
        self.brush_size.setValue(controller.brush_radius)
        self.brush_size.setToolTip("Brush/eraser radius in image pixels ([ and ] change it)")
        self.brush_size.valueChanged.connect(lambda v: setattr(controller, "brush_radius", int(v)))
        form.addRow("Brush radius", self.brush_size)
        self.window_mode = QComboBox(self)
        for key, (text, _win) in MODEL_WINDOWS.items():
            self.window_mode.addItem(text, key)
        self.window_mode.setToolTip(
            "CT intensity window the model sees. Automatic: per box, the standard window showing the boxed "
            "object against its surround best (X-rays use their own range)"
        )
        self.window_mode.currentIndexChanged.connect(
            lambda _i: controller.set_window_mode(str(self.window_mode.currentData()))
        )
        form.addRow("Model window", self.window_mode)
        layout.addLayout(form)

        prop = QHBoxLayout()
        self.z_from, self.z_to = QSpinBox(self), QSpinBox(self)
        for box, tip in ((self.z_from, "First slice"), (self.z_to, "Last slice")):
            box.setToolTip(f"{tip} of the propagation range")
            box.setRange(1, 1)
        self.direction = QComboBox(self)
        for text, key in (("both ways", "both"), ("up", "up"), ("down", "down")):
            self.direction.addItem(text, key)
        prop.addWidget(QLabel("Slices", self))
        prop.addWidget(self.z_from)
        prop.addWidget(QLabel("–", self))
        prop.addWidget(self.z_to)
        prop.addWidget(self.direction)
        layout.addLayout(prop)
        run = QHBoxLayout()
        self.propagate_button = self._button("Propagate", self.propagate, run,
                                             "Carry the active label to neighbouring slices (Ctrl+Shift+P)")
        self.cancel_button = self._button("Cancel", controller.cancel, run, "Stop propagation (Esc)")
        self.cancel_button.setEnabled(False)
        layout.addLayout(run)

        self.strip_title = QLabel("Per-slice confidence", self)
        layout.addWidget(self.strip_title)
        self.strip = ConfidenceStrip(labels, document, self)
        layout.addWidget(self.strip)
        self.message = QLabel("Choose Box (B) and drag around a structure.", self)
        self.message.setObjectName("segmentation_message")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        layout.addStretch(1)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(30)
        self._refresh_timer.timeout.connect(self.refresh)
        labels.changed.connect(lambda: self._refresh_timer.start())
        labels.active_changed.connect(lambda _n: self._refresh_timer.start())
        document.volume_changed.connect(self._on_volume)
        controller.busy_changed.connect(self._on_busy)
        controller.status.connect(self.message.setText)
        controller.window_chosen.connect(self._on_window_chosen)
        self._on_volume(document.volume)

    def _button(self, text: str, slot, layout: QHBoxLayout, tip: str) -> QPushButton:  # noqa: ANN001
        button = QPushButton(text, self)
        button.setObjectName(f"seg_{text.lower().replace(' ', '_')}")
        button.setToolTip(tip)
        button.clicked.connect(lambda *_a: slot())
        layout.addWidget(button)
        return button

    # ---- reactions --------------------------------------------------------------------------------
    def _on_volume(self, _volume: object) -> None:
        vol = self.document.volume
        nz = vol.shape[0] if vol is not None else 1
        for box in (self.z_from, self.z_to):
            box.setRange(1, max(nz, 1))
        self.z_from.setValue(1)
        self.z_to.setValue(max(nz, 1))
        three_d = vol is not None and nz > 1
        for w in (self.z_from, self.z_to, self.direction, self.propagate_button):
            w.setEnabled(three_d)
        is_ct = vol is not None and (vol.units.upper() == "HU" or vol.modality.upper() == "CT")
        self.window_mode.setEnabled(is_ct)  # X-rays and MR are normalised by percentiles, not a window
        self.refresh()

    def _on_window_chosen(self, window: str) -> None:
        """The automatic entry names its latest choice, next to the windows that override it."""
        text = f"Automatic: {window}" if window else MODEL_WINDOWS["auto"][0]  # "Automatic: lung lesion −300/1000"
        self.window_mode.setItemText(self.window_mode.findData("auto"), text)

    def _on_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.propagate_button.setEnabled(not busy and self.z_to.isEnabled())

    def sizes(self) -> dict[str, str]:
        """Label name → "12.3 ml" (3-D) or "456 mm²" (2-D)."""
        label_map, vol = self.labels.raw_label_map(), self.document.volume
        if label_map is None or vol is None:
            return {}
        counts = label_counts(label_map)
        sx, sy, sz = vol.spacing
        out = {}
        for name, value in self.labels.values().items():
            if label_map.shape[0] > 1:
                out[name] = f"{counts[value] * sx * sy * sz / 1000.0:.2f} ml"
            else:
                out[name] = f"{counts[value] * sx * sy:,.0f} mm²"
        return out

    def refresh(self) -> None:
        self._filling = True
        names, sizes = self.labels.names(), self.sizes()
        self.table.setRowCount(len(names))
        for row, name in enumerate(names):
            swatch = QTableWidgetItem(swatch_icon(self.labels.colour(name)), "")
            swatch.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            swatch.setToolTip("Double-click to change the colour")
            label = QTableWidgetItem(name)
            label.setData(Qt.ItemDataRole.UserRole, name)
            label.setToolTip("Double-click to rename")
            show = QTableWidgetItem("")
            show.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable)
            show.setCheckState(Qt.CheckState.Checked if self.labels.visible(name) else Qt.CheckState.Unchecked)
            size = QTableWidgetItem(sizes.get(name, ""))
            origin = QTableWidgetItem(ORIGIN_TEXT.get(self.labels.origin(name), ""))
            origin.setToolTip("AI: model output only; manual: drawn by hand; AI, edited: model output corrected by hand")
            for item in (size, origin):
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            for col, item in enumerate((swatch, label, show, size, origin)):
                self.table.setItem(row, col, item)
            if name == self.labels.active:
                self.table.selectRow(row)
        active = self.labels.active
        if active in names:
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(self.labels.opacity(active) * 100))
            self.opacity.blockSignals(False)
        self.delete_button.setEnabled(bool(names))
        history = self.labels.history
        self.undo_button.setEnabled(history is not None and history.can_undo)
        self.redo_button.setEnabled(history is not None and history.can_redo)
        self._filling = False
        self.strip_title.setText(f"Per-slice confidence: {active}" if active in names
                                 else "Per-slice confidence")
        self.strip.refresh()

    def _row_name(self, row: int) -> str | None:
        item = self.table.item(row, 1)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _on_selection(self) -> None:
        if self._filling:
            return
        rows = self.table.selectionModel().selectedRows()
        if rows:
            name = self._row_name(rows[0].row())
            if name:
                self.labels.set_active(name)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        name = self._row_name(item.row())
        if name is None:
            return
        try:
            if item.column() == 2:
                self.labels.set_visible(name, item.checkState() == Qt.CheckState.Checked)
            elif item.column() == 1 and item.text() != name:
                self.labels.rename(name, item.text())
        except Exception as err:  # noqa: BLE001 - one sentence for the user
            self.controller.report(err)
            self._refresh_timer.start()

    def _on_double_click(self, row: int, column: int) -> None:
        name = self._row_name(row)
        if column == 0 and name:
            colour = QColorDialog.getColor(QColor(*self.labels.colour(name)), self, f"Colour of {name}")
            if colour.isValid():
                self.labels.set_colour(name, (colour.red(), colour.green(), colour.blue()))

    def _on_opacity(self, value: int) -> None:
        if self.labels.active in self.labels.names():
            self.labels.set_opacity(self.labels.active, value / 100.0)

    # ---- commands ---------------------------------------------------------------------------------
    def _new_label(self) -> None:
        try:
            self.labels.add_label()
        except Exception as err:  # noqa: BLE001 - one sentence for the user
            self.controller.report(err)

    def _delete_label(self) -> None:
        name = self.labels.active
        if name not in self.labels.names():
            return
        answer = QMessageBox.question(
            self, "Delete label", f"Delete '{name}' and its mask? This cannot be undone."
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.labels.remove_label(name)

    def propagate(self) -> None:
        lo, hi = self.z_from.value() - 1, self.z_to.value() - 1
        self.controller.propagate((min(lo, hi), max(lo, hi)), str(self.direction.currentData()))
