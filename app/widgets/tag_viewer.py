"""The DICOM tag viewer: the header of the file behind the slice on screen, searchable.

It follows the axial slice (each DICOM slice is its own file); for NRRD/NIfTI/X-ray files it shows the
file's metadata. With the de-identified display on, identifying values are replaced before they reach
the table (so the search cannot find them either) and the file name is not shown. Headers are read only
while the panel is visible, coalesced while scrolling, and the last few are cached.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app.model.document import Document
from inference.errors import MedFusionError
from inference.export.header_view import HeaderRow, masked, read_header

COLUMNS = ("Tag", "Name", "VR", "Value")
CACHE = 8


class TagViewer(QWidget):
    """Header rows of the current slice's file (``rows`` holds what is shown, after masking and search)."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tag_viewer")
        self.document = document
        self.rows: list[HeaderRow] = []
        self.path: Path | None = None
        self._all: list[HeaderRow] = []
        self._cache: OrderedDict[Path, list[HeaderRow]] = OrderedDict()
        self._dirty = True
        layout = QVBoxLayout(self)
        self.source = QLabel(self)
        self.source.setObjectName("tag_source")
        self.source.setWordWrap(True)
        self.search = QLineEdit(self)
        self.search.setObjectName("tag_search")
        self.search.setPlaceholderText("Search tag, name or value (e.g. 0028,0030 or thickness)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self._fill())
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("tag_tree")
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        for col, width in enumerate((92, 220, 34)):
            self.tree.setColumnWidth(col, width)
        layout.addWidget(self.source)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(40)  # scrolling: read the slice the user stops on, not every one passed
        self._timer.timeout.connect(self.refresh)
        document.volume_changed.connect(lambda _v: self._invalidate(clear_cache=True))
        document.cursor_changed.connect(self._on_cursor)
        document.deidentify_changed.connect(lambda _on: self._invalidate())
        self._slice = -1

    # ---- which file -----------------------------------------------------------------------------
    def current_file(self) -> tuple[Path | None, str]:
        """The file behind the axial slice on screen and a description ("slice 3 of 20")."""
        vol = self.document.volume
        if vol is None:
            return None, ""
        z = int(self.document.cursor[2])
        files = vol.source_files
        if files:
            n = len(files)
            k = z if n == vol.shape[0] else round(z * (n - 1) / max(vol.shape[0] - 1, 1))  # downsampled series
            k = min(max(k, 0), n - 1)
            return Path(files[k]), f"slice {z + 1} of {vol.shape[0]}" if vol.shape[0] > 1 else "image"
        source = Path(vol.source) if vol.source else None
        return (source if source is not None and source.is_file() else None), "whole file"

    # ---- reactions ------------------------------------------------------------------------------
    def _on_cursor(self, cursor: tuple) -> None:
        if int(cursor[2]) != self._slice and self.document.volume is not None and self.document.volume.source_files:
            self._invalidate()

    def _invalidate(self, clear_cache: bool = False) -> None:
        if clear_cache:
            self._cache.clear()
        self._dirty = True
        if self.isVisible():
            self._timer.start()

    def showEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt API
        super().showEvent(event)
        if self._dirty:
            self.refresh()

    def refresh(self) -> None:
        """Read (or take from the cache) the current file's header and show it."""
        self._dirty = False
        self._slice = int(self.document.cursor[2])
        path, where = self.current_file()
        self.path = path
        deidentified = self.document.deidentify
        if path is None:
            self._all = []
            self.source.setText("No header: open a DICOM, NRRD, NIfTI or image file." if self.document.volume is None
                                else "This image has no file header to show.")
            self._fill()
            return
        try:
            rows = self._cache.get(path)
            if rows is None:
                rows = read_header(path)
                self._cache[path] = rows
                while len(self._cache) > CACHE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(path)
        except MedFusionError as err:
            self._all = []
            self.source.setText(str(err))
            self._fill()
            return
        self._all = masked(rows) if deidentified else list(rows)
        name = "" if deidentified else f"{path.name} — "
        note = "  Identifying values are hidden (de-identified display)." if deidentified else ""
        self.source.setText(f"{name}{where}, {len(rows)} elements.{note}")
        self._fill()

    def _fill(self) -> None:
        needle = self.search.text().strip().lower()
        compact = needle.replace("(", "").replace(")", "").replace(" ", "")

        def matches(r: HeaderRow) -> bool:
            if not needle:
                return True
            tag = r.tag.lower().replace("(", "").replace(")", "")
            return (needle in r.name.lower() or needle in r.value.lower() or compact in tag
                    or compact in tag.replace(",", "") or needle == r.vr.lower())

        self.rows = [r for r in self._all if matches(r)]
        self.tree.clear()
        items = []
        for r in self.rows:
            item = QTreeWidgetItem([r.tag, "  " * r.depth + r.name, r.vr, r.value])
            item.setToolTip(3, r.value)
            items.append(item)
        self.tree.addTopLevelItems(items)
