"""The Measurements panel: every measurement and annotation of the image (type, value, slice, view),
with jump-to (double-click or *Go to*), delete, undo/redo, text editing and a show/hide switch."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.measurements import MeasurementsController
from app.model.measurements import MeasurementsModel

COLUMNS = ("#", "Type", "Value", "Where")


class MeasurementsPanel(QWidget):
    """Lists the model's measurements; buttons go through the controller."""

    def __init__(self, model: MeasurementsModel, controller: MeasurementsController,
                 edit_text: Callable[[int], object], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("measurements_panel")
        self.model, self.controller, self._edit_text = model, controller, edit_text
        self._filling = False
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("measurements_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(120)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.cellDoubleClicked.connect(lambda row, _col: self._jump(row))
        layout.addWidget(self.table)

        row1, row2 = QHBoxLayout(), QHBoxLayout()
        self.goto_button = self._button("Go to", self._goto, row1, "Show the selected measurement's slice")
        self.text_button = self._button("Edit text…", self._text, row1, "Change the selected annotation's text")
        self.delete_button = self._button("Delete", controller.delete_selected, row1,
                                          "Delete the selected measurement (Del)")
        self.undo_button = self._button("Undo", controller.undo, row2, "Undo the last measurement change (Ctrl+Alt+Z)")
        self.redo_button = self._button("Redo", controller.redo, row2, "Redo (Ctrl+Alt+Y)")
        self.clear_button = self._button("Delete all", controller.clear_all, row2,
                                         "Delete every measurement of this image (Undo brings them back)")
        layout.addLayout(row1)
        layout.addLayout(row2)
        self.show_box = QCheckBox("Show measurements on the images", self)
        self.show_box.setObjectName("measurements_visible")
        self.show_box.setChecked(model.visible)
        self.show_box.toggled.connect(model.set_visible)
        layout.addWidget(self.show_box)
        self.help = QLabel("Tools: M ruler, A angle, O ellipse ROI, L long/short axis, T arrow/text. "
                           "Drag a handle to adjust; Del deletes the selected one.", self)
        self.help.setWordWrap(True)
        self.help.setStyleSheet("color: #9aa4b2;")
        layout.addWidget(self.help)

        model.changed.connect(self.refresh)
        model.selection_changed.connect(lambda _i: self._sync_selection())
        model.visible_changed.connect(self._on_visible)
        controller.context.document.overlay_changed.connect(lambda _o: self.refresh())
        self.refresh()

    def _button(self, text: str, slot: Callable[[], object], row: QHBoxLayout, tip: str) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(f"measurements_{text.lower().replace(' ', '_').replace('…', '')}")
        button.setToolTip(tip)
        button.clicked.connect(lambda *_a: slot())
        row.addWidget(button)
        return button

    # ---- model → table ------------------------------------------------------------------------
    def refresh(self) -> None:
        items = self.model.items()
        self._filling = True
        self.table.setRowCount(len(items))
        for row, m in enumerate(items):
            value = self.controller.value(m)
            cells = (str(m.id), m.title, value.summary if value is not None else "", self.controller.where(m))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, m.id)
                item.setToolTip(text)
                self.table.setItem(row, col, item)
        self.table.resizeRowsToContents()
        self._filling = False
        self._sync_selection()
        self._update_buttons()

    def _sync_selection(self) -> None:
        self._filling = True
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            if self._id(row) == self.model.selected:
                self.table.selectRow(row)
                item = self.table.item(row, 0)
                if item is not None:
                    self.table.scrollToItem(item)
        self._filling = False
        self._update_buttons()

    def _update_buttons(self) -> None:
        m = self.model.get(self.model.selected)
        for button in (self.goto_button, self.delete_button):
            button.setEnabled(m is not None)
        self.text_button.setEnabled(m is not None and m.kind in ("arrow", "text"))
        self.undo_button.setEnabled(self.model.can_undo)
        self.redo_button.setEnabled(self.model.can_redo)
        self.clear_button.setEnabled(len(self.model) > 0)

    def _on_visible(self, visible: bool) -> None:
        self.show_box.blockSignals(True)
        self.show_box.setChecked(visible)
        self.show_box.blockSignals(False)

    # ---- table → controller -------------------------------------------------------------------
    def _id(self, row: int) -> int:
        item = self.table.item(row, 0)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else 0

    def _on_selection(self) -> None:
        if self._filling:
            return
        rows = {i.row() for i in self.table.selectedIndexes()}
        self.model.select(self._id(min(rows)) if rows else 0)

    def _jump(self, row: int) -> None:
        self.controller.jump_to(self._id(row))

    def _goto(self) -> None:
        if self.model.selected:
            self.controller.jump_to(self.model.selected)

    def _text(self) -> None:
        if self.model.selected:
            self._edit_text(self.model.selected)
