"""Series browser work: list a folder's / DICOMDIR's / case's series and make their thumbnails in the background.

Listing runs on the task runner's "browser_scan" channel (a new folder cancels the old scan). Thumbnails
run one series at a time on the "thumbnails" channel, so they never take both worker threads from an
image load; each job carries the source *generation* it was asked for and results of an older generation
are dropped (the runner drops cancelled ones too). A failed series gets an error tile and the queue goes
on. Thumbnails are cached per series (source path, key, files, modification time), so coming back to a
folder shows its tiles at once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from app.model.clinical import ClinicalCase
from app.model.series_browser import BrowserEntry, BrowserSource, SeriesBrowserModel
from inference.errors import MedFusionError
from inference.io.thumbnails import THUMBNAIL_SIZE, Thumbnail, image_thumbnail, series_thumbnail
from inference.io.volume import Volume
from inference.progress import CancelToken, ProgressCallback

if TYPE_CHECKING:
    from app.context import AppContext
    from inference.io.dicom_scan import SeriesInfo

log = logging.getLogger("medfusion.app.browser")
CACHE_ENTRIES = 512  # 128² bytes each: a few MB


def _message(error: BaseException) -> str:
    if isinstance(error, MedFusionError):
        return str(error)
    return f"Could not read this series (unexpected {type(error).__name__})."


def entries_from_series(path: Path, infos: list[SeriesInfo]) -> list[BrowserEntry]:
    """Browser entries for the series a folder scan or a DICOMDIR lists (patient, study, then series order)."""
    entries = [
        BrowserEntry(key=info.series_uid, path=path, series_uid=info.series_uid, files=list(info.files),
                     modality=info.modality, description=info.description, n_images=max(info.n_frames, info.n_files),
                     date=info.study_date, patient_name=info.patient_name, patient_id=info.patient_id,
                     study_uid=info.study_uid, study_description=info.study_description,
                     series_number=info.series_number)
        for info in infos
    ]
    return sorted(entries, key=lambda e: (e.patient_name, e.patient_id, -(e.when or 0.0), e.study_key,
                                          e.series_number is None, e.series_number or 0, e.description))


def entries_from_case(case: ClinicalCase) -> list[BrowserEntry]:
    """A case's X-rays, one entry each, by day."""
    return [
        BrowserEntry(key=im.filename, path=im.path, series_uid=None, files=[], modality="X-ray",
                     description=im.view or im.filename, n_images=1, offset=im.offset,
                     patient_id=case.patient_id, study_uid=f"case:{case.folder}", study_description="X-rays")
        for im in case.images
    ]


def is_dicomdir(path: Path) -> bool:
    """``inference.io.dicomdir.is_dicomdir``, imported when first asked: pydicom (~0.3 s) loads with the first
    image or folder, not with the viewer (its start imports this module). Through the loader: see its docstring."""
    import inference.io.loader  # noqa: F401
    from inference.io.dicomdir import is_dicomdir as check

    return check(path)


def disc_index(folder: Path) -> Path | None:
    """The DICOMDIR at the root of ``folder`` (any letter case), or None."""
    try:
        return next((p for p in sorted(folder.iterdir()) if p.name.upper() == "DICOMDIR" and p.is_file()
                     and is_dicomdir(p)), None)
    except OSError:
        return None


def _stamp(entry: BrowserEntry) -> tuple:
    first = entry.files[0] if entry.files else entry.path
    try:
        mtime = first.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return (str(entry.path), entry.key, len(entry.files), str(first), mtime)


class SeriesBrowserController:
    """Fills :class:`SeriesBrowserModel` from what the user opens; opens what the user picks."""

    def __init__(self, context: AppContext, model: SeriesBrowserModel, thumbnail_size: int = THUMBNAIL_SIZE) -> None:
        self.context, self.model, self.size = context, model, thumbnail_size
        self._cache: OrderedDict[tuple, Thumbnail] = OrderedDict()
        self._queue: list[str] = []
        self._generation = 0
        self.jobs_started = 0  # thumbnails actually computed (not from the cache); tests read it
        self._after_load: Path | None = None  # listed when the main views' load of this path has ended
        context.loader.opening.append(self._on_opening)
        context.loader.settled.append(self._on_settled)
        context.case.case_changed.connect(self._on_case)
        context.document.volume_changed.connect(self._on_volume)

    # ---- sources -----------------------------------------------------------------------------
    def browse_chosen(self, path: Path) -> None:
        """What the user picked to browse: a folder at a disc's root is listed from its DICOMDIR (the index
        the disc was written with: no header scan of every file)."""
        path = Path(path)
        index = disc_index(path) if path.is_dir() else None
        self.browse(index or path)

    def browse(self, path: Path) -> None:
        """List ``path`` (folder, DICOMDIR or one image file) without opening anything."""
        path = Path(path)
        self._new_generation()
        if not path.exists():  # moved, deleted, an unplugged disc: say so instead of a "could not read" tile
            self.model.set_source(BrowserSource(path, "file", path.name))
            self.model.set_status(f"'{path.name}' does not exist (moved, deleted, or a disc that was removed).")
            return
        if path.is_dir() or (path.is_file() and is_dicomdir(path)):
            kind = "folder" if path.is_dir() else "dicomdir"
            self.model.set_source(BrowserSource(path, kind, path.name if kind == "folder" else
                                                f"{path.parent.name}/{path.name}"))
            self.model.set_status("Reading headers…")
            generation = self._generation

            def work(progress: ProgressCallback, cancel: CancelToken) -> list[SeriesInfo]:
                from inference.io.loader import list_series  # the readers load on the worker

                cancel.raise_if_cancelled()
                return list_series(path)

            self.context.runner.submit("browser_scan", work, lambda infos: self._listed(generation, path, infos),
                                       lambda err: self._scan_failed(generation, err), f"Listing {path.name}")
            return
        entry = BrowserEntry(key=path.name, path=path, series_uid=None, files=[], n_images=1,
                             description=path.name)
        self.model.set_source(BrowserSource(path, "file", path.name), [entry])
        self.model.set_status("")
        self._queue_thumbnails()

    def _listed(self, generation: int, path: Path, infos: list[SeriesInfo]) -> None:
        if generation != self._generation:
            return
        self.model.set_entries(entries_from_series(path, infos))
        n = len(self.model.entries)
        self.model.set_status(f"{n} series" if n != 1 else "1 series")
        self._on_volume(self.context.document.volume)
        self._queue_thumbnails()

    def _scan_failed(self, generation: int, error: BaseException) -> None:
        if generation == self._generation:
            self.model.set_status(_message(error))

    def _on_opening(self, path: Path) -> None:
        source = self.model.source
        if source is not None and source.kind == "case" and any(e.path == path for e in self.model.entries):
            return  # an X-ray of the open case: the case stays the source
        if source is not None and source.path == path and source.kind != "file":
            return  # the same folder again (e.g. after its series was chosen)
        # Listed once the load has ended (image shown, or a series to choose): the header scan and the
        # thumbnails' decoding would otherwise compete with it for the cores (the first image comes later).
        self._new_generation()  # the old source's thumbnails stop now
        self._after_load = path

    def _on_settled(self, path: Path) -> None:
        if self._after_load is not None and self._after_load == path:
            self._after_load = None
            self.browse(path)

    def _on_case(self, case: ClinicalCase | None) -> None:
        if case is None:
            return
        self._new_generation()
        self.model.set_source(BrowserSource(case.folder, "case", f"Patient {case.patient_id}"),
                              entries_from_case(case))
        self.model.set_status(f"{len(case.images)} X-ray(s)")
        self._queue_thumbnails()

    def _on_volume(self, volume: Volume | None) -> None:
        entry = self.model.entry_for_volume(volume)
        self.model.mark(current=entry.key if entry is not None else None)

    # ---- opening -----------------------------------------------------------------------------
    def open_entry(self, key: str) -> None:
        """Open a series in the main views (double-click, or a drop on the views)."""
        entry = self.model.entry(key)
        if entry is None:
            return
        source = self.model.source
        clinical = self.context.clinical
        if source is not None and source.kind == "case" and clinical is not None and entry.offset is not None:
            clinical.show_image(entry.key)  # keeps the case's selected X-ray in step
            return
        self.context.open_path(entry.path, entry.series_uid)

    def open_prior(self, key: str) -> None:
        """Open a series as the prior of the comparison (a drop on its prior side, or the context menu)."""
        entry = self.model.entry(key)
        if entry is None:
            return
        comparison = self.context.comparison  # read when used: the comparison feature may not be installed
        if comparison is None:
            self.context.show_status("Side-by-side comparison is not available.")
            return
        comparison.start(auto_prior=False)
        comparison.open_prior_entry(entry)

    # ---- thumbnails --------------------------------------------------------------------------
    def _new_generation(self) -> None:
        self._generation += 1
        self._after_load = None
        self._queue.clear()
        self.context.runner.cancel("thumbnails")
        self.context.runner.cancel("browser_scan")

    def _queue_thumbnails(self) -> None:
        first = self.model.current_key
        keys = [e.key for e in self.model.entries]
        self._queue = sorted(keys, key=lambda k: k != first)  # the open series first
        self._next()

    def _next(self) -> None:
        while self._queue:
            key = self._queue.pop(0)
            entry = self.model.entry(key)
            if entry is None:
                continue
            stamp = _stamp(entry)
            cached = self._cache.get(stamp)
            if cached is not None:
                self._cache.move_to_end(stamp)
                self.model.set_thumbnail(key, cached)
                continue
            self._submit(entry, stamp)
            return

    def _submit(self, entry: BrowserEntry, stamp: tuple) -> None:
        generation, size = self._generation, self.size
        files, path = list(entry.files), entry.path

        def work(progress: ProgressCallback, cancel: CancelToken) -> Thumbnail:
            if files:
                return series_thumbnail(files, size=size, progress=progress, cancel=cancel)
            return image_thumbnail(path, size, cancel=cancel)

        def done(thumbnail: Thumbnail) -> None:
            if generation != self._generation:
                return
            self._cache[stamp] = thumbnail
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
            self.model.set_thumbnail(entry.key, thumbnail)
            self._next()

        def failed(error: BaseException) -> None:
            if generation != self._generation:
                return
            log.info("thumbnail of %s failed: %s", entry.key, type(error).__name__)
            self.model.set_failed(entry.key, _message(error))
            self._next()

        self.jobs_started += 1
        self.context.runner.submit("thumbnails", work, done, failed, "Making thumbnails")
