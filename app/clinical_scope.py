"""When the clinician workspace applies: the panels and Predict follow the image on screen.

Why (issue 15 defect 5): a CT session showed the X-ray prediction panels and Predict silently did
nothing. The outcome model reads a case's chest X-rays and clinical data only, so:

- no case open: the clinical panels are hidden and Predict is disabled, its tooltip saying what it needs;
- a case open and one of its X-rays on screen: everything is shown;
- a case open but another image on screen (a CT, another file): the prediction, explanation, clinical data
  and audit panels are hidden, "X-rays over time" stays so the case is one click away, and Predict says
  why it is disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.controllers.case_mask_link import CaseMaskLink

if TYPE_CHECKING:
    from app.main_window import MainWindow

CASE_PANELS = ("prediction", "explanation", "ehr", "audit")
NO_CASE = ("Predict needs a clinical case (a folder with metadata.csv and images/, or File > Open demo case): "
           "the outcome model reads chest X-rays and clinical data, not CT.")
NOT_CASE_IMAGE = ("The image on screen is not one of the case's X-rays: choose one in 'X-rays over time' "
                  "to see and update the prediction.")
PREDICT_TIP = "Features → prediction → explanation for the open case"


def follow_shown_image(window: MainWindow, link: CaseMaskLink) -> None:
    """Show/hide the clinical panels and enable Predict as the image on screen and the case change."""
    context = window.context
    predict = window.actions["predict"]

    def update(*_args: object) -> None:
        case_open = context.case.case is not None
        volume = context.document.volume
        case_image = link.shown_image() is not None or (case_open and volume is None)
        for name in CASE_PANELS:
            window.panels[name].setVisible(case_open and case_image)
        window.panels["timeline"].setVisible(case_open)
        ready = case_open and case_image
        predict.setEnabled(ready)
        tip = PREDICT_TIP if ready else NOT_CASE_IMAGE if case_open else NO_CASE
        predict.setToolTip(tip)
        predict.setStatusTip(tip)
        if case_open and case_image:
            window.panels["prediction"].raise_()

    context.document.volume_changed.connect(update)
    context.case.case_changed.connect(update)
    context.case.image_selected.connect(update)
    update()
