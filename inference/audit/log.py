"""Append-only, hash-chained audit log (JSON lines, one file per study).

Why a hash chain: each entry stores the sha256 of the previous one, so editing, deleting or
reordering any earlier line breaks verification from that point on. (Dropping the *last* complete
lines cannot be detected from the file alone; store :meth:`AuditLog.head` elsewhere to anchor it.)
A crash mid-write leaves a partial last line without a newline: :meth:`verify` reports it and
:meth:`recover` drops it, recording what was dropped as a new entry.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import MedFusionError

GENESIS_HASH = "0" * 64
_ACTOR_RE = re.compile(r"^(AI|user|system):\S.*$")
_FIELDS = ("seq", "timestamp", "actor", "action", "target", "details", "prev_hash", "hash")


class AuditLogError(MedFusionError):
    """The audit log is damaged or cannot be written."""


def _jsonable(value: Any) -> Any:
    """Normalise details to plain JSON (numpy scalars/arrays, paths; NaN/inf become None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Path | datetime):
        return str(value)
    raise TypeError(f"audit details cannot store {type(value).__name__}")


def canonical_json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the entry without its ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainStatus:
    """Result of a full check; ``first_bad_seq`` is the seq expected at the first bad line."""

    ok: bool
    first_bad_seq: int | None
    reason: str
    n_valid: int
    partial_tail: bool = False
    valid_bytes: int = 0
    last_hash: str = GENESIS_HASH


class AuditLog:
    """One study's log. ``seq`` starts at 1; the first entry's ``prev_hash`` is 64 zeros."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None  # (size, mtime_ns) when last verified ok
        self._status: ChainStatus | None = None

    # -- reading -------------------------------------------------------------------------------
    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def check(self) -> ChainStatus:
        """Verify every line: parseable, consecutive seq, prev_hash link and own hash."""
        data = self._read_bytes()
        prev, seq, offset = GENESIS_HASH, 1, 0
        lines = data.split(b"\n")
        for i, raw in enumerate(lines):
            is_last = i == len(lines) - 1
            if is_last and raw == b"":
                break
            if is_last:  # bytes after the final newline: a write interrupted mid-line
                return ChainStatus(False, seq, f"entry {seq} is incomplete (partial last line; "
                                   "the program probably stopped while writing)", seq - 1, True, offset, prev)
            try:
                entry = json.loads(raw.decode("utf-8"))
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
            except ValueError:
                return ChainStatus(False, seq, f"entry {seq} is not valid JSON", seq - 1, False, offset, prev)
            if entry.get("seq") != seq:
                reason = f"entry {seq} has seq {entry.get('seq')!r} (missing or reordered entries)"
            elif entry.get("prev_hash") != prev:
                reason = f"entry {seq} does not link to the previous entry"
            elif entry.get("hash") != entry_hash(entry):
                reason = f"entry {seq} was modified after it was written"
            else:
                prev, seq, offset = entry["hash"], seq + 1, offset + len(raw) + 1
                continue
            return ChainStatus(False, seq, reason, seq - 1, False, offset, prev)
        return ChainStatus(True, None, "ok", seq - 1, False, offset, prev)

    def verify(self) -> tuple[bool, int | None]:
        """``(ok, first_bad_seq)``; see :meth:`check` for the reason."""
        st = self.check()
        return st.ok, st.first_bad_seq

    def entries(self) -> list[dict[str, Any]]:
        """All parseable entries in file order (does not verify; use :meth:`verify`)."""
        out = []
        for raw in self._read_bytes().split(b"\n"):
            if raw.strip():
                try:
                    out.append(json.loads(raw.decode("utf-8")))
                except ValueError:
                    continue
        return out

    def head(self) -> str:
        """Hash of the last valid entry (GENESIS_HASH when empty): an external anchor."""
        return self.check().last_hash

    # -- writing -------------------------------------------------------------------------------
    def _stat_key(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_size, st.st_mtime_ns

    def _current_status(self) -> ChainStatus:
        key = self._stat_key()
        if self._status is None or key != self._seen:
            self._status = self.check()
            self._seen = key
        return self._status

    def _write(self, status: ChainStatus, actor: str, action: str, target: str,
               details: dict[str, Any] | None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "seq": status.n_valid + 1,
            "timestamp": datetime.now(UTC).isoformat(timespec="microseconds"),
            "actor": actor, "action": action, "target": str(target),
            "details": _jsonable(dict(details or {})), "prev_hash": status.last_hash,
        }
        entry["hash"] = entry_hash(entry)
        line = canonical_json(entry) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.path, "a", encoding="utf-8", newline="\n") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise AuditLogError(f"Could not write the audit log {self.path}: {exc.strerror}.") from exc
        self._status = ChainStatus(True, None, "ok", entry["seq"], False,
                                   status.valid_bytes + len(line.encode("utf-8")), entry["hash"])
        self._seen = self._stat_key()
        return entry

    def append(self, actor: str, action: str, target: str = "",
               details: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append one entry (fsynced). Refuses when the existing chain does not verify."""
        if not _ACTOR_RE.match(actor):
            raise ValueError(f"actor must look like 'AI:<model id>' or 'user:<name>', got {actor!r}")
        if not action:
            raise ValueError("action must be a non-empty string")
        with self._lock:
            status = self._current_status()
            if not status.ok:
                hint = " Use recover() to drop the partial line." if status.partial_tail else ""
                raise AuditLogError(f"The audit log {self.path.name} is damaged: {status.reason}; "
                                    f"nothing was appended.{hint}")
            return self._write(status, actor, action, target, details)

    def recover(self, actor: str = "system:audit") -> dict[str, Any] | None:
        """Drop a partial last line (crash mid-write) and record that as a new entry.

        Returns the new entry, or None when there was nothing to recover. Any other damage
        (edited, deleted or reordered entries) is never "repaired": it raises AuditLogError.
        """
        with self._lock:
            status = self.check()
            if status.ok:
                return None
            if not status.partial_tail:
                raise AuditLogError(f"The audit log {self.path.name} was tampered with or corrupted "
                                    f"({status.reason}); it cannot be repaired automatically.")
            data = self._read_bytes()
            dropped = data[status.valid_bytes:]
            with open(self.path, "r+b") as fh:
                fh.truncate(status.valid_bytes)
                fh.flush()
                os.fsync(fh.fileno())
            details = {
                "dropped_seq": status.first_bad_seq, "dropped_bytes": len(dropped),
                "dropped_sha256": hashlib.sha256(dropped).hexdigest(),
                "dropped_text": dropped[:2000].decode("utf-8", errors="replace"),
            }
            clean = ChainStatus(True, None, "ok", status.n_valid, False, status.valid_bytes,
                                status.last_hash)
            return self._write(clean, actor, "recover_partial_entry", self.path.name, details)

    # -- export --------------------------------------------------------------------------------
    def export(self, path: str | Path) -> Path:
        """Write the entries as ``.csv`` (details as JSON text) or ``.json`` (list + verification)."""
        out = Path(path)
        suffix = out.suffix.lower()
        entries = self.entries()
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".json":
            st = self.check()
            doc = {"source": self.path.name, "chain_ok": st.ok, "first_bad_seq": st.first_bad_seq,
                   "reason": st.reason, "entries": entries}
            out.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
        elif suffix == ".csv":
            with open(out, "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(_FIELDS)
                for e in entries:
                    row = [e.get(k, "") for k in _FIELDS]
                    row[_FIELDS.index("details")] = canonical_json(e.get("details") or {})
                    writer.writerow(row)
        else:
            raise AuditLogError(f"Cannot export the audit log as '{out.suffix}'; use .csv or .json.")
        return out
