"""DICOMweb (QIDO-RS / WADO-RS / STOW-RS) client for searching, retrieving and storing series.

Why a wrapper around ``dicomweb-client``: the UI needs plain result rows, progress + cancel while a
series downloads, files on disk that :func:`inference.io.loader.open_image` can read, and one clear
sentence instead of a ``requests`` traceback when the server is down, refuses the credentials or is
slow. Address and credentials come from :class:`inference.settings.PacsSettings`. TLS is verified
(system store or the configured CA bundle, ``inference.pacs.transport``); a password is not sent over
plain http:// to another machine unless the user agreed; retrieved series land in owner-only folders
whose names the server cannot steer, expired by ``retrieve_keep_hours`` (``inference.pacs.retrieved``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from inference.errors import Cancelled
from inference.pacs.common import (
    PacsError,
    SeriesSummary,
    StudySummary,
    date_range_value,
    series_from_dataset,
    study_from_dataset,
)
from inference.pacs.retrieved import expire_retrieved, safe_name, series_folder, write_private
from inference.pacs.transport import check_password_transport, client_cert, requests_verify, tls_failure
from inference.progress import CancelToken, ProgressCallback, no_progress
from inference.settings import PacsSettings

__all__ = ["DicomWebClient"]

T = TypeVar("T")
_STUDY_FIELDS = ("StudyInstanceUID", "PatientName", "PatientID", "StudyDate", "StudyDescription",
                 "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedSeries")
_SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesDescription", "SeriesNumber",
                  "NumberOfSeriesRelatedInstances")


class _QidoSession(requests.Session):
    """Sends QIDO wildcards (``*``, ``?``) unescaped in the query string.

    dicomweb-client percent-encodes them, and Orthanc 1.10 with DICOMweb plugin 1.7 (Debian 12)
    does not decode query values: ``DOE%2A`` matches nothing. Raw ``*``/``?`` are valid in a URL
    query. ``^`` (person-name component separator) cannot be sent raw (urllib3 re-encodes it), so
    it becomes the single-character wildcard ``?``: ``DOE^J*`` → ``DOE?J*``, the same matches in
    practice.
    """

    pinned_verify: bool | str = True

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def,override]
        """A configured CA bundle wins over ``REQUESTS_CA_BUNDLE`` (requests lets the environment win)."""
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.pinned_verify, str):
            settings["verify"] = self.pinned_verify
        return settings

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if request.url and "?" in request.url:
            base, _, query = request.url.partition("?")
            for escaped, raw in (("%2A", "*"), ("%3F", "?"), ("%5E", "?")):
                query = query.replace(escaped, raw).replace(escaped.lower(), raw)
            request.url = f"{base}?{query}"
        return super().send(request, **kwargs)


class DicomWebClient:
    """Thin, error-translating client; one instance per configured server."""

    def __init__(self, settings: PacsSettings, *, timeout: float = 30.0) -> None:
        if not settings.dicomweb_url:
            raise PacsError("No DICOMweb server is configured; set its address in Settings > PACS.")
        self.url = settings.dicomweb_url.rstrip("/")
        if settings.username:
            check_password_transport(settings)
        session = _QidoSession()
        session.verify = session.pinned_verify = requests_verify(settings)
        session.cert = client_cert(settings)
        if settings.username:
            session.auth = (settings.username, settings.password)
        self._client = DICOMwebClient(self.url, session=session, timeout=timeout)
        # Its default retries every failure 5 times with 2-16 s back-off (30 s before a refused
        # connection is reported); the user can press retry instead.
        self._client.set_http_retry_params(retry=False)
        self.timeout = timeout
        self.keep_hours = settings.retrieve_keep_hours

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except requests.exceptions.SSLError as exc:  # before ConnectionError, its base class
            raise tls_failure(exc, self.url) from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise PacsError(f"The PACS at {self.url} did not answer within {self.timeout:g} s.") from exc
        except requests.exceptions.ConnectionError as exc:
            raise PacsError(f"Cannot connect to the PACS at {self.url}; check the address and that it is running.") from exc
        except requests.exceptions.Timeout as exc:
            raise PacsError(f"The PACS at {self.url} did not answer within {self.timeout:g} s.") from exc
        except requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status in (401, 403):
                raise PacsError("The PACS rejected the user name or password (check Settings > PACS).") from exc
            if status == 404:
                raise PacsError(f"The PACS found nothing for this {what} (HTTP 404).") from exc
            raise PacsError(f"The PACS answered with an error while trying to {what} (HTTP {status}).") from exc
        except requests.exceptions.RequestException as exc:
            raise PacsError(f"The request to {what} on the PACS failed ({type(exc).__name__}).") from exc

    def search_studies(self, *, patient_name: str = "", patient_id: str = "",
                       date_range: tuple[str, str] | str | None = None, modality: str = "",
                       limit: int = 200) -> list[StudySummary]:
        """Studies matching all given criteria (patient name accepts ``*`` wildcards)."""
        filters: dict[str, Any] = {}
        if patient_name:
            filters["PatientName"] = patient_name
        if patient_id:
            filters["PatientID"] = patient_id
        if date_range:
            filters["StudyDate"] = date_range_value(date_range)
        if modality:
            filters["ModalitiesInStudy"] = modality
        rows = self._call("search studies", lambda: self._client.search_for_studies(
            search_filters=filters, fields=list(_STUDY_FIELDS), limit=limit))
        return [study_from_dataset(Dataset.from_json(row)) for row in rows]

    def list_series(self, study_uid: str) -> list[SeriesSummary]:
        rows = self._call("list series", lambda: self._client.search_for_series(
            study_instance_uid=study_uid, fields=list(_SERIES_FIELDS)))
        return sorted((series_from_dataset(Dataset.from_json(r), study_uid) for r in rows),
                      key=lambda s: (s.number is None, s.number or 0, s.series_uid))

    def _instance_uids(self, study_uid: str, series_uid: str) -> list[str]:
        rows = self._call("list instances", lambda: self._client.search_for_instances(
            study_instance_uid=study_uid, series_instance_uid=series_uid, fields=["SOPInstanceUID"]))
        return [str(Dataset.from_json(r).SOPInstanceUID) for r in rows]

    def retrieve_series(self, study_uid: str, series_uid: str, dest_dir: Path, *,
                        progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> Path:
        """Download a series as it is stored (no transcoding) into ``dest_dir/<series uid>/``.

        Instances are fetched one by one so progress is exact and cancel takes effect between files;
        a cancelled download removes its partial files. Returns the folder to pass to ``open_image``.
        Folders and files are owner-only; series downloaded more than ``retrieve_keep_hours`` ago
        are deleted first; UIDs that are not valid DICOM UIDs never become paths (hashed instead).
        """
        uids = self._instance_uids(study_uid, series_uid)
        if not uids:
            raise PacsError("The PACS holds no images for this series.")
        expire_retrieved(Path(dest_dir), self.keep_hours)
        folder = series_folder(Path(dest_dir), series_uid)
        written: list[Path] = []
        try:
            for i, sop_uid in enumerate(uids):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                ds = self._call("retrieve an image", partial(
                    self._client.retrieve_instance, study_uid, series_uid, sop_uid,
                    media_types=(("application/dicom", "*"),)))
                path = folder / f"{safe_name(sop_uid)}.dcm"
                write_private(path, lambda fh, ds=ds: ds.save_as(fh, enforce_file_format=True))
                written.append(path)
                progress((i + 1) / len(uids), f"Retrieved {i + 1} of {len(uids)} images")
        except Cancelled:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return folder

    def store(self, datasets: Iterable[Dataset | Path]) -> int:
        """STOW-RS the datasets (or DICOM files); returns how many the server accepted."""
        items: Sequence[Dataset] = [pydicom.dcmread(d) if isinstance(d, Path | str) else d for d in datasets]
        if not items:
            return 0
        response = self._call("store", lambda: self._client.store_instances(list(items)))
        failed = response.get("FailedSOPSequence", []) if response is not None else []
        if failed:
            raise PacsError(f"The PACS refused {len(failed)} of {len(items)} objects.")
        return len(items)
