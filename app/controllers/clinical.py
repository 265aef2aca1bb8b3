"""Doctor-in-the-loop controller: case → prediction → explanation on the worker, audit for every step.

Panels never call the predictor; they call this controller, which runs the work on the window's
``TaskRunner`` (channels "predict" and "explain"), writes the results into :class:`ClinicalModel`,
and appends one hash-chained :class:`~inference.audit.log.AuditLog` entry per AI output and per human
change (mask edit with Dice AI vs final, EHR what-if, TENT, reset, prediction before/after).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from app.model.clinical import (
    OUTCOMES,
    ClinicalCase,
    ClinicalModel,
    ExplanationResult,
    PredictionState,
    load_case,
)
from app.workers import TaskRunner
from inference.audit.log import AuditLog
from inference.audit.metrics import dice
from inference.audit.naming import audit_path
from inference.clinical.base_rates import base_rates_for
from inference.errors import ModelLoadError
from inference.progress import CancelToken, ProgressCallback
from inference.settings import Settings, default_config_dir

log = logging.getLogger("medfusion.app.clinical")
METHODS = {"ig": "Integrated Gradients", "occlusion": "Occlusion", "gradshap": "GradientSHAP"}


class CasePredictor(Protocol):
    """What the controller needs from the fusion predictor (see ``app/controllers/clinical_predictor.py``)."""

    actor: str  # audit actor, e.g. "AI:medfusion-1.0"
    reliability_pngs: dict[str, Path]  # outcome → reliability diagram of the shipped model
    model_card: Path | None

    def predict(
        self, case: ClinicalCase, ehr: dict, masks: dict[str, np.ndarray], alpha: float, tent: bool,
        progress: ProgressCallback, cancel: CancelToken | None,
    ) -> PredictionState: ...

    def explain(
        self, case: ClinicalCase, ehr: dict, masks: dict[str, np.ndarray], outcome: str, method: str,
        progress: ProgressCallback, cancel: CancelToken | None,
    ) -> ExplanationResult: ...


class ClinicalHost(Protocol):
    """The parts of the application context (:class:`app.context.AppContext`) the controller uses
    (a fake in tests is fine)."""

    @property
    def runner(self) -> TaskRunner: ...
    @property
    def settings(self) -> Settings: ...

    def open_path(self, path: Path) -> int: ...
    def show_error(self, error: BaseException) -> None: ...
    def show_status(self, message: str) -> None: ...


def audit_path_for(case: ClinicalCase, root: Path | None = None) -> Path:
    """One log per study: ``<config dir>/audit/study-<hash>.jsonl`` (never inside the data; no patient ID)."""
    return audit_path(root or default_config_dir() / "audit", case.patient_id, case.folder)


class ClinicalController:
    """Runs the clinical loop; ``predictor_loader`` builds the predictor once, on first use."""

    def __init__(
        self,
        host: ClinicalHost,
        model: ClinicalModel,
        predictor_loader: Callable[[], CasePredictor],
        *,
        audit_root: Path | None = None,
    ) -> None:
        self.host = host
        self.model = model
        self._loader = predictor_loader
        self._predictor: CasePredictor | None = None
        self.audit_root = audit_root
        self.audit: AuditLog | None = None
        self.alpha = float(host.settings.conformal_alpha)
        self.tent = False
        self.method = "ig"
        self.outcome = next(iter(OUTCOMES))
        self.on_tent_warning: Callable[[], bool] = lambda: True  # UI asks the user; tests accept
        self._explain_after_predict = True

    @property
    def user(self) -> str:
        return f"user:{self.host.settings.user_name or 'clinician'}"

    @property
    def predictor(self) -> CasePredictor:
        if self._predictor is None:
            self._predictor = self._loader()
            self.model.base_rates = base_rates_for(self._predictor)
        return self._predictor

    def predictor_available(self) -> bool:
        try:
            self.predictor  # noqa: B018 - load on demand
        except ModelLoadError:
            return False
        return True

    # ---- case --------------------------------------------------------------------------------
    def open_case(self, folder: Path, patient_id: str | None = None) -> ClinicalCase:
        """Open a case folder (metadata.csv + images/), or patient ``patient_id`` of a cohort folder; shows
        its first image; bundled masks load as reference."""
        case = load_case(Path(folder), patient_id)
        self.audit = AuditLog(audit_path_for(case, self.audit_root))
        self._audit("system:viewer", "case_open", f"patient {case.patient_id}",
                    {"folder": case.folder.name, "images": [im.filename for im in case.images]})
        self.model.set_case(case)
        from inference.io.loader import open_image

        for im in case.images:
            if im.mask_path is not None:
                mask = open_image(im.mask_path).array[0]
                self._audit("system:bundled-annotation", "reference_mask", im.filename,
                            {"pixels": int((mask > 0).sum()), "source": str(im.mask_path.name)})
                self.model.set_mask(im.filename, mask, ai=True, source="supplied")
        if case.images:
            self.show_image(case.images[0].filename)
        return case

    def show_image(self, filename: str) -> None:
        image = self.model.select_image(filename)
        self.host.open_path(image.path)

    def reset(self) -> None:
        """Back to the state right after opening: edits, masks, prediction and explanation dropped."""
        case = self.model.case
        if case is None:
            return
        self.host.runner.cancel("predict")
        self.host.runner.cancel("explain")
        self._audit(self.user, "reset", f"patient {case.patient_id}", {})
        self.tent = False
        self.alpha = float(self.host.settings.conformal_alpha)
        self.open_case(case.folder, case.patient_id if case.cohort else None)

    # ---- human changes -----------------------------------------------------------------------
    def set_ai_mask(self, filename: str, mask: np.ndarray, actor: str = "AI:litemedsam", source: str = "model") -> None:
        """A mask made by a model (a prompt in the viewer, or ``source="automatic"``: the automatic lung
        segmenter); logged as an AI output."""
        self._audit(actor, "ai_mask", filename, {"pixels": int((np.asarray(mask) > 0).sum()), "source": source})
        self.model.set_mask(filename, mask, ai=True, source=source)
        self._maybe_repredict()

    def edit_mask(self, filename: str, mask: np.ndarray) -> float:
        """A human correction: logs Dice(AI mask, final mask), marks the prediction stale; returns the Dice."""
        final = (np.asarray(mask) > 0).astype(np.uint8)
        ai = self.model.ai_masks.get(filename)
        score = float(dice(ai, final)) if ai is not None and ai.shape == final.shape else float("nan")
        self._audit(self.user, "mask_edit", filename,
                    {"dice_ai_vs_final": score, "pixels": int(final.sum())})
        self.model.set_mask(filename, final, ai=False)
        self._maybe_repredict()
        return score

    def edit_ehr(self, name: str, value: float | str | None) -> None:
        old, new = self.model.ehr_change(name, value)
        self._audit(self.user, "ehr_edit", name, {"before": old.value, "after": new.value, "what_if": True})
        self.model.edit_ehr(name, value)
        self._maybe_repredict()

    def set_alpha(self, alpha: float) -> None:
        """Change the conformal level; a fresh prediction shows the sets at that level."""
        if abs(alpha - self.alpha) < 1e-9:
            return
        self.alpha = alpha
        self._audit(self.user, "set_alpha", "conformal", {"alpha": alpha})
        if self.model.prediction is not None:
            self.predict(explain=False)

    def set_tent(self, on: bool) -> bool:
        """TENT adapts the model's normalisation layers to this case; the user must confirm it."""
        if on and not self.on_tent_warning():
            return False
        self.tent = on
        self._audit(self.user, "tent", "predictor", {"enabled": on})
        if self.model.prediction is not None:
            self.predict(explain=False)
        return True

    def set_method(self, method: str, outcome: str | None = None) -> None:
        self.method = method
        self.outcome = outcome or self.outcome

    # ---- AI outputs --------------------------------------------------------------------------
    def predict(self, explain: bool = True) -> None:
        """Features → prediction (→ explanation) on the worker; results replace the stale ones."""
        case = self.model.case
        if case is None:
            self.host.show_status("Predict needs a clinical case: open a case folder or File > Open demo case.")
            return
        try:
            predictor = self.predictor
        except ModelLoadError as err:
            self.host.show_error(err)
            return
        ehr, masks = self.model.ehr_inputs(), self.model.predictor_masks()
        alpha, tent = self.alpha, self.tent
        before = self.model.prediction.summary() if self.model.prediction is not None else None
        self._explain_after_predict = explain

        def work(progress: ProgressCallback, cancel: CancelToken) -> PredictionState:
            state = predictor.predict(case, ehr, masks, alpha, tent, progress, cancel)
            if tent:
                state.without_tent = predictor.predict(case, ehr, masks, alpha, False, progress, cancel).outcomes
            return state

        self.host.runner.submit(
            "predict", work, lambda s: self._predicted(s, before), self.host.show_error, "Predicting outcomes"
        )

    def _predicted(self, state: PredictionState, before: dict | None) -> None:
        edits = {k: v.value for k, v in self.model.ehr.items() if v.edited}
        self.model.base_rates = base_rates_for(self.predictor)  # shown beside each probability
        patient = self.model.case.patient_id if self.model.case is not None else ""
        self._audit(self.predictor.actor, "prediction", f"patient {patient}", {
            "alpha": state.alpha, "tent": state.tent, "before": before, "after": state.summary(),
            "sets": {k: sorted(v.prediction_set) for k, v in state.outcomes.items()},
            "gate_image": state.gate, "ehr_edits": edits,
            "edited_masks": sorted(k for k in self.model.masks if k not in self.model.ai_masks
                                   or not np.array_equal(self.model.masks[k], self.model.ai_masks[k])),
        })
        self.model.set_prediction(state)  # after the entry is written: the audit view refreshes on this signal
        self.host.show_status("Prediction updated.")
        if self._explain_after_predict:
            self.explain()

    def explain(self, method: str | None = None, outcome: str | None = None) -> None:
        case = self.model.case
        if case is None:
            return
        self.set_method(method or self.method, outcome)
        predictor = self.predictor
        ehr, masks, outcome_, method_ = self.model.ehr_inputs(), self.model.predictor_masks(), self.outcome, self.method

        def work(progress: ProgressCallback, cancel: CancelToken) -> ExplanationResult:
            return predictor.explain(case, ehr, masks, outcome_, method_, progress, cancel)

        self.host.runner.submit(
            "explain", work, self._explained, self.host.show_error, f"Explaining ({METHODS[method_]})"
        )

    def _explained(self, result: ExplanationResult) -> None:
        self._audit(self.predictor.actor, "explanation", result.outcome, {
            "method": result.method, "top_ehr": result.ehr[:3], "gate_image": result.gate,
        })
        self.model.set_explanation(result)

    def _maybe_repredict(self) -> None:
        pred = self.model.prediction
        if pred is not None and pred.stale and self.host.settings.auto_repredict:
            self.predict()

    def _audit(self, actor: str, action: str, target: str, details: dict) -> None:
        """Written before the model is told of the change: panels that refresh on the model's signals
        (the audit view) then already read the new entry."""
        if self.audit is not None:
            self.audit.append(actor, action, target, details)
