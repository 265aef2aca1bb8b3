"""Sessions and crash recovery: atomic files, and a worker killed with SIGKILL loses at most one gesture."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inference.export.labels import SegmentLabel
from inference.persistence import (
    Autosaver,
    SessionError,
    SessionState,
    check_image,
    find_recovery,
    load_session,
    save_session,
)

REPO = Path(__file__).resolve().parents[2]
SHAPE = (20, 256, 256)

# Shared by the worker process and the test's replay, so both apply exactly the same gestures.
GESTURES = """
import numpy as np

def apply_gesture(labelmap, prompts, k):
    z, label = k % 20, 1 + k % 3
    y = (k * 37) % 200
    if k % 4 == 3:  # an eraser stroke
        labelmap[z, y:y + 30, :] = 0
    else:
        labelmap[z, y:y + 40, 20 + k % 50:120 + k % 50] = label
    prompts.append({"z": z, "box": [20, y, 120, y + 40], "label": label, "gesture": k})
"""

WORKER = GESTURES + """
import sys
from pathlib import Path
from inference.export.labels import SegmentLabel
from inference.persistence import Autosaver, SessionState

recovery, n, lockstep = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "lockstep"
state = SessionState(image_source="/data/ct", image_signature="sig-123",
                     labelmap=np.zeros((20, 256, 256), np.uint8),
                     labels=[SegmentLabel(i, f"L{i}") for i in (1, 2, 3)])
saver = Autosaver(recovery)
for k in range(n):
    if lockstep and not sys.stdin.readline():  # wait for the test's "go" before each gesture
        break
    apply_gesture(state.labelmap, state.prompts, k)
    state.ehr_edits["last_gesture"] = k
    state.gesture = k + 1
    saver.save(state)
    print(k + 1, flush=True)  # gesture k+1 is on disk
"""


def _replay(n: int) -> tuple[np.ndarray, list[dict]]:
    ns: dict = {}
    exec(GESTURES, ns)
    labelmap, prompts = np.zeros(SHAPE, np.uint8), []
    for k in range(n):
        ns["apply_gesture"](labelmap, prompts, k)
    return labelmap, prompts


def _state(labelmap: np.ndarray | None = None) -> SessionState:
    return SessionState(
        image_source="/data/ct", image_signature="abc", labelmap=labelmap,
        labels=[SegmentLabel(1, "Liver", (10, 20, 30), "AI-corrected", "LiteMedSAM", "1.0",
                             property_type=("10200004", "SCT", "Liver"))],
        prompts=[{"z": 3, "box": [1, 2, 3, 4]}], ehr_edits={"age": 71}, audit_log_path="/tmp/audit.jsonl",
        predictions=[{"outcome": "went_icu", "probability": 0.42, "set": ["Y"]}], gesture=5)


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    labelmap, _ = _replay(9)
    path = save_session(_state(labelmap), tmp_path / "case")
    assert path.suffix == ".mfsession"
    back = load_session(path)
    np.testing.assert_array_equal(back.labelmap, labelmap)
    assert back.labels == _state().labels
    assert back.prompts == [{"z": 3, "box": [1, 2, 3, 4]}] and back.ehr_edits == {"age": 71}
    assert back.predictions[0]["probability"] == 0.42 and back.gesture == 5
    assert [p.name for p in tmp_path.iterdir()] == ["case.mfsession"]  # no temp file left behind
    check_image(back, "abc", SHAPE)
    with pytest.raises(SessionError, match="changed"):
        check_image(back, "other", SHAPE)


def test_damaged_files_raise_session_error(tmp_path: Path) -> None:
    path = save_session(_state(_replay(3)[0]), tmp_path / "s.mfsession")
    data = bytearray(path.read_bytes())
    truncated = tmp_path / "t.mfsession"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(SessionError, match="damaged"):
        load_session(truncated)
    with zipfile.ZipFile(path) as zf:  # flip bytes inside the stored mask: checksum or zlib catches it
        info = zf.getinfo("labelmap.zlib")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    data[offset:offset + 8] = bytes(8)
    flipped = tmp_path / "f.mfsession"
    flipped.write_bytes(bytes(data))
    with pytest.raises(SessionError, match="damaged"):
        load_session(flipped)
    with pytest.raises(SessionError, match="does not exist"):
        load_session(tmp_path / "missing.mfsession")


def test_autosaver_reuses_mask_and_clears(tmp_path: Path) -> None:
    saver = Autosaver(tmp_path / "rec")
    assert find_recovery(tmp_path / "rec") is None and saver.restore() is None
    state = _state(_replay(4)[0])
    saver.save(state)
    state.prompts.append({"z": 9})
    saver.save(state, labelmap_changed=False)  # a prompt-only gesture
    assert saver.restore() is None and find_recovery(tmp_path / "rec") is None  # its own file is live
    assert saver._lock is not None
    saver._lock.release()  # as if the process had died (the OS drops its lock)
    restored = saver.restore()
    assert restored is not None and restored.prompts[-1] == {"z": 9}
    np.testing.assert_array_equal(restored.labelmap, state.labelmap)
    half = tmp_path / "rec" / f".{saver.path.name}.abc.tmp"
    half.write_bytes(b"half")  # left by a crash mid-write
    assert find_recovery(tmp_path / "rec") == saver.path
    assert not half.exists()
    saver.clear()
    assert find_recovery(tmp_path / "rec") is None


def _run_worker(recovery: Path, mode: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", WORKER, str(recovery), "100000", mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)


def _check_recovery(recovery: Path, at_least: int, at_most: int) -> None:
    path = find_recovery(recovery)
    assert path is not None
    restored = load_session(path)  # never corrupt: raises if it were
    assert at_least <= restored.gesture <= at_most
    expected_map, expected_prompts = _replay(restored.gesture)
    np.testing.assert_array_equal(restored.labelmap, expected_map)
    assert restored.prompts == expected_prompts
    assert restored.ehr_edits["last_gesture"] == restored.gesture - 1
    assert not list(recovery.glob("*.tmp"))  # find_recovery swept any half-written temp file


@pytest.mark.parametrize("kill_after", [1, 7, 23])
def test_sigkill_mid_gesture_loses_at_most_that_gesture(tmp_path: Path, kill_after: int) -> None:
    """Lockstep: gesture k+1 is started, then the worker is killed while applying/saving it."""
    proc = _run_worker(tmp_path / "rec", "lockstep")
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for k in range(1, kill_after + 2):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            if k <= kill_after:
                assert int(proc.stdout.readline()) == k
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _check_recovery(tmp_path / "rec", kill_after, kill_after + 1)


def test_sigkill_free_running_never_corrupts(tmp_path: Path) -> None:
    """Free-running worker saving as fast as it can, killed at an arbitrary moment mid-write."""
    proc = _run_worker(tmp_path / "rec", "free")
    assert proc.stdout is not None
    acknowledged = 0
    try:
        while acknowledged < 40:
            acknowledged = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    _check_recovery(tmp_path / "rec", acknowledged, 100000)
