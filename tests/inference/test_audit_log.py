"""Hash-chained audit log: verification, tamper detection, crash recovery, export; Dice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from inference.audit.log import GENESIS_HASH, AuditLog, AuditLogError, entry_hash
from inference.audit.metrics import dice


def _filled(path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(path)
    log.append("AI:litemedsam-1.0", "ai_mask", "lesion-1", {"voxels": np.int64(120), "z": [3, 4]})
    for i in range(n - 1):
        log.append("user:dr_a", "mask_edit", "lesion-1",
                   {"dice_ai_vs_final": np.float32(0.9 - i / 100), "nan": float("nan")})
    return log


def test_chain_verifies_and_links(tmp_path: Path) -> None:
    log = _filled(tmp_path / "study" / "audit.jsonl")
    assert log.verify() == (True, None)
    es = log.entries()
    assert [e["seq"] for e in es] == [1, 2, 3, 4, 5]
    assert es[0]["prev_hash"] == GENESIS_HASH
    for a, b in zip(es, es[1:], strict=False):
        assert b["prev_hash"] == a["hash"]
    assert all(e["hash"] == entry_hash(e) for e in es)
    assert es[0]["timestamp"].endswith("+00:00")
    assert es[1]["details"]["nan"] is None and es[0]["details"]["voxels"] == 120
    assert log.head() == es[-1]["hash"]


@pytest.mark.parametrize("line_no", [0, 2, 4])
def test_tampering_any_line_is_detected_and_blocks_append(tmp_path: Path, line_no: int) -> None:
    path = tmp_path / "audit.jsonl"
    log = _filled(path)
    lines = path.read_text().splitlines(keepends=True)
    e = json.loads(lines[line_no])
    e["details"]["dice_ai_vs_final"] = 0.99  # silent edit of a recorded value
    lines[line_no] = json.dumps(e) + "\n"
    path.write_text("".join(lines))
    assert log.verify() == (False, line_no + 1)
    assert "modified" in log.check().reason
    with pytest.raises(AuditLogError, match="damaged"):
        log.append("user:dr_a", "ehr_edit", "age", {})
    with pytest.raises(AuditLogError, match="tampered"):
        log.recover()


def test_rehashed_edit_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _filled(path)
    lines = path.read_text().splitlines(keepends=True)
    e = json.loads(lines[1])
    e["actor"] = "user:someone_else"
    e["hash"] = entry_hash(e)  # attacker recomputes this entry's hash
    lines[1] = json.dumps(e) + "\n"
    path.write_text("".join(lines))
    ok, bad = AuditLog(path).verify()
    assert not ok and bad == 3
    assert "link" in AuditLog(path).check().reason


def test_deleted_middle_line_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _filled(path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))
    assert AuditLog(path).verify() == (False, 3)


def test_reopen_continues_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first = _filled(path, 2)
    last_hash = first.entries()[-1]["hash"]
    again = AuditLog(path)
    e = again.append("AI:fusion-0.1", "prediction", "went_icu", {"before": 0.2, "after": 0.4})
    assert e["seq"] == 3 and e["prev_hash"] == last_hash
    assert again.verify() == (True, None)
    # The first handle notices the file grew and keeps the chain.
    assert first.append("user:dr_b", "tent", "model", {"enabled": True})["seq"] == 4
    assert AuditLog(path).verify() == (True, None)


def test_partial_last_line_reported_and_recovered(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _filled(path, 3)
    full = AuditLog(tmp_path / "other.jsonl")
    line = json.dumps({"seq": 4, "actor": "user:dr_a", "action": "mask_edit"})
    with open(path, "a") as fh:
        fh.write(line[:25])  # crash mid-write: no newline, cut JSON
    st = log.check()
    assert not st.ok and st.partial_tail and st.first_bad_seq == 4
    assert "incomplete" in st.reason
    with pytest.raises(AuditLogError, match="recover"):
        log.append("user:dr_a", "mask_edit", "lesion-1", {})
    rec = log.recover()
    assert rec is not None and rec["seq"] == 4 and rec["action"] == "recover_partial_entry"
    assert rec["details"]["dropped_text"] == line[:25] and rec["details"]["dropped_bytes"] == 25
    assert log.verify() == (True, None)
    assert log.append("user:dr_a", "mask_edit", "lesion-1", {})["seq"] == 5
    assert log.recover() is None
    assert full.recover() is None  # nothing there


def test_actor_validation_and_empty_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "new.jsonl")
    assert log.verify() == (True, None) and log.entries() == []
    with pytest.raises(ValueError):
        log.append("dr_a", "mask_edit", "x", {})
    with pytest.raises(TypeError):
        log.append("user:dr_a", "mask_edit", "x", {"obj": object()})


def test_export_csv_and_json(tmp_path: Path) -> None:
    log = _filled(tmp_path / "audit.jsonl", 3)
    out = log.export(tmp_path / "exp" / "audit.csv")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["seq"] for r in rows] == ["1", "2", "3"]
    assert json.loads(rows[0]["details"])["voxels"] == 120
    doc = json.loads(log.export(tmp_path / "audit.json").read_text())
    assert doc["chain_ok"] is True and len(doc["entries"]) == 3
    with pytest.raises(AuditLogError):
        log.export(tmp_path / "audit.xlsx")


def test_dice() -> None:
    a = np.zeros((4, 8, 8), np.uint8)
    b = np.zeros_like(a)
    assert dice(a, b) == 1.0
    a[0, :2, :2] = 1  # 4 voxels
    assert dice(a, b) == 0.0
    b[0, :2, :1] = 1  # 2 voxels, overlap 2
    assert dice(a, b) == pytest.approx(2 * 2 / 6)
    assert dice(a, a.astype(bool)) == 1.0
    with pytest.raises(ValueError):
        dice(a, b[0])
