"""``install_measurements(window)``: measurement and annotation tools, their layer in each view, the
Measurements panel and the Measure menu.

Tools (left button, any slice view): M ruler, A angle, O ellipse ROI, L long/short axis, T arrow/text.
Measure menu: Delete measurement (Del), Undo/Redo measurement (Ctrl+Alt+Z / Ctrl+Alt+Y: Ctrl+Z stays the
segmentation's), Delete all. Saved sessions and the PDF report get the measurements through the
context's ``session_sections`` and ``report_sections``. Returns the :class:`MeasurementsWorkspace`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QInputDialog, QLineEdit

from app.controllers.measurements import MeasurementsController
from app.measure_tools import (
    AngleTool,
    AnnotateTool,
    AskText,
    AxesTool,
    EllipseTool,
    MeasureTool,
    RulerTool,
    edit_text,
)
from app.model.measurement_values import ValueCache
from app.model.measurements import MeasurementsModel
from app.widgets.measurement_overlay import MeasurementOverlay
from app.widgets.measurements_panel import MeasurementsPanel

if TYPE_CHECKING:
    from app.main_window import MainWindow


@dataclass
class MeasurementsWorkspace:
    """Handles to the installed parts (tests and the demo drive them)."""

    model: MeasurementsModel
    controller: MeasurementsController
    tools: dict[str, MeasureTool]
    overlays: dict[str, MeasurementOverlay]
    panel: MeasurementsPanel
    ask_text: AskText  # replaced by tests: (title, initial) → text or None

    def set_ask_text(self, ask: AskText) -> None:
        """Answer the annotation text questions without a dialog (tests, scripted demos)."""
        self.ask_text = ask
        annotate = self.tools["measure_annotate"]
        assert isinstance(annotate, AnnotateTool)
        annotate.ask_text = ask


def install_measurements(window: MainWindow) -> MeasurementsWorkspace:
    context = window.context
    model = MeasurementsModel()
    values = ValueCache()
    controller = MeasurementsController(context, model, values)
    controller.register()
    overlays = {name: MeasurementOverlay(view, model, values) for name, view in window.views.items()}

    def ask_text(title: str, initial: str) -> str | None:
        text, ok = QInputDialog.getText(window, "Annotation", title, QLineEdit.EchoMode.Normal, initial)
        return text if ok else None

    workspace: MeasurementsWorkspace  # assigned below; the panel's callback reads it when clicked

    def edit(ident: int) -> bool:
        return edit_text(model, ident, workspace.ask_text)

    say = context.show_status
    tools: list[MeasureTool] = [
        RulerTool(context.document, model, overlays, say),
        AngleTool(context.document, model, overlays, say),
        EllipseTool(context.document, model, overlays, say),
        AxesTool(context.document, model, overlays, say),
        AnnotateTool(context.document, model, overlays, say, ask_text),
    ]
    for tool in tools:
        window.register_tool(tool)
    panel = MeasurementsPanel(model, controller, edit, window)
    window.add_panel("Measurements", panel, name="measurements")

    window.add_action("Measure", "Delete measurement", controller.delete_selected, name="measure_delete",
                      shortcut=QKeySequence.StandardKey.Delete,
                      tooltip="Delete the selected measurement or annotation (Del)")
    window.actions["measure_delete"].setShortcuts([QKeySequence(QKeySequence.StandardKey.Delete),
                                                   QKeySequence("Backspace")])
    window.add_action("Measure", "Undo measurement", controller.undo, name="measure_undo", shortcut="Ctrl+Alt+Z")
    redo = window.add_action("Measure", "Redo measurement", controller.redo, name="measure_redo",
                             shortcut="Ctrl+Alt+Y")
    redo.setShortcuts([QKeySequence("Ctrl+Alt+Y"), QKeySequence("Ctrl+Alt+Shift+Z")])
    window.add_action("Measure", "Edit annotation text…", lambda: edit(model.selected), name="measure_edit_text")
    window.add_action("Measure", "Delete all measurements", controller.clear_all, name="measure_clear",
                      tooltip="Delete every measurement of this image (Undo measurement brings them back)")
    workspace = MeasurementsWorkspace(model, controller, {t.name: t for t in tools}, overlays, panel, ask_text)
    return workspace
