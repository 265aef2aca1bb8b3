"""LiteMedSAM: build, verify and load once; then ``encode`` per slice and ``decode`` per prompt.

The image encoder (TinyViT, the bulk of the cost) is separated from the prompt encoder + mask decoder
so callers can cache embeddings and re-run only the decoder on every click; the decoder runs reordered
(``inference.models.fast_decoder``) at under half of upstream's cost, same results to float rounding.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer
from torch import nn

from inference.errors import ModelLoadError
from inference.models.device import autocast_dtype
from inference.models.encoder_runtime import apply_encoder_runtime
from inference.models.fast_decoder import FastPromptDecoder
from inference.models.numpy_decoder import token_set
from inference.models.preprocess import (
    DEFAULT_CT_WINDOW,
    LUNG_WINDOW,
    MODEL_SIDE,
    PreprocessInfo,
    preprocess_slice,
)
from inference.models.registry import ModelFile, litemedsam_file, verify_checkpoint
from inference.models.tinyvit import TinyViT

__all__ = [
    "DEFAULT_CT_WINDOW",
    "LUNG_WINDOW",
    "LiteMedSAM",
    "PreprocessInfo",
    "build_litemedsam",
    "decode",
    "encode",
    "fast_decoder",
    "load_litemedsam",
    "preprocess_slice",
    "reference_decode",
]


class LiteMedSAM(nn.Module):
    """Container with SAM's attribute names; ``forward`` is the reference encoder+decoder per prompt."""

    def __init__(
        self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.model_id = "unloaded"
        self.encoder_runtime = "eager"  # set by load_litemedsam (inference.models.encoder_runtime)

    def cache_dense_pe(self) -> None:
        """The decoder's positional encoding depends only on the weights: compute it once (~45 ms a call)."""
        with torch.no_grad():
            self.register_buffer(
                "dense_pe", self.prompt_encoder.get_dense_pe().detach().clone(), persistent=False
            )

    def image_pe(self) -> torch.Tensor:
        pe = getattr(self, "dense_pe", None)
        return pe if isinstance(pe, torch.Tensor) else self.prompt_encoder.get_dense_pe()

    def forward(self, image: torch.Tensor, boxes_256: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference path (upstream ``medsam_inference``): encoder + single-mask decoder, box prompt."""
        embedding = self.image_encoder(image)
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes_256.reshape(-1, 4), masks=None)
        return self.mask_decoder(
            image_embeddings=embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )


def build_litemedsam() -> LiteMedSAM:
    """Randomly initialised network with the published LiteMedSAM shapes."""
    prompt_encoder = PromptEncoder(
        embed_dim=256,
        image_embedding_size=(64, 64),
        input_image_size=(MODEL_SIDE, MODEL_SIDE),
        mask_in_chans=16,
    )
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return LiteMedSAM(TinyViT(img_size=MODEL_SIDE), prompt_encoder, mask_decoder)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle-protocol notice on foreign files
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a usable checkpoint"
        raise ModelLoadError(
            f"Model file {path.name} could not be read as a PyTorch checkpoint ({type(err).__name__})."
        ) from err
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"Model file {path.name} is not a LiteMedSAM state dict.")
    return state


def load_litemedsam(
    device: torch.device | str = "cpu",
    model_file: ModelFile | None = None,
    *,
    verify: bool = True,
    runtime: str = "fused",
    cache_dir: Path | None = None,
) -> LiteMedSAM:
    """Verify the checkpoint's sha256, build the network and load all weights strictly.

    Any missing/unexpected key or shape mismatch raises :class:`ModelLoadError`; the half-built network
    is discarded, never returned. Call once per process and keep the result. ``runtime`` picks the CPU
    encoder engine (``inference.models.encoder_runtime``; ``fused`` is exact and the default).
    """
    mf = model_file or litemedsam_file()
    if verify:
        verify_checkpoint(mf.path, mf.sha256, mf.size)
    elif not Path(mf.path).is_file():
        raise ModelLoadError(f"Model file not found: {mf.path}.")
    state = _read_state(Path(mf.path))
    model = build_litemedsam()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise ModelLoadError(
            f"Model file {Path(mf.path).name} does not match the LiteMedSAM architecture ({detail[:160]})."
        ) from err
    model.model_id = mf.model_id
    model.cache_dense_pe()
    model.image_encoder.to(memory_format=torch.channels_last)  # ~20 % faster convs on CPU (benchmark)
    model = model.to(device).eval()
    return apply_encoder_runtime(model, runtime, cache_dir=cache_dir)


def cpu_bf16_supported() -> bool:
    """True on CPUs with native bf16 (AVX512-BF16/AMX), where bf16 autocast halves decoder time."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextlib.contextmanager
def _inference(device: torch.device, cpu_dtype: torch.dtype | None = None) -> Iterator[None]:
    dtype = autocast_dtype(device) if device.type == "cuda" else cpu_dtype
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device.type, dtype=dtype):
                yield


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode(model: LiteMedSAM, tensor: torch.Tensor) -> torch.Tensor:
    """(1, 3, 256, 256) → float32 (1, 256, 64, 64) image embedding (fp32 on CPU: bf16 costs 3 % error)."""
    device = model_device(model)
    with _inference(device):
        x = tensor.to(device).contiguous(memory_format=torch.channels_last)
        return model.image_encoder(x).float().contiguous()


def _prompts(
    device: torch.device,
    box_256: np.ndarray | None,
    points_256: np.ndarray | None,
    point_labels: np.ndarray | None,
    mask_logits_256: np.ndarray | None,
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None, torch.Tensor | None]:
    """numpy prompts in the 256 frame → the (points, boxes, masks) tensors SAM's prompt encoder takes."""
    boxes = (
        None
        if box_256 is None
        else torch.as_tensor(box_256, dtype=torch.float32, device=device).reshape(1, 4)
    )
    points = None
    if points_256 is not None and len(points_256):
        coords = torch.as_tensor(points_256, dtype=torch.float32, device=device).reshape(1, -1, 2)
        labels = torch.as_tensor(point_labels, dtype=torch.int64, device=device).reshape(1, -1)
        points = (coords, labels)
    masks = None
    if mask_logits_256 is not None:
        masks = torch.as_tensor(mask_logits_256, dtype=torch.float32, device=device).reshape(
            1, 1, MODEL_SIDE, MODEL_SIDE
        )
    if boxes is None and points is None and masks is None:
        raise ValueError("decode needs at least one prompt")
    return points, boxes, masks


def _decoder_weights_version(model: LiteMedSAM) -> int:
    """Changes whenever a prompt encoder / mask decoder weight is modified in place (load, fine-tuning)."""
    return sum(p._version for p in (*model.prompt_encoder.parameters(), *model.mask_decoder.parameters()))


def fast_decoder(model: LiteMedSAM) -> FastPromptDecoder:
    """The model's :class:`FastPromptDecoder` (it holds re-laid-out copies of the weights), built on first
    use and again when the model moved device, its decoder modules were replaced or their weights changed."""
    device = model_device(model)
    version = _decoder_weights_version(model)
    current = getattr(model, "_fast_decoder", None)
    if not (
        isinstance(current, FastPromptDecoder) and current.device == device and current.weights_version == version
        and current.decoder is model.mask_decoder and current.prompt_encoder is model.prompt_encoder
    ):
        with torch.no_grad():
            current = FastPromptDecoder(model.prompt_encoder, model.mask_decoder, model.image_pe())
        current.weights_version = version
        object.__setattr__(model, "_fast_decoder", current)  # plain attribute: not a submodule or state
    return current


def decode(
    model: LiteMedSAM,
    embedding: torch.Tensor,
    box_256: np.ndarray | None = None,
    points_256: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    mask_logits_256: np.ndarray | None = None,
    multimask: bool | str = False,
    cpu_dtype: torch.dtype | None = None,
    *,
    best: bool = False,
    valid_size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One object's prompts (already in the 256 frame) → (C, 256, 256) logits and (C,) predicted IoU.

    ``C`` is 1, 3 with ``multimask=True`` or 4 (single + multimask tokens) with ``multimask="all"``; with
    ``best`` only the one of those with the highest predicted IoU (C = 1). ``mask_logits_256`` is a
    (256, 256) low-resolution logit map from a previous decode (SAM's mask prompt). ``cpu_dtype=
    torch.bfloat16`` autocasts on CPU. ``valid_size`` (the unpadded h, w in the 256 frame) skips the
    padding's logits. Runs :class:`~inference.models.fast_decoder.FastPromptDecoder` (upstream's maths,
    reordered); :func:`reference_decode` is the upstream path it is checked and timed against.
    """
    device = embedding.device
    points, boxes, masks = _prompts(device, box_256, points_256, point_labels, mask_logits_256)
    with _inference(device, cpu_dtype):
        logits, iou = fast_decoder(model).run(
            embedding, points, boxes, masks, tokens=token_set(multimask), best=best, valid_size=valid_size
        )
    return logits.float(), iou.float()


def reference_decode(
    model: LiteMedSAM,
    embedding: torch.Tensor,
    box_256: np.ndarray | None = None,
    points_256: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    mask_logits_256: np.ndarray | None = None,
    multimask: bool | str = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Upstream's re-prompt on a cached embedding (MedSAM's ``medsam_inference``: segment_anything's
    prompt encoder, ``get_dense_pe()`` and mask decoder, fp32); same outputs as :func:`decode`."""
    points, boxes, masks = _prompts(embedding.device, box_256, points_256, point_labels, mask_logits_256)
    with torch.no_grad():
        sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
        logits, iou = model.mask_decoder.predict_masks(
            image_embeddings=embedding,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
    sel = list(token_set(multimask))
    return logits[0, sel], iou[0, sel]
