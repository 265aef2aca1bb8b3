"""The ONNX export of the image encoder: exported once, checked against PyTorch, verified before every load.

The export is written to the user's cache folder and read back at every start, so it is untrusted input.
Protection, and its limits:

- **At export**, a fixed input runs through the new ONNX graph and through the PyTorch encoder that was
  just built from the sha256-verified checkpoint; the export is kept only if the embeddings agree to
  :data:`EXPORT_TOLERANCE`. Its sha256 and size go into a sidecar file next to it.
- **Before every load**, the file's bytes are hashed and compared with the sidecar; ONNX Runtime is given
  exactly the bytes that were hashed (no window between check and use). A missing, malformed or
  mismatching sidecar, or a graph ONNX Runtime cannot open, means: log a warning, export again.
- This catches corruption (flipped bits, a truncated or interrupted write, a stale export of other
  weights, a file copied from another install). It does **not** stop someone who can write to the
  cache folder: they can rewrite the sidecar too, and a graph crafted to pass the fixed-input check can
  still misbehave on other inputs. The cache folder is created owner-only (0700) for that reason; who can
  write there can equally edit the installed Python code. ``Settings.encoder_runtime = "fused"`` never
  reads an exported file.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from inference.errors import ModelLoadError
from inference.models.preprocess import MODEL_SIDE
from inference.models.verified_files import (
    GRAPH_OPT_LEVELS,
    SIDECAR_FORMAT,
    make_private_dir,
    onnx_session,
    read_sidecar,
    remove_stale,
    sidecar_path,
    verified_bytes,
    write_sidecar,
)

log = logging.getLogger(__name__)

EXPORT_TOLERANCE = 1e-4  # max |Δembedding| / max |embedding| between ONNX and PyTorch at export
# Part of the file name: a change to how the graph is exported makes every start export again. 2: the batch
# axis is really dynamic (version 1 had the batch size of the export baked into one reshape). 3: stage 0 over
# channel groups, and the transformer MLPs (``inference.models.encoder_layout``: the arena keeps ~94 MiB less).
EXPORT_VERSION = 3


def export_file_name(weights_digest: str) -> str:
    """The export's file name for encoder weights with this digest, under the current export version."""
    return f"tinyvit_{weights_digest}_v{EXPORT_VERSION}.onnx"

# Re-exported: callers and tests reach the file checks through this module too.
__all__ = ["EXPORT_TOLERANCE", "EXPORT_VERSION", "export_file_name", "GRAPH_OPT_LEVELS", "SIDECAR_FORMAT", "ExportMismatch", "OnnxEncoder", "VerifiedOnnx",
           "check_input", "export_verified", "load_or_export", "make_private_dir", "onnx_session", "read_sidecar",
           "relative_error", "sidecar_path"]


class ExportMismatch(ModelLoadError):
    """A fresh export does not reproduce the PyTorch encoder (ONNX or ONNX Runtime problem)."""


@dataclass(frozen=True)
class VerifiedOnnx:
    """An export whose bytes matched its sidecar (or were just exported and checked)."""

    path: Path
    data: bytes
    sha256: str
    exported_now: bool


def check_input() -> torch.Tensor:
    """The fixed (1, 3, 256, 256) input of the export check: a smooth gradient plus seeded noise in [0, 1]."""
    gen = torch.Generator().manual_seed(20240601)
    ramp = torch.linspace(0.0, 1.0, MODEL_SIDE)
    base = (ramp[None, :] * ramp[:, None])[None, None].expand(1, 3, MODEL_SIDE, MODEL_SIDE)
    return (0.7 * base + 0.3 * torch.rand(1, 3, MODEL_SIDE, MODEL_SIDE, generator=gen)).contiguous()


class OnnxEncoder(nn.Module):
    """ONNX Runtime session behind an ``nn.Module`` face, so ``encode`` needs no special case.

    ``source``: the verified export it runs (the torch-free CPU path records it by sha256).
    """

    def __init__(self, data: bytes, threads: int, graph_opt: str = "all", source: VerifiedOnnx | None = None) -> None:
        super().__init__()
        self.session = onnx_session(data, threads, graph_opt)
        self.input_name = self.session.get_inputs()[0].name  # type: ignore[attr-defined]
        self.threads, self.graph_opt = max(1, int(threads)), graph_opt
        self.source = None if source is None else VerifiedOnnx(source.path, b"", source.sha256, source.exported_now)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().cpu().float().contiguous().numpy()
        (out,) = self.session.run(None, {self.input_name: array})  # type: ignore[attr-defined]
        return torch.from_numpy(out)


def export_onnx(encoder: nn.Module, path: Path) -> Path:
    """Export the (fused, fp32) encoder with a dynamic batch axis to ``path`` (caller makes it atomic).

    A CPU copy in the low-memory export layout (:func:`inference.models.encoder_layout.export_layout`) is
    exported, so the caller's encoder keeps its modules, device and channels_last layout.
    """
    from inference.models.encoder_layout import export_layout

    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, MODEL_SIDE, MODEL_SIDE)
    copy = export_layout(encoder)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            copy, (dummy,), str(path), input_names=["image"], output_names=["embedding"],
            dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=17, dynamo=False,
        )
    return path


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).abs().max() / want.float().abs().max().clamp_min(1e-12))


def _verified_bytes(path: Path) -> VerifiedOnnx | None:
    """The export's bytes when they match its sidecar, else ``None`` (and why, in the log)."""
    checked = verified_bytes(path)
    return None if checked is None else VerifiedOnnx(path, checked[0], checked[1], exported_now=False)


def export_verified(encoder: nn.Module, path: Path) -> VerifiedOnnx:
    """Export ``encoder``, check the graph against it on :func:`check_input`, then record its sha256."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        export_onnx(encoder, tmp)
        data = tmp.read_bytes()
        x = check_input()
        with torch.no_grad():
            device = next(encoder.parameters()).device
            want = encoder(x.to(device).contiguous(memory_format=torch.channels_last)).float().cpu()
        got = OnnxEncoder(data, threads=1)(x)
        err = relative_error(got, want)
        if not err <= EXPORT_TOLERANCE:  # also catches NaN
            raise ExportMismatch(
                f"The ONNX export of the image encoder differs from PyTorch (relative error {err:.1e}); "
                "use encoder_runtime 'fused'."
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    import onnxruntime

    check = {"input": "check_input()", "max_relative_error": err, "tolerance": EXPORT_TOLERANCE}
    digest = write_sidecar(path, data, check=check, torch=torch.__version__, onnxruntime=onnxruntime.__version__)
    log.info("exported the image encoder to %s (checked against PyTorch: relative error %.1e)", path, err)
    remove_superseded_exports(path)
    return VerifiedOnnx(path, data, digest, exported_now=True)


def remove_superseded_exports(path: Path) -> list[Path]:
    """Delete older export versions of the same weights beside ``path`` (and their sidecars).

    Each export version re-exports once; without this a user who upgraded keeps a dead 23 MB copy per version.
    Only names this module writes, for the same weights digest, in the same folder, are touched.
    """
    match = re.fullmatch(r"tinyvit_([0-9a-f]+)_v(\d+)\.onnx", path.name)
    if match is None:
        return []
    digest, version = match.group(1), int(match.group(2))
    old_names = [f"tinyvit_{digest}.onnx"] + [f"tinyvit_{digest}_v{v}.onnx" for v in range(2, version)]
    candidates = [p for name in old_names for p in (path.with_name(name), sidecar_path(path.with_name(name)))]
    return [old for old in candidates if remove_stale(old)]


def load_or_export(encoder: nn.Module, path: Path) -> VerifiedOnnx:
    """The verified export at ``path``; exported (and checked) again when absent, unrecorded or altered."""
    make_private_dir(path.parent)
    verified = _verified_bytes(path)
    if verified is not None:
        return verified
    return export_verified(encoder, path)
