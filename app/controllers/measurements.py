"""The measurement feature's work: values, jump-to, delete/undo, sessions and the report table.

Why a controller between the panel/tools and the model: the same operations are reached from the
panel's buttons, the Measure menu and the keyboard; the session and the PDF report need the
measurements as JSON and as a table. Measurements belong to the image they were drawn on: a new image
puts the current ones aside (they come back with that image) and the value cache is emptied.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.context import AppContext, SessionSection
from app.model.measurement_values import MeasuredValue, ValueCache, length_unit, spacing_known
from app.model.measurements import Measurement, MeasurementsModel
from inference.errors import MedFusionError
from inference.export.report_sections import ReportSection
from inference.io.volume import Volume

SECTION = "measurements"
FORMAT = 1


def image_key(volume: Volume) -> str:
    """Which image measurements belong to: its file and grid (a reloaded file gets its measurements back)."""
    return f"{volume.source}|{volume.shape}|{tuple(round(float(s), 6) for s in volume.spacing)}"


class MeasurementsController:
    """Reads and edits :class:`MeasurementsModel` for the panel, the menu, sessions and the report."""

    def __init__(self, context: AppContext, model: MeasurementsModel, values: ValueCache | None = None) -> None:
        self.context, self.model = context, model
        self.values = values or ValueCache()
        context.document.volume_changed.connect(self._on_volume)
        context.document.overlay_changed.connect(lambda _o: self.values.clear())
        model.committed.connect(self._on_committed)

    # ---- registration (install) ---------------------------------------------------------------
    def register(self) -> None:
        """Join saved sessions and the PDF report through the context's registries."""
        self.context.session_sections[SECTION] = SessionSection(SECTION, self.save_section, self.restore_section)
        self.context.report_sections.append(self.report_section)

    # ---- reading --------------------------------------------------------------------------------
    def value(self, m: Measurement) -> MeasuredValue | None:
        doc = self.context.document
        if doc.volume is None:
            return None
        return self.values.get(m, doc.volume, doc.overlay)

    def where(self, m: Measurement) -> str:
        """"Axial 34/48" (one-based, as the view's corner text), or "Image" on a 2-D image."""
        if m.view == "image":
            return "Image"
        n = self.context.document.shape_xyz[m.normal_axis]
        return f"{m.view.capitalize()} {m.slice_index + 1}/{n}"

    # ---- actions --------------------------------------------------------------------------------
    def jump_to(self, ident: int) -> None:
        """Show the measurement's slice with the crosshair on its centre (other views follow); select it."""
        m = self.model.get(ident)
        if m is None or self.context.document.volume is None:
            return
        centre = np.mean(np.asarray(m.points, float), axis=0)
        centre[m.normal_axis] = m.slice_index
        self.context.document.set_cursor(centre)
        self.model.select(ident)

    def delete_selected(self) -> bool:
        if not self.model.selected:
            self.context.show_status("Select a measurement to delete (click it, or pick it in the list).")
            return False
        return self.model.remove(self.model.selected)

    def undo(self) -> None:
        if not self.model.undo():
            self.context.show_status("Nothing to undo in the measurements.")

    def redo(self) -> None:
        if not self.model.redo():
            self.context.show_status("Nothing to redo in the measurements.")

    def clear_all(self) -> None:
        self.model.clear()  # one undo step: Undo brings them back

    # ---- sessions -------------------------------------------------------------------------------
    def save_section(self) -> dict[str, Any] | None:
        if not len(self.model):
            return None
        return {"format": FORMAT, "items": self.model.to_json()}

    def restore_section(self, data: Any) -> None:
        volume = self.context.document.volume
        if volume is None:
            return
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise MedFusionError("The measurements in this session are from another version and were not restored.")
        try:
            skipped = self.model.load_json(data.get("items", []), self.context.document.shape_xyz)
        except ValueError as exc:
            raise MedFusionError("The measurements in this session are damaged and were not restored.") from exc
        if skipped:
            self.context.show_status(f"{skipped} damaged measurement(s) in the session were left out.")

    # ---- report ---------------------------------------------------------------------------------
    def report_section(self) -> ReportSection | None:
        """The measurements of the image on screen as a table (None when there are none)."""
        volume = self.context.document.volume
        items = self.model.items()
        if volume is None or not items:
            return None
        rows = []
        for m in items:
            value = self.value(m)
            rows.append([str(m.id), m.title, value.summary if value is not None else "", self.where(m)])
        if spacing_known(volume):
            note = ("Lengths and areas in the patient's physical space (pixel spacing and orientation of the "
                    "image); ROI values in " + (volume.units or "image intensity") + "; SD is the sample SD.")
        else:
            note = (f"This image has no pixel spacing: lengths are in pixels ({length_unit(volume)}) and areas "
                    "in pixels, not millimetres.")
        return ReportSection("Measurements and annotations", ["#", "Measurement", "Value", "Where"], rows, note)

    # ---- reactions ------------------------------------------------------------------------------
    def _on_volume(self, volume: Volume | None) -> None:
        self.values.clear()
        self.model.switch_image(image_key(volume) if volume is not None else "")

    def _on_committed(self) -> None:
        session = self.context.session
        if session is not None:
            session.note_change(labelmap=False)  # the recovery file follows measurement gestures too
