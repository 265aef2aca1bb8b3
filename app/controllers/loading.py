"""Open images and PET overlays in the background and put them into the document.

All I/O goes through ``inference.io.loader.open_image`` on a worker thread (``TaskRunner`` channels
"load" and "overlay"). The controller is UI-agnostic: it asks its host (the main window) to choose a
series, report errors and show status messages through the small :class:`LoadHost` protocol, so it
can be tested and reused without dialogs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from app.model.document import Document
from app.workers import TaskRunner
from inference.errors import ImageReadError, MedFusionError, SeriesSelectionRequired
from inference.io.memory_budget import MemoryBudgetExceeded, MemoryCheck, guarded_open
from inference.io.volume import Volume
from inference.logging_setup import register_phi
from inference.progress import CancelToken, scaled
from inference.settings import Settings

log = logging.getLogger("medfusion.app.loading")


class LoadHost(Protocol):
    def choose_series(self, series: list, path: Path) -> tuple[str, str | None] | None:
        """(primary series uid, optional overlay series uid), or None if the user cancelled."""

    def show_error(self, error: BaseException) -> None: ...

    def show_status(self, message: str) -> None: ...

    def choose_downsample(self, check: MemoryCheck, path: Path) -> int | None:
        """Over-budget study: the factor the user accepts (``check.factor`` recommended), or None to cancel."""


def _open_guarded(path: Path, series_uid: str | None, budget_mb: int, downsample: int | None,
                  progress: Callable[[float, str], None], cancel: CancelToken) -> Volume:
    """``open_image`` behind the memory guard (header-only estimate vs ``Settings.memory_budget_mb``; 0 = off).

    Runs on the worker: the readers (pydicom, SimpleITK, Pillow: ~0.4 s of imports) load here at the first
    image, while the UI thread shows the window, instead of before the window exists.
    """
    from inference.io.loader import open_image

    if budget_mb <= 0:
        return open_image(path, series_uid=series_uid, progress=progress, cancel=cancel)
    return guarded_open(path, budget_mb, series_uid=series_uid, downsample=downsample, progress=progress,
                        cancel=cancel)


class LoadController:
    """File > Open / Add PET overlay logic; also remembers recent files in :class:`Settings`."""

    def __init__(
        self,
        document: Document,
        runner: TaskRunner,
        settings: Settings,
        host: LoadHost,
        settings_path: Path | None = None,
    ) -> None:
        self.document, self.runner, self.settings, self.host = document, runner, settings, host
        self.settings_path = settings_path
        self.remember_recent = True  # False for headless demos: keep the user's recent list untouched
        self.loaded: list[Callable[[Volume], None]] = []  # extra callbacks after a primary image loads
        # called with the path when a primary image is asked for (before its series is chosen; the series
        # browser lists a folder's or DICOMDIR's series from here)
        self.opening: list[Callable[[Path], None]] = []
        # called with the path when that image's load has ended, opened or not (before a series is asked
        # for): work that would compete with the load for the cores waits for it (the browser's header scan)
        self.settled: list[Callable[[Path], None]] = []

    # --- primary image -------------------------------------------------------------------------
    def open_path(
        self, path: Path | str, series_uid: str | None = None, overlay_uid: str | None = None,
        downsample: int | None = None,
    ) -> int:
        """Start loading ``path`` (``downsample``: the factor the user accepted for an over-budget study);
        returns the worker request id."""
        path = Path(path)
        budget = self.settings.memory_budget_mb
        for callback in self.opening:
            callback(path)

        def task(progress: Callable[[float, str], None], cancel: CancelToken) -> Volume:
            return _open_guarded(path, series_uid, budget, downsample, progress, cancel)

        self.host.show_status(f"Opening {path.name}" + (f" downsampled ×{downsample}…" if downsample else "…"))
        return self.runner.submit(
            "load",
            task,
            on_done=lambda volume: self._on_loaded(path, volume, overlay_uid),
            on_error=lambda err: self._on_load_error(path, err, overlay_allowed=True, series_uid=series_uid,
                                                     overlay_uid=overlay_uid, downsample=downsample),
            description=f"Opening {path.name}",
        )

    def _on_loaded(self, path: Path, volume: Volume, overlay_uid: str | None) -> None:
        register_phi(volume.info.patient_name, volume.info.patient_id)
        self.document.set_volume(volume)
        for settled in self.settled:
            settled(path)
        if self.remember_recent:
            self.settings.add_recent(str(path.resolve()))
            try:
                self.settings.save(self.settings_path)
            except OSError as exc:  # a read-only home must not break viewing
                log.warning("could not save settings: %s", exc)
        warnings = volume.meta.get("warnings") or []
        z, y, x = volume.shape
        size = f"{x}×{y}" + (f"×{z}" if z > 1 else "")
        self.host.show_status(
            f"Opened {path.name}: {volume.modality} {size}"
            + (f" ({'; '.join(warnings)})" if warnings else "")
        )
        for callback in self.loaded:
            callback(volume)
        if overlay_uid:
            self.add_overlay(path, overlay_uid)

    def _on_load_error(self, path: Path, err: BaseException, overlay_allowed: bool, series_uid: str | None = None,
                       overlay_uid: str | None = None, downsample: int | None = None) -> None:
        for settled in self.settled:
            settled(path)
        if isinstance(err, SeriesSelectionRequired):
            choice = self.host.choose_series(err.series, path)
            if choice is None:
                self.host.show_status("Opening cancelled.")
                return
            primary, overlay = choice
            self.open_path(path, primary, overlay if overlay_allowed else None, downsample)
            return
        if isinstance(err, MemoryBudgetExceeded):
            factor = self._ask_downsample(err, path)
            if factor is not None:
                self.open_path(path, series_uid, overlay_uid, factor)
            return
        self.host.show_error(err)

    def _ask_downsample(self, err: MemoryBudgetExceeded, path: Path) -> int | None:
        """The factor to retry with, or None (hopeless size: the error is shown; declined: nothing opens)."""
        if err.check.factor is None:
            self.host.show_error(err)
            return None
        factor = self.host.choose_downsample(err.check, path)
        if factor is None:
            self.host.show_status(f"Opening {path.name} cancelled: {err.check.message()}")
            return None
        return max(int(factor), err.check.factor)  # a smaller factor would not fit the budget

    # --- overlay -------------------------------------------------------------------------------
    def add_overlay(self, path: Path | str, series_uid: str | None = None, downsample: int | None = None
                    ) -> int | None:
        """Load a PET (or any) image and resample it onto the current primary grid as an overlay
        (behind the same memory guard as the primary image)."""
        path = Path(path)
        reference = self.document.volume
        if reference is None or reference.is_2d:
            self.host.show_error(MedFusionError("Open a CT volume first, then add the PET overlay."))
            return None

        budget = self.settings.memory_budget_mb

        def task(progress: Callable[[float, str], None], cancel: CancelToken) -> Volume:
            moving = _open_guarded(path, series_uid, budget, downsample, scaled(progress, 0.0, 0.8), cancel)
            if moving.is_2d:
                raise ImageReadError(f"'{path.name}' is a 2-D image and cannot be overlaid on a volume.")
            cancel.raise_if_cancelled()
            progress(0.85, "Resampling overlay onto the CT grid")
            from inference.io.resample import resample_to_reference  # SimpleITK: loaded on the worker

            resampled = resample_to_reference(moving, reference, order=1)
            progress(1.0, "Overlay ready")
            return resampled

        def done(overlay: Volume) -> None:
            if self.document.volume is not reference:  # the user opened something else meanwhile
                return
            self.document.set_overlay(overlay)
            self.host.show_status(
                f"Overlay {path.name} ({overlay.modality}, {overlay.units or 'intensity'}) added."
            )

        return self.runner.submit(
            "overlay",
            task,
            on_done=done,
            on_error=lambda err: self._on_overlay_error(path, err, series_uid, downsample),
            description=f"Adding overlay {path.name}",
        )

    def _on_overlay_error(self, path: Path, err: BaseException, series_uid: str | None = None,
                          downsample: int | None = None) -> None:
        if isinstance(err, SeriesSelectionRequired):
            pet = [s for s in err.series if s.modality == "PT"]
            choice = (pet[0].series_uid, None) if len(pet) == 1 else self.host.choose_series(err.series, path)
            if choice is not None:
                self.add_overlay(path, choice[0], downsample)
            return
        if isinstance(err, MemoryBudgetExceeded):
            factor = self._ask_downsample(err, path)
            if factor is not None:
                self.add_overlay(path, series_uid, factor)
            return
        self.host.show_error(err)
