"""Explanation panel: outcome, overlay opacity, clinical-value bars, X-ray weights over time and the gate.

The clinical-value bars use the heat-map's colours (``app.rendering.attribution``): red pushes towards the
outcome, blue away, on the image and beside it. The heat-map itself is ``app.widgets.heatmap_overlay``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.controllers.clinical import METHODS, ClinicalController
from app.model.clinical import FIELDS_BY_NAME, OUTCOMES, ClinicalModel, ExplanationResult
from app.widgets.heatmap_overlay import HeatmapOverlay
from app.widgets.lazy_figure import LazyFigure
from inference.clinical.attribution_colours import AWAY, TOWARDS
from inference.clinical.wording import mid_sentence


class ExplanationPanel(QWidget):
    """Method/outcome choice, overlay opacity, EHR signed bars, time-point weights and the gate."""

    def __init__(
        self, model: ClinicalModel, controller: ClinicalController, overlay: HeatmapOverlay,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("explanation_panel")
        self.model, self.controller, self.overlay = model, controller, overlay
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.method = QComboBox(self)
        for key, text in METHODS.items():
            self.method.addItem(text, key)
        self.outcome = QComboBox(self)
        for key, text in OUTCOMES.items():
            self.outcome.addItem(text, key)
        form.addRow("Explain", self.outcome)
        form.addRow("Method", self.method)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(overlay.opacity * 100))
        self.opacity.valueChanged.connect(lambda v: overlay.set_opacity(v / 100))
        self.show_box = QCheckBox("Show heat-map on the image", self)
        self.show_box.setChecked(True)
        self.show_box.toggled.connect(overlay.set_visible)
        form.addRow("Heat-map opacity", self.opacity)
        layout.addLayout(form)
        layout.addWidget(self.show_box)
        self.run_button = QPushButton("Explain", self)
        self.run_button.setToolTip("Which parts of the image and which clinical values drove this outcome")
        self.run_button.clicked.connect(self._run)
        layout.addWidget(self.run_button)
        self.status = QLabel("No explanation yet.", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.chart = LazyFigure(figsize=(3.6, 4.2), dpi=90, facecolor="#2b2b2b", min_height=320, parent=self)
        layout.addWidget(self.chart, 1)
        model.explanation_changed.connect(self._show)
        model.stale_changed.connect(lambda _s: self._show(model.explanation))
        model.image_selected.connect(lambda _i: self._show(model.explanation))  # greying is per X-ray
        self._show(None)

    def _run(self) -> None:
        self.controller.explain(self.method.currentData(), self.outcome.currentData())

    def _show(self, result: ExplanationResult | None) -> None:
        if result is None:
            self.status.setText("No explanation yet: predict, then press Explain.")
            if self.chart.created:  # else nothing drawn yet: matplotlib stays unloaded
                self.chart.figure.clear()
                self.chart.canvas.draw_idle()
            return
        fig = self.chart.figure
        fig.clear()
        index = self.method.findData(result.method)  # the method the predictor used, which may differ
        if index >= 0:
            self.method.blockSignals(True)
            self.method.setCurrentIndex(index)
            self.method.blockSignals(False)
        label = OUTCOMES.get(result.outcome, result.outcome)
        lower = mid_sentence(label)
        stale = " <b style='color:#ffb347'>(out of date)</b>" if result.stale else ""
        legend = (f"<span style='color:{TOWARDS}'><b>Red</b></span> pushes towards {lower}, "
                  f"<span style='color:{AWAY}'><b>blue</b></span> pushes away — on the X-ray (inside the "
                  "lungs only) and in the clinical values alike.")
        note = self.overlay.greying()
        grey = f"<br><i style='color:#ffbf60'>{note}.</i>" if note else ""
        auto = " Lungs outlined on the X-ray were found automatically." if "auto" in result.mask_sources.values() else ""
        self.status.setText(f"{label} — {METHODS.get(result.method, result.method)}{stale}. {legend}{auto}{grey}")
        text: dict[str, Any] = {"color": "#e0e0e0", "fontsize": 8}
        grid = fig.add_gridspec(3, 1, height_ratios=[3, 1, 0.6], hspace=0.9)
        ax = fig.add_subplot(grid[0])
        items = result.ehr[:7][::-1]
        missing = {k for k, v in self.model.ehr.items() if v.missing}
        names = [(FIELDS_BY_NAME[n].label if n in FIELDS_BY_NAME else n) + (" (missing)" if n in missing else "")
                 for n, _ in items]
        values = [v for _, v in items]
        ax.barh(names, values, color=[TOWARDS if v > 0 else AWAY for v in values])
        ax.axvline(0, color="#aaaaaa", lw=0.8)
        ax.set_title(f"Clinical values (red: towards {lower}, blue: away)", **text)
        ax.set_xlabel("effect on the risk (log-odds) against a typical value", **text)
        ax2 = fig.add_subplot(grid[1])
        weights = result.time_weights or {}
        if weights and self.model.case is not None:
            days = {im.filename: im.offset for im in self.model.case.images}
            keys = list(weights)
            ax2.bar(range(len(keys)), [weights[k] for k in keys], color="#f0ad4e")
            ax2.set_xticks(range(len(keys)), [f"day {days.get(k, 0):g}" for k in keys])
        ax2.set_title("Weight of each X-ray in time", **text)
        ax3 = fig.add_subplot(grid[2])
        if result.gate is not None:
            ax3.barh([0], [result.gate], color="#f0ad4e")
            ax3.barh([0], [1 - result.gate], left=[result.gate], color="#5bc0de")
            ax3.text(0.01, 0, f"image {100 * result.gate:.0f} %", va="center", fontsize=8)
            ax3.text(0.99, 0, f"clinical {100 * (1 - result.gate):.0f} %", va="center", ha="right", fontsize=8)
        ax3.set_xlim(0, 1)
        ax3.set_yticks([])
        ax3.set_title("Image vs clinical data (gate)", **text)
        for a in (ax, ax2, ax3):
            a.set_facecolor("#2b2b2b")
            a.tick_params(colors="#e0e0e0", labelsize=7)
            for spine in a.spines.values():
                spine.set_color("#666666")
        fig.subplots_adjust(left=0.3, right=0.97, top=0.93, bottom=0.07)
        self.chart.canvas.draw_idle()
