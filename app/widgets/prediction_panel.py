"""Prediction panel: each outcome in plain words, its calibrated probability beside the cohort base rate.

The conformal set is turned into an answer ("the model cannot decide", "yes", "no"); the set itself is
in the tooltip. A "yes" with a probability under 50 % (or "no" over 50 %) always carries its reason, and
what-if values the prediction used are listed above it.
"""

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
from inference.clinical.formatting import field_value, recorded_text
from inference.clinical.wording import outcome_words

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
        self.whatif_label = QLabel("", self)
        self.whatif_label.setObjectName("whatif_note")
        self.whatif_label.setWordWrap(True)
        self.whatif_label.setStyleSheet("background:#5a4a00;color:white;padding:4px;border-radius:3px")
        self.whatif_label.hide()
        layout.addWidget(self.whatif_label)
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
        self.reliability_title = QLabel("Calibration of the shipped model:", self)
        row.addWidget(self.reliability_title)
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
        model.ehr_changed.connect(self._show_whatif)

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
        self.reliability_title.setVisible(bool(self._reliability_pngs))  # no heading over nothing
        self._show_reliability()
        card = pred.model_card
        if card is not None:
            url = QUrl.fromLocalFile(str(card)).toString()
            self.card_link.setText(f'<a href="{url}">Model card: what the model was trained on, limits</a>')

    def text(self) -> str:
        return self.lines.text()

    def _show_whatif(self) -> None:
        edits = [v for v in self.model.ehr.values() if v.edited]
        text = "; ".join(f"{v.field.label} {field_value(v.field.name, v.value)} ({recorded_text(v.field.name, v.original)})" for v in edits)
        self.whatif_label.setText(f"What-if values, not the patient's record: {text}." if edits else "")
        self.whatif_label.setVisible(bool(edits))

    def _show(self, state: PredictionState | None) -> None:
        self._show_whatif()
        if state is None:
            self.lines.setText("No prediction yet: press <b>Predict</b>.")
            self.lines.setToolTip("")
            self.stale_label.hide()
            return
        rates = self.model.base_rates
        parts, tips = [], []
        for name in OUTCOMES:
            res = state.outcomes.get(name)
            if res is None:
                continue
            rate = rates.get(name)
            words = outcome_words(name, res.probability, res.prediction_set, state.alpha, rate)
            color = "#ffb347" if words.undecided or words.abstain else "#e8e8e8"
            head = (f"{words.label}: {words.answer}" if words.abstain
                    else f"{words.label}: {words.answer} <small>({words.level})</small>")
            body = (f"probability {words.probability} &middot; "
                    f"<span style='color:#9aa4b2'>{words.base_rate}</span>")
            if state.without_tent and name in state.without_tent:
                body += f" (without adaptation {100 * state.without_tent[name].probability:.0f} %)"
            if words.note:
                body += f"<br><i style='color:#ffd27f'>{words.note}</i>"
            parts.append(f"<p style='margin:0 0 6px 0'><b style='color:{color}'>{head}</b>"
                         f"<div style='margin-left:12px'>{body}</div></p>")
            tips.append(f"{words.label}: {words.technical}; base rate "
                        + (rate.describe() if rate is not None else "unknown"))
        if state.gate is not None:
            parts.append(f"<p style='margin:0'><small>Driven by: image {100 * state.gate:.0f} % · clinical data "
                         f"{100 * (1 - state.gate):.0f} %</small></p>")
        if state.tent:
            parts.append("<p style='margin:0'><small style='color:#ffb347'>Adapted to this case (TENT).</small></p>")
        self.lines.setText("".join(parts))
        self.lines.setToolTip("\n".join(tips))
        if state.stale:
            self.stale_label.setText("Out of date — inputs changed since this prediction ("
                                     + "; ".join(state.stale_reasons) + "). Press Predict to update.")
        self.stale_label.setVisible(state.stale)
