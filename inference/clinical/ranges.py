"""Reference, critical and implausible ranges of the presentation EHR values (adult), and the check.

Why three bands: "low" alone hides the difference between SpO₂ 92 % (watch), 80 % (act now) and 35 %
(almost certainly a typo, a PaO₂ in mmHg, or a failed probe — check before anyone, or the model, uses
it). The shared cohort holds such values (SpO₂ 130, 340), so the viewer must say so.

The numbers are typical adult values of hospital laboratories' critical-value lists and pulse-oximetry
practice; local laboratories differ, so they are flags for attention, not diagnoses. One table, used by
the EHR panel, the report and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inference.clinical.terms import field_label, field_unit


@dataclass(frozen=True)
class FieldRanges:
    """``normal``: reference interval (inclusive); critical if < ``critical_low`` or > ``critical_high``;
    implausible (likely an entry or unit error) outside the inclusive ``plausible`` interval."""

    name: str
    normal: tuple[float, float] | None = None
    critical_low: float | None = None
    critical_high: float | None = None
    plausible: tuple[float, float] | None = None
    numeric: bool = True

    @property
    def label(self) -> str:
        return field_label(self.name)

    @property
    def unit(self) -> str:
        return field_unit(self.name)


EHR_RANGES: tuple[FieldRanges, ...] = (
    FieldRanges("age", plausible=(0.0, 120.0)),
    FieldRanges("sex", numeric=False),
    FieldRanges("temperature", (36.1, 37.8), critical_low=35.0, critical_high=40.0, plausible=(25.0, 45.0)),
    FieldRanges("pO2_saturation", (95.0, 100.0), critical_low=85.0, plausible=(50.0, 100.0)),
    FieldRanges("leukocyte_count", (4.0, 11.0), critical_low=2.0, critical_high=30.0, plausible=(0.0, 500.0)),
    FieldRanges("neutrophil_count", (1.8, 7.7), critical_low=0.5, plausible=(0.0, 500.0)),
    FieldRanges("lymphocyte_count", (1.0, 4.8), critical_low=0.5, plausible=(0.0, 500.0)),
)
RANGES_BY_NAME: dict[str, FieldRanges] = {r.name: r for r in EHR_RANGES}

LEVELS = ("missing", "normal", "abnormal", "critical", "implausible")


@dataclass(frozen=True)
class RangeCheck:
    """Where a value falls: ``level`` one of :data:`LEVELS` ('' when the field has no range),
    ``direction`` 'low' / 'high' / '', and one sentence saying why."""

    level: str
    direction: str = ""
    reason: str = ""

    @property
    def flagged(self) -> bool:
        return self.level in ("abnormal", "critical", "implausible")

    def short(self) -> str:
        """Cell text: '↓ low', '↑ high', '‼ critical low', '⚠ implausible' ('' when nothing to say)."""
        arrow = "\u2193" if self.direction == "low" else "\u2191" if self.direction == "high" else ""
        if self.level == "abnormal":
            return f"{arrow} {self.direction}"
        if self.level == "critical":
            return f"\u203c critical {self.direction}"
        if self.level == "implausible":
            return "\u26a0 implausible"
        return ""


def _num(value: float) -> str:
    return f"{value:g}"


def check_value(name: str, value: float | str | None) -> RangeCheck:
    """Classify one value against :data:`EHR_RANGES`; unknown fields and text values get level ''."""
    spec = RANGES_BY_NAME.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return RangeCheck("missing", reason="not recorded")
    if spec is None or not spec.numeric:
        return RangeCheck("")
    try:
        v = float(value)
    except (TypeError, ValueError):
        return RangeCheck("implausible", "", f"'{value}' is not a number")
    unit = f" {spec.unit}" if spec.unit else ""
    if v != v:  # NaN
        return RangeCheck("missing", reason="not recorded")
    if spec.plausible is not None and not spec.plausible[0] <= v <= spec.plausible[1]:
        lo, hi = spec.plausible
        side = "low" if v < lo else "high"
        return RangeCheck("implausible", side, f"{spec.label} {_num(v)}{unit} is outside the plausible "
                          f"{_num(lo)}\u2013{_num(hi)}{unit}: check the entry and its unit")
    if spec.critical_low is not None and v < spec.critical_low:
        return RangeCheck("critical", "low", f"below the critical limit {_num(spec.critical_low)}{unit}")
    if spec.critical_high is not None and v > spec.critical_high:
        return RangeCheck("critical", "high", f"above the critical limit {_num(spec.critical_high)}{unit}")
    if spec.normal is None:
        return RangeCheck("")
    lo, hi = spec.normal
    if v < lo:
        return RangeCheck("abnormal", "low", f"below the reference range {_num(lo)}\u2013{_num(hi)}{unit}")
    if v > hi:
        return RangeCheck("abnormal", "high", f"above the reference range {_num(lo)}\u2013{_num(hi)}{unit}")
    return RangeCheck("normal")


def consistency_warnings(values: Mapping[str, float | str | None]) -> list[str]:
    """Cross-field checks a single range cannot make (differential counts larger than the total)."""
    def num(key: str) -> float | None:
        v = values.get(key)
        try:
            return None if v is None else float(v)
        except (TypeError, ValueError):
            return None

    total, neut, lymph = num("leukocyte_count"), num("neutrophil_count"), num("lymphocyte_count")
    parts = [v for v in (neut, lymph) if v is not None]
    if total is not None and parts and sum(parts) > total * 1.05 + 0.05:
        return [f"Neutrophils + lymphocytes ({_num(sum(parts))}) exceed the leukocyte count ({_num(total)}): "
                "check the entries and units."]
    return []
