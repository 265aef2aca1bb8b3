"""PET body-weight SUV from DICOM tags.

SUVbw = activity concentration (Bq/ml, after rescale) x body weight (g) / injected dose (Bq)
decayed to the time the image is corrected to. ``DecayCorrection``:

- ``START``: images are decay-corrected to the series start -> dose decayed from
  RadiopharmaceuticalStartTime to SeriesTime (AcquisitionTime if SeriesTime is missing);
- ``ADMIN``: images are corrected to the administration time -> no further decay;
- ``NONE``: not corrected -> dose decayed to this slice's AcquisitionTime.

Policy when tags are missing (documented in docs/dev/io.md): the loader keeps the image in its
stored units (Bq/ml) with a warning naming the tag; :func:`suv_bw_factor` itself raises
:class:`SUVUnavailable` so callers that need SUV can insist on it.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from pydicom.dataset import Dataset

from inference.errors import ImageReadError


class SUVUnavailable(ImageReadError):
    """A PET header lacks what SUVbw needs (the message names the tag)."""


def parse_tm(value: str) -> timedelta:
    """DICOM TM ('HHMMSS.ffffff', 'HHMM', 'HH', or legacy 'HH:MM:SS') -> time since midnight."""
    text = str(value).strip().replace(":", "")
    if not text or not text[:2].isdigit():
        raise ValueError(f"bad time {value!r}")
    hours = int(text[0:2])
    minutes = int(text[2:4]) if len(text) >= 4 else 0
    seconds = float(text[4:]) if len(text) > 4 else 0.0
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def parse_da(value: str) -> date:
    text = str(value).strip()
    return date(int(text[0:4]), int(text[4:6]), int(text[6:8]))


def parse_dt(value: str) -> datetime:
    """DICOM DT ('YYYYMMDDHHMMSS.ffffff', time zone suffix ignored)."""
    text = str(value).strip().split("+")[0].split("-")[0]
    day = parse_da(text[:8])
    return datetime.combine(day, datetime.min.time()) + (parse_tm(text[8:]) if len(text) > 8 else timedelta())


def _positive(ds: Dataset, keyword: str, where: str) -> float:
    value = ds.get(keyword)
    try:
        number = float(value) if value not in (None, "") else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not number > 0:
        raise SUVUnavailable(f"SUV cannot be computed because {where}{keyword} is missing or not positive.")
    return number


def _moment(ds: Dataset, date_kw: str, time_kw: str, fallback_date: str) -> tuple[datetime | None, timedelta | None]:
    """(full datetime if a date is known, time of day) for a DA/TM pair."""
    tm = ds.get(time_kw)
    if not tm:
        return None, None
    tod = parse_tm(str(tm))
    day = str(ds.get(date_kw, "") or fallback_date or "")
    return (datetime.combine(parse_da(day), datetime.min.time()) + tod if day else None), tod


def _elapsed(start_dt: datetime | None, start_tod: timedelta, ref_dt: datetime | None, ref_tod: timedelta) -> float:
    """Seconds from injection to the reference time; same-day times wrap over midnight."""
    if start_dt is not None and ref_dt is not None:
        return (ref_dt - start_dt).total_seconds()
    seconds = (ref_tod - start_tod).total_seconds()
    return seconds + 86400.0 if seconds < 0 else seconds


def suv_parameters(ds: Dataset) -> dict:
    """Weight, dose, half-life and decay time used for SUVbw; raises :class:`SUVUnavailable`."""
    units = str(ds.get("Units", "") or "").upper()
    if units == "GML":
        return {"units": units, "factor": 1.0}
    if units != "BQML":
        raise SUVUnavailable(
            f"SUV cannot be computed because Units is '{units or 'missing'}' (only BQML activity images convert)."
        )
    weight_kg = _positive(ds, "PatientWeight", "")
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        raise SUVUnavailable("SUV cannot be computed because RadiopharmaceuticalInformationSequence is missing.")
    radio = seq[0]
    where = "RadiopharmaceuticalInformationSequence."
    dose = _positive(radio, "RadionuclideTotalDose", where)
    half_life = _positive(radio, "RadionuclideHalfLife", where)
    correction = str(ds.get("DecayCorrection", "") or "").upper()
    if correction not in ("START", "ADMIN", "NONE"):
        raise SUVUnavailable(f"SUV cannot be computed because DecayCorrection is '{correction or 'missing'}'.")
    decay_s = 0.0
    if correction != "ADMIN":
        series_date = str(ds.get("SeriesDate", "") or ds.get("AcquisitionDate", "") or ds.get("StudyDate", "") or "")
        start_dt_text = radio.get("RadiopharmaceuticalStartDateTime")
        if start_dt_text:
            full = parse_dt(str(start_dt_text))
            start_dt: datetime | None = full
            start_tod = full - datetime.combine(full.date(), datetime.min.time())
        elif radio.get("RadiopharmaceuticalStartTime"):
            start_dt = None  # a start time without its own date is compared time-of-day only
            start_tod = parse_tm(str(radio.get("RadiopharmaceuticalStartTime")))
        else:
            raise SUVUnavailable(f"SUV cannot be computed because {where}RadiopharmaceuticalStartTime is missing.")
        pairs = [("SeriesDate", "SeriesTime"), ("AcquisitionDate", "AcquisitionTime")]
        if correction == "NONE":
            pairs.reverse()
        ref_dt = ref_tod = None
        for date_kw, time_kw in pairs:
            ref_dt, ref_tod = _moment(ds, date_kw, time_kw, series_date)
            if ref_tod is not None:
                break
        if ref_tod is None:
            raise SUVUnavailable("SUV cannot be computed because SeriesTime and AcquisitionTime are missing.")
        decay_s = _elapsed(start_dt, start_tod, ref_dt, ref_tod)
        if decay_s < 0:
            raise SUVUnavailable("SUV cannot be computed because the injection time is after the scan time.")
    decayed_dose = dose * 2.0 ** (-decay_s / half_life)
    return {
        "units": units, "weight_kg": weight_kg, "injected_dose_bq": dose, "half_life_s": half_life,
        "decay_correction": correction, "decay_time_s": decay_s, "decayed_dose_bq": decayed_dose,
        "factor": weight_kg * 1000.0 / decayed_dose,
    }


def suv_bw_factor(ds: Dataset) -> float:
    """Multiply Bq/ml values by this to get SUVbw (g/ml)."""
    return float(suv_parameters(ds)["factor"])


def suv_details(ds: Dataset) -> dict:
    """The parameters behind the factor (for the info panel); empty if unavailable."""
    try:
        return suv_parameters(ds)
    except SUVUnavailable:
        return {}
