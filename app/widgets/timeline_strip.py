"""Timeline strip: one thumbnail per X-ray, by day; click to view; the images the predictor used are framed."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from app.controllers.clinical import ClinicalController
from app.model.clinical import CaseImage, ClinicalModel

THUMB = 96


def _thumbnail(image: CaseImage) -> QPixmap:
    from PIL import Image  # loads with the first clinical case, not with the viewer

    with Image.open(image.path) as opened:
        im = opened.convert("L")
        im.thumbnail((THUMB, THUMB))
        data = im.tobytes()
        qimg = QImage(data, im.width, im.height, im.width, QImage.Format.Format_Grayscale8)
        return QPixmap.fromImage(qimg.copy())


class TimelineStrip(QWidget):
    """Horizontal strip of day-labelled thumbnails (shown, used-by-model and plain states)."""

    def __init__(self, model: ClinicalModel, controller: ClinicalController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeline_strip")
        self.model, self.controller = model, controller
        self.layout_ = QHBoxLayout(self)
        self.layout_.setContentsMargins(4, 2, 4, 2)
        self.buttons: dict[str, QToolButton] = {}
        self.legend = QLabel(self)
        model.case_changed.connect(lambda _c: self._rebuild())
        model.image_selected.connect(lambda _i: self._restyle())
        model.prediction_changed.connect(lambda _p: self._restyle())
        self._rebuild()

    def _rebuild(self) -> None:
        while self.layout_.count():
            item = self.layout_.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None and widget is not self.legend:
                widget.deleteLater()
        self.buttons.clear()
        case = self.model.case
        for im in case.images if case else []:
            button = QToolButton(self)
            button.setIcon(QIcon(_thumbnail(im)))
            button.setIconSize(QSize(THUMB, THUMB))
            button.setText(f"day {im.offset:g}")
            button.setToolTip(f"{im.filename} — day {im.offset:g} {im.view}; click to view")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.clicked.connect(lambda _c=False, name=im.filename: self.controller.show_image(name))
            self.layout_.addWidget(button)
            self.buttons[im.filename] = button
        self.layout_.addWidget(self.legend)
        self.layout_.addStretch(1)
        self._restyle()

    def _restyle(self) -> None:
        pred = self.model.prediction
        used = set(pred.used_images) if pred is not None else set()
        shown = self.model.selected.filename if self.model.selected else None
        for name, button in self.buttons.items():
            border = "3px solid #f0ad4e" if name in used else "1px solid #555555"
            back = "#1f4e79" if name == shown else "transparent"
            button.setStyleSheet(f"QToolButton {{border:{border}; background:{back}; color:#e0e0e0}}")
        self.legend.setText(
            "<small>orange frame: used by the prediction<br>blue: on screen</small>" if self.buttons else ""
        )
