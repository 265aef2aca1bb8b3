"""Open a cohort folder as a patient list, and one patient of it as the clinical case.

The table is read on the task runner ("cohort" channel: large tables never block the window; a new
cohort cancels the old read). Opening a patient hands the folder and the patient id to the clinical
feature (:meth:`ClinicalController.open_case`), so the patient is the same case the demo opens: EHR at
presentation, X-rays by day, predictions, audit log (one per patient).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.model.cohort import Cohort, CohortModel, read_cohort_index
from inference.errors import MedFusionError
from inference.progress import CancelToken, ProgressCallback

if TYPE_CHECKING:
    from app.context import AppContext


class CohortController:
    """Reads cohorts into :class:`CohortModel`; opens the chosen patient through ``context.clinical``."""

    def __init__(self, context: AppContext, model: CohortModel) -> None:
        self.context, self.model = context, model

    def open_cohort(self, folder: Path) -> int:
        """Start reading ``folder``'s patient list (the file opener for cohort folders); returns the request id."""
        folder = Path(folder)

        def work(progress: ProgressCallback, cancel: CancelToken) -> Cohort:
            return read_cohort_index(folder, progress=progress, cancel=cancel)

        self.context.show_status(f"Reading the patient list of {folder.name}…")
        return self.context.runner.submit("cohort", work, self._read, self.context.show_error,
                                          f"Reading {folder.name}/metadata.csv")

    def _read(self, cohort: Cohort) -> None:
        self.model.set_cohort(cohort)
        notes = f" ({'; '.join(cohort.warnings)})" if cohort.warnings else ""
        self.context.show_status(f"{cohort.folder.name}: {len(cohort.patients)} patients, outcomes hidden. "
                                 f"Double-click a patient to open it{notes}.")

    def open_patient(self, patient_id: str) -> bool:
        """Open ``patient_id`` of the open cohort as the clinical case; False (message shown) if it cannot."""
        cohort = self.model.cohort
        clinical = self.context.clinical
        if cohort is None:
            return False
        if clinical is None:
            self.context.show_error(MedFusionError("Patients open in the clinical workspace, which is not installed."))
            return False
        try:
            clinical.open_case(cohort.folder, patient_id)
        except MedFusionError as err:
            self.context.show_error(err)
            return False
        self.model.set_open_patient(patient_id)
        return True
