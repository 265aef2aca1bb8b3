"""``install_browser(window)``: the series browser and the cohort patient list, docked on the left.

- Series browser (``context.browser``): the series of what is open — a DICOM folder, a DICOMDIR (its
  patients, studies and series), a clinical case's X-rays, or one file — as thumbnail tiles made in the
  background. Double-click opens a series; a tile dragged onto the views opens it there, onto the
  comparison's prior side opens it as the prior.
- Patient list (``context.cohort``): a folder whose ``metadata.csv`` lists several patients opens as a
  searchable, sortable list with the outcomes hidden; double-click opens the patient as the clinical
  case. Its :class:`FileOpener` goes ahead of the clinical case opener (which takes one-patient folders).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QDropEvent

from app.context import AppContext, FileOpener
from app.controllers.cohort import CohortController
from app.controllers.series_browser import SeriesBrowserController
from app.model.cohort import CohortModel, is_cohort_folder
from app.model.series_browser import SeriesBrowserModel
from app.widgets.patient_list import PatientListPanel
from app.widgets.series_browser import SeriesBrowserPanel, decode_series_mime

if TYPE_CHECKING:
    from app.main_window import MainWindow


@dataclass
class BrowserWorkspace:
    """Handles to the installed parts (tests and screenshots drive them)."""

    model: SeriesBrowserModel
    controller: SeriesBrowserController
    panel: SeriesBrowserPanel
    cohort_model: CohortModel
    cohort: CohortController
    patients: PatientListPanel
    drops: SeriesDropFilter


class SeriesDropFilter(QObject):
    """Series tiles dropped anywhere on the window (the views) open there; other drops go on as before."""

    def __init__(self, context: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        kind = event.type()
        if kind not in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            return False
        assert isinstance(event, QDropEvent)  # QDragEnterEvent and QDragMoveEvent derive from it
        payload = decode_series_mime(event.mimeData())
        if payload is None:
            return False
        event.acceptProposedAction()
        if kind == QEvent.Type.Drop:
            browser = self.context.browser
            if browser is not None and payload["key"] and browser.model.entry(payload["key"]) is not None:
                browser.open_entry(payload["key"])
            else:
                self.context.open_path(payload["path"], payload["series_uid"])
        return True


def install_browser(window: MainWindow) -> BrowserWorkspace:
    """Add the Series and Patients panels, the cohort opener and the drop target on the views."""
    context = window.context
    model = SeriesBrowserModel()
    controller = SeriesBrowserController(context, model)
    context.browser = controller
    panel = SeriesBrowserPanel(model, controller.open_entry, controller.open_prior, controller.browse_chosen,
                               lambda: bool(context.document.deidentify))
    context.document.deidentify_changed.connect(lambda _on: panel.refresh_identity())
    window.add_panel("Series", panel, Qt.DockWidgetArea.LeftDockWidgetArea, name="series")

    cohort_model = CohortModel()
    cohort = CohortController(context, cohort_model)
    context.cohort = cohort
    patients = PatientListPanel(cohort_model, cohort.open_patient)
    dock = window.add_panel("Patients", patients, Qt.DockWidgetArea.LeftDockWidgetArea, name="patients")
    dock.hide()  # shown (tabbed with the series) when a cohort folder is opened

    def show_patients(_cohort: object) -> None:
        if not window.tabifiedDockWidgets(dock):
            window.tabifyDockWidget(window.panels["series"], dock)
        dock.show()
        dock.raise_()
        window.resizeDocks([dock], [max(dock.width(), 470)], Qt.Orientation.Horizontal)  # every column shows

    cohort_model.cohort_changed.connect(show_patients)
    context.openers.register(FileOpener("patient cohort", is_cohort_folder, cohort.open_cohort),
                             before="clinical case")
    window.add_action("File", "Browse series…", panel.choose_folder, name="browse_series", before="open_recent",
                      tooltip="List the series of a folder or DICOMDIR in the Series panel without opening one")

    drops = SeriesDropFilter(context, window)
    window.installEventFilter(drops)
    return BrowserWorkspace(model, controller, panel, cohort_model, cohort, patients, drops)
