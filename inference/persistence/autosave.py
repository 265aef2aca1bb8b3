"""Crash recovery: the session is rewritten after every gesture to this process's own recovery file.

Why whole-file atomic rewrites instead of a journal: a session is small (labels, prompts, EHR edits,
a zlib-compressed mask that is mostly zeros), a rewrite costs milliseconds, and an atomic replace
means the recovery file is always a complete, loadable session — at most the gesture being written
when the process died is lost. The compressed label map is reused when a gesture did not change
it (``labelmap_changed=False``), which keeps prompt/EHR-only gestures cheap.

Each autosaver owns one file, ``recovery-<pid>-<token>.mfsession``, locked while it lives
(``inference.persistence.recovery``): several windows or viewers share the folder without ever taking
over each other's live work.
"""

from __future__ import annotations

from pathlib import Path

from inference.errors import MedFusionError
from inference.persistence.recovery import (
    RecoveryClaim,
    RecoveryLock,
    claim_recovery,
    lock_path_for,
    new_recovery_path,
)
from inference.persistence.session import (
    EncodedLabelmap,
    SessionError,
    SessionState,
    atomic_write_bytes,
    encode_labelmap,
    load_session,
    session_bytes,
)

__all__ = ["Autosaver", "find_recovery"]


def find_recovery(recovery_dir: Path) -> Path | None:
    """The newest recovery file left by a viewer that is no longer running (None: nothing to recover).

    Live processes' files are never reported; half-written temp files of dead ones are removed. Use
    :func:`inference.persistence.recovery.claim_recovery` to also keep others away while restoring.
    """
    claim = claim_recovery(recovery_dir)
    if claim is None:
        return None
    claim.lock.release()  # keep the lock file: the recovery file is still there
    return claim.path


class Autosaver:
    """Writes the current session to this process's recovery file after each gesture."""

    def __init__(self, recovery_dir: Path) -> None:
        self.recovery_dir = Path(recovery_dir)
        self.path = new_recovery_path(self.recovery_dir)
        self._lock: RecoveryLock | None = None  # taken before the first write, held until clear()
        self._encoded: EncodedLabelmap | None = None

    def _own(self) -> None:
        if self._lock is None:
            self.recovery_dir.mkdir(parents=True, exist_ok=True)
            self._lock = RecoveryLock.try_acquire(lock_path_for(self.path))
            if self._lock is None:
                raise OSError(f"cannot lock {lock_path_for(self.path).name}")

    def save(self, state: SessionState, *, labelmap_changed: bool = True) -> None:
        """Persist ``state`` atomically; errors become one clear :class:`MedFusionError`."""
        encoded = None
        if state.labelmap is not None:
            if labelmap_changed or self._encoded is None or self._encoded.shape != tuple(state.labelmap.shape):
                self._encoded = encode_labelmap(state.labelmap)
            encoded = self._encoded
        try:
            self._own()
            atomic_write_bytes(self.path, session_bytes(state, encoded))
        except OSError as exc:
            raise MedFusionError(f"Autosave to '{self.recovery_dir}' failed ({exc.strerror or exc}).") from exc

    def restore(self) -> SessionState | None:
        """A recovered session of a viewer that is gone, or None (nothing, or nothing readable)."""
        claim: RecoveryClaim | None = claim_recovery(self.recovery_dir)
        if claim is None:
            return None
        try:
            return load_session(claim.path)
        except SessionError:
            return None
        finally:
            claim.release()

    def clear(self) -> None:
        """Remove this process's recovery file and its lock (clean close, or work archived elsewhere)."""
        self.path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release(remove=True)
            self._lock = None
        self._encoded = None
