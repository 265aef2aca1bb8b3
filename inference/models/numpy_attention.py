"""segment_anything's ``Attention`` in float32 numpy, folded and tiled for the decoder's two cross-attentions.

Folding (see :mod:`inference.models.fast_decoder`): between the 4096 image rows and the ~7 prompt tokens,
``(x Wᵀ)·q = x·(W q)``, so the few tokens go through the projections instead of the image rows, and the
value projection is applied after the softmax-weighted sum. Tiling: the image side is processed in row
tiles (:data:`TILE_ROWS`) by a :class:`~inference.models.numpy_ops.TileRunner`, so each tile's
intermediates stay in the CPU cache and two threads share the work. Token→image attention reduces over
tiles with a running softmax (per-tile maximum and sum, rescaled when combined: exact up to rounding);
image→token attention is independent per image row, so its residual add, LayerNorm and the next
positional-encoding sum are done in the same tile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from inference.models.numpy_ops import TileRunner, layer_norm_, linear, softmax_

TILE_ROWS = 512  # image rows per tile: 8 tiles for the 64 × 64 grid
Linear = tuple[np.ndarray, np.ndarray]  # (weight transposed to (in, out), bias)


@dataclass(frozen=True)
class Attention:
    """One ``Attention``'s projections, plain and laid out per head for the folded products."""

    heads: int
    scale: np.float32
    q: Linear
    k: Linear
    v: Linear
    out: Linear
    wq_h: np.ndarray  # (H, d, C): q_proj.weight per head
    bq_h: np.ndarray  # (H, d, 1)
    wk_h: np.ndarray  # (H, d, C)
    wv_h_t: np.ndarray  # (H, C, d): v_proj.weight per head, transposed
    bv_h: np.ndarray  # (H, 1, d)
    wo_h: np.ndarray  # (H, d, C): out_proj.weight's columns per head, transposed
    bo_per_head: np.ndarray  # out_proj.bias / H: spread over the heads' weighted sums (each adds up to 1)


def linear_of(arrays: Mapping[str, np.ndarray], prefix: str) -> Linear:
    return np.ascontiguousarray(arrays[f"{prefix}.weight"].T), arrays[f"{prefix}.bias"]


def attention_of(arrays: Mapping[str, np.ndarray], prefix: str, heads: int) -> Attention:
    wq, wk, wv, wo = (arrays[f"{prefix}.{n}_proj.weight"] for n in ("q", "k", "v", "out"))
    inner, c = wq.shape
    d = inner // heads
    return Attention(
        heads=heads, scale=np.float32(1.0 / math.sqrt(d)),
        q=linear_of(arrays, f"{prefix}.q_proj"), k=linear_of(arrays, f"{prefix}.k_proj"),
        v=linear_of(arrays, f"{prefix}.v_proj"), out=linear_of(arrays, f"{prefix}.out_proj"),
        wq_h=np.array(wq.reshape(heads, d, c), dtype=np.float32, order="C"),  # copies: never the caller's memory
        bq_h=arrays[f"{prefix}.q_proj.bias"].reshape(heads, d, 1),
        wk_h=np.array(wk.reshape(heads, d, c), dtype=np.float32, order="C"),
        wv_h_t=np.ascontiguousarray(wv.reshape(heads, d, c).transpose(0, 2, 1)),
        bv_h=arrays[f"{prefix}.v_proj.bias"].reshape(heads, 1, d),
        wo_h=np.ascontiguousarray(wo.reshape(c, heads, d).transpose(1, 2, 0)),
        bo_per_head=arrays[f"{prefix}.out_proj.bias"] / np.float32(heads),
    )


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """(N, H·d) → (H, N, d)."""
    n, inner = x.shape
    return x.reshape(n, heads, inner // heads).transpose(1, 0, 2)


def _merge_heads(x: np.ndarray) -> np.ndarray:
    """(H, N, d) → (N, H·d)."""
    h, n, d = x.shape
    return x.transpose(1, 0, 2).reshape(n, h * d)


def tiles(rows: int) -> list[slice]:
    return [slice(s, min(rows, s + TILE_ROWS)) for s in range(0, rows, TILE_ROWS)]


def self_attention(a: Attention, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Plain ``Attention`` among the few prompt tokens."""
    qh, kh, vh = (split_heads(linear(x, *p), a.heads) for x, p in ((q, a.q), (k, a.k), (v, a.v)))
    weights = softmax_(np.matmul(qh, kh.transpose(0, 2, 1)) * a.scale, axis=-1)
    return linear(_merge_heads(np.matmul(weights, vh)), *a.out)


def block_diagonal(x: np.ndarray) -> np.ndarray:
    """(H, N, d) per-head rows → (H·N, H·d) with head h's rows in column block h, zeros elsewhere.

    Against projections stored as (P, H·d) rows, one product with this matrix gives every head's logits
    (the zeros cost 7/8 of its multiply-adds but one large BLAS call beats eight thin ones).
    """
    h, n, d = x.shape
    out = np.zeros((h, n, h, d), np.float32)
    out[np.arange(h), :, np.arange(h), :] = x
    return out.reshape(h * n, h * d)


def _attend(query: np.ndarray, keys: np.ndarray, values: np.ndarray, runner: TileRunner) -> np.ndarray:
    """``softmax(query @ keysᵀ) @ values`` over the image rows, (M, K) × (P, K) × (P, V) → (M, V), tiled.

    Each tile keeps its own maximum and sum; they are rescaled to the global maximum when combined.
    """
    parts = tiles(keys.shape[0])
    m = query.shape[0]
    peak = np.empty((len(parts), m, 1), np.float32)
    total = np.empty_like(peak)
    pooled = np.empty((len(parts), m, values.shape[1]), np.float32)

    def tile(i: int) -> None:
        rows = parts[i]
        logits = query @ keys[rows].T  # (M, T)
        np.max(logits, axis=1, keepdims=True, out=peak[i])
        logits -= peak[i]
        np.exp(logits, out=logits)
        np.sum(logits, axis=1, keepdims=True, out=total[i])
        np.matmul(logits, values[rows], out=pooled[i])

    runner.run(tile, len(parts))
    rescale = np.exp(peak - peak.max(axis=0))  # (tiles, M, 1)
    summed = np.einsum("tmv,tmi->mv", pooled, rescale)
    summed /= np.einsum("tmi,tmi->mi", total, rescale)
    return summed


def tokens_to_image(a: Attention, q: np.ndarray, k_img: np.ndarray | None, v_img: np.ndarray, runner: TileRunner,
                    cached: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``attn(q=q, k=k_img, v=v_img)`` for few queries (N, C) over the image rows (P, C), folded.

    ``cached``: the image side already projected, ``(k_proj(k_img), v_proj(v_img))`` as (P, H·d) rows
    (``k_img`` is then not read and may be ``None``).
    """
    n, h = q.shape[0], a.heads
    qh = split_heads(linear(q, *a.q), h)  # (H, N, d)
    if cached is not None:
        pooled = _attend(block_diagonal(qh * a.scale), cached[0], cached[1], runner)  # (H·N, H·d)
        out = pooled.reshape(h, n, h, -1)[np.arange(h), :, np.arange(h), :]  # each head's own value block
    else:
        assert k_img is not None
        q_img = np.matmul(qh, a.wk_h).reshape(h * n, -1)  # (H·N, C); k_proj's bias drops out of the softmax
        q_img *= a.scale
        pooled = _attend(q_img, k_img, v_img, runner).reshape(h, n, -1)  # (H, N, C)
        out = np.matmul(pooled, a.wv_h_t)  # (H, N, d): v_proj after the weighted sum
        out += a.bv_h
    return linear(_merge_heads(out), *a.out)


def image_to_tokens(a: Attention, keys_pe: np.ndarray | None, k: np.ndarray, v: np.ndarray, keys: np.ndarray,
                    norm: tuple[np.ndarray, np.ndarray], eps: float, pe: np.ndarray, runner: TileRunner,
                    cached_q: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The block's image update: ``LN(keys + attn(q=keys_pe, k=k, v=v))`` and its sum with ``pe``.

    Image rows (P, C) attend to few tokens (N, C), folded; ``cached_q``: ``q_proj(keys_pe)`` as (P, H·d)
    rows when the image side was projected before (``keys_pe`` is then not read and may be ``None``).
    Returns new (P, C) arrays (keys, keys + pe).
    """
    n, h = k.shape[0], a.heads
    kh_scaled = split_heads(linear(k, *a.k), h) * a.scale  # (H, N, d)
    if cached_q is None:
        assert keys_pe is not None
        k_mat, source = np.matmul(kh_scaled, a.wq_h).reshape(h * n, -1), keys_pe  # (H·N, C)
        k_bias = np.matmul(kh_scaled, a.bq_h).reshape(-1, 1)  # q_proj's bias · k, per (head, token)
    else:
        k_mat, source, k_bias = block_diagonal(kh_scaled), cached_q, None  # (H·N, H·d); bias inside
    v_out = np.matmul(split_heads(linear(v, *a.v), h), a.wo_h).reshape(h * n, -1)  # (H·N, C): out_proj per token
    v_out += a.bo_per_head
    new_keys, new_keys_pe = np.empty_like(keys), np.empty_like(keys)
    parts = tiles(keys.shape[0])

    def tile(i: int) -> None:
        rows = parts[i]
        logits = k_mat @ source[rows].T  # (H·N, T)
        if k_bias is not None:
            logits += k_bias
        weights = softmax_(logits.reshape(h, n, -1), axis=1).reshape(h * n, -1)  # over each head's tokens
        out = new_keys[rows]
        np.matmul(weights.T, v_out, out=out)
        out += keys[rows]
        layer_norm_(out, *norm, eps)
        np.add(out, pe[rows], out=new_keys_pe[rows])

    runner.run(tile, len(parts))
    return new_keys, new_keys_pe
