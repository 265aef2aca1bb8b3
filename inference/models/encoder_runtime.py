"""How the TinyViT image encoder runs on the CPU: one setting (``Settings.encoder_runtime``), several engines.

The encoder is ~95 % of the cost of segmenting a new slice, so this is where CPU speed work pays. Every
engine here maps the same (B, 3, 256, 256) input to the same (B, 256, 64, 64) embedding; the benchmark
``python -m benchmarks encoder_variants`` measures their speed and the Dice of the decoded masks
against the fp32 reference, and ``tests/inference/test_encoder_variants.py`` keeps the shipped default
honest (Dice ≥ 0.995). Engines that change the numbers (int8) get their own model id, so caches of
embeddings or features never mix results of two engines.

- ``auto`` (default): ``onnx`` when ONNX Runtime is installed, else ``fused``.
- ``eager``: PyTorch, channels_last, inference mode (what LiteMedSAM loading always did).
- ``fused``: ``eager`` with every Conv+BatchNorm folded into one conv (same maths, fewer passes).
- ``compile``: ``fused`` through ``torch.compile`` (Inductor; the first call compiles for a minute).
- ``int8``: ``fused`` with dynamic int8 quantisation of the Linear layers (attention + MLP).
- ``onnx``: ``fused`` exported once to ONNX and run by ONNX Runtime (optional extra ``[onnx]``).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inference.errors import ModelLoadError
from inference.models.preprocess import MODEL_SIDE
from inference.models.tinyvit import Conv2d_BN

log = logging.getLogger(__name__)

ENCODER_RUNTIMES = ("auto", "eager", "fused", "compile", "int8", "onnx")
DEFAULT_ENCODER_RUNTIME = "auto"
# Engines whose embeddings differ from eager fp32 by more than float rounding get a model-id suffix.
_INEXACT = {"int8"}


def fold_conv_bn(encoder: nn.Module) -> int:
    """Fold each ``Conv2d_BN``'s BatchNorm into its conv in place (eval statistics); returns how many."""
    n = 0
    for module in encoder.modules():
        if isinstance(module, Conv2d_BN) and isinstance(module.bn, nn.BatchNorm2d):
            conv, bn = module.c, module.bn
            assert isinstance(conv, nn.Conv2d) and bn.running_var is not None and bn.running_mean is not None
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            fused = copy.deepcopy(conv)
            bias = bn.bias.detach() - bn.running_mean * scale
            with torch.no_grad():
                fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
                fused.bias = nn.Parameter(bias if conv.bias is None else bias + conv.bias.detach() * scale)
            module.c = fused
            module.bn = nn.Identity()
            n += 1
    return n


class OnnxEncoder(nn.Module):
    """ONNX Runtime session behind an ``nn.Module`` face, so ``encode`` needs no special case."""

    def __init__(self, model_path: Path, threads: int) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ModelLoadError(
                "Encoder runtime 'onnx' needs ONNX Runtime: pip install 'medfusion-viewer[onnx]'."
            ) from err
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between ops: spinning worker threads starve the UI thread on small machines.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().cpu().contiguous().numpy()
        (out,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(out)


def export_onnx(encoder: nn.Module, path: Path) -> Path:
    """Export the (fused, fp32) encoder with a dynamic batch axis; written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # concurrent exports
    dummy = torch.zeros(1, 3, MODEL_SIDE, MODEL_SIDE)
    was = next(encoder.parameters()).device
    encoder = encoder.cpu().to(memory_format=torch.contiguous_format)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder, (dummy,), str(tmp), input_names=["image"], output_names=["embedding"],
            dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=17, dynamo=False,
        )
    encoder.to(was)
    tmp.replace(path)
    return path


def _weights_digest(encoder: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in encoder.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_runtime(runtime: str) -> str:
    """``auto`` → ``onnx`` where ONNX Runtime is installed (fastest exact engine in the benchmark), else
    ``fused``; other names are checked and returned."""
    name = (runtime or DEFAULT_ENCODER_RUNTIME).strip().lower()
    if name not in ENCODER_RUNTIMES:
        raise ModelLoadError(f"Unknown encoder runtime '{runtime}'; choose one of {', '.join(ENCODER_RUNTIMES)}.")
    if name == "auto":
        return "onnx" if onnxruntime_available() else "fused"
    return name


def apply_encoder_runtime(
    model: Any, runtime: str = DEFAULT_ENCODER_RUNTIME, *, cache_dir: Path | None = None, threads: int | None = None,
) -> Any:
    """Switch a loaded LiteMedSAM's ``image_encoder`` to ``runtime`` (in place; returns the model).

    Non-CPU devices keep the eager encoder (the GPU path uses autocast instead). ``cache_dir`` holds the
    exported ONNX file (keyed by the weights' hash, so a new checkpoint re-exports). ``auto`` falls back
    to ``fused`` if the ONNX engine cannot be prepared; an explicit ``onnx`` raises instead.
    """
    requested = (runtime or DEFAULT_ENCODER_RUNTIME).strip().lower()
    runtime = resolve_runtime(requested)
    device = next(model.parameters()).device
    model.encoder_runtime = "eager"
    if runtime == "eager" or device.type != "cpu":
        return model
    encoder = model.image_encoder
    fold_conv_bn(encoder)
    encoder.to(memory_format=torch.channels_last)
    if runtime == "compile":
        encoder = torch.compile(encoder, dynamic=False)
    elif runtime == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao deprecation notice
            encoder = torch.ao.quantization.quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)
    elif runtime == "onnx":
        folder = cache_dir or Path(tempfile.gettempdir()) / "medfusion_onnx"
        path = folder / f"tinyvit_{_weights_digest(encoder)}.onnx"
        try:
            if not path.is_file():
                log.info("exporting the image encoder to %s", path)
                export_onnx(encoder, path)
            encoder = OnnxEncoder(path, threads or torch.get_num_threads())
        except Exception as err:  # noqa: BLE001 - 'auto' must never block segmentation: keep the exact torch engine
            if requested != "auto":
                raise ModelLoadError(f"The ONNX image encoder could not be prepared ({type(err).__name__}).") from err
            log.warning("ONNX encoder unavailable (%s); using the fused PyTorch encoder", err)
            runtime = "fused"
    model.image_encoder = encoder
    model.encoder_runtime = runtime
    if runtime in _INEXACT:
        model.model_id = f"{model.model_id}+{runtime}"
    return model
