"""Saved sessions: everything needed to continue work on an image, in one crash-safe file.

Format (``.mfsession``): a ZIP archive with ``state.json`` (labels, prompts, EHR edits, predictions,
image path + signature, label-map shape/dtype/sha1, and ``sections``: JSON that viewer features add,
e.g. measurements; files without it still open) and ``labelmap.zlib`` (the uint8 label map,
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

from inference.export.labels import SegmentLabel
from inference.persistence.session_schema import MAX_STATE_BYTES, SessionError, checked_fields, labelmap_meta

__all__ = ["FORMAT_VERSION", "SessionError", "SessionState", "atomic_write_bytes", "check_image",
           "default_max_bytes", "encode_labelmap", "load_session", "save_session"]

FORMAT_VERSION = 1
SUFFIX = ".mfsession"


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
    sections: dict[str, Any] = field(default_factory=dict)  # feature name → its JSON (e.g. measurements)

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION, "image_source": self.image_source, "image_signature": self.image_signature,
            "labels": [lab.to_dict() for lab in self.labels], "prompts": self.prompts, "ehr_edits": self.ehr_edits,
            "audit_log_path": self.audit_log_path, "predictions": self.predictions, "gesture": self.gesture,
            "saved_at": self.saved_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "sections": self.sections,
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


def default_max_bytes() -> int:
    """The default memory budget (callers with Settings pass their own budget)."""
    from inference.settings import Settings

    return max(int(Settings().memory_budget_mb), 1) * 2**20


def load_session(path: Path, *, max_bytes: int | None = None) -> SessionState:
    """Read a session file; damaged, foreign or crafted files raise :class:`SessionError` (nothing else).

    ``max_bytes`` (default: the default memory budget) bounds the label map; its size is checked from
    the header before anything is decompressed, and decompression stops at that size.
    """
    path = Path(path)
    limit = default_max_bytes() if max_bytes is None else int(max_bytes)
    try:
        with zipfile.ZipFile(path) as zf:
            state_info = zf.getinfo("state.json")
            if state_info.file_size > MAX_STATE_BYTES:
                raise SessionError(f"The session file '{path.name}' is damaged (its state.json is implausibly large).")
            header = json.loads(zf.read(state_info))
            fields_ = checked_fields(header, path.name)
            blob = None
            if "labelmap" in header:
                shape, sha1 = labelmap_meta(header["labelmap"], path.name, limit)
                info = zf.getinfo("labelmap.zlib")
                # written ZIP_STORED by us; a deflated member is how a 2 KB file claims gigabytes
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > limit:
                    raise SessionError(f"The masks in session file '{path.name}' are not stored the way this "
                                       "program writes them; the file was not written by MedFusion Viewer.")
                blob = zf.read(info)
    except FileNotFoundError as exc:
        raise SessionError(f"The session file '{path.name}' does not exist.") from exc
    except SessionError:
        raise
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile, NotImplementedError,
            EOFError) as exc:
        raise SessionError(f"The session file '{path.name}' is damaged and cannot be opened.") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise SessionError(f"The session file '{path.name}' was written by an incompatible version.")
    labelmap = None
    if blob is not None:
        labelmap = _decompress_labelmap(blob, shape, sha1, path.name)
    return SessionState(labelmap=labelmap, **fields_)


def _decompress_labelmap(blob: bytes, shape: tuple[int, int, int], sha1: str, name: str) -> np.ndarray:
    """Exactly ``prod(shape)`` bytes out of the zlib stream, never more (bounded output)."""
    n = shape[0] * shape[1] * shape[2]
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(blob, n + 1)
    except zlib.error as exc:
        raise SessionError(f"The masks in session file '{name}' are damaged.") from exc
    if len(raw) != n or not inflater.eof or inflater.unconsumed_tail:
        raise SessionError(f"The masks in session file '{name}' are damaged (wrong size).")
    if hashlib.sha1(raw).hexdigest() != sha1:
        raise SessionError(f"The masks in session file '{name}' are damaged (checksum mismatch).")
    return np.frombuffer(bytearray(raw), dtype=np.uint8).reshape(shape)


def check_image(state: SessionState, signature: str, shape: tuple[int, ...]) -> None:
    """Refuse to put a session's masks on a different image (reopened file changed or moved)."""
    if state.image_signature and signature != state.image_signature:
        raise SessionError("The image of this session has changed since it was saved; masks cannot be restored.")
    if state.labelmap is not None and tuple(state.labelmap.shape) != tuple(shape):
        raise SessionError("The session's masks do not match the size of the image.")
