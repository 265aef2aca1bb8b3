"""Audit log file names that do not reveal who the patient is.

Why: file names end up in directory listings, backups, sync logs and crash reports, none of which
the PHI filter sees; ``patientPID-4711-….jsonl`` told all of them the patient ID. The name is now a
hash of the patient ID *and* the case folder, so it stays stable per study (the hash chain continues)
without being a lookup table of IDs; a log written under the old name is renamed on first use.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

__all__ = ["audit_path"]

log = logging.getLogger("medfusion.audit")


def _folder_key(folder: Path) -> str:
    try:
        return str(Path(folder).resolve())
    except OSError:
        return str(folder)


def audit_path(root: Path, patient_id: str, folder: Path) -> Path:
    """``root/study-<hash>.jsonl`` for this patient's case folder; moves a legacy, ID-bearing file there."""
    key = _folder_key(folder)
    digest = hashlib.sha256(f"{patient_id}\x00{key}".encode()).hexdigest()[:20]
    path = Path(root) / f"study-{digest}.jsonl"
    legacy = Path(root) / f"patient{patient_id}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.jsonl"
    if legacy.name != path.name and legacy.is_file() and not path.exists():
        try:
            os.replace(legacy, path)
        except OSError as exc:
            log.warning("could not rename a legacy audit log (%s)", type(exc).__name__)
    return path
