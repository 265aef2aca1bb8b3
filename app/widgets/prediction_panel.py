"""Prediction panel: each outcome in plain words with its calibrated probability and conformal set."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.controllers.clinical import ClinicalController
from app.model.clinical import OUTCOMES, ClinicalModel, PredictionState

LEVELS = (0.20, 0.10, 0.05)  # α for 80 / 90 / 95 %
TENT_WARNING = (
    "Test-time adaptation (TENT) adjusts the model's normalisation layers to this one case before "
    "predicting. It can help on images unlike the training data but can also make the model "
    "over-confident. Both results are shown side by side. Turn it on?"
)


class PredictionPanel(QWidget):
    """Outcome lines, 'uncertain' flags, α slider, TENT toggle, reliability diagram, model card link."""

    def __init__(self, model: ClinicalModel, controller: ClinicalController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("prediction_panel")
        self.model, self.controller = model, controller
        controller.on_tent_warning = self._confirm_tent
        layout = QVBoxLayout(self)
        self.stale_label = QLabel("", self)
        self.stale_label.setWordWrap(True)
        self.stale_label.setStyleSheet("background:#8a5a00;color:white;padding:4px;border-radius:3px")
        self.stale_label.hide()
        layout.addWidget(self.stale_label)
        self.lines = QLabel("No prediction yet: press <b>Predict</b>.", self)
        self.lines.setObjectName("prediction_lines")
        self.lines.setWordWrap(True)
        self.lines.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.lines)

        row = QHBoxLayout()
        row.addWidget(QLabel("Confidence level:", self))
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 2)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setValue(self._level_index(controller.alpha))
        self.slider.setToolTip("Coverage of the conformal sets: 80, 90 or 95 % (higher = larger sets)")
        self.level_label = QLabel(self)
        row.addWidget(self.slider, 1)
        row.addWidget(self.level_label)
        layout.addLayout(row)
        self.slider.valueChanged.connect(self._on_level)
        self._show_level()

        row = QHBoxLayout()
        self.predict_button = QPushButton("Predict", self)
        self.predict_button.setToolTip("Run features → prediction → explanation for this case (Ctrl+R)")
        self.predict_button.clicked.connect(lambda: self.controller.predict())
        self.tent_box = QCheckBox("Adapt to this case (TENT)", self)
        self.tent_box.toggled.connect(self._on_tent)
        row.addWidget(self.predict_button)
        row.addWidget(self.tent_box)
        row.addStretch(1)
        layout.addLayout(row)

        row = QHBoxLayout()
        row.addWidget(QLabel("Calibration of the shipped model:", self))
        self.reliability_choice = QComboBox(self)  # one reliability diagram per outcome
        self._reliability_pngs: dict[str, Path] = {}
        self.reliability_choice.setToolTip("Out-of-fold reliability diagram: predicted probability vs observed rate")
        self.reliability_choice.currentIndexChanged.connect(lambda _i: self._show_reliability())
        row.addWidget(self.reliability_choice, 1)
        layout.addLayout(row)
        self.reliability = QLabel(self)
        self.reliability.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.reliability)
        self.card_link = QLabel(self)
        self.card_link.setOpenExternalLinks(False)
        self.card_link.linkActivated.connect(lambda url: QDesktopServices.openUrl(QUrl(url)))
        layout.addWidget(self.card_link)
        note = QLabel("<small>Research use only — not for diagnosis.</small>", self)
        layout.addWidget(note)
        layout.addStretch(1)
        model.prediction_changed.connect(self._show)
        model.stale_changed.connect(lambda _s: self._show(model.prediction))
        model.case_changed.connect(lambda _c: self._on_case())

    @staticmethod
    def _level_index(alpha: float) -> int:
        return min(range(len(LEVELS)), key=lambda i: abs(LEVELS[i] - alpha))

    def _show_level(self) -> None:
        self.level_label.setText(f"{round(100 * (1 - LEVELS[self.slider.value()]))} %")

    def _on_level(self, index: int) -> None:
        self._show_level()
        self.controller.set_alpha(LEVELS[index])

    def _confirm_tent(self) -> bool:
        answer = QMessageBox.question(self, "Adapt the model to this case?", TENT_WARNING)
        return answer == QMessageBox.StandardButton.Yes

    def _on_tent(self, on: bool) -> None:
        if not self.controller.set_tent(on):
            self.tent_box.blockSignals(True)
            self.tent_box.setChecked(False)
            self.tent_box.blockSignals(False)

    def _show_reliability(self) -> None:
        key = self.reliability_choice.currentData()
        png = self._reliability_pngs.get(key)
        if png is None:
            self.reliability.clear()
            return
        pix = QPixmap(str(png))
        self.reliability.setPixmap(pix.scaledToWidth(300, Qt.TransformationMode.SmoothTransformation))
        self.reliability.setToolTip("Reliability of the shipped model: predicted vs observed rate")

    def _on_case(self) -> None:
        self.tent_box.blockSignals(True)
        self.tent_box.setChecked(self.controller.tent)
        self.tent_box.blockSignals(False)
        self.slider.blockSignals(True)
        self.slider.setValue(self._level_index(self.controller.alpha))
        self.slider.blockSignals(False)
        self._show_level()
        self._show_model_files()

    def _show_model_files(self) -> None:
        available = self.controller.predictor_available()
        self.predict_button.setEnabled(available)
        self.tent_box.setEnabled(available)
        if not available:
            self.lines.setText("<i>No outcome model is installed in this build, so no prediction can be shown.</i>")
            self.card_link.setText("")
            return
        pred = self.controller.predictor
        self._reliability_pngs = {k: Path(v) for k, v in pred.reliability_pngs.items() if Path(v).is_file()}
        self.reliability_choice.blockSignals(True)
        self.reliability_choice.clear()
        for key in self._reliability_pngs:
            self.reliability_choice.addItem(OUTCOMES.get(key, key), key)
        if "went_icu" in self._reliability_pngs:
            self.reliability_choice.setCurrentIndex(list(self._reliability_pngs).index("went_icu"))
        self.reliability_choice.blockSignals(False)
        self.reliability_choice.setVisible(bool(self._reliability_pngs))
        self._show_reliability()
        card = pred.model_card
        if card is not None:
            url = QUrl.fromLocalFile(str(card)).toString()
            self.card_link.setText(f'<a href="{url}">Model card: what the model was trained on, limits</a>')

    def text(self) -> str:
        return self.lines.text()

    def _show(self, state: PredictionState | None) -> None:
        if state is None:
            self.lines.setText("No prediction yet: press <b>Predict</b>.")
            self.stale_label.hide()
            return
        parts = []
        for name in OUTCOMES:
            res = state.outcomes.get(name)
            if res is None:
                continue
            words = res.words(state.alpha)
            color = "#ffb347" if res.uncertain or not res.prediction_set else "#e8e8e8"
            line = f"<b style='color:{color}'>{words}</b><br>&nbsp;&nbsp;probability {100 * res.probability:.0f} %"
            if state.without_tent and name in state.without_tent:
                line += f" (without adaptation {100 * state.without_tent[name].probability:.0f} %)"
            parts.append(line)
        if state.gate is not None:
            parts.append(f"<small>Driven by: image {100 * state.gate:.0f} % · clinical data "
                         f"{100 * (1 - state.gate):.0f} %</small>")
        if state.tent:
            parts.append("<small style='color:#ffb347'>Adapted to this case (TENT).</small>")
        self.lines.setText("<br>".join(parts))
        if state.stale:
            self.stale_label.setText("Out of date — inputs changed since this prediction ("
                                     + "; ".join(state.stale_reasons) + "). Press Predict to update.")
        self.stale_label.setVisible(state.stale)
