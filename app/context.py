"""The application context: the one object every controller and feature receives instead of the window.

Why: features used to patch attributes onto the main window (``window.labels``, ``window.clinical``,
a replaced ``window.open_path``) and then find each other with ``getattr(window, ..., None)``, so
what worked depended on the order of the installs. The context is created with the window, before
any feature, and holds everything features share:

- the models: :attr:`document` (image on screen), :attr:`labels` (its masks), :attr:`case` (the
  clinical case: patient, EHR, predictions) — all Qt-free, observable with psygnal signals;
- the services: :attr:`runner` (background work), :attr:`settings`, :attr:`loader`, :attr:`host`
  (messages and the questions only the UI can ask);
- the registries of what varies: :attr:`openers` (who opens a dropped/chosen path),
  :attr:`session_sections` (what a feature adds to saved sessions) and :attr:`report_sections` (the
  tables it adds to the PDF report);
- the controllers features offer each other (:attr:`segmentation`, :attr:`clinical`, :attr:`export`,
  :attr:`session`, :attr:`browser`, :attr:`cohort`, :attr:`comparison`): ``None`` until that feature is
  installed, read at the moment they are used.

See ``docs/dev/architecture.md`` for how a feature plugs in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from psygnal import Signal

from app.controllers.loading import LoadController
from app.model.clinical import ClinicalModel
from app.model.document import Document
from app.model.labels import LabelsModel
from app.workers import TaskRunner
from inference.export.report_sections import ReportSection
from inference.io.memory_budget import MemoryCheck
from inference.settings import Settings

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from app.controllers.clinical import ClinicalController
    from app.controllers.cohort import CohortController
    from app.controllers.comparison import ComparisonController
    from app.controllers.export import ExportController
    from app.controllers.segmentation import SegmentationController
    from app.controllers.series_browser import SeriesBrowserController
    from app.controllers.session_io import SessionController

log = logging.getLogger("medfusion.app")


class UiHost(Protocol):
    """What controllers may ask of the user interface (the main window; a fake in tests)."""

    def show_error(self, error: BaseException) -> None:
        """One sentence in a message box (``Cancelled`` only in the status bar)."""

    def show_status(self, message: str) -> None:
        """A transient status-bar message."""

    def choose_series(self, series: list, path: Path) -> tuple[str, str | None] | None:
        """(primary series uid, optional overlay series uid), or None if the user cancelled."""

    def choose_downsample(self, check: MemoryCheck, path: Path) -> int | None:
        """Over-budget study: the factor the user accepts (``check.factor`` recommended), or None."""

    def dialog_parent(self) -> QWidget | None:
        """The widget a controller's own question box is centred on."""


@dataclass(frozen=True)
class FileOpener:
    """Opens paths that are not a plain image (e.g. a clinical case folder) in its own way."""

    name: str
    accepts: Callable[[Path], bool]
    open: Callable[[Path], object]  # may raise MedFusionError: shown as one sentence


@dataclass(frozen=True)
class SessionSection:
    """A feature's part of saved sessions (and of the crash-recovery file).

    ``save()`` returns JSON-able data (None: nothing to save); ``restore(data)`` puts it back once the
    session's image has loaded, and raises :class:`~inference.errors.MedFusionError` for data it refuses
    (the data comes from a file: validate it). The feature asks ``context.session.note_change(False)``
    after its own gestures so the recovery file follows them.
    """

    name: str
    save: Callable[[], Any]
    restore: Callable[[Any], None]


ReportSectionProvider = Callable[[], ReportSection | None]


class OpenerRegistry:
    """Who opens a path: the first registered :class:`FileOpener` that accepts it, else the image loader.

    File > Open, drag-and-drop, recent files, the PACS dialog and session restore all go through
    :meth:`AppContext.open_path`, so a registered opener is reached from every one of them.
    """

    def __init__(self) -> None:
        self._openers: list[FileOpener] = []

    def register(self, opener: FileOpener, *, before: str | None = None) -> None:
        """Add ``opener`` last, or ahead of the opener named ``before`` (a narrower kind of the same path,
        e.g. a cohort folder before the clinical case folder it also looks like)."""
        if any(o.name == opener.name for o in self._openers):
            raise ValueError(f"a file opener named {opener.name!r} is already registered")
        names = self.names()
        self._openers.insert(names.index(before) if before in names else len(names), opener)

    def find(self, path: Path) -> FileOpener | None:
        return next((o for o in self._openers if o.accepts(path)), None)

    def names(self) -> list[str]:
        return [o.name for o in self._openers]


class AppContext:
    """Shared models, services and registries of one viewer window (see the module docstring)."""

    closing = Signal()  # the window is closing: flush work (emitted before the runner is stopped)

    def __init__(self, settings: Settings, runner: TaskRunner, host: UiHost,
                 settings_path: Path | None = None) -> None:
        self.settings = settings
        self.settings_path = settings_path
        self.runner = runner
        self.host = host
        self.document = Document(deidentify=settings.deidentify_display)
        self.labels = LabelsModel()  # bound to a segmentation session per image by the segmentation feature
        self.case = ClinicalModel()  # filled by the clinical feature when a case folder is opened
        self.loader = LoadController(self.document, runner, settings, host, settings_path)
        self.openers = OpenerRegistry()
        self.session_sections: dict[str, SessionSection] = {}  # name → a feature's part of the session
        self.report_sections: list[ReportSectionProvider] = []  # each gives a table for the PDF report
        self.segmentation: SegmentationController | None = None
        self.clinical: ClinicalController | None = None
        self.export: ExportController | None = None
        self.session: SessionController | None = None
        self.browser: SeriesBrowserController | None = None
        self.cohort: CohortController | None = None
        self.comparison: ComparisonController | None = None

    # ---- opening ---------------------------------------------------------------------------------
    def open_path(self, path: str | Path, series_uid: str | None = None) -> int:
        """Open ``path`` with the registered opener that accepts it, else load it as an image.

        Returns the loader's request id (0 when an opener handled it synchronously).
        """
        path = Path(path)
        opener = self.openers.find(path)
        if opener is None:
            return self.loader.open_path(path, series_uid)
        try:
            opener.open(path)
        except Exception as err:  # noqa: BLE001 - shown as one sentence
            self.host.show_error(err)
        return 0

    def collect_report_sections(self) -> list[ReportSection]:
        """The features' report tables now (providers returning None are left out)."""
        return [section for provider in self.report_sections if (section := provider()) is not None]

    # ---- messages and settings -------------------------------------------------------------------
    def show_error(self, error: BaseException) -> None:
        self.host.show_error(error)

    def show_status(self, message: str) -> None:
        self.host.show_status(message)

    def save_settings(self) -> None:
        """Write the settings file (raises ``OSError``; callers decide how loud a failure is)."""
        self.settings.save(self.settings_path)
