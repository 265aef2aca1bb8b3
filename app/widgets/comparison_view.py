"""Current and prior side by side (1×2), each with its own window/level; scroll, zoom and pan in sync.

The left side shows the window's document (the current study, with its labels drawn read-only); the right
side the comparison's prior document, which is view only. Each side is a :class:`SliceView` with its own
tool registry (left-drag = window/level), so segmentation tools never act here. Zoom/pan sync listens to
:attr:`SliceView.user_camera_changed` and applies the same millimetres per screen pixel (physical geometry on
both sides) or the same magnification relative to each image's fit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model.comparison import ComparisonModel, has_physical_positions
from app.model.document import Document
from app.model.labels import LabelsModel
from app.tools import PanTool, ToolRegistry, WindowLevelTool, ZoomTool
from app.widgets.label_overlay import LabelOverlay
from app.widgets.series_browser import decode_series_mime
from app.widgets.slice_view import SliceView

DropHandler = Callable[[Path, str | None, str], object]  # path, series uid, browser key


class ComparisonSide(QWidget):
    """Caption + slice view of one side; accepts series dragged from the browser (and files)."""

    def __init__(self, document: Document, role: str, on_drop: DropHandler, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"comparison_{role}")
        self.role, self._on_drop = role, on_drop
        self.setAcceptDrops(True)
        self.tools = ToolRegistry()
        for tool in (WindowLevelTool(document), PanTool(document), ZoomTool(document)):
            self.tools.register(tool)
        self.caption = QLabel(self)
        self.caption.setObjectName(f"caption_{role}")
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.caption.setWordWrap(True)  # two lines on both sides, whatever the text: the images stay level
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.caption.setFixedHeight(self.caption.fontMetrics().lineSpacing() * 2 + 6)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.view = SliceView(document, "axial", self.tools, self)
        self.view.setObjectName(f"comparison_view_{role}")
        self.empty = QLabel("Drag a series here from the Series browser\n(or right-click a series > Compare as prior)",
                            self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty, 1)

    def show_empty(self, empty: bool) -> None:
        self.empty.setVisible(empty)
        self.view.setVisible(not empty)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if decode_series_mime(event.mimeData()) is not None or event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt API
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        payload = decode_series_mime(event.mimeData())
        if payload is not None:
            event.acceptProposedAction()
            self._on_drop(payload["path"], payload["series_uid"], payload["key"])
            return
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self._on_drop(Path(paths[0]), None, "")


class ComparisonView(QWidget):
    """The 1×2 comparison region (shown instead of the view grid while comparing)."""

    def __init__(self, model: ComparisonModel, labels: LabelsModel, *, on_drop_current: DropHandler,
                 on_drop_prior: DropHandler, on_close: Callable[[], object], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("comparison_view")
        self.model = model
        self.current = ComparisonSide(model.current, "current", on_drop_current, self)
        self.prior = ComparisonSide(model.prior, "prior", on_drop_prior, self)
        self.labels = LabelOverlay(self.current.view, labels)  # drawn, never edited here
        self.current.view.show_document()  # the current study was open before this view existed
        self.labels.update()
        self.sync_box = QCheckBox("Sync scroll / zoom", self)
        self.sync_box.setObjectName("comparison_sync")
        self.sync_box.setChecked(model.sync)
        self.sync_box.toggled.connect(model.set_sync)
        self.mode_label = QLabel(self)
        self.mode_label.setObjectName("comparison_mode")
        note = QLabel("Prior is <b>view only</b>", self)  # short: the bar must not cut it off
        note.setObjectName("comparison_note")
        note.setToolTip("The prior is shown for comparison only: labels, segmentation, predictions, the "
                        "clinical case and the session belong to the current study.")
        note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        back = QPushButton("Back to views", self)
        back.setObjectName("comparison_back")
        back.clicked.connect(lambda: on_close())
        bar = QHBoxLayout()
        bar.addWidget(note, 1)
        bar.addWidget(self.mode_label)
        bar.addWidget(self.sync_box)
        bar.addWidget(back)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.current)
        split.addWidget(self.prior)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        self.split = split
        self._base_handle = split.handleWidth()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._syncing = False
        self.current.view.user_camera_changed.connect(lambda: self._follow_camera(self.current.view, self.prior.view))
        self.prior.view.user_camera_changed.connect(lambda: self._follow_camera(self.prior.view, self.current.view))
        model.captions_changed.connect(self.update_captions)
        model.prior_changed.connect(lambda _v: self._prior_changed())
        model.sync_changed.connect(self._sync_changed)
        model.outside_changed.connect(lambda _o: self.update_captions())
        model.current.volume_changed.connect(lambda _v: self.update_captions())
        self._prior_changed()

    def equalise(self) -> None:
        """Both sides the same width (the comparison is read at the same size)."""
        handle = self._base_handle
        if (self.split.width() - handle) % 2:
            handle += 1  # an odd width would give one side a pixel more (and a different fitted zoom)
        self.split.setHandleWidth(handle)
        half = max((self.split.width() - handle) // 2, 1)
        self.split.setSizes([half, half])

    # ---- captions ----------------------------------------------------------------------------
    def update_captions(self) -> None:
        m = self.model
        cur = m.current_info
        self.current.caption.setText(
            f"<span style='color:#7fd1ff'><b>CURRENT</b></span> · <b>{cur.when_text}</b> · {cur.description}"
            if cur else "<b>CURRENT</b>")
        pri = m.prior_info
        if pri is None:
            self.prior.caption.setText("<span style='color:#ffcf70'><b>PRIOR</b></span> · none open · view only")
        else:
            interval = m.interval()
            warning = " · <span style='color:#ff6b6b'><b>different patient ID!</b></span>" if m.patients_differ else ""
            outside = " · <i>no prior slice at this position</i>" if m.prior_outside and m.sync else ""
            self.prior.caption.setText(
                f"<span style='color:#ffcf70'><b>PRIOR</b></span> · <b>{pri.when_text}</b>"
                + (f" ({interval})" if interval else "") + f" · {pri.description} · view only{warning}{outside}")
        self._update_mode()

    def _update_mode(self) -> None:
        if self.model.prior.volume is None or self.model.current.volume is None:
            self.mode_label.setText("")
            return
        both_2d = self.model.current.volume.is_2d and self.model.prior.volume.is_2d
        text = "zoom/pan linked" if both_2d else "by position" if self.model.mode == "physical" else "by slice fraction"
        self.mode_label.setText(f"<small>{text}</small>")

    def _prior_changed(self) -> None:
        self.prior.show_empty(self.model.prior.volume is None)
        self.update_captions()

    def _sync_changed(self, on: bool) -> None:
        if self.sync_box.isChecked() != on:
            self.sync_box.setChecked(on)
        self.update_captions()
        if on:
            self._follow_camera(self.current.view, self.prior.view)

    # ---- zoom / pan sync ---------------------------------------------------------------------
    @staticmethod
    def _fit_scale(view: SliceView) -> float:
        """The parallel scale at which the whole image fits (what ``reset_camera`` uses)."""
        shape = view.document.shape_xyz
        w_mm = shape[view.mapping.h_axis] * view.display_spacing[0]
        h_mm = shape[view.mapping.v_axis] * view.display_spacing[1]
        aspect = max(view.vtk_widget.width(), 1) / max(view.vtk_widget.height(), 1)
        return max(h_mm / 2, w_mm / 2 / aspect, 1e-6) * 1.03

    @staticmethod
    def _centre(view: SliceView) -> tuple[float, float]:
        shape = view.document.shape_xyz
        return ((shape[view.mapping.h_axis] - 1) * view.display_spacing[0] / 2,
                (shape[view.mapping.v_axis] - 1) * view.display_spacing[1] / 2)

    def _follow_camera(self, source: SliceView, target: SliceView) -> None:
        a, b = source.document.volume, target.document.volume
        if self._syncing or not (self.model.active and self.model.sync) or a is None or b is None:
            return
        physical = has_physical_positions(a) and has_physical_positions(b)
        src_cam, dst_cam = source.renderer.GetActiveCamera(), target.renderer.GetActiveCamera()
        ratio = 1.0 if physical else self._fit_scale(target) / self._fit_scale(source)
        scale = src_cam.GetParallelScale() * ratio
        sx, sy = self._centre(source)
        fx, fy, _ = src_cam.GetFocalPoint()
        tx, ty = self._centre(target)
        goal = (tx + (fx - sx) * ratio, ty + (fy - sy) * ratio)
        self._syncing = True
        try:
            target.zoom(dst_cam.GetParallelScale() / max(scale, 1e-9))
            per_pixel = 2.0 * dst_cam.GetParallelScale() / max(target.vtk_widget.height(), 1)
            gx, gy, _ = dst_cam.GetFocalPoint()
            target.pan_pixels(-(goal[0] - gx) / per_pixel, (goal[1] - gy) / per_pixel)
        finally:
            self._syncing = False
