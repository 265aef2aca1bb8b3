"""What the PACS clients return (the same for DICOMweb and DIMSE) and shared query helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from inference.errors import MedFusionError

if TYPE_CHECKING:  # only annotations: pydicom loads when a query runs, not with the viewer
    from pydicom.dataset import Dataset

__all__ = ["PacsError", "SeriesSummary", "StudySummary", "date_range_value", "series_from_dataset",
           "study_from_dataset"]


class PacsError(MedFusionError):
    """The PACS could not be reached, refused us, or answered with an error."""


@dataclass
class StudySummary:
    study_uid: str
    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    description: str = ""
    accession_number: str = ""
    modalities: list[str] = field(default_factory=list)
    n_series: int | None = None


@dataclass
class SeriesSummary:
    series_uid: str
    study_uid: str = ""
    modality: str = ""
    description: str = ""
    number: int | None = None
    n_instances: int | None = None


def date_range_value(date_range: tuple[str, str] | str | None) -> str | None:
    """``("20220101", "20221231")`` → ``"20220101-20221231"`` (DICOM range matching; either end may be '')."""
    if date_range is None:
        return None
    if isinstance(date_range, str):
        return date_range
    start, stop = date_range
    return f"{start.replace('-', '')}-{stop.replace('-', '')}"


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def study_from_dataset(ds: Dataset) -> StudySummary:
    modalities = ds.get("ModalitiesInStudy", [])
    if isinstance(modalities, str):
        modalities = [modalities]
    return StudySummary(
        study_uid=str(ds.get("StudyInstanceUID", "")), patient_name=str(ds.get("PatientName", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""), study_date=str(ds.get("StudyDate", "") or ""),
        description=str(ds.get("StudyDescription", "") or ""),
        accession_number=str(ds.get("AccessionNumber", "") or ""),
        modalities=[str(m) for m in modalities if m], n_series=_int(ds.get("NumberOfStudyRelatedSeries")))


def series_from_dataset(ds: Dataset, study_uid: str = "") -> SeriesSummary:
    return SeriesSummary(
        series_uid=str(ds.get("SeriesInstanceUID", "")), study_uid=str(ds.get("StudyInstanceUID", study_uid)),
        modality=str(ds.get("Modality", "") or ""), description=str(ds.get("SeriesDescription", "") or ""),
        number=_int(ds.get("SeriesNumber")), n_instances=_int(ds.get("NumberOfSeriesRelatedInstances")))
