"""LiteMedSAM on the CPU without importing PyTorch: the ONNX encoder plus the numpy decoder, from verified files.

Why: ``import torch`` (the CUDA build this project pins) costs ~490 MiB of resident memory before any
work, more than a 512×512×300 CT volume. On a CPU machine the viewer needs torch only to segment, and
there the encoder already runs in ONNX Runtime. So the first start (torch path) measures the encoder
engine as always; when ONNX Runtime won, it also writes the prompt encoder + mask decoder's weights as
numpy arrays, checked against PyTorch on fixed prompts (``inference.models.cpu_runtime_export``), and a
manifest naming both files by sha256. Later starts on the same machine read the manifest, verify both
files and segment torch-free (same embeddings, same masks to float rounding).

The manifest and both files are untrusted (user cache): size-capped, validated field by field, hashed
before use; ``np.load`` never unpickles. Any mismatch (another machine or library version, another
checkpoint, a GPU that torch could use, an edited file) means the torch path, which writes them again.
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.errors import ModelLoadError
from inference.models.machine import gpu_may_be_present, machine_key
from inference.models.verified_files import SIDECAR_MAX_BYTES, hashed_bytes, onnx_session

if TYPE_CHECKING:
    from inference.models.numpy_decoder import NumpyPromptDecoder

log = logging.getLogger(__name__)

MANIFEST_FILE = "cpu_runtime.json"
# 2: the upsampling graph (``inference.models.upsample_graph``) is part of the record; 3: the encoder file is
# an export of version ≥ 3 (widest activations over channel groups), so older records are written again once
MANIFEST_FORMAT = 3
MAX_ENCODER_BYTES = 256 * 2**20  # the TinyViT export is ~25 MB
MAX_DECODER_BYTES = 64 * 2**20  # the decoder's arrays are ~20 MB
MAX_UPSAMPLE_BYTES = 4 * 2**20  # the upsampling graph is ~0.4 MB
_HEX = set("0123456789abcdef")


@dataclass(frozen=True)
class CpuRuntimeManifest:
    """What the torch path recorded: the model, both files by sha256, the encoder threads, the machine."""

    model_id: str
    checkpoint_sha256: str
    encoder_file: str
    encoder_sha256: str
    threads: int
    graph_opt: str
    decoder_file: str
    decoder_sha256: str
    upsample_file: str
    upsample_sha256: str
    machine: dict[str, object]
    engine: str  # how the encoder engine was chosen (shown in logs)

    def to_json(self) -> str:
        record = {"format": MANIFEST_FORMAT, **self.__dict__}
        return json.dumps(record, indent=1) + "\n"


def _sha(value: object, what: str) -> str:
    if not (isinstance(value, str) and len(value) == 64 and set(value) <= _HEX):
        raise ValueError(f"bad {what}")
    return value


def _file_name(value: object, what: str) -> str:
    """A plain file name inside the cache folder (no path parts, no hidden or odd names)."""
    if not (isinstance(value, str) and 0 < len(value) <= 120 and Path(value).name == value
            and not value.startswith(".") and all(c.isalnum() or c in "._-" for c in value)):
        raise ValueError(f"bad {what}")
    return value


def parse_manifest(text: str) -> CpuRuntimeManifest:
    """Validate every field of a manifest (``ValueError`` naming the first bad one)."""
    raw = json.loads(text)
    if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
        raise ValueError("unknown format")
    threads, graph_opt, model_id, engine = raw.get("threads"), raw.get("graph_opt"), raw.get("model_id"), \
        raw.get("engine", "")
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= 1024:
        raise ValueError("bad thread count")
    if graph_opt not in ("basic", "extended", "all"):
        raise ValueError("bad graph level")
    if not (isinstance(model_id, str) and 0 < len(model_id) <= 200 and model_id.isprintable()):
        raise ValueError("bad model id")
    machine = raw.get("machine")
    if not isinstance(machine, dict) or len(json.dumps(machine)) > 4096:
        raise ValueError("bad machine record")
    if not (isinstance(engine, str) and len(engine) <= 400):
        raise ValueError("bad engine note")
    return CpuRuntimeManifest(
        model_id=model_id, checkpoint_sha256=_sha(raw.get("checkpoint_sha256"), "checkpoint sha256"),
        encoder_file=_file_name(raw.get("encoder_file"), "encoder file"),
        encoder_sha256=_sha(raw.get("encoder_sha256"), "encoder sha256"), threads=threads, graph_opt=graph_opt,
        decoder_file=_file_name(raw.get("decoder_file"), "decoder file"),
        decoder_sha256=_sha(raw.get("decoder_sha256"), "decoder sha256"),
        upsample_file=_file_name(raw.get("upsample_file"), "upsampling file"),
        upsample_sha256=_sha(raw.get("upsample_sha256"), "upsampling sha256"), machine=machine, engine=engine,
    )


def read_manifest(folder: Path) -> CpuRuntimeManifest | None:
    """The folder's manifest when present and well-formed, else ``None`` (a bad one is logged)."""
    path = folder / MANIFEST_FILE
    try:
        if path.stat().st_size > SIDECAR_MAX_BYTES:
            raise ValueError("too large")
        return parse_manifest(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
        log.warning("the torch-free CPU record %s is unusable (%s); segmenting with PyTorch", path, err)
        return None


def load_decoder_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The decoder's named arrays from verified ``.npz`` bytes; never unpickles (object arrays are refused)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: np.array(npz[name]) for name in npz.files}
    except (ValueError, OSError, KeyError) as err:  # zip errors are ValueError/OSError subclasses
        raise ModelLoadError(f"The decoder weights file is not a readable numpy archive ({err}).") from err


@dataclass
class CpuLiteMedSAM:
    """The loaded torch-free model: an ONNX Runtime encoder session and the numpy decoder (its upsampling
    stage on ONNX Runtime too)."""

    model_id: str
    session: object
    input_name: str
    decoder: NumpyPromptDecoder
    threads: int
    engine: str

    def encode(self, images: np.ndarray) -> np.ndarray:
        """(B, 3, 256, 256) float32 in [0, 1] → (B, 256, 64, 64) float32 embeddings."""
        (out,) = self.session.run(None, {self.input_name: np.ascontiguousarray(images, dtype=np.float32)})  # type: ignore[attr-defined]
        # A copy the caller owns: the array ONNX Runtime returns lives in its arena, and every embedding kept
        # (cache, decoder contexts) would pin a block there that the next runs must work around (measured:
        # the arena grew by ~36 MiB by the third encode with two embeddings kept; the copy costs ~1 ms).
        return np.array(out, dtype=np.float32, copy=True)


def torch_free_reason(device: str, encoder_runtime: str) -> str | None:
    """Why these settings need the torch path (``None``: the torch-free path may be used)."""
    if encoder_runtime not in ("auto", "onnx"):
        return f"encoder runtime '{encoder_runtime}' is a PyTorch engine"
    if device not in ("auto", "cpu"):
        return f"device '{device}'"
    if device == "auto" and gpu_may_be_present():
        return "a GPU may be present (PyTorch decides)"
    return None


def load_cpu_runtime(folder: Path, checkpoint_sha256: str) -> CpuLiteMedSAM | None:
    """The torch-free model from ``folder``'s manifest, or ``None`` (why, in the log) when it cannot be used."""
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    try:
        if manifest.checkpoint_sha256 != checkpoint_sha256:
            raise ValueError("it was made from another checkpoint")
        here = machine_key()
        if manifest.machine != here:
            changed = sorted(k for k in set(here) | set(manifest.machine) if here.get(k) != manifest.machine.get(k))
            raise ValueError(f"it was measured on another machine or setup ({', '.join(changed)[:80]})")
        encoder_bytes = hashed_bytes(folder / manifest.encoder_file, manifest.encoder_sha256, MAX_ENCODER_BYTES)
        decoder_bytes = hashed_bytes(folder / manifest.decoder_file, manifest.decoder_sha256, MAX_DECODER_BYTES)
        upsample_bytes = hashed_bytes(folder / manifest.upsample_file, manifest.upsample_sha256, MAX_UPSAMPLE_BYTES)
    except ValueError as err:
        log.info("torch-free CPU segmentation not used: %s", err)
        return None
    from inference.models.numpy_decoder import NumpyPromptDecoder
    from inference.models.upsample_graph import OnnxUpsampler

    try:
        decoder = NumpyPromptDecoder(load_decoder_arrays(decoder_bytes),
                                     upsampler=OnnxUpsampler(upsample_bytes, manifest.threads))
        session = onnx_session(encoder_bytes, manifest.threads, manifest.graph_opt)
        input_name = session.get_inputs()[0].name  # type: ignore[attr-defined]
    except Exception as err:  # noqa: BLE001 - any failure here means: use the torch path, which re-exports
        log.warning("torch-free CPU segmentation could not be prepared (%s); segmenting with PyTorch", err)
        return None
    del encoder_bytes, decoder_bytes, upsample_bytes
    log.info("segmenting without PyTorch: ONNX Runtime encoder (%d threads) + numpy decoder", manifest.threads)
    return CpuLiteMedSAM(manifest.model_id, session, input_name, decoder, manifest.threads, manifest.engine)


def finite_ratio(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (inf when either holds a non-finite value): the export checks' measure."""
    got64, want64 = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if not (np.isfinite(got64).all() and np.isfinite(want64).all()):
        return math.inf
    return float(np.abs(got64 - want64).max() / max(float(np.abs(want64).max()), 1e-12))
