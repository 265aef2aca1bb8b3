"""Several viewers share the recovery folder without taking over each other's live work (issue 14,
item 3): one recovery file per process, stale only once its process is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from inference.persistence import Autosaver, SessionState, claim_recovery, find_recovery, load_session
from inference.persistence.recovery import LEGACY_NAME, archive_file, recovery_candidates

REPO = Path(__file__).resolve().parents[2]

# A "window": saves one gesture per line it reads on stdin and reports its file and gesture count.
WINDOW = """
import sys
from pathlib import Path
import numpy as np
from inference.persistence import Autosaver, SessionState

saver = Autosaver(Path(sys.argv[1]))
state = SessionState(image_source=sys.argv[2], labelmap=np.zeros((2, 16, 16), np.uint8))
for k, _line in enumerate(sys.stdin, start=1):
    state.labelmap[0, k % 16, :] = 1
    state.gesture = k
    saver.save(state)
    print(saver.path, k, flush=True)
"""


class Window:
    """A viewer process with an autosaver in ``recovery``."""

    def __init__(self, recovery: Path, image: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen([sys.executable, "-c", WINDOW, str(recovery), image], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
        self.path: Path | None = None

    def gesture(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        path, k = self.proc.stdout.readline().split()
        self.path = Path(path)
        return int(k)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()


def test_second_window_never_takes_the_first_windows_live_file(tmp_path: Path) -> None:
    recovery = tmp_path / "recovery"
    first, second = Window(recovery, "/data/first"), Window(recovery, "/data/second")
    try:
        for _ in range(3):
            first.gesture()
        second.gesture()
        assert first.path != second.path and first.path is not None and second.path is not None
        # a third viewer starting now: both files belong to running windows, nothing is "did not close normally"
        assert find_recovery(recovery) is None and claim_recovery(recovery) is None
        assert first.path.is_file() and second.path.is_file()
        assert first.gesture() == 4  # the first window keeps saving into its own file
        assert load_session(first.path).gesture == 4

        second.kill()  # the second window crashes: only its file becomes recoverable
        claim = claim_recovery(recovery)
        assert claim is not None and claim.path == second.path
        assert load_session(claim.path).image_source == "/data/second"
        assert claim_recovery(recovery) is None  # another starting viewer does not get the same file
        assert first.gesture() == 5 and load_session(first.path).gesture == 5  # untouched by the restore
        archive_file(claim.path, tmp_path / "sessions", "recovered")
        claim.release()
        assert find_recovery(recovery) is None
        assert not list(recovery.glob(f"{second.path.stem}*"))  # its lock file went with it

        first.kill()
        assert find_recovery(recovery) == first.path
        assert load_session(first.path).gesture == 5
    finally:
        first.close()
        second.close()


def test_two_windows_in_one_process_keep_separate_files(tmp_path: Path) -> None:
    state = SessionState(image_source="/x", labelmap=np.ones((1, 4, 4), np.uint8))
    a, b = Autosaver(tmp_path), Autosaver(tmp_path)
    a.save(state)
    b.save(state)
    assert a.path != b.path and a.path.is_file() and b.path.is_file()
    assert find_recovery(tmp_path) is None and a.restore() is None
    b.clear()  # a clean close of one window leaves the other's file alone
    assert a.path.is_file() and not b.path.exists()
    a.clear()
    assert recovery_candidates(tmp_path) == []


def test_files_of_dead_processes_and_older_versions_are_offered(tmp_path: Path) -> None:
    state = SessionState(image_source="/legacy", labelmap=np.ones((1, 4, 4), np.uint8))
    saver = Autosaver(tmp_path)
    saver.save(state)
    legacy = tmp_path / LEGACY_NAME  # the shared file earlier versions wrote
    legacy.write_bytes(saver.path.read_bytes())
    os.utime(legacy, (1, 1))
    # a file named with this very pid (pid reuse after a reboot) but unlocked: stale, not ours
    reused = tmp_path / f"recovery-{os.getpid()}-00000000.mfsession"
    reused.write_bytes(saver.path.read_bytes())
    os.utime(reused, (2, 2))
    assert find_recovery(tmp_path) == reused
    first = claim_recovery(tmp_path)
    second = claim_recovery(tmp_path)
    assert first is not None and second is not None
    assert {first.path, second.path} == {reused, legacy}
    assert claim_recovery(tmp_path) is None  # both claimed, and the autosaver's own file is live
    first.release()
    second.release()
    saver.clear()
