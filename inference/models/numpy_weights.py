"""The named float32 arrays the torch-free LiteMedSAM decoder is built from, and their validation.

Names are the model's ``state_dict`` keys of ``prompt_encoder`` and ``mask_decoder`` (with those prefixes)
plus ``dense_pe``, the decoder's positional encoding (``LiteMedSAM.image_pe()``, (1, 256, 64, 64)).
``inference.models.numpy_decoder_export.decoder_arrays`` makes them from a loaded model. The arrays may
come from a file in the user's cache, i.e. they are untrusted: every name, shape, dtype and value is
checked before use, and anything off raises :class:`~inference.errors.ModelLoadError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from inference.errors import ModelLoadError

EMBED_DIM = 256
GRID = 64  # image embedding side; the model frame is 4 × GRID = 256
HEADS = 8
DEPTH = 2
MLP_DIM = 2048
MASK_TOKENS = 4
HYPER_DIM = EMBED_DIM // 8
MASK_IN_CHANS = 16
DENSE_PE = "dense_pe"


def _linear(prefix: str, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n_out, n_in), f"{prefix}.bias": (n_out,)}


def _attention(prefix: str, inner: int) -> dict[str, tuple[int, ...]]:
    c = EMBED_DIM
    return {
        **_linear(f"{prefix}.q_proj", c, inner), **_linear(f"{prefix}.k_proj", c, inner),
        **_linear(f"{prefix}.v_proj", c, inner), **_linear(f"{prefix}.out_proj", inner, c),
    }


def _norm(prefix: str, c: int = EMBED_DIM) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def _mlp(prefix: str, n_out: int) -> dict[str, tuple[int, ...]]:
    c = EMBED_DIM
    return {**_linear(f"{prefix}.layers.0", c, c), **_linear(f"{prefix}.layers.1", c, c),
            **_linear(f"{prefix}.layers.2", c, n_out)}


def array_shapes() -> dict[str, tuple[int, ...]]:
    """Every array name the decoder needs and its shape (LiteMedSAM's published decoder sizes)."""
    c, pe, md = EMBED_DIM, "prompt_encoder", "mask_decoder"
    shapes: dict[str, tuple[int, ...]] = {
        f"{pe}.pe_layer.positional_encoding_gaussian_matrix": (2, c // 2),
        **{f"{pe}.point_embeddings.{i}.weight": (1, c) for i in range(4)},
        f"{pe}.not_a_point_embed.weight": (1, c),
        f"{pe}.mask_downscaling.0.weight": (MASK_IN_CHANS // 4, 1, 2, 2),
        f"{pe}.mask_downscaling.0.bias": (MASK_IN_CHANS // 4,),
        **_norm(f"{pe}.mask_downscaling.1", MASK_IN_CHANS // 4),
        f"{pe}.mask_downscaling.3.weight": (MASK_IN_CHANS, MASK_IN_CHANS // 4, 2, 2),
        f"{pe}.mask_downscaling.3.bias": (MASK_IN_CHANS,),
        **_norm(f"{pe}.mask_downscaling.4", MASK_IN_CHANS),
        f"{pe}.mask_downscaling.6.weight": (c, MASK_IN_CHANS, 1, 1),
        f"{pe}.mask_downscaling.6.bias": (c,),
        f"{pe}.no_mask_embed.weight": (1, c),
    }
    tr = f"{md}.transformer"
    for i in range(DEPTH):
        block = f"{tr}.layers.{i}"
        shapes.update({
            **_attention(f"{block}.self_attn", c), **_norm(f"{block}.norm1"),
            **_attention(f"{block}.cross_attn_token_to_image", c // 2), **_norm(f"{block}.norm2"),
            **_linear(f"{block}.mlp.lin1", c, MLP_DIM), **_linear(f"{block}.mlp.lin2", MLP_DIM, c),
            **_norm(f"{block}.norm3"), **_norm(f"{block}.norm4"),
            **_attention(f"{block}.cross_attn_image_to_token", c // 2),
        })
    shapes.update({
        **_attention(f"{tr}.final_attn_token_to_image", c // 2), **_norm(f"{tr}.norm_final_attn"),
        f"{md}.iou_token.weight": (1, c),
        f"{md}.mask_tokens.weight": (MASK_TOKENS, c),
        f"{md}.output_upscaling.0.weight": (c, c // 4, 2, 2),
        f"{md}.output_upscaling.0.bias": (c // 4,),
        **_norm(f"{md}.output_upscaling.1", c // 4),
        f"{md}.output_upscaling.3.weight": (c // 4, HYPER_DIM, 2, 2),
        f"{md}.output_upscaling.3.bias": (HYPER_DIM,),
        **{k: v for i in range(MASK_TOKENS) for k, v in _mlp(f"{md}.output_hypernetworks_mlps.{i}", HYPER_DIM).items()},
        **_mlp(f"{md}.iou_prediction_head", MASK_TOKENS),
        DENSE_PE: (1, c, GRID, GRID),
    })
    return shapes


def _describe(name: str) -> str:
    return f"LiteMedSAM decoder weights: array '{name[:80]}'"


_RELAID_OUT = 1 << 16  # arrays this large are weight matrices the decoder always copies into its own layout


def validated(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays, checked (names, shapes, float32, finite); else ModelLoadError.

    Small arrays (biases, norms, embeddings) are copied read-only; weight matrices are passed through,
    because the decoder copies them into its own layouts anyway (no second 20 MB copy while loading).
    """
    if not isinstance(arrays, Mapping):
        raise ModelLoadError("LiteMedSAM decoder weights must be a mapping of names to arrays.")
    shapes = array_shapes()
    unexpected = sorted(str(k) for k in arrays if k not in shapes)
    if unexpected:
        raise ModelLoadError(f"{_describe(unexpected[0])} is not part of the decoder ({len(unexpected)} unexpected).")
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        if name not in arrays:
            raise ModelLoadError(f"{_describe(name)} is missing.")
        value = arrays[name]
        if not isinstance(value, np.ndarray):
            raise ModelLoadError(f"{_describe(name)} is a {type(value).__name__}, not a numpy array.")
        if value.dtype != np.float32:
            raise ModelLoadError(f"{_describe(name)} is {value.dtype}, expected float32.")
        if value.shape != shape:
            raise ModelLoadError(f"{_describe(name)} has shape {value.shape}, expected {shape}.")
        if not np.isfinite(value).all():
            raise ModelLoadError(f"{_describe(name)} contains NaN or infinite values.")
        if value.size >= _RELAID_OUT:
            out[name] = value  # a weight matrix: the decoder re-lays it out into arrays of its own
        else:
            copy = np.array(value, dtype=np.float32, order="C")  # kept as is: ours, whatever the caller does
            copy.flags.writeable = False
            out[name] = copy
    _check_dense_pe(out)
    return out


def positional_encoding(gaussian: np.ndarray, coords01: np.ndarray) -> np.ndarray:
    """SAM's random-Fourier positional encoding of (…, 2) coordinates in [0, 1] → (…, C), float32."""
    c = (np.float32(2.0) * coords01.astype(np.float32) - np.float32(1.0)) @ gaussian
    c *= np.float32(2.0 * math.pi)
    return np.concatenate([np.sin(c), np.cos(c)], axis=-1)


def dense_positional_encoding(gaussian: np.ndarray, grid: int = GRID) -> np.ndarray:
    """``PositionEmbeddingRandom.forward((grid, grid))`` as (grid·grid, C) rows, y-major."""
    centres = (np.arange(grid, dtype=np.float32) + np.float32(0.5)) / np.float32(grid)
    xy = np.stack(np.meshgrid(centres, centres, indexing="xy"), axis=-1)  # [y, x] = (x, y)
    return positional_encoding(gaussian, xy.reshape(-1, 2))


def _check_dense_pe(arrays: dict[str, np.ndarray]) -> None:
    """``dense_pe`` must be the encoding of the grid under the file's own Gaussian matrix (same model)."""
    gaussian = arrays["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    expected = dense_positional_encoding(gaussian)
    given = arrays[DENSE_PE][0].reshape(EMBED_DIM, -1).T
    tolerance = 1e-4 * max(1.0, float(np.abs(gaussian).max()) * 2.0 * math.pi)
    if float(np.abs(expected - given).max()) > tolerance:
        raise ModelLoadError(
            f"{_describe(DENSE_PE)} does not match the positional encoding of the same weights (another model?)."
        )
