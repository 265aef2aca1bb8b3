"""Saved sessions and crash recovery for the viewer: nothing a radiologist did is lost.

Why a recovery file rewritten after every gesture (not on a timer): a crash then costs at most the
gesture being written (see ``inference.persistence.autosave``). Changes from the context's labels
model (``changed`` / ``gesture_applied``) and clinical case (EHR edits, masks, predictions) are
coalesced per event-loop turn into one atomic write. A clean exit moves the recovery file to
``sessions/`` (so the next start does not offer a restore, and the work can still be reopened);
after a crash the file stays and the next start offers to restore it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.context import AppContext
from app.model.clinical import ClinicalModel, OutcomeResult, PredictionState
from app.model.label_snapshot import restore_labels, snapshot_labels
from app.model.labels import LabelsModel
from inference.errors import MedFusionError
from inference.io.volume import Volume
from inference.persistence import (
    Autosaver,
    SessionError,
    SessionState,
    archive_file,
    check_image,
    claim_recovery,
    find_recovery,
    load_session,
)
from inference.persistence import save_session as write_session
from inference.settings import default_config_dir

log = logging.getLogger("medfusion.app.session")
KEEP_ARCHIVED = 5


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _prompts_of(labels_model: LabelsModel, n_slices: int) -> list[dict[str, Any]]:
    """Boxes/clicks per label and slice, as the segmentation session keeps them (for the record)."""
    session = labels_model.session
    if session is None:
        return []
    prompt = session.prompt
    rows = []
    for name in labels_model.names():
        for z in range(n_slices):
            try:
                p = prompt(name, z)
            except MedFusionError:
                break
            if p is not None:
                rows.append({"label": name, "z": z, **_jsonable(p)})
    return rows


class SessionController(QObject):
    """Builds/applies :class:`SessionState`, autosaves, offers crash recovery, archives on clean exit."""

    _save_failed = Signal(str)  # from the autosave thread, delivered on the UI thread

    def __init__(self, context: AppContext, recovery_dir: Path | None = None, parent: QObject | None = None
                 ) -> None:
        super().__init__(parent)
        self.context = context
        self.recovery_dir = Path(recovery_dir) if recovery_dir else default_config_dir() / "recovery"
        self.archive_dir = self.recovery_dir.parent / "sessions"
        self.autosaver = Autosaver(self.recovery_dir)
        self.gesture = 0
        self.last_error: str = ""
        self._signature: tuple[int, str] | None = None  # (id(volume), signature)
        self._pending: SessionState | None = None  # restore waiting for its image to load
        self._labelmap_dirty = True
        self._table_key: tuple = ()
        self._ehr_key: tuple = ()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.autosave_now)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medfusion-autosave")
        self._last_write: Future | None = None
        self._signature_lock = threading.Lock()
        self._save_failed.connect(self._on_save_failed)
        # Only gestures count: binding a fresh image (labels ``changed`` with an empty table) or opening a
        # case does not overwrite the recovery file, so the previous image's unsaved work survives until
        # the first gesture on the new one.
        context.document.volume_changed.connect(self._on_volume)
        context.closing.connect(self.clean_exit)
        context.labels.gesture_applied.connect(lambda *_a: self.note_change(labelmap=True))
        context.labels.changed.connect(self._on_labels_changed)
        context.case.case_changed.connect(self._on_case)
        context.case.ehr_changed.connect(self._on_ehr)
        context.case.prediction_changed.connect(lambda state: self.note_change(False) if state is not None else None)

    def _case(self) -> ClinicalModel | None:
        """The clinical case model when a case is open."""
        return self.context.case if self.context.case.case is not None else None

    # ---- change tracking ---------------------------------------------------------------------
    def _on_labels_changed(self) -> None:
        """Renames / colours / new labels (no gesture): saved when the label table really changed."""
        labels = self.context.labels
        try:
            key = tuple((n, v, tuple(labels.colour(n)), labels.origin(n)) for n, v in labels.values().items())
        except MedFusionError:
            key = ()
        if key != self._table_key:
            self._table_key = key
            if key:
                self.note_change(labelmap=True)

    def _on_case(self, _case: object) -> None:
        self._ehr_key = ()

    def _on_ehr(self) -> None:
        key = tuple(sorted((k, str(v.value)) for k, v in self.context.case.ehr.items() if v.edited))
        if key != self._ehr_key:
            self._ehr_key = key
            self.note_change(labelmap=False)

    def note_change(self, labelmap: bool = True) -> None:
        """One user gesture happened: count it and autosave on the next event-loop turn."""
        if self.context.document.volume is None:
            return
        if self._pending is not None and not self.context.runner.busy:
            self._pending = None  # the restore's image never arrived (load failed/cancelled): keep saving
        self.gesture += 1
        self._labelmap_dirty = self._labelmap_dirty or labelmap
        if self.context.settings.autosave:
            self._timer.start()

    def autosave_now(self, wait: bool = False) -> bool:
        """Snapshot now (UI thread, a copy) and write it on the autosave thread (in order, one at a time),
        so compressing a large CT mask never stalls the brush; ``wait`` blocks until it is on disk."""
        self._timer.stop()
        if self._pending is not None:
            return False  # a restore is still loading its image: do not overwrite the file being restored
        state = self.build_state(with_signature=False)
        volume = self.context.document.volume
        if state is None or volume is None:
            return False
        dirty, self._labelmap_dirty = self._labelmap_dirty, False
        self._last_write = self._executor.submit(self._write, state, volume, dirty)
        return self.flush() if wait else True

    def _write(self, state: SessionState, volume: Volume, labelmap_changed: bool) -> bool:
        """Autosave thread: signature (hashed once per image), compress, atomic write."""
        try:
            state.image_signature = self._image_signature(volume)
            self.autosaver.save(state, labelmap_changed=labelmap_changed)
        except MedFusionError as err:
            self._save_failed.emit(str(err))
            return False
        except Exception as exc:  # noqa: BLE001 - reported as one sentence, the viewer keeps working
            log.exception("autosave failed")
            self._save_failed.emit(f"Autosave failed ({type(exc).__name__}); save the session by hand.")
            return False
        return True

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait for the latest autosave write (True when it reached the disk)."""
        future = self._last_write
        if future is None:
            return True
        try:
            return bool(future.result(timeout_s))
        except FutureTimeout:
            return False

    def _on_save_failed(self, message: str) -> None:
        if message != self.last_error:
            self.last_error = message
            self.context.show_status(message)

    # ---- state <-> viewer --------------------------------------------------------------------
    def _image_signature(self, volume: Volume) -> str:
        with self._signature_lock:  # UI thread (save session) and autosave thread
            if self._signature is None or self._signature[0] != id(volume):
                self._signature = (id(volume), volume.signature())
            return self._signature[1]

    def build_state(self, with_signature: bool = True) -> SessionState | None:
        """Everything needed to continue: image, masks + labels (with origins), prompts, EHR, predictions."""
        volume = self.context.document.volume
        if volume is None:
            return None
        labels_model = self.context.labels
        snap = snapshot_labels(labels_model, self.context.settings.segmentation_backend)
        prompts = _prompts_of(labels_model, volume.shape[0])
        state = SessionState(image_source=str(volume.source), image_signature=self._image_signature(volume) if with_signature else "",
                             labelmap=snap.labelmap if snap is not None else None,
                             labels=snap.labels if snap is not None else [], prompts=prompts, gesture=self.gesture)
        state.sections = {name: data for name, section in self.context.session_sections.items()
                          if (data := section.save()) is not None}  # features' parts (e.g. measurements)
        model, controller = self._case(), self.context.clinical
        if model is not None and model.case is not None:
            state.ehr_edits = {
                "case_folder": str(model.case.folder),
                "patient_id": model.case.patient_id if model.case.cohort else "",  # one patient of a cohort
                "image": model.selected.filename if model.selected is not None else "",
                "values": {k: v.value for k, v in model.ehr.items() if v.edited},
            }
            if controller is not None and controller.audit is not None:
                state.audit_log_path = str(controller.audit.path)
            pred = model.prediction
            if pred is not None:
                state.predictions = [
                    {"outcome": name, "probability": float(res.probability), "set": sorted(res.prediction_set),
                     "alpha": float(pred.alpha), "model_version": pred.model_version, "stale": bool(pred.stale)}
                    for name, res in pred.outcomes.items()]
        return state

    def save_session(self, path: Path) -> Path | None:
        """File > Save session: the state now, atomically."""
        state = self.build_state()
        if state is None:
            self.context.show_error(MedFusionError("Open an image before saving a session."))
            return None
        try:
            written = write_session(state, Path(path))
        except MedFusionError as err:
            self.context.show_error(err)
            return None
        self.context.show_status(f"Session saved to {written}.")
        return written

    def open_session(self, path: Path) -> bool:
        """File > Open session: reopen the image, then put masks, EHR edits and predictions back."""
        try:
            state = load_session(Path(path), max_bytes=self._max_bytes())
        except MedFusionError as err:
            self.context.show_error(err)
            return False
        return self.restore(state)

    def _max_bytes(self) -> int:
        return max(int(self.context.settings.memory_budget_mb), 1) * 2**20

    def restore(self, state: SessionState) -> bool:
        """Open the session's image (asynchronously); :meth:`_apply` runs once it has loaded."""
        case_folder = state.ehr_edits.get("case_folder", "") if state.ehr_edits else ""
        target = Path(case_folder) if case_folder else Path(state.image_source)
        if not state.image_source or not target.exists():
            self.context.show_error(SessionError(
                f"The image of this session is no longer at '{target}'; masks cannot be restored."))
            return False
        self._pending = state
        volume = self.context.document.volume
        if not case_folder and volume is not None and str(volume.source) == state.image_source:
            self._apply(volume)  # already open
            return True
        patient = str(state.ehr_edits.get("patient_id") or "") if state.ehr_edits else ""
        if case_folder and patient and self.context.clinical is not None:
            try:  # one patient of a cohort folder: opening the folder itself would list the cohort
                self.context.clinical.open_case(target, patient)
            except MedFusionError as err:
                self._pending = None
                self.context.show_error(err)
                return False
        else:
            self.context.open_path(target)
        case, controller = self._case(), self.context.clinical
        image = state.ehr_edits.get("image") if state.ehr_edits else None
        if case is not None and controller is not None and image and case.selected is not None \
                and case.selected.filename != image:
            controller.show_image(image)
        return True

    def _on_volume(self, volume: Volume | None) -> None:
        self._labelmap_dirty = True  # a new image: never reuse the previous image's compressed masks
        if volume is None or self._pending is None:
            return
        if str(volume.source) == self._pending.image_source:
            # after every other volume_changed handler (the labels model binds its session there)
            QTimer.singleShot(0, lambda: self._apply(volume) if self.context.document.volume is volume else None)
        else:  # another image was opened meanwhile: the restore is abandoned, autosave resumes
            self._pending = None
            self.context.show_status("Session restore abandoned: another image was opened.")

    def _apply(self, volume: Volume) -> None:
        state, self._pending = self._pending, None
        if state is None:
            return
        try:
            check_image(state, self._image_signature(volume), volume.shape)
            case = self._case()
            if case is not None and state.ehr_edits:
                for name, value in state.ehr_edits.get("values", {}).items():
                    if name in case.ehr:
                        case.edit_ehr(name, value)
            if state.labelmap is not None and state.labels:
                # the clinical feature hears the restored masks through ``labels.gesture_applied``
                restore_labels(self.context.labels, state.labelmap, state.labels)
            if case is not None and state.predictions:
                self._restore_predictions(case, state.predictions)
            for name, data in state.sections.items():  # sections of features not installed are ignored
                if name in self.context.session_sections:
                    self.context.session_sections[name].restore(data)
        except MedFusionError as err:
            self.context.show_error(err)
            return
        self.gesture = max(self.gesture, state.gesture)
        self._labelmap_dirty = True
        self.autosave_now()  # the recovery file now holds the restored state
        self.context.show_status(f"Session restored ({len(state.labels)} label(s), saved {state.saved_at}).")

    @staticmethod
    def _restore_predictions(model: ClinicalModel, rows: list[dict[str, Any]]) -> None:
        outcomes = {r["outcome"]: OutcomeResult(r["outcome"], float(r["probability"]),
                                                frozenset(int(c) for c in r.get("set", [])))
                    for r in rows}
        state = PredictionState(outcomes=outcomes, alpha=float(rows[0].get("alpha", 0.1)),
                                model_version=str(rows[0].get("model_version", "")))
        model.set_prediction(state)
        if any(r.get("stale") for r in rows):
            model.mark_stale("restored from a session saved after inputs changed")

    # ---- crash recovery ----------------------------------------------------------------------
    def recovery_file(self) -> Path | None:
        return find_recovery(self.recovery_dir)

    def offer_restore(self) -> bool:
        """On start: if a viewer that is no longer running left work behind, ask whether to restore it.

        Live windows' files are never offered; a file that cannot be read is quarantined (never blocks start).
        """
        claim = claim_recovery(self.recovery_dir)
        if claim is None:
            return False
        try:
            return self._offer(claim.path)
        finally:
            claim.release()

    def _offer(self, path: Path) -> bool:
        try:
            state = load_session(path, max_bytes=self._max_bytes())
        except Exception as err:  # noqa: BLE001 - SessionError expected; anything else must not stop start-up
            if not isinstance(err, SessionError):
                log.exception("unreadable recovery file")
            self._archive(path, "damaged", self.archive_dir / "quarantine")
            self.context.show_status(f"{err if isinstance(err, SessionError) else 'The recovery file is damaged.'} "
                                    f"It was moved to {self.archive_dir / 'quarantine'}.")
            return False
        from PySide6.QtWidgets import QMessageBox

        image = Path(state.image_source).name or "an image"
        answer = QMessageBox.question(
            self.context.host.dialog_parent(), "Restore previous session?",
            f"MedFusion Viewer did not close normally. Restore the work on {image} "
            f"({len(state.labels)} label(s), {state.gesture} change(s), saved {state.saved_at})?\n\n"
            f"If you choose No, it is kept in {self.archive_dir} and can be opened with File > Open session.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            self._archive(path, "recovered")  # this window's own recovery file takes over from here
            return self.restore(state)
        self._archive(path, "declined")
        return False

    def _archive(self, path: Path, why: str, folder: Path | None = None) -> Path | None:
        """Move a recovery file into ``sessions/`` (keeping the newest few) instead of deleting work."""
        return archive_file(path, folder or self.archive_dir, why, keep=KEEP_ARCHIVED)

    def clean_exit(self) -> None:
        """Normal close: flush pending changes, then archive the recovery file (no restore offer next time)."""
        if self._timer.isActive():
            self.autosave_now()
        self.flush()
        path = self.autosaver.path
        if path.is_file():
            self._archive(path, "last-session")
        self.autosaver.clear()
