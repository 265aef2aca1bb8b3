"""The torch side of the torch-free CPU path: write the decoder's arrays and the manifest, checked first.

Called by the PyTorch backend once its encoder engine is decided (``inference.models.cpu_runtime`` says
why). Only when ONNX Runtime runs the encoder on the CPU: the torch-free path reuses that exact export.
The numpy decoder built from the arrays must reproduce :func:`inference.models.litemedsam.decode` on a
fixed embedding for several prompt kinds before anything is written; the manifest goes last, so a
crash in between leaves no usable record.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from inference.models.cpu_runtime import (
    MANIFEST_FILE,
    MAX_DECODER_BYTES,
    MAX_UPSAMPLE_BYTES,
    CpuRuntimeManifest,
    finite_ratio,
    load_decoder_arrays,
    read_manifest,
)
from inference.models.engine_choice import MeasuringEncoder
from inference.models.litemedsam import LiteMedSAM, decode, encode, model_device
from inference.models.machine import machine_key
from inference.models.onnx_encoder import OnnxEncoder, check_input
from inference.models.verified_files import hashed_bytes, make_private_dir, remove_stale, write_atomic

if TYPE_CHECKING:
    from inference.models.numpy_decoder import NumpyPromptDecoder

log = logging.getLogger(__name__)

DECODER_TOLERANCE = 1e-3  # max |Δlogit| / max |logit| and the same for IoU, numpy vs PyTorch at export


def active_onnx_encoder(model: LiteMedSAM) -> OnnxEncoder | None:
    """The ONNX Runtime engine the model's encoder settled on, or ``None`` (PyTorch engine, or still measuring)."""
    encoder: object = model.image_encoder
    if isinstance(encoder, MeasuringEncoder):
        encoder = encoder.chosen_engine
    return encoder if isinstance(encoder, OnnxEncoder) and encoder.source is not None else None


def _check_prompts() -> list[dict[str, object]]:
    """Box, points alone (multimask), box + points, and a mask prompt from the box's own logits."""
    box = np.array([60.0, 70.0, 190.0, 180.0], dtype=np.float32)
    points = np.array([[120.0, 125.0], [90.0, 160.0]], dtype=np.float32)
    labels = np.array([1, 0], dtype=np.int64)
    return [
        {"box_256": box},
        {"points_256": points[:1], "point_labels": labels[:1], "multimask": True},
        {"box_256": box, "points_256": points, "point_labels": labels, "multimask": "all"},
        {"box_256": box, "valid_size": (256, 192)},
    ]


def decoder_agreement(model: LiteMedSAM, numpy_decoder: NumpyPromptDecoder) -> float:
    """Worst relative error of the torch-free decoder (numpy + the ONNX upsampling graph) against PyTorch's
    over :func:`_check_prompts` (fp32)."""
    from inference.models.numpy_decoder import decode as numpy_decode

    embedding = encode(model, check_input().to(model_device(model))).cpu()
    emb_np = embedding.numpy().copy()
    worst = 0.0
    prompts = _check_prompts()
    with torch.no_grad():
        low = decode(model, embedding.to(model_device(model)), box_256=prompts[0]["box_256"])[0][0].cpu().numpy()  # type: ignore[arg-type]
    prompts.append({"box_256": prompts[0]["box_256"], "mask_logits_256": low})
    for prompt in prompts:
        want_logits, want_iou = decode(model, embedding.to(model_device(model)), **prompt)  # type: ignore[arg-type]
        got_logits, got_iou = numpy_decode(numpy_decoder, emb_np, **prompt)  # type: ignore[arg-type]
        worst = max(worst, finite_ratio(got_logits, want_logits.cpu().numpy()),
                    finite_ratio(got_iou, want_iou.cpu().numpy()))
    return worst


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types the keyword arrays as allow_pickle
    return buffer.getvalue()


def remove_manifest(folder: Path) -> None:
    """The torch path settled on a PyTorch encoder: the torch-free record must not contradict it."""
    (folder / MANIFEST_FILE).unlink(missing_ok=True)


def _remove_replaced_files(folder: Path, kept: set[str]) -> None:
    """Delete earlier records' decoder and upsampling files (a new checkpoint, a new record format): dead
    weight in the cache. Only names this module writes are touched."""
    for path in folder.iterdir():
        if path.name not in kept and re.fullmatch(r"litemedsam_(decoder_[0-9a-f]{16}\.npz|upsample_[0-9a-f]{16}\.onnx)",
                                                  path.name):
            remove_stale(path)


def write_cpu_runtime(model: LiteMedSAM, folder: Path, checkpoint_sha256: str) -> bool:
    """Record the torch-free CPU path for ``model`` in ``folder`` (True when a usable record is there).

    Nothing is written unless ONNX Runtime runs the encoder on the CPU and the numpy decoder agrees with
    PyTorch to :data:`DECODER_TOLERANCE`. An existing record for the same files and machine is kept.
    """
    onnx = active_onnx_encoder(model)
    if onnx is None or model_device(model).type != "cpu" or onnx.source is None or onnx.source.path.parent != folder:
        remove_manifest(folder)
        return False
    from inference.models.numpy_decoder import NumpyPromptDecoder
    from inference.models.numpy_decoder_export import decoder_arrays
    from inference.models.upsample_graph import OnnxUpsampler, upsample_graph

    data = _npz_bytes(decoder_arrays(model))
    digest = hashlib.sha256(data).hexdigest()
    numpy_decoder = NumpyPromptDecoder(load_decoder_arrays(data))  # from the bytes that will be read back
    graph = upsample_graph(numpy_decoder)
    graph_digest = hashlib.sha256(graph).hexdigest()
    manifest = CpuRuntimeManifest(
        model_id=model.model_id, checkpoint_sha256=checkpoint_sha256, encoder_file=onnx.source.path.name,
        encoder_sha256=onnx.source.sha256, threads=onnx.threads, graph_opt=onnx.graph_opt,
        decoder_file=f"litemedsam_decoder_{digest[:16]}.npz", decoder_sha256=digest,
        upsample_file=f"litemedsam_upsample_{graph_digest[:16]}.onnx", upsample_sha256=graph_digest,
        machine=machine_key(),
        engine=str(getattr(model, "encoder_engine", "onnx"))[:400],
    )
    current = read_manifest(folder)
    if current is not None and replace(current, engine=manifest.engine) == manifest:
        try:
            hashed_bytes(folder / manifest.decoder_file, digest, MAX_DECODER_BYTES)
            hashed_bytes(folder / manifest.upsample_file, graph_digest, MAX_UPSAMPLE_BYTES)
            return True  # the same record, its files intact
        except ValueError:
            pass
    numpy_decoder.upsampler = OnnxUpsampler(graph, onnx.threads)
    err = decoder_agreement(model, numpy_decoder)
    if not err <= DECODER_TOLERANCE:
        log.warning("the numpy decoder differs from PyTorch (relative error %.1e); segmenting with PyTorch", err)
        remove_manifest(folder)
        return False
    make_private_dir(folder)
    write_atomic(folder / manifest.decoder_file, data)
    write_atomic(folder / manifest.upsample_file, graph)
    write_atomic(folder / MANIFEST_FILE, manifest.to_json().encode())
    _remove_replaced_files(folder, {manifest.decoder_file, manifest.upsample_file})
    log.info("recorded the torch-free CPU path in %s (decoder checked against PyTorch: %.1e)", folder, err)
    return True
