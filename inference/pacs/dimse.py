"""Classic DIMSE networking (pynetdicom) for PACS that speak no DICOMweb: C-ECHO, C-FIND, C-STORE.

Each call opens its own association (PACS often drop idle ones) with timeouts, and turns
rejection/abort/failure statuses into one :class:`PacsError` sentence. Host, port and AE titles
come from :class:`inference.settings.PacsSettings`; with ``dimse_tls`` the association runs over
verified DICOM TLS (``inference.pacs.transport``), and a failed handshake is explained (certificate
not trusted, or no TLS on that port) instead of "cannot connect".
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, Association
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification  # type: ignore[attr-defined]

from inference.pacs.common import PacsError, StudySummary, date_range_value, study_from_dataset
from inference.pacs.transport import probe_tls, ssl_context
from inference.progress import CancelToken, ProgressCallback, no_progress
from inference.settings import PacsSettings

__all__ = ["DimseClient"]


class DimseClient:
    """C-ECHO / C-FIND (study root) / C-STORE SCU."""

    def __init__(self, settings: PacsSettings, *, timeout: float = 15.0) -> None:
        if not settings.dimse_host:
            raise PacsError("No DICOM (DIMSE) node is configured; set host and port in Settings > PACS.")
        self.settings = settings
        self.timeout = timeout

    def _ae(self) -> AE:
        ae = AE(ae_title=self.settings.dimse_calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.connection_timeout = self.timeout
        return ae

    def _associate(self, ae: AE) -> Association:
        s = self.settings
        tls_args = (ssl_context(s), s.dimse_host) if s.dimse_tls else None
        assoc = ae.associate(s.dimse_host, int(s.dimse_port), ae_title=s.dimse_called_aet, tls_args=tls_args)
        if assoc.is_established:
            return assoc
        where = f"{s.dimse_host}:{s.dimse_port} (AE {s.dimse_called_aet})"
        if assoc.is_rejected:
            raise PacsError(f"The DICOM node at {where} rejected the connection; check the AE titles.")
        if s.dimse_tls:
            reason = probe_tls(s.dimse_host, int(s.dimse_port), s, self.timeout)
            if reason is not None:
                raise reason
        raise PacsError(f"Cannot connect to the DICOM node at {where}; check the address and that it is running.")

    def echo(self) -> None:
        """C-ECHO; returns quietly when the node answers, raises :class:`PacsError` otherwise."""
        ae = self._ae()
        ae.add_requested_context(Verification)
        assoc = self._associate(ae)
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if not status or int(status.Status) != 0:
            raise PacsError("The DICOM node did not confirm the echo request.")

    def find_studies(self, *, patient_name: str = "", patient_id: str = "",
                     date_range: tuple[str, str] | str | None = None, modality: str = "") -> list[StudySummary]:
        """Study-root C-FIND with the given criteria (empty: any)."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        query.PatientName = patient_name
        query.PatientID = patient_id
        query.StudyDate = date_range_value(date_range) or ""
        query.StudyDescription = ""
        query.AccessionNumber = ""
        query.ModalitiesInStudy = modality
        query.NumberOfStudyRelatedSeries = ""
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = self._associate(ae)
        results: list[StudySummary] = []
        try:
            for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                if not status:
                    raise PacsError("The DICOM node stopped answering the search.")
                code = int(status.Status)
                if code in (0xFF00, 0xFF01) and identifier is not None:
                    results.append(study_from_dataset(identifier))
                elif code != 0:
                    raise PacsError(f"The DICOM node refused the search (status 0x{code:04X}).")
        finally:
            assoc.release()
        return results

    def store_files(self, files: Iterable[Path | Dataset], *, progress: ProgressCallback = no_progress,
                    cancel: CancelToken | None = None) -> int:
        """C-STORE the files/datasets (in their own transfer syntaxes); returns the number stored."""
        datasets = [pydicom.dcmread(f) if isinstance(f, Path | str) else f for f in files]
        if not datasets:
            return 0
        ae = self._ae()
        contexts: set[tuple[str, str]] = set()
        for ds in datasets:
            meta = getattr(ds, "file_meta", None)
            syntax = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else str(
                ExplicitVRLittleEndian)
            contexts.add((str(ds.SOPClassUID), syntax))
        sop_classes = sorted({sop for sop, _ in contexts})
        compressed = sorted((sop, ts) for sop, ts in contexts if ts not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian))
        if len(sop_classes) + len(compressed) > 120:
            raise PacsError("Too many kinds of objects for one DICOM association; store them in smaller groups.")
        # One context per compressed syntax (so the SCP must say yes or no to exactly that syntax), and
        # an uncompressed context per SOP class as the fallback for decompressed objects.
        for sop_class, syntax in compressed:
            ae.add_requested_context(sop_class, [syntax])
        for sop_class in sop_classes:
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        assoc = self._associate(ae)
        stored = 0
        try:
            for i, ds in enumerate(datasets):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                try:
                    status: Any = assoc.send_c_store(ds)
                except ValueError:  # compressed syntax refused: send it decompressed
                    try:
                        ds.decompress()
                        status = assoc.send_c_store(ds)
                    except (ValueError, RuntimeError, NotImplementedError) as exc:
                        raise PacsError(f"The DICOM node does not accept this kind of object ({exc}).") from exc
                if not status:
                    raise PacsError("The DICOM node stopped answering while storing.")
                code = int(status.Status)
                if code not in (0x0000, 0xB000, 0xB006, 0xB007):
                    raise PacsError(f"The DICOM node refused to store an object (status 0x{code:04X}).")
                stored += 1
                progress((i + 1) / len(datasets), f"Stored {i + 1} of {len(datasets)}")
        finally:
            assoc.release()
        return stored
