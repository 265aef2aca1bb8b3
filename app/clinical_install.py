"""``install_clinical(window)``: the clinician workspace (controller, panels, tour) on the shell.

Everything plugs in through the main window's registry (``add_panel``, ``add_action``) and the
application context: the case model is ``context.case``, the controller becomes ``context.clinical``,
a :class:`~app.context.FileOpener` makes a folder holding ``metadata.csv`` + ``images/`` open as a
case (from File > Open, drag-and-drop, recent files and session restore alike), and the predictor's lung
mask of the shown X-ray is a label the segmentation tools edit
(:class:`~app.controllers.case_mask_link.CaseMaskLink`). The clinical panels and Predict follow the image
on screen (:mod:`app.clinical_scope`): a CT or another non-case image hides them and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from app.clinical_scope import follow_shown_image
from app.context import FileOpener
from app.controllers.case_mask_link import CaseMaskLink
from app.controllers.clinical import CasePredictor, ClinicalController
from app.model.clinical import ClinicalModel, is_case_folder
from app.widgets.audit_view import AuditView
from app.widgets.ehr_panel import EHRPanel
from app.widgets.explanation_panel import ExplanationPanel
from app.widgets.heatmap_overlay import HeatmapOverlay
from app.widgets.info_panel import attribution_for
from app.widgets.prediction_panel import PredictionPanel
from app.widgets.timeline_strip import TimelineStrip
from app.widgets.tour_overlay import TourOverlay

if TYPE_CHECKING:
    from app.main_window import MainWindow

DEMO_CASE = Path(__file__).resolve().parents[1] / "resources" / "demo" / "cxr"


@dataclass
class ClinicalWorkspace:
    """Handles to the installed parts (tests and the headless demo drive them)."""

    model: ClinicalModel
    controller: ClinicalController
    ehr: EHRPanel
    prediction: PredictionPanel
    explanation: ExplanationPanel
    overlay: HeatmapOverlay
    timeline: TimelineStrip
    audit: AuditView
    tour: TourOverlay
    masks: CaseMaskLink


def _scrolled(panel: QWidget) -> QScrollArea:
    """The panel scrolls up and down instead of squeezing its word-wrapped rows on top of each other (or
    making the window taller than asked) when the window is short; as wide as the dock, never sideways."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(panel)
    return scroll


def _timeline_dock(strip: TimelineStrip, model: ClinicalModel) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(strip)
    credit = QLabel(box)
    credit.setWordWrap(True)
    credit.setObjectName("case_attribution")

    def show(_case: object) -> None:
        case = model.case
        text = attribution_for(str(case.images[0].path)) if case and case.images else ""
        credit.setText(f"<small>{text}</small>" if text else "")
        credit.setToolTip(case.attribution if case else "")

    model.case_changed.connect(show)
    layout.addWidget(credit)
    return box


def install_clinical(
    window: MainWindow,
    predictor_loader: Callable[[], CasePredictor] | None = None,
    audit_root: Path | None = None,
) -> ClinicalWorkspace:
    """Add the clinical panels, actions and case opening to ``window``; returns the workspace."""
    context = window.context
    model = context.case

    def load_shipped() -> CasePredictor:  # torch + captum load here, on first use, not at start-up
        from app.controllers.clinical_predictor import load_case_predictor

        return load_case_predictor(context.settings)

    loader = predictor_loader or load_shipped
    controller = ClinicalController(context, model, loader, audit_root=audit_root)
    context.clinical = controller
    overlay = HeatmapOverlay(window.views["axial"], model)
    ehr = EHRPanel(model, controller, lambda: bool(context.document.deidentify))
    context.document.deidentify_changed.connect(lambda _on: ehr.refresh_table())
    prediction = PredictionPanel(model, controller)
    explanation = ExplanationPanel(model, controller, overlay)
    audit = AuditView(model, controller, lambda: bool(context.document.deidentify))
    context.document.deidentify_changed.connect(lambda _on: audit.refresh())
    timeline = TimelineStrip(model, controller)
    window.add_panel("Outcome prediction", prediction, name="prediction")
    window.add_panel("Explanation", explanation, name="explanation")
    window.add_panel("Clinical data", _scrolled(ehr), name="ehr")
    window.add_panel("Audit log", audit, name="audit")
    window.add_panel("X-rays over time", _timeline_dock(timeline, model), Qt.DockWidgetArea.BottomDockWidgetArea,
                     name="timeline")
    window.panels["prediction"].raise_()
    tour = TourOverlay(window)

    # File > Open folder, drag & drop, recent files and session restore all reach a case folder here
    context.openers.register(FileOpener("clinical case", is_case_folder, controller.open_case))
    window.add_action("File", "Open demo case", lambda: context.open_path(DEMO_CASE), name="open_demo_case")
    window.add_action("Tools", "Predict outcome", controller.predict, name="predict", shortcut="Ctrl+R",
                      toolbar=True, tooltip="Features → prediction → explanation for the open case")
    window.add_action("Tools", "Reset case", controller.reset, name="reset_case", toolbar=True,
                      tooltip="Restore the case as first opened (drops edits, masks and predictions)")

    def toggle_full_screen() -> None:
        window.showNormal() if window.isFullScreen() else window.showFullScreen()

    window.add_action("View", "Full screen", toggle_full_screen, name="full_screen", shortcut="F11")
    window.add_action("Help", "Guided tour", tour.start, name="tour")
    link = CaseMaskLink(context, controller)
    follow_shown_image(window, link)
    return ClinicalWorkspace(model, controller, ehr, prediction, explanation, overlay, timeline, audit, tour, link)
