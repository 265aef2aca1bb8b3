"""Labs over time as small multiples: one panel per lab, in its own unit, with its reference band.

Why not one normalised chart: "0.4 of the normal range" is not a number a clinician can read or check
against the chart; SpO₂ in % and temperature in °C need their own axes. Critical limits are drawn as
red dashes, values outside the plausible range get a warning marker, X-ray days are blue lines and a
what-if value (the model's input, not the record) is a hollow diamond at presentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.model.clinical import EHR_FIELDS, ClinicalCase, EHRValue
from inference.clinical.ranges import RANGES_BY_NAME, check_value

if TYPE_CHECKING:  # matplotlib is imported on the first chart (start-up time), see app/widgets/lazy_figure.py
    from matplotlib.figure import Figure

TEXT = "#e0e0e0"
BACKGROUND = "#2b2b2b"
LEVEL_COLOURS = {"normal": "#7bd88f", "abnormal": "#ffb347", "critical": "#ff4d4d", "implausible": "#d291ff"}
LAB_FIELDS = tuple(f for f in EHR_FIELDS if f.numeric and f.name != "age")


def labs_with_values(case: ClinicalCase | None) -> list[str]:
    """Names of the labs recorded on at least one day (those get a panel)."""
    if case is None:
        return []
    return [f.name for f in LAB_FIELDS if any(f.name in day for day in case.visits.values())]


def draw_lab_timeline(fig: Figure, case: ClinicalCase | None, ehr: dict[str, EHRValue]) -> list[object]:
    """Draw on ``fig`` (cleared); returns the axes, one per recorded lab (none: a sentence instead)."""
    from matplotlib.ticker import MaxNLocator

    fig.clear()
    names = labs_with_values(case)
    if case is None or not names:
        fig.text(0.5, 0.5, "No lab values recorded for this patient." if case else "No case open.",
                 ha="center", va="center", color=TEXT, fontsize=9)
        return []
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    days = sorted({im.offset for im in case.images} | set(case.visits))
    first = min(case.visits) if case.visits else 0.0
    for ax, name in zip(axes, names, strict=True):
        spec = RANGES_BY_NAME[name]
        field = next(f for f in LAB_FIELDS if f.name == name)
        pts: list[tuple[float, float]] = sorted(
            (day, float(v)) for day, vals in case.visits.items() if (v := vals.get(name)) is not None)
        values = [v for _, v in pts]
        span = list(values)
        if spec.normal:
            ax.axhspan(*spec.normal, color="#3c763d", alpha=0.35, lw=0)
            span += list(spec.normal)
        for limit in (spec.critical_low, spec.critical_high):
            if limit is not None:
                ax.axhline(limit, color="#ff4d4d", ls="--", lw=0.9)
        for im in case.images:
            ax.axvline(im.offset, color="#5bc0de", lw=0.8, alpha=0.5)
        ax.plot([d for d, _ in pts], values, "-", color="#9aa4b2", lw=1)
        for day, v in pts:
            level = check_value(name, v).level
            marker = "X" if level == "implausible" else "o"
            ax.plot([day], [v], marker, ms=6 if marker == "X" else 5, color=LEVEL_COLOURS.get(level, TEXT))
            ax.annotate(f"{v:g}", (day, v), textcoords="offset points", xytext=(5, 3), color=TEXT, fontsize=7)
        current = ehr.get(name)
        if current is not None and current.edited and isinstance(current.value, float | int):
            ax.plot([first], [current.value], "D", ms=7, mfc="none", mec="#ffd84d", mew=1.5)
            ax.annotate(f"what-if {current.value:g}", (first, current.value), textcoords="offset points",
                        xytext=(5, -10), color="#ffd84d", fontsize=7)
            span.append(float(current.value))
        low, high = min(span), max(span)
        pad = max((high - low) * 0.25, abs(high) * 0.02, 0.5)
        ax.set_ylim(low - pad, high + pad)
        unit = f" ({field.unit})" if field.unit else ""
        ax.set_title(f"{field.label}{unit}", loc="left", color=TEXT, fontsize=7.5, pad=2)  # narrow docks too
        ax.set_facecolor(BACKGROUND)
        ax.tick_params(colors=TEXT, labelsize=7)
        for spine in ax.spines.values():
            spine.set_color("#666666")
    axes[0].set_xlim(min(days) - 0.5, max(days) + 0.5)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("day since presentation", color=TEXT, fontsize=8)
    fig.suptitle("Labs over time \u2014 green: reference range \u00b7 red dashes: critical limit \u00b7 "
                 "blue: X-ray days", color=TEXT, fontsize=7.5, wrap=True)
    fig.set_layout_engine("constrained")  # margins in points, whatever height the panel gives
    return list(axes)
