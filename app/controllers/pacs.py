"""The PACS dialog's controller: every network call on ``context.runner``, never on the UI thread.

Why: a slow or unreachable PACS must never freeze the viewer. Search, series listing, retrieval (with
progress + cancel), test connection and store each run on their own channel; a failure reaches the
caller's ``on_error`` as one sentence (``PacsError``). Which transport is used is
:class:`~inference.pacs.gateway.PacsGateway`'s business; the dialog only shows results.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from app.context import AppContext
from app.controllers.export import ExportController
from inference.errors import MedFusionError
from inference.pacs.common import PacsError, SeriesSummary, StudySummary
from inference.pacs.gateway import PacsGateway, StudyQuery
from inference.progress import CancelToken, ProgressCallback, scaled
from inference.settings import PacsSettings

CHANNELS = ("pacs_retrieve", "pacs_search", "pacs_series", "pacs_store", "pacs_echo")
OnError = Callable[[BaseException], None]


class PacsController:
    """Search / retrieve / store against ``Settings.pacs`` (results and errors through callbacks)."""

    def __init__(self, context: AppContext, export: ExportController) -> None:
        self.context = context
        self.export = export

    @property
    def settings(self) -> PacsSettings:
        return self.context.settings.pacs

    @property
    def gateway(self) -> PacsGateway:
        return PacsGateway(self.settings)  # always the current settings

    def apply_settings(self, pacs: PacsSettings) -> str:
        """Use and remember new PACS settings; returns a sentence when the settings file could not be written."""
        self.context.settings.pacs = pacs
        try:
            self.context.save_settings()
        except OSError as exc:
            return f"The settings could not be saved ({exc.strerror or exc})."
        return ""

    def _submit(self, channel: str, fn: Callable[[ProgressCallback, CancelToken], object],
                on_done: Callable, on_error: OnError, description: str) -> None:
        self.context.runner.submit(channel, fn, on_done, on_error, description)

    def test_connection(self, on_done: Callable[[str], None], on_error: OnError) -> None:
        gateway = self.gateway
        self._submit("pacs_echo", lambda _p, _c: gateway.test_connection(), on_done, on_error,
                     "PACS: test connection")

    def search(self, query: StudyQuery, on_done: Callable[[list[StudySummary]], None], on_error: OnError) -> None:
        gateway = self.gateway
        self._submit("pacs_search", lambda _p, _c: gateway.search(query), on_done, on_error, "PACS: search")

    def list_series(self, study: StudySummary, on_done: Callable[[list[SeriesSummary]], None],
                    on_error: OnError) -> None:
        gateway = self.gateway
        self._submit("pacs_series", lambda _p, _c: gateway.list_series(study.study_uid), on_done, on_error,
                     "PACS: list series")

    def retrieve(self, series: SeriesSummary, on_done: Callable[[Path], None], on_error: OnError) -> None:
        """Download ``series`` into the cache folder (progress + cancel), call ``on_done``, then open it."""
        if series.modality == "SEG":
            raise MedFusionError("Open the image series first, then File > Open segmentation for a SEG.")
        gateway, dest = self.gateway, self.context.settings.resolved_cache_dir() / "pacs"

        def work(progress: ProgressCallback, cancel: CancelToken) -> Path:
            return gateway.retrieve(series, dest, progress=progress, cancel=cancel)

        def done(folder: Path) -> None:
            on_done(Path(folder))
            self.context.open_path(Path(folder))

        self._submit("pacs_retrieve", work, done, on_error, "PACS: retrieve series")

    def store_segmentation(self, on_done: Callable[[int], None], on_error: OnError) -> None:
        """Encode the current masks as DICOM SEG (referencing the open series) and send it to the PACS.

        Raises ``MedFusionError`` at once when there is nothing to store (no masks, not a DICOM image).
        """
        snap = self.export.snapshot()
        volume = self.export.volume
        if volume is None or not volume.source_files:
            raise MedFusionError("Only segmentations of images opened from DICOM can be stored to a PACS.")
        gateway, user = self.gateway, self.context.settings.user_name

        def work(progress: ProgressCallback, cancel: CancelToken) -> int:
            from inference.export.seg import write_seg

            with tempfile.TemporaryDirectory(prefix="medfusion-seg-") as tmp:
                path = write_seg(snap.labelmap, snap.labels, volume, Path(tmp) / "seg.dcm", creator=user,
                                 progress=scaled(progress, 0.0, 0.6), cancel=cancel)
                progress(0.7, "Sending to the PACS")
                n = gateway.store([path], cancel=cancel)
            if n < 1:
                raise PacsError("The PACS did not accept the segmentation.")
            progress(1.0, "Stored")
            return n

        self._submit("pacs_store", work, on_done, on_error, "PACS: store segmentation")

    def cancel(self) -> None:
        for channel in CHANNELS:
            self.context.runner.cancel(channel)
