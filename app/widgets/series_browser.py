"""Series browser panel: patients → studies → series tiles (thumbnail, modality, description, images, date).

Double-click opens a series in the main views; dragging a tile carries :data:`SERIES_MIME` (the source
path and series UID), which the main views and the comparison's prior side accept. A series that could
not be read shows a "could not read" tile with the reason in its tooltip. Patient names follow the
window's de-identification toggle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.model.series_browser import BrowserEntry, SeriesBrowserModel
from inference.clinical.formatting import iso_date

SERIES_MIME = "application/x-medfusion-series"
ICON = 88
KEY_ROLE = Qt.ItemDataRole.UserRole + 1


def series_mime(entry: BrowserEntry) -> QMimeData:
    """What a dragged tile carries: the path and series UID ``open_path`` needs, and the entry key."""
    data = QMimeData()
    payload = {"path": str(entry.path), "series_uid": entry.series_uid, "key": entry.key}
    data.setData(SERIES_MIME, json.dumps(payload).encode())
    data.setText(f"{entry.modality} {entry.description}".strip())
    return data


def decode_series_mime(data: QMimeData) -> dict | None:
    """The payload of :func:`series_mime`, or None for anything else (never trusted beyond its types)."""
    if not data.hasFormat(SERIES_MIME):
        return None
    try:
        payload = json.loads(bytes(data.data(SERIES_MIME).data()).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("path"), str):
        return None
    uid = payload.get("series_uid")
    return {"path": Path(payload["path"]), "series_uid": uid if isinstance(uid, str) else None,
            "key": str(payload.get("key") or "")}


def _tile(text: str, colour: str) -> QPixmap:
    pixmap = QPixmap(ICON, ICON)
    pixmap.fill(QColor("#202024"))
    painter = QPainter(pixmap)
    painter.setPen(QColor(colour))
    painter.drawRect(0, 0, ICON - 1, ICON - 1)
    painter.drawText(pixmap.rect().adjusted(4, 4, -4, -4), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                     text)
    painter.end()
    return pixmap


def thumbnail_pixmap(pixels: np.ndarray) -> QPixmap:
    """``uint8[h, w]`` → a square tile with the image centred on black."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape
    image = QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    scaled = QPixmap.fromImage(image).scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation)
    tile = QPixmap(ICON, ICON)
    tile.fill(QColor("black"))
    painter = QPainter(tile)
    painter.drawPixmap((ICON - scaled.width()) // 2, (ICON - scaled.height()) // 2, scaled)
    painter.end()
    return tile


class SeriesTree(QTreeWidget):
    """The tree whose series items drag as :data:`SERIES_MIME`."""

    def __init__(self, model: SeriesBrowserModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.browser_model = model
        self.setHeaderHidden(True)
        self.setIconSize(QSize(ICON, ICON))
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setIndentation(12)
        self.setUniformRowHeights(False)

    def mimeData(self, items) -> QMimeData:  # noqa: N802, ANN001 - Qt API
        keys = [i.data(0, KEY_ROLE) for i in items if i.data(0, KEY_ROLE)]
        entry = self.browser_model.entry(keys[0]) if keys else None
        return series_mime(entry) if entry is not None else QMimeData()

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt API
        return [SERIES_MIME]


class SeriesBrowserPanel(QWidget):
    """The dock's content; ``open_entry(key)`` / ``open_prior(key)`` / ``browse(path)`` are the controller's."""

    def __init__(self, model: SeriesBrowserModel, open_entry: Callable[[str], object],
                 open_prior: Callable[[str], object], browse: Callable[[Path], object],
                 deidentified: Callable[[], bool], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("series_browser")
        self.model, self._open, self._open_prior, self._browse = model, open_entry, open_prior, browse
        self._deidentified = deidentified
        self.items: dict[str, QTreeWidgetItem] = {}
        self.title = QLabel(self)
        self.title.setObjectName("browser_title")
        self.title.setWordWrap(True)
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.setToolTip("List the series of a folder or a DICOMDIR without opening one")
        self.browse_button.clicked.connect(self.choose_folder)
        self.tree = SeriesTree(model, self)
        self.tree.setObjectName("series_tree")
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.status = QLabel(self)
        self.status.setObjectName("browser_status")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.status)
        hint = QLabel("<small>Double-click: open · drag onto a view, or onto the prior side of the "
                      "comparison</small>", self)
        hint.setWordWrap(True)
        layout.addWidget(hint)
        model.source_changed.connect(lambda _s: self.rebuild())
        model.entries_changed.connect(self.rebuild)
        model.tile_changed.connect(self._update_tile)
        model.marks_changed.connect(self._update_marks)
        model.status_changed.connect(lambda text: self.status.setText(text))
        self.rebuild()

    # ---- building ----------------------------------------------------------------------------
    def _patient_text(self, entry: BrowserEntry) -> str:
        if self._deidentified():  # a case too: the EHR and audit panels say "this patient" then
            return "Patient (hidden)"
        name = entry.patient_name.replace("^", " ").strip()
        label = " · ".join(t for t in (name, entry.patient_id and f"ID {entry.patient_id}") if t)
        return label or "Patient (no name)"

    def _study_text(self, entry: BrowserEntry) -> str:
        date = "date hidden" if self._deidentified() and entry.offset is None else iso_date(entry.date) or "no date"
        return " · ".join(t for t in (date if entry.offset is None else "", entry.study_description) if t) or "Study"

    def rebuild(self) -> None:
        """Group the entries by patient and study and make one item per series."""
        self.tree.clear()
        self.items.clear()
        source = self.model.source
        title = "Patient (hidden)" if source and source.kind == "case" and self._deidentified() else (
            source.title if source else "")
        self.title.setText(f"<b>{title}</b> <small>({source.kind})</small>" if source else
                           "<small>No folder open</small>")
        patients: dict[str, QTreeWidgetItem] = {}
        studies: dict[tuple[str, str], QTreeWidgetItem] = {}
        for entry in self.model.entries:
            patient_key = entry.patient_id or entry.patient_name
            patient = patients.get(patient_key)
            if patient is None:
                patient = QTreeWidgetItem(self.tree, [self._patient_text(entry)])
                patient.setFlags(Qt.ItemFlag.ItemIsEnabled)
                font = QFont(patient.font(0))
                font.setBold(True)
                patient.setFont(0, font)
                patients[patient_key] = patient
            study = studies.get((patient_key, entry.study_key))
            if study is None:
                study = QTreeWidgetItem(patient, [self._study_text(entry)])
                study.setFlags(Qt.ItemFlag.ItemIsEnabled)
                studies[(patient_key, entry.study_key)] = study
            item = QTreeWidgetItem(study)
            item.setData(0, KEY_ROLE, entry.key)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            self.items[entry.key] = item
            self._update_tile(entry.key)
        self.tree.expandAll()
        self._update_marks()
        self.status.setText(self.model.status)

    def tile_text(self, entry: BrowserEntry) -> str:
        count = f"{entry.n_images} image{'s' if entry.n_images != 1 else ''}"
        when = entry.when_text if not (self._deidentified() and entry.offset is None) else ""
        number = f"#{entry.series_number} " if entry.series_number is not None else ""
        lines = [f"{entry.modality or '?'}  {number}{entry.description or '(no description)'}",
                 " · ".join(t for t in (count, when) if t)]
        if entry.key in self.model.errors:
            lines.append("could not read")
        return "\n".join(lines)

    def _update_tile(self, key: str) -> None:
        item, entry = self.items.get(key), self.model.entry(key)
        if item is None or entry is None:
            return
        if key in self.model.errors:
            icon, tip = _tile("could not read", "#ff6b6b"), self.model.errors[key]
            item.setForeground(0, QBrush(QColor("#ff8a8a")))
        elif key in self.model.thumbnails:
            icon, tip = thumbnail_pixmap(self.model.thumbnails[key].pixels), "; ".join(
                self.model.thumbnails[key].warnings)
        else:
            icon, tip = _tile("…", "#777777"), "thumbnail on its way"
        item.setIcon(0, QIcon(icon))
        item.setText(0, self._item_text(entry))
        item.setToolTip(0, tip or "Double-click to open; drag onto a view or the prior side")

    def _item_text(self, entry: BrowserEntry) -> str:
        marks = [m for m, k in (("▶ open", self.model.current_key), ("prior", self.model.prior_key))
                 if k == entry.key]
        text = self.tile_text(entry)
        return f"{text}\n[{' · '.join(marks)}]" if marks else text

    def _update_marks(self) -> None:
        for key, item in self.items.items():
            font = QFont(item.font(0))
            font.setBold(key == self.model.current_key)
            font.setItalic(key == self.model.prior_key)
            item.setFont(0, font)
            entry = self.model.entry(key)
            if entry is not None:
                item.setText(0, self._item_text(entry))

    # ---- actions -----------------------------------------------------------------------------
    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        key = item.data(0, KEY_ROLE)
        if key:
            self._open(str(key))

    def _menu(self, pos) -> None:  # noqa: ANN001 - QPoint
        item = self.tree.itemAt(pos)
        key = item.data(0, KEY_ROLE) if item is not None else None
        if not key:
            return
        menu = QMenu(self)
        menu.addAction("Open", lambda: self._open(str(key)))
        menu.addAction("Compare as prior", lambda: self._open_prior(str(key)))
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    def choose_folder(self) -> None:
        """Ask for a folder (the browse callback reads a disc's root through its DICOMDIR)."""
        path = QFileDialog.getExistingDirectory(self, "Folder or disc to browse")
        if path:
            self._browse(Path(path))

    def refresh_identity(self) -> None:
        """The de-identification toggle changed: patient names and dates are redrawn."""
        self.rebuild()
