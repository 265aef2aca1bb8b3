"""Predictions in plain words: the conformal set as an answer, the probability beside the cohort base rate.

Why: "90 % set {yes, no}" is statistics, not an answer. A clinician needs "the model cannot decide",
needs to know whether 40 % is high for this outcome (it is when 15 % of the cohort had it), and must
not be shown a bare "{yes}" next to "41 %" without being told how both can be true (class-conditional
conformal sets: patients *without* the outcome rarely scored that high, so "no" is ruled out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inference.clinical.base_rates import BaseRate
from inference.clinical.formatting import format_percent
from inference.clinical.terms import outcome_label


def mid_sentence(label: str) -> str:
    """'Intubation' → 'intubation' inside a sentence; an acronym stays ('ICU admission')."""
    return label[:1].lower() + label[1:] if not label[:3].isupper() else label


def confidence_text(alpha: float) -> str:
    return f"{round(100 * (1 - float(alpha)))} % confidence"


@dataclass(frozen=True)
class OutcomeWords:
    """One outcome for display: ``answer`` is the headline, ``note`` explains a surprising pairing."""

    label: str
    probability: str  # "81 %"
    base_rate: str  # "cohort base rate 59 %" | "base rate unknown"
    answer: str  # "the model cannot decide" | "yes" | "no" | "unusual case …"
    level: str  # "90 % confidence"
    note: str = ""
    undecided: bool = False
    abstain: bool = False
    technical: str = ""  # "90 % conformal set {yes, no}" for tooltips and the audit trail

    def line(self) -> str:
        """'ICU admission: the model cannot decide at 90 % confidence'."""
        if self.abstain:
            return f"{self.label}: {self.answer}"
        return f"{self.label}: {self.answer} at {self.level}"


def _set_names(prediction_set: Iterable[int]) -> str:
    return "{" + ", ".join("yes" if c == 1 else "no" for c in sorted(set(prediction_set), reverse=True)) + "}"


def base_rate_text(rate: BaseRate | None) -> str:
    return "base rate unknown" if rate is None else f"cohort base rate {format_percent(rate.rate)}"


def outcome_words(name: str, probability: float, prediction_set: Iterable[int], alpha: float,
                  base_rate: BaseRate | None = None) -> OutcomeWords:
    """Words for one outcome; ``prediction_set`` ⊆ {0, 1} at level 1 − ``alpha``."""
    label = outcome_label(name)
    chosen = frozenset(int(c) for c in prediction_set)
    level = confidence_text(alpha)
    prob = format_percent(probability)
    technical = f"{round(100 * (1 - float(alpha)))} % conformal set {_set_names(chosen)}"
    def words(answer: str, note: str = "", undecided: bool = False, abstain: bool = False) -> OutcomeWords:
        return OutcomeWords(label, prob, base_rate_text(base_rate), answer, level, note, undecided, abstain,
                            technical)

    if len(chosen) == 2:
        return words("the model cannot decide", undecided=True)
    if not chosen:
        return words(f"unusual case \u2014 neither answer fits at {level}; do not rely on it", abstain=True)
    lower = mid_sentence(label)
    if chosen == {1}:
        note = ""
        if probability < 0.5:
            note = (f"'Yes' although the probability is {prob}: in the calibration cohort, patients without "
                    f"{lower} rarely scored this high, so 'no' is ruled out at this level.")
        return words("yes", note)
    note = ""
    if probability > 0.5:
        note = (f"'No' although the probability is {prob}: in the calibration cohort, patients with "
                f"{lower} rarely scored this low, so 'yes' is ruled out at this level.")
    return words("no", note)
