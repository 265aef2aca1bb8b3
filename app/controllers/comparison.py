"""Side-by-side comparison: open a prior study next to the current one (view only) and caption both sides.

The prior is read on the task runner ("prior" channel, behind the same memory guard as the main image;
a folder with several series asks the host which one) into :attr:`ComparisonModel.prior`, a document no
other feature listens to: segmentation, labels, the clinical case and the session stay bound to the
current study. "Compare with prior" picks the most recent earlier series of the same patient from the
series browser (same modality first); a series dropped on the prior side is opened as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app.model.comparison import ComparisonModel, SideInfo
from app.model.series_browser import BrowserEntry
from inference.clinical.formatting import iso_date
from inference.errors import SeriesSelectionRequired
from inference.io.memory_budget import MemoryBudgetExceeded, guarded_open
from inference.io.volume import Volume
from inference.progress import CancelToken

if TYPE_CHECKING:
    from app.context import AppContext


def _ordinal(date: str) -> float | None:
    try:
        return float(dt.date.fromisoformat(iso_date(date)).toordinal())
    except ValueError:
        return None


class ComparisonController:
    """Starts/stops the comparison, opens priors, keeps the captions in step with what is shown."""

    def __init__(self, context: AppContext, model: ComparisonModel) -> None:
        self.context, self.model = context, model
        context.document.volume_changed.connect(lambda _v: self._on_current())
        context.document.deidentify_changed.connect(lambda _on: self._refresh_captions())

    # ---- start / stop ------------------------------------------------------------------------
    def start(self, auto_prior: bool = True) -> None:
        """Show the comparison; with ``auto_prior`` and no prior open yet, open the most recent earlier series."""
        if self.context.document.volume is None:
            self.context.show_status("Open a study first, then compare it with a prior.")
            return
        self._on_current()
        self.model.set_active(True)
        if auto_prior and self.model.prior.volume is None:
            self.open_auto_prior()

    def stop(self) -> None:
        self.model.set_active(False)

    def toggle(self) -> None:
        self.stop() if self.model.active else self.start()

    # ---- priors ------------------------------------------------------------------------------
    def find_prior(self) -> BrowserEntry | None:
        browser = self.context.browser
        if browser is None:
            return None
        current = browser.model.entry_for_volume(self.context.document.volume)
        return browser.model.prior_for(current) if current is not None else None

    def open_auto_prior(self) -> bool:
        entry = self.find_prior()
        if entry is None:
            self.context.show_status("No earlier series of this patient in the series browser: drag a series "
                                     "onto the prior side, or right-click it > Compare as prior.")
            return False
        self.open_prior_entry(entry)
        return True

    def open_prior_entry(self, entry: BrowserEntry) -> int:
        return self.open_prior(entry.path, entry.series_uid, entry)

    def open_prior(self, path: Path, series_uid: str | None = None, entry: BrowserEntry | None = None,
                   downsample: int | None = None) -> int:
        """Read ``path`` (``series_uid``) as the prior on the worker; returns the request id."""
        path = Path(path)
        budget = self.context.settings.memory_budget_mb

        def work(progress: Callable[[float, str], None], cancel: CancelToken) -> Volume:
            from inference.io.loader import open_image  # the readers load on the worker, not at start

            if budget <= 0:
                return open_image(path, series_uid=series_uid, progress=progress, cancel=cancel)
            return guarded_open(path, budget, series_uid=series_uid, downsample=downsample, progress=progress,
                                cancel=cancel)

        return self.context.runner.submit(
            "prior", work, lambda volume: self._loaded(volume, entry),
            lambda err: self._failed(path, err, entry), f"Opening prior {path.name}")

    def _failed(self, path: Path, error: BaseException, entry: BrowserEntry | None) -> None:
        if isinstance(error, SeriesSelectionRequired):
            choice = self.context.host.choose_series(error.series, path)
            if choice is not None:
                self.open_prior(path, choice[0], entry)
            return
        if isinstance(error, MemoryBudgetExceeded) and error.check.factor is not None:
            factor = self.context.host.choose_downsample(error.check, path)
            if factor is not None:
                self.open_prior(path, None if entry is None else entry.series_uid, entry, factor)
            return
        self.context.show_error(error)

    def _loaded(self, volume: Volume, entry: BrowserEntry | None) -> None:
        browser = self.context.browser
        if entry is None and browser is not None:
            entry = browser.model.entry_for_volume(volume)
        self.model.set_prior(volume, self.describe(volume, entry, "prior"))
        if browser is not None:
            browser.model.mark(prior=entry.key if entry is not None else None)
        if self.model.patients_differ:
            self.context.show_status("Careful: the prior belongs to a different patient ID than the current study.")
        else:
            self.context.show_status(f"Prior: {self.model.prior_info.when_text if self.model.prior_info else ''} "
                                     "(view only: labels stay on the current study).")

    def clear_prior(self) -> None:
        self.context.runner.cancel("prior")
        self.model.set_prior(None)
        if self.context.browser is not None:
            self.context.browser.model.mark(prior=None)

    # ---- captions ----------------------------------------------------------------------------
    def describe(self, volume: Volume, entry: BrowserEntry | None, role: str) -> SideInfo:
        """Caption of one side: when (date or case day), what (modality, series), whose (patient id)."""
        info = volume.info
        description = " ".join(t for t in (info.modality or volume.modality, info.series_description) if t)
        offset = entry.offset if entry is not None else None
        case = self.context.case
        if offset is None and case.case is not None:
            image = next((im for im in case.case.images if str(im.path) == str(volume.source)), None)
            offset = image.offset if image is not None else None
        patient = info.patient_id or (entry.patient_id if entry is not None else "")
        if offset is not None:  # an X-ray of the clinical case: its view (PA, AP…) says more than "OT"
            case_patient = case.case.patient_id if case.case is not None else ""
            view = entry.description if entry is not None and entry.description != entry.key else ""
            return SideInfo(role, offset, f"day {offset:g}", f"X-ray {view}".strip(), patient or case_patient)
        date = info.study_date or (entry.date if entry is not None else "")
        hidden = self.context.document.deidentify
        when_text = "date hidden" if hidden and date else iso_date(date) or "no date"
        return SideInfo(role, _ordinal(date), when_text, description, patient)

    def _on_current(self) -> None:
        volume = self.context.document.volume
        if volume is None:
            self.model.set_current_info(None)
            return
        browser = self.context.browser
        entry = browser.model.entry_for_volume(volume) if browser is not None else None
        self.model.set_current_info(self.describe(volume, entry, "current"))
        self.model.align()

    def _refresh_captions(self) -> None:
        self._on_current()
        prior = self.model.prior.volume
        if prior is not None and self.model.prior_info is not None:
            browser = self.context.browser
            entry = browser.model.entry(browser.model.prior_key) if browser and browser.model.prior_key else None
            self.model.prior_info = self.describe(prior, entry, "prior")
            self.model.captions_changed.emit()
