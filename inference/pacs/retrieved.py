"""Where retrieved series go: an owner-only folder, names the server cannot steer, deleted by policy.

Why: a retrieved series is identified patient data (name, ID, birth date in every header) sitting in
the cache folder. The folder and its files are readable by this user only (0700 / 0600), each series
folder is removed ``PacsSettings.retrieve_keep_hours`` after its download, and the folder and file
names never come straight from the server: a SeriesInstanceUID such as ``../../.ssh`` or an absolute
path would otherwise write outside the cache. Valid DICOM UIDs (digits and dots, ≤ 64 characters)
keep their readable name; anything else is replaced by a hash of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from pathlib import Path

__all__ = ["expire_retrieved", "marker_for", "safe_name", "series_folder", "write_private"]

log = logging.getLogger("medfusion.pacs")
MARKER_SUFFIX = ".retrieved"  # root/.<name>.retrieved: only folders with one are ever deleted by the policy
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def safe_name(uid: str) -> str:
    """A file-system name for a UID from the server: the UID itself when valid, else ``x<sha256>``."""
    uid = str(uid)
    if 0 < len(uid) <= 64 and _UID.match(uid):
        return uid
    return "x" + hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def marker_for(folder: Path) -> Path:
    """The download-time marker of a series folder; beside it, so the series folder holds only DICOM files."""
    return folder.parent / f".{folder.name}{MARKER_SUFFIX}"


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask, and an older folder keeps its own
    return path


def series_folder(root: Path, series_uid: str) -> Path:
    """``root/<safe uid>``, created owner-only, always inside ``root``; marks it for the expiry policy."""
    root = _private_dir(Path(root))
    folder = root / safe_name(series_uid)
    if folder.resolve().parent != root.resolve():  # belt and braces: safe_name never yields a separator
        raise ValueError(f"refusing a series folder outside {root}")
    _private_dir(folder)
    marker_for(folder).write_text(str(time.time()))
    return folder


def write_private(path: Path, data_writer) -> None:  # noqa: ANN001 - callable(file object)
    """Create ``path`` readable by the owner only from the first byte, then let ``data_writer`` fill it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        data_writer(handle)
    os.chmod(path, 0o600)


def expire_retrieved(root: Path, keep_hours: float, now: float | None = None) -> int:
    """Delete series folders under ``root`` downloaded more than ``keep_hours`` ago; returns how many.

    Only folders we created (they have a :func:`marker_for`) are touched; folders in use are at worst
    downloaded again. Runs before every retrieval and when the viewer starts.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    try:
        folders = list(root.iterdir())
    except OSError:
        return 0
    for folder in folders:
        marker = marker_for(folder)
        if folder.is_symlink() or not folder.is_dir() or not marker.is_file():
            continue
        try:
            age_h = (now - marker.stat().st_mtime) / 3600.0
        except OSError:
            continue
        if age_h >= keep_hours:
            shutil.rmtree(folder, ignore_errors=True)
            marker.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d retrieved series older than %g h", removed, keep_hours)
    return removed
