"""What the series browser shows (Qt-free): the series of the open folder / DICOMDIR / case and their tiles.

One *source* at a time (a DICOM folder, a DICOMDIR, a clinical case's X-rays, or a single file); each
series is a :class:`BrowserEntry` (what :meth:`AppContext.open_path` needs to open it, and what its tile
says) grouped by patient and study. Thumbnails arrive one by one from the controller's background jobs;
a series that cannot be read keeps its entry with an error message (a "could not read" tile), so one
broken series never hides the others. The comparison feature asks :meth:`SeriesBrowserModel.prior_for`
for the most recent earlier study of the same patient.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from psygnal import Signal

from inference.clinical.formatting import iso_date
from inference.io.thumbnails import Thumbnail
from inference.io.volume import Volume


@dataclass
class BrowserEntry:
    """One series (or one image of a case) as the browser lists it."""

    key: str  # unique within the source: series UID (or the reader's key), or a case image's file name
    path: Path  # what ``open_path`` takes: the folder, the DICOMDIR, or the image file
    series_uid: str | None  # passed to ``open_path`` (None: the path alone opens it)
    files: list[Path] = field(default_factory=list, repr=False)  # DICOM files for the thumbnail job
    modality: str = ""
    description: str = ""
    n_images: int = 0
    date: str = ""  # DICOM DA (YYYYMMDD) when known
    offset: float | None = None  # case images: days since presentation
    patient_name: str = ""
    patient_id: str = ""
    study_uid: str = ""
    study_description: str = ""
    series_number: int | None = None

    @property
    def when(self) -> float | None:
        """A number that orders entries in time: the date's ordinal, or the case offset in days."""
        if self.offset is not None:
            return self.offset
        text = iso_date(self.date)
        try:
            return float(dt.date.fromisoformat(text).toordinal())
        except ValueError:
            return None

    @property
    def when_text(self) -> str:
        if self.offset is not None:
            return f"day {self.offset:g}"
        return iso_date(self.date)

    @property
    def study_key(self) -> str:
        return self.study_uid or f"{self.date}:{self.study_description}"


@dataclass(frozen=True)
class BrowserSource:
    path: Path
    kind: str  # "folder", "dicomdir", "case", "file"
    title: str


def interval_text(later: float | None, earlier: float | None, *, days_only: bool = False) -> str:
    """'3 days earlier', '14 months earlier', '2 years earlier' ('' when either is unknown)."""
    if later is None or earlier is None:
        return ""
    days = later - earlier
    if days < 0:
        return interval_text(earlier, later, days_only=days_only).replace("earlier", "later")
    if days_only or days < 62:
        return "same day" if days == 0 else f"{days:g} day{'s' if days != 1 else ''} earlier"
    months = round(days / 30.44)
    if months < 24:
        return f"{months} months earlier"
    return f"{days / 365.25:.0f} years earlier"


class SeriesBrowserModel:
    """Source, entries, tiles (thumbnail or error) and which entries are open as current / prior."""

    source_changed = Signal(object)  # BrowserSource | None
    entries_changed = Signal()
    tile_changed = Signal(str)  # entry key: thumbnail arrived or failed
    marks_changed = Signal()  # current / prior keys
    status_changed = Signal(str)  # "Reading headers…", an error sentence, ""

    def __init__(self) -> None:
        self.source: BrowserSource | None = None
        self.entries: list[BrowserEntry] = []
        self.thumbnails: dict[str, Thumbnail] = {}
        self.errors: dict[str, str] = {}
        self.current_key: str | None = None
        self.prior_key: str | None = None
        self.status = ""

    # ---- source and entries ------------------------------------------------------------------
    def set_source(self, source: BrowserSource | None, entries: list[BrowserEntry] | None = None) -> None:
        self.source = source
        self.entries = list(entries or [])
        self.thumbnails.clear()
        self.errors.clear()
        self.current_key = self.prior_key = None
        self.source_changed.emit(source)
        self.entries_changed.emit()
        self.marks_changed.emit()

    def set_entries(self, entries: list[BrowserEntry]) -> None:
        self.entries = list(entries)
        self.entries_changed.emit()

    def set_status(self, text: str) -> None:
        self.status = text
        self.status_changed.emit(text)

    def entry(self, key: str) -> BrowserEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    # ---- tiles -------------------------------------------------------------------------------
    def set_thumbnail(self, key: str, thumbnail: Thumbnail) -> None:
        entry = self.entry(key)
        if entry is None:
            return
        if not entry.date and thumbnail.date:
            entry.date = thumbnail.date
        entry.modality = entry.modality or thumbnail.modality
        entry.description = entry.description or thumbnail.description
        self.thumbnails[key] = thumbnail
        self.errors.pop(key, None)
        self.tile_changed.emit(key)

    def set_failed(self, key: str, message: str) -> None:
        if self.entry(key) is None:
            return
        self.errors[key] = message
        self.tile_changed.emit(key)

    # ---- marks: what is open where -----------------------------------------------------------
    def entry_for_volume(self, volume: Volume | None) -> BrowserEntry | None:
        """The entry ``volume`` was read from (by its files, its source path, then its series UID)."""
        if volume is None:
            return None
        files = {Path(p) for p in volume.source_files}
        source = Path(str(volume.source)) if volume.source else None
        for entry in self.entries:
            if files and files & set(entry.files):
                return entry
        for entry in self.entries:
            if source is not None and entry.series_uid is None and entry.path == source:
                return entry
        uid = volume.info.series_instance_uid
        return next((e for e in self.entries if uid and e.series_uid == uid), None)

    def mark(self, *, current: str | None | bool = False, prior: str | None | bool = False) -> None:
        """Set the current and/or prior key (``False`` leaves that mark as it is)."""
        if current is not False:
            self.current_key = current  # type: ignore[assignment]
        if prior is not False:
            self.prior_key = prior  # type: ignore[assignment]
        self.marks_changed.emit()

    # ---- prior -------------------------------------------------------------------------------
    def prior_for(self, current: BrowserEntry) -> BrowserEntry | None:
        """The most recent series of the same patient taken before ``current`` (same modality preferred,
        then the same description), or None."""
        when = current.when
        if when is None:
            return None

        def same_patient(e: BrowserEntry) -> bool:
            if current.offset is not None:  # a case: one patient
                return True
            return not (current.patient_id and e.patient_id) or e.patient_id == current.patient_id

        earlier = [e for e in self.entries if e.key != current.key and same_patient(e)
                   and e.when is not None and e.when < when and e.key not in self.errors]
        if not earlier:
            return None
        return max(earlier, key=lambda e: (e.modality == current.modality, e.when,
                                           e.description == current.description,
                                           -abs(e.n_images - current.n_images)))
