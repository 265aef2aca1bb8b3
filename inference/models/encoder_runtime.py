"""How the TinyViT image encoder runs on the CPU: one setting (``Settings.encoder_runtime``), several engines.

The encoder is ~95 % of the cost of segmenting a new slice, so this is where CPU speed work pays. Every
engine here maps the same (B, 3, 256, 256) input to the same (B, 256, 64, 64) embedding; the benchmark
``python -m benchmarks encoder_variants`` measures their speed and the Dice of the decoded masks
against the fp32 reference, and ``tests/inference/test_encoder_variants.py`` keeps the shipped default
honest (Dice ≥ 0.995). Engines that change the numbers (int8) get their own model id, so caches of
embeddings or features never mix results of two engines.

- ``auto`` (default): the fastest exact engine *measured on this machine* on the first encodes of the
  first start (``fused``, or ``onnx`` at all threads or one), cached with the machine's fingerprint
  (``inference.models.engine_choice``); ``fused`` without ONNX Runtime.
- ``eager``: PyTorch, channels_last, inference mode (what LiteMedSAM loading always did).
- ``fused``: ``eager`` with every Conv+BatchNorm folded into one conv (same maths, fewer passes).
- ``compile``: ``fused`` through ``torch.compile`` (Inductor; the first call compiles for a minute).
- ``int8``: ``fused`` with dynamic int8 quantisation of the Linear layers (attention + MLP).
- ``onnx``: ``fused`` exported once to ONNX, checked against PyTorch, sha256-verified before every load
  (``inference.models.onnx_encoder``) and run by ONNX Runtime (optional extra ``[onnx]``).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import warnings
import weakref
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inference.errors import ModelLoadError
from inference.models.engine_choice import (
    EngineChoice,
    EngineConfig,
    MeasuringEncoder,
    candidates,
    fingerprint,
    read_choice,
    write_choice,
)
from inference.models.onnx_encoder import (
    OnnxEncoder,
    check_input,
    export_file_name,
    export_verified,
    load_or_export,
)
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
    """Check the setting's name; ``auto`` stays ``auto`` (decided by measurement in :func:`apply_encoder_runtime`)."""
    name = (runtime or DEFAULT_ENCODER_RUNTIME).strip().lower()
    if name not in ENCODER_RUNTIMES:
        raise ModelLoadError(f"Unknown encoder runtime '{runtime}'; choose one of {', '.join(ENCODER_RUNTIMES)}.")
    return name


def default_cache_dir() -> Path:
    """Where exports and the engine choice live when the caller names no folder (per user, not /tmp)."""
    from inference.settings import default_config_dir

    return default_config_dir() / "cache" / "encoder"


def _onnx_engine(encoder: nn.Module, path: Path, config: EngineConfig) -> OnnxEncoder:
    """The verified export as an engine; a verified file ONNX Runtime cannot open is exported again once."""
    verified = load_or_export(encoder, path)
    try:
        return OnnxEncoder(verified.data, config.threads, config.graph_opt, source=verified)
    except Exception as err:  # noqa: BLE001 - e.g. written by another ONNX Runtime version: export once more
        if verified.exported_now:
            raise
        log.warning("ONNX Runtime could not open %s (%s); exporting again", path.name, type(err).__name__)
        again = export_verified(encoder, path)
        return OnnxEncoder(again.data, config.threads, config.graph_opt, source=again)


def _measured_engine(model: Any, encoder: nn.Module, folder: Path, threads: int) -> tuple[nn.Module, str]:
    """``auto``: the engine measured on this machine (cached decision), or a :class:`MeasuringEncoder` that
    times the candidates on the first real encodes and stores the decision (``engine_choice``)."""
    options = candidates(threads, onnxruntime_available())
    digest = _weights_digest(encoder)
    path = folder / export_file_name(digest)
    expected = fingerprint(digest, threads)

    def build(config: EngineConfig) -> nn.Module:
        return encoder if config.runtime == "fused" else _onnx_engine(encoder, path, config)

    if len(options) == 1:
        return encoder, "auto: ONNX Runtime not installed"
    cached = read_choice(folder, expected, options)
    if cached is not None:
        return build(cached.chosen), f"auto: {cached.describe()}"
    owner = weakref.ref(model)

    def on_decided(choice: EngineChoice) -> None:
        write_choice(folder, choice)
        target = owner()
        if target is not None:
            target.encoder_runtime = choice.chosen.runtime
            target.encoder_engine = f"{choice.chosen.runtime}, {choice.chosen.threads} threads (auto: {choice.describe()})"

    engines = {c: build(c) for c in options}
    return MeasuringEncoder(engines, options, expected, on_decided), "auto: measuring on the first encodes"


def settle(model: Any, max_calls: int = 40) -> bool:
    """Run encodes of a fixed image until ``auto`` has decided (benchmarks, tests); True when decided."""
    encoder = model.image_encoder
    x = check_input().contiguous(memory_format=torch.channels_last)
    for _ in range(max_calls):
        if not isinstance(encoder, MeasuringEncoder) or encoder.decided:
            return True
        with torch.inference_mode():
            encoder(x)
    return not isinstance(encoder, MeasuringEncoder) or encoder.decided


def apply_encoder_runtime(
    model: Any, runtime: str = DEFAULT_ENCODER_RUNTIME, *, cache_dir: Path | None = None, threads: int | None = None,
) -> Any:
    """Switch a loaded LiteMedSAM's ``image_encoder`` to ``runtime`` (in place; returns the model).

    Non-CPU devices keep the eager encoder (the GPU path uses autocast instead). ``cache_dir`` holds the
    verified ONNX export (keyed by the weights' hash, so a new checkpoint re-exports) and the measured
    engine choice. ``auto`` falls back to ``fused`` if the ONNX engine cannot be prepared; an explicit
    ``onnx`` raises instead. ``model.encoder_engine`` says what runs and why.
    """
    requested = resolve_runtime(runtime)
    device = next(model.parameters()).device
    model.encoder_runtime = "eager"
    model.encoder_engine = "eager (PyTorch)"
    if requested == "eager" or device.type != "cpu":
        return model
    threads = max(1, threads or torch.get_num_threads())
    folder = cache_dir or default_cache_dir()
    encoder = model.image_encoder
    fold_conv_bn(encoder)
    encoder.to(memory_format=torch.channels_last)
    name, detail = requested, "set in the settings"
    if requested == "compile":
        encoder = torch.compile(encoder, dynamic=False)
    elif requested == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao deprecation notice
            encoder = torch.ao.quantization.quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)
    elif requested in ("onnx", "auto"):
        try:
            if requested == "onnx":
                path = folder / export_file_name(_weights_digest(encoder))
                encoder = _onnx_engine(encoder, path, EngineConfig("onnx", threads, "all"))
            else:
                encoder, detail = _measured_engine(model, encoder, folder, threads)
                name = "auto" if isinstance(encoder, MeasuringEncoder) else (
                    "onnx" if isinstance(encoder, OnnxEncoder) else "fused")
        except Exception as err:  # noqa: BLE001 - 'auto' must never block segmentation: keep the exact torch engine
            if requested != "auto":
                raise ModelLoadError(f"The ONNX image encoder could not be prepared ({type(err).__name__}).") from err
            log.warning("ONNX encoder unavailable (%s); using the fused PyTorch encoder", err)
            encoder, name, detail = model.image_encoder, "fused", "auto: ONNX unavailable"
    model.image_encoder = encoder
    model.encoder_runtime = name
    threads_used = encoder.threads if isinstance(encoder, OnnxEncoder) else torch.get_num_threads()
    model.encoder_engine = detail if name == "auto" else f"{name}, {threads_used} threads ({detail})"
    if name in _INEXACT:
        model.model_id = f"{model.model_id}+{name}"
    return model
