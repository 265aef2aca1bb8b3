"""Display formats a clinician expects: ISO dates, integer HU with a real minus sign, areas in the
unit the image can support (mm² only when the pixel spacing is known).

Why here: the status bar, the info panel, the EHR panel and the PDF report each printed numbers their
own way ("20221208", "-47.00 HU", "5592 mm²" for a JPEG without spacing).
"""

from __future__ import annotations

import re

from inference.clinical.terms import field_unit

MINUS = "\u2212"
_DA = re.compile(r"^\s*(\d{4})[.\-/]?(\d{2})[.\-/]?(\d{2})\s*$")


def iso_date(text: str | None) -> str:
    """DICOM DA 'YYYYMMDD' (also 'YYYY.MM.DD', 'YYYY-MM-DD') → 'YYYY-MM-DD'; anything else unchanged."""
    if not text:
        return ""
    match = _DA.match(str(text))
    if not match:
        return str(text)
    year, month, day = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return str(text)
    return f"{year}-{month}-{day}"


def signed(text: str) -> str:
    """Replace a leading hyphen-minus by the typographic minus (−47, not -47)."""
    return MINUS + text[1:] if text.startswith("-") else text


def format_number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if float(text) == 0.0:  # no "−0"
        text = text.lstrip("-")
    return signed(text)


def is_hu(units: str, modality: str = "") -> bool:
    return units.upper() == "HU" or (not units and modality.upper() == "CT")


def format_pixel_value(value: float, units: str = "", modality: str = "") -> str:
    """'−47 HU' (CT: integers), '3.2 SUVbw' (PET: one decimal), else a short number (+ units)."""
    value = float(value)
    if value != value:
        return "no value"
    if is_hu(units, modality):
        return f"{format_number(round(value), 0)} HU"
    if units.upper().startswith("SUV"):
        return f"{format_number(value, 1)} {units}"
    magnitude = abs(value)
    decimals = 0 if magnitude >= 100 or float(value).is_integer() else 1 if magnitude >= 10 else 2
    text = format_number(value, decimals)
    return f"{text} {units}" if units else text


def format_area(n_pixels: int, spacing_xy: tuple[float, float] | None) -> str:
    """'812.5 mm²' when the pixel spacing is known, else '5,592 pixels' (a JPEG/PNG has no spacing)."""
    if spacing_xy is None:
        return f"{int(n_pixels):,} pixels"
    return f"{n_pixels * float(spacing_xy[0]) * float(spacing_xy[1]):,.1f} mm\u00b2"


def format_percent(probability: float) -> str:
    """0.812 → '81 %' (below 1 %: '<1 %', above 99 %: '>99 %', never a false 0 or 100)."""
    pct = 100.0 * float(probability)
    if 0.0 < pct < 1.0:
        return "<1 %"
    if 99.0 < pct < 100.0:
        return ">99 %"
    return f"{pct:.0f} %"


def field_value(name: str, value: float | str | None, with_unit: bool = True) -> str:
    """An EHR value as read: '99 %', '36.8 °C', '0.6 ×10⁹/L', 'missing'."""
    if value is None or (isinstance(value, float) and value != value):
        return "missing"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    text = signed(f"{float(value):g}")
    unit = field_unit(name) if with_unit else ""
    if not unit:
        return text
    return f"{text} {unit}"


def recorded_text(name: str, original: float | str | None) -> str:
    """What the record says under a what-if value: 'recorded 85 %' or 'not recorded'."""
    return "not recorded" if original is None else f"recorded {field_value(name, original)}"
