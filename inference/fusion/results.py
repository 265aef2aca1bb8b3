"""Result pieces both fusion predictors return (the shipped JSON one and the legacy torch one).

One definition, so the two cannot drift apart: the outcome titles, the wording of a conformal set
(``'0'``, ``'1'``, ``'0|1'``; "uncertain" unless the set names exactly one answer) and the per-image
severity estimate with its interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from inference.uncertainty.conformal import MondrianConformal

OUTCOME_TITLES = {
    "went_icu": "ICU admission",
    "intubated": "Intubation",
    "death": "Death",
    "needed_supplemental_O2": "Supplemental oxygen",
}


class _HasPredictionSet(Protocol):
    @property
    def prediction_set(self) -> frozenset[int]: ...


class ConformalSetWording:
    """``set_text`` / ``uncertain`` for an outcome result with a conformal ``prediction_set`` (a field or
    a property: the legacy predictor stores one set, the shipped one picks it from its sets by alpha)."""

    @property
    def set_text(self: _HasPredictionSet) -> str:
        """The CSV/UI form of the set: '0', '1', '0|1' or '' (empty)."""
        return MondrianConformal.format_set(self.prediction_set)

    @property
    def uncertain(self: _HasPredictionSet) -> bool:
        """The set does not name exactly one answer (both, or none at this level)."""
        return len(self.prediction_set) != 1


@dataclass
class SeverityPrediction:
    filename: str
    values: dict[str, tuple[float, float, float]]  # name → (estimate, lo, hi) at the prediction's alpha
