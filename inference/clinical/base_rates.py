"""Per-outcome base rate of the training cohort, beside each predicted probability.

Why: "ICU admission 40 %" means little until one knows how common ICU admission was in the patients the
model learned from. The number is never invented: it comes from the loaded predictor's ``base_rates``
(training prevalence, when the predictor exposes it), else from the shipped model files — the
class-conditional conformal calibration in ``calibration.json`` stores one score per labelled patient
and class, so its class counts are the labelled cohort's outcome counts. Otherwise: unknown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_MODEL_JSON_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class BaseRate:
    """Share of training patients with the outcome; ``n_labelled`` when known (for the tooltip)."""

    rate: float
    n_positive: int | None = None
    n_labelled: int | None = None
    source: str = ""

    def describe(self) -> str:
        counts = (f" ({self.n_positive} of {self.n_labelled} labelled patients)"
                  if self.n_positive is not None and self.n_labelled else "")
        return f"{100 * self.rate:.0f} % of the training cohort{counts}"


def _valid_rate(value: Any) -> float | None:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and 0.0 <= rate <= 1.0 else None


def _read_json(path: Path) -> Any:
    if not path.is_file() or path.stat().st_size > MAX_MODEL_JSON_BYTES:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def from_mapping(rates: Any, source: str = "predictor") -> dict[str, BaseRate]:
    """``{outcome: rate}`` (floats in [0, 1]) → BaseRates; invalid entries are dropped, not guessed."""
    if not isinstance(rates, dict):
        return {}
    out = {}
    for name, value in rates.items():
        rate = _valid_rate(value)
        if rate is not None:
            out[str(name)] = BaseRate(rate, source=source)
    return out


def from_model_dir(model_dir: Path) -> dict[str, BaseRate]:
    """Base rates stored with a model: ``config.json`` ``base_rates``, else the calibration class counts."""
    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json")
    if not isinstance(config, dict):
        return {}
    stored = from_mapping(config.get("base_rates"), "model config")
    if stored:
        return stored
    outcomes = config.get("outcomes")
    calibration = _read_json(model_dir / "calibration.json")
    if not isinstance(outcomes, list) or not isinstance(calibration, dict):
        return {}
    conformal = calibration.get("conformal")
    if not isinstance(conformal, list) or len(conformal) != len(outcomes):
        return {}
    out: dict[str, BaseRate] = {}
    for name, entry in zip(outcomes, conformal, strict=True):
        scores = entry.get("scores") if isinstance(entry, dict) else None
        if not isinstance(scores, dict) or not isinstance(scores.get("0"), list) or not isinstance(scores.get("1"), list):
            continue
        pos, neg = len(scores["1"]), len(scores["0"])
        if pos + neg > 0:
            out[str(name)] = BaseRate(pos / (pos + neg), pos, pos + neg, "calibration cohort")
    return out


def base_rates_for(predictor: Any) -> dict[str, BaseRate]:
    """From a loaded predictor (the viewer's adapter or the fusion predictor itself); {} when unknown."""
    if predictor is None:
        return {}
    for holder in (predictor, getattr(predictor, "fusion", None)):
        rates = from_mapping(getattr(holder, "base_rates", None))
        if rates:
            return rates
    model_dir = getattr(predictor, "model_dir", None)
    if isinstance(model_dir, str | Path):
        return from_model_dir(Path(model_dir))
    return {}
