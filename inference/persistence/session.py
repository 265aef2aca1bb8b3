"""Saved sessions: everything needed to continue work on an image, in one crash-safe file.

Format (``.mfsession``): a ZIP archive with ``state.json`` (labels, prompts, EHR edits, predictions,
image path + signature, label-map shape/dtype/sha1) and ``labelmap.zlib`` (the uint8 label map,
zlib-compressed by us and stored uncompressed in the ZIP, so an unchanged label map's bytes can be
reused by the autosaver without compressing again). Files are written atomically: temp file in the
same folder, fsync, ``os.replace``, fsync of the folder; a reader therefore sees the old or the new
file, never a half-written one, and the checksum catches disk-level damage.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import MedFusionError
from inference.export.labels import SegmentLabel

__all__ = ["FORMAT_VERSION", "SessionError", "SessionState", "atomic_write_bytes", "check_image",
           "encode_labelmap", "load_session", "save_session"]

FORMAT_VERSION = 1
SUFFIX = ".mfsession"


class SessionError(MedFusionError):
    """A session file is missing, damaged or from an incompatible version."""


@dataclass
class SessionState:
    """What a session holds; JSON-able fields except the label map."""

    image_source: str = ""
    image_signature: str = ""
    labelmap: np.ndarray | None = None  # uint8 [z, y, x] on the image grid
    labels: list[SegmentLabel] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)  # boxes/points as the segmentation session logs them
    ehr_edits: dict[str, Any] = field(default_factory=dict)
    audit_log_path: str = ""
    predictions: list[dict[str, Any]] = field(default_factory=list)
    gesture: int = 0  # number of gestures applied (autosave ordering; restore reports it)
    saved_at: str = ""

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION, "image_source": self.image_source, "image_signature": self.image_signature,
            "labels": [lab.to_dict() for lab in self.labels], "prompts": self.prompts, "ehr_edits": self.ehr_edits,
            "audit_log_path": self.audit_log_path, "predictions": self.predictions, "gesture": self.gesture,
            "saved_at": self.saved_at or datetime.now(UTC).isoformat(timespec="seconds"),
        }


@dataclass
class EncodedLabelmap:
    """A compressed label map plus what is needed to check and rebuild it."""

    data: bytes
    shape: tuple[int, ...]
    sha1: str


def encode_labelmap(labelmap: np.ndarray) -> EncodedLabelmap:
    """Compress a label map (fast zlib level 1: masks are mostly zeros)."""
    raw = np.ascontiguousarray(labelmap, dtype=np.uint8).reshape(-1).data  # the buffer: no tobytes() copy of the map
    return EncodedLabelmap(zlib.compress(raw, 1), tuple(int(s) for s in labelmap.shape),
                           hashlib.sha1(raw).hexdigest())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash at any moment leaves the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def session_bytes(state: SessionState, encoded: EncodedLabelmap | None = None) -> bytes:
    """Serialise ``state``; pass ``encoded`` to reuse an already compressed label map."""
    header = state.header()
    if state.labelmap is not None:
        encoded = encoded or encode_labelmap(state.labelmap)
        header["labelmap"] = {"shape": list(encoded.shape), "dtype": "uint8", "sha1": encoded.sha1}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("state.json", json.dumps(header, indent=1))
        if state.labelmap is not None and encoded is not None:
            zf.writestr("labelmap.zlib", encoded.data)
    return buffer.getvalue()


def save_session(state: SessionState, path: Path) -> Path:
    """Save ``state`` atomically to ``path`` (``.mfsession`` added when there is no suffix)."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(SUFFIX)
    try:
        atomic_write_bytes(path, session_bytes(state))
    except OSError as exc:
        raise SessionError(f"The session could not be saved to '{path}' ({exc.strerror or exc}).") from exc
    return path


def load_session(path: Path) -> SessionState:
    """Read a session file; damaged or foreign files raise :class:`SessionError`."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            header = json.loads(zf.read("state.json"))
            blob = zf.read("labelmap.zlib") if "labelmap" in header else None
    except FileNotFoundError as exc:
        raise SessionError(f"The session file '{path.name}' does not exist.") from exc
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise SessionError(f"The session file '{path.name}' is damaged and cannot be opened.") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise SessionError(f"The session file '{path.name}' was written by an incompatible version.")
    labelmap = None
    if blob is not None:
        meta = header["labelmap"]
        try:
            raw = zlib.decompress(blob)
        except zlib.error as exc:
            raise SessionError(f"The masks in session file '{path.name}' are damaged.") from exc
        if hashlib.sha1(raw).hexdigest() != meta["sha1"]:
            raise SessionError(f"The masks in session file '{path.name}' are damaged (checksum mismatch).")
        labelmap = np.frombuffer(raw, dtype=np.uint8).reshape(meta["shape"]).copy()
    return SessionState(
        image_source=header.get("image_source", ""), image_signature=header.get("image_signature", ""),
        labelmap=labelmap, labels=[SegmentLabel.from_dict(d) for d in header.get("labels", [])],
        prompts=list(header.get("prompts", [])), ehr_edits=dict(header.get("ehr_edits", {})),
        audit_log_path=header.get("audit_log_path", ""), predictions=list(header.get("predictions", [])),
        gesture=int(header.get("gesture", 0)), saved_at=header.get("saved_at", ""))


def check_image(state: SessionState, signature: str, shape: tuple[int, ...]) -> None:
    """Refuse to put a session's masks on a different image (reopened file changed or moved)."""
    if state.image_signature and signature != state.image_signature:
        raise SessionError("The image of this session has changed since it was saved; masks cannot be restored.")
    if state.labelmap is not None and tuple(state.labelmap.shape) != tuple(shape):
        raise SessionError("The session's masks do not match the size of the image.")
