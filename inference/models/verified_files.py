"""Files the app derives from its models and keeps in the user's cache, checked by sha256 before every use.

The ONNX export of the image encoder and the decoder's weights for the torch-free CPU path are written
once and read back at every start, so they are untrusted input. Each file has a sidecar
``<name>.sha256.json`` with its sha256 and size; a reader hashes the bytes it is about to use and hands
exactly those on (no window between check and use). This module never imports torch, so the torch-free
segmentation path (``inference.models.cpu_runtime``) can use it.

What this protects against, and what not: see ``inference.models.onnx_encoder``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SIDECAR_FORMAT = 1
SIDECAR_MAX_BYTES = 64 * 1024
GRAPH_OPT_LEVELS = ("basic", "extended", "all")


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def read_sidecar(path: Path) -> dict[str, object] | None:
    """The sidecar's fields if it is a well-formed record for ``path``, else ``None`` (reason logged)."""
    side = sidecar_path(path)
    try:
        if side.stat().st_size > SIDECAR_MAX_BYTES:
            raise ValueError("too large")
        record = json.loads(side.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("format") != SIDECAR_FORMAT:
            raise ValueError("unknown format")
        sha, size = record.get("sha256"), record.get("size")
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise ValueError("bad sha256")
        if not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
            raise ValueError("bad size")
        if record.get("file") != path.name:
            raise ValueError("names another file")
    except FileNotFoundError:
        log.warning("%s has no integrity record; it will be made again", path.name)
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
        log.warning("integrity record of %s is unusable (%s); it will be made again", path.name, err)
        return None
    return record


def hashed_bytes(path: Path, sha256: str, max_bytes: int | None = None) -> bytes:
    """The file's bytes if they hash to ``sha256`` (``ValueError`` saying what is wrong otherwise)."""
    if not path.is_file():
        raise ValueError(f"{path.name} is missing")
    if max_bytes is not None and path.stat().st_size > max_bytes:
        raise ValueError(f"{path.name} is larger than any file of its kind ({path.stat().st_size} bytes)")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path.name} does not match its sha256 record (corrupted or edited)")
    return data


def verified_bytes(path: Path, max_bytes: int | None = None) -> tuple[bytes, str] | None:
    """``(bytes, sha256)`` of ``path`` when they match its sidecar, else ``None`` (and why, in the log)."""
    if not path.is_file():
        return None
    record = read_sidecar(path)
    if record is None:
        return None
    try:
        data = hashed_bytes(path, str(record["sha256"]), max_bytes)
    except ValueError as err:
        log.warning("%s; it will be made again", err)
        return None
    if len(data) != record["size"]:
        log.warning("%s does not match its size record; it will be made again", path.name)
        return None
    return data, str(record["sha256"])


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a uniquely named temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # concurrent writers
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale(path: Path) -> bool:
    """Delete a cache file a newer one replaced (True when it was there and is gone). A file that cannot be
    removed (a read-only cache, another user's file) is only logged: it is dead weight, not an error."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as err:
        log.info("could not remove the stale cache file %s: %s", path, err)
        return False
    return True


def write_sidecar(path: Path, data: bytes, **extra: object) -> str:
    """Record ``data``'s sha256 and size next to ``path`` (after ``path`` itself was written); returns the sha256."""
    digest = hashlib.sha256(data).hexdigest()
    record = {"format": SIDECAR_FORMAT, "file": path.name, "sha256": digest, "size": len(data), **extra}
    write_atomic(sidecar_path(path), (json.dumps(record, indent=1) + "\n").encode())
    return digest


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` owner-only (0700); an existing folder keeps its mode (it may be the user's choice)."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def onnx_session(data: bytes, threads: int, graph_opt: str = "all") -> object:
    """An ONNX Runtime CPU session over ``data`` (the verified bytes) with the given threads and graph level."""
    from inference.errors import ModelLoadError

    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ModelLoadError(
            "Encoder runtime 'onnx' needs ONNX Runtime: pip install 'medfusion-viewer[onnx]'."
        ) from err
    levels = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.graph_optimization_level = levels[graph_opt]
    # No busy-waiting between ops: spinning worker threads starve the UI thread on small machines.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No pre-planned block for all of a run's intermediates: the arena keeps ~185 MiB less resident after
    # the first encodes (measured: 401 → 216 MiB) at the same speed (interleaved, 1.00-1.01×). The arena
    # itself stays on: without it every run's tensors come fresh from malloc (page faults: the encoder ran
    # ~2.5× slower with them returned to the system, and glibc kept more resident without that).
    options.enable_mem_pattern = False
    # One arena for every session of the process (the encoder's and the decoder's upsampling graph): the
    # small session works in the blocks the encoder has free between its runs instead of growing an arena
    # of its own (measured: −22 MiB after two slices embedded and prompted twice each).
    _share_cpu_arena(ort)
    options.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


_arena_lock = threading.Lock()
_arena_shared = False  # ONNX Runtime's environment is one per process, and so is its registered allocator


def _share_cpu_arena(ort: Any) -> None:  # noqa: ANN401 - the onnxruntime module
    """Register one CPU arena allocator with ONNX Runtime's environment (once per process), default settings."""
    global _arena_shared
    with _arena_lock:
        if not _arena_shared:
            memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(memory, None)
            _arena_shared = True
