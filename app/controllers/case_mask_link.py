"""The predictor's lung mask of the X-ray on screen, shown and edited as one label.

Why (issue 15 defect 2): the clinical hook used to copy the mask of whatever label was drawn last into the
case, so a brush stroke on a new label silently replaced the model's lung mask (227,757 → 5,592 pixels)
and two labels never combined. Now, when a case X-ray is shown, the mask the predictor uses for it
(:meth:`ClinicalModel.current_mask`: supplied with the case, made automatically, or edited) is the label
:data:`PREDICTOR_LABEL`. Gestures on that label change the case's mask — model gestures as AI output,
brush/eraser/undo/redo as a human edit (audit entry with Dice AI vs final; the prediction turns stale).
Other labels the user draws are separate and never reach the predictor.

Any mask the case carries is accepted, whoever made it: one supplied with the case, or one a feature sets
later through :meth:`ClinicalController.set_ai_mask` (e.g. an automatic lung segmentation with
``source="automatic"``) — the label follows :attr:`ClinicalModel.masks_changed`, as one undo step. This
module does not depend on any automatic segmenter. When the case has no mask yet the label starts empty
and the status bar says how to make one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.context import AppContext
from app.controllers.clinical import ClinicalController
from app.model.clinical import MASK_SOURCES, CaseImage
from app.model.labels import MODEL_KINDS
from inference.errors import MedFusionError

PREDICTOR_LABEL = "Lungs (used by the predictor)"
PREDICTOR_COLOUR = (40, 200, 255)
# A faint fill with a clear outline: the lungs are what the radiologist reads, and the explanation's
# heat-map (blue = pushes away) is drawn inside them; at the labels' usual 0.45 the cyan fill hid both.
PREDICTOR_OPACITY = 0.12


def _same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def shown_case_image(context: AppContext) -> CaseImage | None:
    """The case X-ray on screen (the selected one, if it is the loaded volume), else ``None``."""
    image, volume = context.case.selected, context.document.volume
    if image is None or volume is None or not volume.is_2d or not _same_path(volume.source, image.path):
        return None
    return image


class CaseMaskLink:
    """Keeps :data:`PREDICTOR_LABEL` of the shown case X-ray and the case's mask for it in step."""

    def __init__(self, context: AppContext, controller: ClinicalController) -> None:
        self.context, self.controller = context, controller
        self.labels, self.case = context.labels, context.case
        self.filename: str | None = None  # the case image whose mask the label holds
        self.value: int | None = None  # the label's value in the current session
        self._syncing = False
        self.labels.session_bound.connect(self._on_bound)
        self.labels.gesture_applied.connect(self._on_gesture)
        self.case.masks_changed.connect(self._on_case_mask)
        self.case.case_changed.connect(lambda _c: self._forget())

    # ---- which image ---------------------------------------------------------------------------
    def shown_image(self) -> CaseImage | None:
        """The case image on screen (the selected one, if it is the loaded volume), else ``None``."""
        return shown_case_image(self.context)

    def label_name(self) -> str | None:
        """The predictor's label as named now (the user may rename it), ``None`` when there is none."""
        if self.value is None:
            return None
        return next((n for n, v in self.labels.values().items() if v == self.value), None)

    def _forget(self) -> None:
        self.filename, self.value = None, None

    # ---- case → label ---------------------------------------------------------------------------
    def _on_bound(self, session: object) -> None:
        self._forget()
        image = self.shown_image()
        if session is None or image is None:
            return
        self.filename = image.filename
        mask = self.case.current_mask(image.filename)
        volume = self.context.document.volume
        assert volume is not None
        pixels = mask if mask is not None and mask.shape == volume.shape[1:] else np.zeros(volume.shape[1:], np.uint8)
        origin = self.case.mask_origins.get(image.filename, "AI")
        try:
            name = self.labels.place_mask(PREDICTOR_LABEL, pixels, origin=origin, colour=PREDICTOR_COLOUR,
                                          undoable=False)
        except MedFusionError as err:
            self.context.show_error(err)
            return
        self.value = self.labels.values()[name]
        self.labels.set_opacity(name, PREDICTOR_OPACITY)
        self.labels.set_active(name)
        if mask is not None:
            source = MASK_SOURCES.get(self.case.mask_sources.get(image.filename, ""), "")
            self.context.show_status(f"{PREDICTOR_LABEL}: {source}. Brush (D) and eraser (E) edit it; Ctrl+Z undoes.")
        else:
            self.context.show_status(f"No lung mask for this X-ray yet: draw the lungs on '{PREDICTOR_LABEL}' "
                                     "(brush, D).")

    def _on_case_mask(self, filename: str) -> None:
        """The case's mask changed elsewhere (an automatic segmentation, another feature): show it, undoably."""
        name = self.label_name()
        if self._syncing or filename != self.filename or name is None or self.labels.session is None:
            return
        mask = self.case.current_mask(filename)
        if mask is None or np.array_equal(mask > 0, self.labels.mask_for(name)[0] > 0):
            return
        self._syncing = True
        try:
            self.labels.place_mask(name, mask, origin=self.case.mask_origins.get(filename, "AI"))
        except MedFusionError as err:
            self.context.show_error(err)
        finally:
            self._syncing = False

    # ---- label → case ---------------------------------------------------------------------------
    def _on_gesture(self, kind: str, label: str, _z_range: object) -> None:
        if self._syncing or self.value is None or self.filename is None:
            return
        if kind == "load":  # a saved session or file replaced the labels: find the predictor's again
            found = self.labels.values().get(PREDICTOR_LABEL)
            if found is None:
                self.value = None
                return
            self.value = found
        if self.labels.values().get(label) != self.value:
            if self.label_name() is None:  # the predictor's label was deleted: the case keeps its mask
                self.value = None
            return
        image = self.shown_image()
        if image is None or image.filename != self.filename:
            return
        mask = self.labels.mask_for(label)[0]
        self._syncing = True
        try:
            if kind in MODEL_KINDS:
                self.controller.set_ai_mask(image.filename, mask)
            else:
                self.controller.edit_mask(image.filename, mask)
        finally:
            self._syncing = False
