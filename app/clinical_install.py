"""``install_clinical(window)``: the clinician workspace (case model, controller, panels, tour) on the shell.

Everything plugs in through the main window's registry (``add_panel``, ``add_action``); opening a
folder that holds ``metadata.csv`` + ``images/`` opens it as a case instead of as a DICOM folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.controllers.clinical import CasePredictor, ClinicalController
from app.model.clinical import ClinicalModel, is_case_folder
from app.widgets.audit_view import AuditView
from app.widgets.ehr_panel import EHRPanel
from app.widgets.explanation_panel import ExplanationPanel, HeatmapOverlay
from app.widgets.info_panel import attribution_for
from app.widgets.prediction_panel import PredictionPanel
from app.widgets.timeline_strip import TimelineStrip
from app.widgets.tour_overlay import TourOverlay

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
    window,  # noqa: ANN001 - MainWindow (not imported: avoids a cycle with app.launch)
    predictor_loader: Callable[[], CasePredictor] | None = None,
    audit_root: Path | None = None,
) -> ClinicalWorkspace:
    """Add the clinical panels, actions and case opening to ``window``; returns the workspace."""
    model = ClinicalModel()
    def load_shipped() -> CasePredictor:  # torch + captum load here, on first use, not at start-up
        from app.controllers.clinical_predictor import load_case_predictor

        return load_case_predictor(window.settings)

    loader = predictor_loader or load_shipped
    controller = ClinicalController(window, model, loader, audit_root=audit_root)
    overlay = HeatmapOverlay(window.views["axial"], model)
    ehr = EHRPanel(model, controller, lambda: bool(window.document.deidentify))
    window.document.deidentify_changed.connect(lambda _on: ehr.refresh_table())
    prediction = PredictionPanel(model, controller)
    explanation = ExplanationPanel(model, controller, overlay)
    audit = AuditView(model, controller)
    timeline = TimelineStrip(model, controller)
    window.add_panel("Outcome prediction", prediction, name="prediction")
    window.add_panel("Explanation", explanation, name="explanation")
    window.add_panel("Clinical data", ehr, name="ehr")
    window.add_panel("Audit log", audit, name="audit")
    window.add_panel("X-rays over time", _timeline_dock(timeline, model), Qt.DockWidgetArea.BottomDockWidgetArea,
                     name="timeline")
    window.panels["prediction"].raise_()
    tour = TourOverlay(window)

    original_open = window.open_path

    def open_path(path: str | Path, series_uid: str | None = None) -> int:
        path = Path(path)
        if is_case_folder(path):
            _connect_segmentation(window, controller, model)  # whichever of the two installs ran first
            try:
                controller.open_case(path)
            except Exception as err:  # noqa: BLE001 - shown as one sentence
                window.show_error(err)
            return 0
        return original_open(path, series_uid)

    window.open_path = open_path  # File > Open folder, drag & drop, recent files all route here
    window.add_action("File", "Open demo case", lambda: open_path(DEMO_CASE), name="open_demo_case")
    window.add_action("Tools", "Predict outcome", controller.predict, name="predict", shortcut="Ctrl+R",
                      toolbar=True, tooltip="Features → prediction → explanation for the open case")
    window.add_action("Tools", "Reset case", controller.reset, name="reset_case", toolbar=True,
                      tooltip="Restore the case as first opened (drops edits, masks and predictions)")

    def toggle_full_screen() -> None:
        window.showNormal() if window.isFullScreen() else window.showFullScreen()

    window.add_action("View", "Full screen", toggle_full_screen, name="full_screen", shortcut="F11")
    window.add_action("Help", "Guided tour", tour.start, name="tour")
    workspace = ClinicalWorkspace(model, controller, ehr, prediction, explanation, overlay, timeline, audit, tour)
    window.clinical = workspace
    _connect_segmentation(window, controller, model)
    return workspace


def _connect_segmentation(window, controller: ClinicalController, model: ClinicalModel) -> None:  # noqa: ANN001
    """Mask changes from the segmentation tools (``app.model.labels`` ``gesture_applied``) reach the case.

    Model gestures (box/point/propagate) are AI masks; brush/erase/undo are human edits (Dice vs AI logged).
    """
    labels = getattr(window, "labels", None)
    signal = getattr(labels, "gesture_applied", None)
    if signal is None or getattr(window, "_clinical_seg_connected", False):
        return
    window._clinical_seg_connected = True

    def on_gesture(kind: str, label: object, _z_range: object) -> None:
        image = model.selected
        mask_for = getattr(labels, "mask_for", None)
        if image is None or mask_for is None:
            return
        mask = mask_for(label)
        mask = mask[0] if getattr(mask, "ndim", 2) == 3 else mask
        if str(kind) in ("box", "point", "propagate", "model"):
            controller.set_ai_mask(image.filename, mask)
        else:
            controller.edit_mask(image.filename, mask)

    signal.connect(on_gesture)
