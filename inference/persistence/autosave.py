"""Crash recovery: the session is rewritten after every gesture to one recovery file.

Why whole-file atomic rewrites instead of a journal: a session is small (labels, prompts, EHR edits,
a zlib-compressed mask that is mostly zeros), a rewrite costs milliseconds, and an atomic replace
means the recovery file is always a complete, loadable session — at most the gesture being written
when the process died is lost. The compressed label map is reused when a gesture did not change
it (``labelmap_changed=False``), which keeps prompt/EHR-only gestures cheap.
"""

from __future__ import annotations

from pathlib import Path

from inference.errors import MedFusionError
from inference.persistence.session import (
    EncodedLabelmap,
    SessionError,
    SessionState,
    atomic_write_bytes,
    encode_labelmap,
    load_session,
    session_bytes,
)

__all__ = ["RECOVERY_NAME", "Autosaver", "find_recovery"]

RECOVERY_NAME = "recovery.mfsession"


def find_recovery(recovery_dir: Path) -> Path | None:
    """The recovery file left by a session that did not end cleanly, if any (stale temp files removed)."""
    recovery_dir = Path(recovery_dir)
    if not recovery_dir.is_dir():
        return None
    for stale in recovery_dir.glob(f".{RECOVERY_NAME}.*.tmp"):
        stale.unlink(missing_ok=True)
    path = recovery_dir / RECOVERY_NAME
    return path if path.is_file() else None


class Autosaver:
    """Writes the current session to ``recovery_dir/recovery.mfsession`` after each gesture."""

    def __init__(self, recovery_dir: Path) -> None:
        self.recovery_dir = Path(recovery_dir)
        self.path = self.recovery_dir / RECOVERY_NAME
        self._encoded: EncodedLabelmap | None = None

    def save(self, state: SessionState, *, labelmap_changed: bool = True) -> None:
        """Persist ``state`` atomically; errors become one clear :class:`MedFusionError`."""
        encoded = None
        if state.labelmap is not None:
            if labelmap_changed or self._encoded is None or self._encoded.shape != tuple(state.labelmap.shape):
                self._encoded = encode_labelmap(state.labelmap)
            encoded = self._encoded
        try:
            atomic_write_bytes(self.path, session_bytes(state, encoded))
        except OSError as exc:
            raise MedFusionError(f"Autosave to '{self.recovery_dir}' failed ({exc.strerror or exc}).") from exc

    def restore(self) -> SessionState | None:
        """The recovered session, or None when there is nothing (or nothing readable) to recover."""
        path = find_recovery(self.recovery_dir)
        if path is None:
            return None
        try:
            return load_session(path)
        except SessionError:
            return None

    def clear(self) -> None:
        """Remove the recovery file (call on a clean close or after the user declined to restore)."""
        self.path.unlink(missing_ok=True)
        self._encoded = None
