"""One PACS, whichever transport it speaks: DICOMweb when configured (search, series, retrieve, store),
otherwise classic DIMSE (C-ECHO, C-FIND, C-STORE; retrieval needs DICOMweb: C-MOVE/C-GET are not
implemented). The viewer's PACS controller and any other caller use this instead of choosing clients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import MedFusionError
from inference.pacs.common import SeriesSummary, StudySummary
from inference.progress import CancelToken, ProgressCallback, no_progress
from inference.settings import PacsSettings

_DATE = re.compile(r"^\d{8}$")


def parse_date(text: str) -> str:
    """``2022-12-08`` / ``2022.12.08`` / ``20221208`` → ``20221208`` ('' stays ''); anything else is refused."""
    value = text.strip().replace("-", "").replace(".", "").replace("/", "")
    if value and not _DATE.match(value):
        raise MedFusionError(f"'{text.strip()}' is not a date; write it as YYYYMMDD (e.g. 20221208).")
    return value


@dataclass(frozen=True)
class StudyQuery:
    """Search criteria (empty: any). ``patient_name`` accepts ``*`` and ``?`` wildcards."""

    patient_name: str = ""
    patient_id: str = ""
    date_from: str = ""
    date_to: str = ""
    modality: str = ""

    @classmethod
    def from_text(cls, patient_name: str, patient_id: str, date_from: str, date_to: str,
                  modality: str) -> StudyQuery:
        """Criteria as typed by a user (dates validated: a wrong one raises ``MedFusionError``)."""
        return cls(patient_name.strip(), patient_id.strip(), parse_date(date_from), parse_date(date_to),
                   modality)

    def as_kwargs(self) -> dict[str, Any]:
        dates = (self.date_from, self.date_to) if self.date_from or self.date_to else None
        return {"patient_name": self.patient_name, "patient_id": self.patient_id, "date_range": dates,
                "modality": self.modality}


class PacsGateway:
    """The configured PACS (``Settings.pacs``); every call is synchronous and may raise ``PacsError``."""

    def __init__(self, settings: PacsSettings) -> None:
        self.settings = settings

    @property
    def web(self) -> bool:
        return bool(self.settings.dicomweb_url)

    @property
    def configured(self) -> bool:
        return self.web or bool(self.settings.dimse_host)

    @property
    def can_retrieve(self) -> bool:
        return self.web

    def describe(self) -> str:
        """One line naming the server(s), for the dialog header."""
        p = self.settings
        parts = []
        if p.dicomweb_url:
            parts.append(f"DICOMweb: {p.dicomweb_url}" + (f" (user {p.username})" if p.username else ""))
        if p.dimse_host:
            parts.append(f"DICOM: {p.dimse_called_aet}@{p.dimse_host}:{p.dimse_port}")
        return " · ".join(parts) or "No PACS configured — press Settings… to add one."

    def _web(self) -> Any:
        from inference.pacs.dicomweb import DicomWebClient

        return DicomWebClient(self.settings)

    def _dimse(self) -> Any:
        from inference.pacs.dimse import DimseClient

        return DimseClient(self.settings)

    def test_connection(self) -> str:
        """C-ECHO to the DICOM node, or a one-study DICOMweb query; returns the sentence to show."""
        p = self.settings
        if p.dimse_host:
            self._dimse().echo()
            return f"C-ECHO to {p.dimse_called_aet}@{p.dimse_host}:{p.dimse_port} succeeded."
        self._web().search_studies(limit=1)
        return f"The DICOMweb server at {p.dicomweb_url} answered."

    def search(self, query: StudyQuery) -> list[StudySummary]:
        kwargs = query.as_kwargs()
        return self._web().search_studies(**kwargs) if self.web else self._dimse().find_studies(**kwargs)

    def list_series(self, study_uid: str) -> list[SeriesSummary]:
        return self._web().list_series(study_uid)

    def retrieve(self, series: SeriesSummary, dest: Path, *, progress: ProgressCallback = no_progress,
                 cancel: CancelToken | None = None) -> Path:
        return self._web().retrieve_series(series.study_uid, series.series_uid, dest, progress=progress,
                                           cancel=cancel)

    def store(self, files: list[Path], *, cancel: CancelToken | None = None) -> int:
        """STOW-RS (DICOMweb) or C-STORE (DIMSE); returns how many objects the PACS accepted."""
        return self._web().store(files) if self.web else self._dimse().store_files(files, cancel=cancel)
