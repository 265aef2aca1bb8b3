"""One crash-recovery file per running viewer, and who may take over which file.

Why: with one shared ``recovery.mfsession``, a second window saw the first window's live file, said
"did not close normally", moved it away, and the first window's later gestures were lost. Now every
process (every autosaver) writes ``recovery-<pid>-<token>.mfsession`` and holds an exclusive lock on
its ``.lock`` file for as long as it lives. The OS drops that lock when the process dies — even on
SIGKILL or a power cut — so "stale" means exactly "its lock can be taken": a file is offered for
restore only then, and the starting viewer keeps the lock while it asks, so two starting viewers
never offer (or move) the same file. A pid alone would not do: pids are reused after a reboot.

Files that cannot be read are moved to ``quarantine/`` (never deleted, never blocking start-up).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("medfusion.persistence")

__all__ = ["LEGACY_NAME", "RecoveryClaim", "RecoveryLock", "archive_file", "claim_recovery",
           "new_recovery_path", "recovery_candidates", "sweep_temp_files"]

PREFIX = "recovery-"
SUFFIX = ".mfsession"
LEGACY_NAME = "recovery.mfsession"  # the single shared file of earlier versions (always stale: nobody locks it)


def new_recovery_path(recovery_dir: Path) -> Path:
    """This process's own recovery file name (pid for people, a random token against pid reuse)."""
    return Path(recovery_dir) / f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"


def lock_path_for(recovery_file: Path) -> Path:
    return recovery_file.with_name(recovery_file.name[: -len(SUFFIX)] + ".lock")


class RecoveryLock:
    """An exclusive, non-blocking lock on a lock file, held until :meth:`release` or process death."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self._handle: IO[bytes] | None = handle

    @classmethod
    def try_acquire(cls, path: Path) -> RecoveryLock | None:
        """The lock, or None when another live process (or another autosaver here) holds it."""
        try:
            handle = open(path, "a+b")  # noqa: SIM115 - kept open: the lock lives as long as the handle
        except OSError:
            return None
        try:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # pragma: no cover - Windows
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            handle.close()
            return None
        return cls(path, handle)

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self, *, remove: bool = False) -> None:
        """Let go; ``remove`` deletes the lock file first (only once its recovery file is gone)."""
        if self._handle is None:
            return
        if remove:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:  # pragma: no cover - Windows cannot delete an open file
                pass
        self._handle.close()  # closing drops the lock
        self._handle = None


def recovery_candidates(recovery_dir: Path) -> list[Path]:
    """Every recovery file in the folder (live or not), newest first."""
    recovery_dir = Path(recovery_dir)
    if not recovery_dir.is_dir():
        return []
    files = [p for p in recovery_dir.glob(f"{PREFIX}*{SUFFIX}") if p.is_file()]
    legacy = recovery_dir / LEGACY_NAME
    if legacy.is_file():
        files.append(legacy)

    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    return sorted(files, key=mtime, reverse=True)


def sweep_temp_files(recovery_file: Path) -> None:
    """Remove half-written temp files of ``recovery_file`` (call only while holding its lock)."""
    for stale in recovery_file.parent.glob(f".{recovery_file.name}.*.tmp"):
        stale.unlink(missing_ok=True)


@dataclass
class RecoveryClaim:
    """A stale recovery file this process has taken over (it holds the file's lock)."""

    path: Path
    lock: RecoveryLock

    def release(self) -> None:
        """Done with it: drop the lock (and the lock file once the recovery file was moved away)."""
        self.lock.release(remove=not self.path.exists())


def claim_recovery(recovery_dir: Path) -> RecoveryClaim | None:
    """The newest recovery file whose writer is gone, locked for this process; None when there is none.

    Files of live processes (this one's other windows included) are skipped.
    """
    for candidate in recovery_candidates(recovery_dir):
        lock = RecoveryLock.try_acquire(lock_path_for(candidate))
        if lock is None:
            continue  # its writer is alive
        if not candidate.is_file():  # another starting viewer moved it meanwhile
            lock.release(remove=True)
            continue
        sweep_temp_files(candidate)
        return RecoveryClaim(candidate, lock)
    return None


def archive_file(path: Path, archive_dir: Path, why: str, keep: int = 5) -> Path | None:
    """Move ``path`` to ``archive_dir/<why>-<time>-<pid>-<n>.mfsession``, keeping the newest ``keep``.

    Names are unique per process and call, so two windows closing in the same second keep both files.
    """
    try:
        archive_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            target = archive_dir / f"{why}-{stamp}-{os.getpid()}-{n}{SUFFIX}"
            if not target.exists():
                break
        os.replace(path, target)
        old = sorted(archive_dir.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)
        for stale in old[:-keep]:
            stale.unlink(missing_ok=True)
        return target
    except OSError as exc:
        log.warning("could not move %s to %s: %s", path.name, archive_dir, exc)
        return None
