"""What a measurement reads: the numbers (via :mod:`inference.measure`) and the text shown for them.

One function, :func:`measure`, serves the label in the view, the Measurements panel and the PDF report,
so the three always agree. Units follow the image: lengths in mm, or in pixels when the file has no pixel
spacing (a JPEG/PNG X-ray: ``meta['spacing_known']`` is False); ROI values in HU (CT), SUVbw (PET) or
"intensity" (X-ray, MR); on a PET/CT fusion the ellipse also reads the PET overlay on the same pixels.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from app.model.measurements import Measurement
from inference.io.volume import Volume
from inference.measure import (
    RoiStatistics,
    angle_deg,
    distance_mm,
    ellipse_statistics,
    in_plane_axes,
    pixel_area_mm2,
)


@dataclass(frozen=True)
class MeasuredValue:
    """``summary``: one line (panel, report); ``label``: the text drawn in the view (may be several lines);
    ``numbers``: the raw values (tests, export), e.g. ``length``, ``mean``, ``sd``, ``area``."""

    summary: str
    label: str
    numbers: dict[str, float] = field(default_factory=dict)


def spacing_known(volume: Volume) -> bool:
    return bool(volume.meta.get("spacing_known", True)) if isinstance(volume.meta, dict) else True


def length_unit(volume: Volume) -> str:
    return "mm" if spacing_known(volume) else "px"


def value_unit(volume: Volume) -> str:
    return volume.units or "intensity"


def _number(value: float) -> str:
    """Values as a radiologist reads them: −47 HU, 3.25 SUV, 0.52 (no spurious decimals)."""
    if not np.isfinite(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _area(area: float, calibrated: bool) -> str:
    if calibrated:
        return f"{area / 100:.2f} cm²" if area >= 1000 else f"{area:.1f} mm²"
    return f"{area:.0f} pixels"


def _stats_text(stats: RoiStatistics | None, unit: str) -> tuple[str, str]:
    if stats is None:
        return "no pixels", "no pixels"
    mean, sd = _number(stats.mean), _number(stats.sd)
    line = f"mean {mean} {unit}, SD {sd}, min {_number(stats.minimum)}, max {_number(stats.maximum)}"
    return line, f"mean {mean} ± {sd} {unit}\nmin {_number(stats.minimum)}  max {_number(stats.maximum)}"


def _ellipse(m: Measurement, volume: Volume, overlay: Volume | None) -> MeasuredValue:
    a, b = m.points
    calibrated = spacing_known(volume)
    h, v = in_plane_axes(m.normal_axis)
    radius_h, radius_v = abs(b[h] - a[h]) / 2.0, abs(b[v] - a[v]) / 2.0  # index units
    # area of the drawn ellipse: π·r₁·r₂ in index units times the physical area of one pixel
    area = float(np.pi * radius_h * radius_v) * (pixel_area_mm2(volume, m.normal_axis) if calibrated else 1.0)
    stats = ellipse_statistics(volume.array, m.normal_axis, m.slice_index, a, b)
    unit = value_unit(volume)
    summary, label = _stats_text(stats, unit)
    area_text = _area(area, calibrated)
    numbers: dict[str, float] = {"area": area}
    if stats is not None:
        numbers.update(count=stats.count, mean=stats.mean, sd=stats.sd, min=stats.minimum, max=stats.maximum)
    summary, label = f"{summary}; area {area_text}", f"{label}\narea {area_text}"
    if overlay is not None and overlay.shape == volume.shape:
        pet = ellipse_statistics(overlay.array, m.normal_axis, m.slice_index, a, b)
        if pet is not None:
            unit_pet = overlay.units or "overlay"
            numbers.update(overlay_mean=pet.mean, overlay_max=pet.maximum)
            summary += f"; overlay max {_number(pet.maximum)} {unit_pet}, mean {_number(pet.mean)}"
            label += f"\n{unit_pet} max {_number(pet.maximum)}  mean {_number(pet.mean)}"
    return MeasuredValue(summary, label, numbers)


def measure(m: Measurement, volume: Volume, overlay: Volume | None = None) -> MeasuredValue:
    """The value of ``m`` on ``volume`` (and the PET ``overlay`` on its grid, for ROIs)."""
    unit = length_unit(volume)
    if m.kind == "ruler":
        length = distance_mm(volume, m.points[0], m.points[1])
        text = f"{length:.1f} {unit}"
        return MeasuredValue(text, text, {"length": length})
    if m.kind == "angle":
        angle = angle_deg(volume, *m.points)
        text = f"{angle:.1f}°"
        return MeasuredValue(text, text, {"angle": angle})
    if m.kind == "bidimensional":
        long_axis = distance_mm(volume, m.points[0], m.points[1])
        short_axis = distance_mm(volume, m.points[2], m.points[3])
        text = f"{long_axis:.1f} × {short_axis:.1f} {unit}"
        return MeasuredValue(f"long {long_axis:.1f} {unit}, short {short_axis:.1f} {unit}",
                             f"L {long_axis:.1f} {unit}\nS {short_axis:.1f} {unit}",
                             {"long": long_axis, "short": short_axis})
    if m.kind == "ellipse":
        return _ellipse(m, volume, overlay)
    return MeasuredValue(m.text or "(arrow)", m.text, {})


class ValueCache:
    """Recently computed values, keyed by the (immutable) measurement and the images' identities.

    Views redraw labels on every zoom, pan and slice change; an ellipse's statistics need not be
    recomputed each time.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._values: OrderedDict[tuple, MeasuredValue] = OrderedDict()

    def get(self, m: Measurement, volume: Volume, overlay: Volume | None = None) -> MeasuredValue:
        key = (m, id(volume), id(overlay))
        value = self._values.get(key)
        if value is None:
            value = measure(m, volume, overlay)
            self._values[key] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        else:
            self._values.move_to_end(key)
        return value

    def clear(self) -> None:
        """Forget everything (a new image or overlay: the ids of freed images may be reused)."""
        self._values.clear()
