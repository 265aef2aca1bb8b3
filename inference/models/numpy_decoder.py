"""LiteMedSAM's prompt encoder + mask decoder in float32 numpy: segmentation without importing torch.

The same algorithm as :mod:`inference.models.fast_decoder` (read its docstring for the why), on numpy and
its BLAS: attention folded so the 4096 image rows are never projected on a first prompt, the
prompt-independent image side kept for the last two embeddings (from the second prompt on an embedding
also block 0's three image-side projections), the upsampling run only over the 64-grid cells that
cover the unpadded image and in cache-sized bands, the hypernetwork only for the chosen mask tokens.
Results agree with upstream to float rounding (``tests/inference/test_numpy_decoder.py``).

Build once from the named float32 arrays (:mod:`inference.models.numpy_weights`), then :func:`decode`.
Importing this module never imports torch (tested).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from inference.models.numpy_attention import (
    Attention,
    Linear,
    attention_of,
    image_to_tokens,
    linear_of,
    self_attention,
    tiles,
    tokens_to_image,
)
from inference.models.numpy_ops import (
    TileRunner,
    gelu_,
    layer_norm,
    layer_norm_,
    linear,
    mlp,
    relu_,
    single_threaded_blas,
)
from inference.models.numpy_prompt import NumpyPromptEncoder
from inference.models.numpy_weights import DENSE_PE, DEPTH, EMBED_DIM, GRID, HEADS, MASK_TOKENS, validated

PADDING_LOGIT = -32.0  # the padded frame's logits, never upsampled (same value as fast_decoder's)
_CONTEXTS_KEPT = 2  # embeddings whose prompt-independent part is kept (current + previous slice)
_LN_EPS, _LN2D_EPS = 1e-5, 1e-6  # torch.nn.LayerNorm, segment_anything's LayerNorm2d
_BAND_CELLS = 256  # 64-grid cells upsampled per band (its intermediates stay in the CPU cache)
_MD, _TR = "mask_decoder", "mask_decoder.transformer"


@dataclass
class _Context:
    """The prompt-independent image side of one embedding (no mask prompt); see fast_decoder's."""

    embedding: np.ndarray  # kept so its id cannot be reused by another array while the key is cached
    src: np.ndarray  # (P, C) embedding + no_mask_embed
    src_pe: np.ndarray | None  # (P, C) src + dense positional encoding; dropped once ``projected`` is made
    projected: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # block 0: t2i k, t2i v, i2t q


@dataclass(frozen=True)
class _Block:
    self_attn: Attention
    t2i: Attention
    i2t: Attention
    mlp: tuple[Linear, Linear]
    norms: tuple[tuple[np.ndarray, np.ndarray], ...]  # norm1 … norm4 (weight, bias)


class NumpyPromptDecoder:
    """LiteMedSAM's prompt encoder + mask decoder from named float32 arrays; thread-safe, torch-free.

    ``arrays``: see :mod:`inference.models.numpy_weights` (validated here; :class:`ModelLoadError` when
    anything is off). ``threads``: threads sharing a decode's image-side tiles (the caller's plus
    ``threads - 1`` helpers; numpy's BLAS runs single-threaded under them). Use :func:`decode`.
    Embeddings passed to it must not be modified in place afterwards (the image side of the last two
    is cached by their identity).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], *, threads: int = 2,
                 upsampler: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        w = validated(arrays)
        # (cells, 256) rows → (cells·4, 128): the upsampling in ONNX Runtime (``inference.models.upsample_graph``)
        self.upsampler = upsampler
        self.prompt_encoder = NumpyPromptEncoder(w)
        self.blocks = [
            _Block(
                self_attn=attention_of(w, f"{_TR}.layers.{i}.self_attn", HEADS),
                t2i=attention_of(w, f"{_TR}.layers.{i}.cross_attn_token_to_image", HEADS),
                i2t=attention_of(w, f"{_TR}.layers.{i}.cross_attn_image_to_token", HEADS),
                mlp=(linear_of(w, f"{_TR}.layers.{i}.mlp.lin1"), linear_of(w, f"{_TR}.layers.{i}.mlp.lin2")),
                norms=tuple((w[f"{_TR}.layers.{i}.norm{j}.weight"], w[f"{_TR}.layers.{i}.norm{j}.bias"])
                            for j in range(1, 5)),
            )
            for i in range(DEPTH)
        ]
        self.final = attention_of(w, f"{_TR}.final_attn_token_to_image", HEADS)
        self.final_norm = (w[f"{_TR}.norm_final_attn.weight"], w[f"{_TR}.norm_final_attn.bias"])
        self.pe = np.ascontiguousarray(w[DENSE_PE][0].reshape(EMBED_DIM, -1).T)  # (P, C)
        self.output_tokens = np.concatenate([w[f"{_MD}.iou_token.weight"], w[f"{_MD}.mask_tokens.weight"]])
        self.iou_head = tuple(linear_of(w, f"{_MD}.iou_prediction_head.layers.{j}") for j in range(3))
        self.hyper = [tuple(linear_of(w, f"{_MD}.output_hypernetworks_mlps.{i}.layers.{j}") for j in range(3))
                      for i in range(MASK_TOKENS)]
        up1, up2 = w[f"{_MD}.output_upscaling.0.weight"], w[f"{_MD}.output_upscaling.3.weight"]
        # ConvTranspose2d(k=2, s=2) weight (in, out, 2, 2) → (in, [dy, dx, out]) for (pixels, in) rows
        # ... with each output pixel's 64 channels centred (weights and bias minus their mean over the
        # channels): the LayerNorm2d after it then need not subtract the mean (the same maths, one pass less)
        up1_w = up1.transpose(0, 2, 3, 1).astype(np.float64)  # (in, dy, dx, out)
        up1_b = w[f"{_MD}.output_upscaling.0.bias"].astype(np.float64)
        self.up1_w = np.ascontiguousarray(
            (up1_w - up1_w.mean(axis=-1, keepdims=True)).reshape(up1.shape[0], -1), dtype=np.float32)
        self.up1_b = np.tile(up1_b - up1_b.mean(), 4).astype(np.float32)
        self.up_norm = (w[f"{_MD}.output_upscaling.1.weight"], w[f"{_MD}.output_upscaling.1.bias"])
        self.up2_w = np.ascontiguousarray(up2.transpose(0, 2, 3, 1).reshape(up2.shape[0], -1))
        self.up2_b = np.tile(w[f"{_MD}.output_upscaling.3.bias"], 4)
        self.runner = TileRunner(threads)
        self._contexts: OrderedDict[int, _Context] = OrderedDict()
        self._lock = threading.Lock()  # the context cache may be reached from two worker threads

    def clear(self) -> None:
        """Forget the cached image sides (as for a slice never prompted before)."""
        with self._lock:
            self._contexts.clear()

    def close(self) -> None:
        """Stop the helper threads (they also end with the process)."""
        self.clear()
        self.runner.close()

    def context(self, embedding: np.ndarray) -> _Context:
        """The embedding's prompt-independent image side, from the small cache when it was decoded lately."""
        key = id(embedding)
        with self._lock:
            hit = self._contexts.get(key)
            if hit is not None and hit.embedding is embedding:
                self._contexts.move_to_end(key)
                if hit.projected is None:
                    self._project_first_block(hit)
                return hit
            src, src_pe = self._image_side(embedding, self.prompt_encoder.no_mask)
            ctx = _Context(embedding, src, src_pe)
            self._contexts[key] = ctx
            while len(self._contexts) > _CONTEXTS_KEPT:
                self._contexts.popitem(last=False)
            return ctx

    def _image_side(self, embedding: np.ndarray, dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, C, 64, 64) embedding + dense prompt (1 or P rows) → new (P, C) rows ``src`` and ``src + pe``."""
        rows = embedding[0].reshape(EMBED_DIM, -1).T  # (P, C) strided view
        src, src_pe = np.empty_like(self.pe), np.empty_like(self.pe)
        parts = tiles(src.shape[0])

        def tile(i: int) -> None:
            r = parts[i]
            np.add(rows[r], dense if dense.shape[0] == 1 else dense[r], out=src[r])
            np.add(src[r], self.pe[r], out=src_pe[r])

        self.runner.run(tile, len(parts))
        return src, src_pe

    def _project_first_block(self, ctx: _Context) -> None:
        """Block 0's three image-side projections as (P, H·d) rows: t2i k_proj(src_pe), v_proj(src), i2t q_proj(src_pe).

        Block 0 then reads only these and ``src``: ``src_pe`` is dropped (4 MiB less per kept context)."""
        t2i, i2t = self.blocks[0].t2i, self.blocks[0].i2t
        assert ctx.src_pe is not None
        jobs = ((ctx.src_pe, t2i.k), (ctx.src, t2i.v), (ctx.src_pe, i2t.q))
        out = tuple(np.empty((ctx.src.shape[0], lin[1].shape[0]), np.float32) for _, lin in jobs)
        parts = tiles(ctx.src.shape[0])

        def tile(i: int) -> None:
            r = parts[i]
            for (x, (w_t, b)), dst in zip(jobs, out, strict=True):
                np.matmul(x[r], w_t, out=dst[r])
                dst[r] += b

        self.runner.run(tile, len(parts))
        ctx.projected = out  # type: ignore[assignment]
        ctx.src_pe = None

    def run(self, embedding: np.ndarray, sparse: np.ndarray, dense: np.ndarray | None, tokens: tuple[int, ...],
            best: bool, valid_size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """Embedded prompts → (K, 256, 256) logits and (K,) IoU of the chosen tokens (see :func:`decode`)."""
        with single_threaded_blas():
            ctx: _Context | None = None
            if dense is None:
                ctx = self.context(embedding)
                src, src_pe = ctx.src, ctx.src_pe
            else:  # a mask prompt changes the image side: nothing to reuse
                src, src_pe = self._image_side(embedding, dense)
            prompt = np.concatenate([self.output_tokens, sparse]).astype(np.float32, copy=False)
            queries, keys = self._transformer(src, src_pe, prompt, ctx)
            iou = mlp(queries[0:1], self.iou_head)[0][list(tokens)]
            chosen = list(tokens)
            if best:
                top = int(np.argmax(iou))
                chosen, iou = [chosen[top]], iou[top : top + 1]
            return self._masks(queries, keys, chosen, valid_size), np.ascontiguousarray(iou, dtype=np.float32)

    def _transformer(self, keys: np.ndarray, keys_pe: np.ndarray | None, prompt: np.ndarray,
                     ctx: _Context | None) -> tuple[np.ndarray, np.ndarray]:
        """``TwoWayTransformer.forward`` with the image side as (P, C) rows and folded, tiled cross-attention."""
        queries = prompt
        for i, block in enumerate(self.blocks):
            n1, n2, n3, n4 = block.norms
            if i == 0:  # skip_first_layer_pe: no residual, no positional encoding
                queries = self_attention(block.self_attn, queries, queries, queries)
            else:
                q = queries + prompt
                queries = queries + self_attention(block.self_attn, q, q, queries)
            queries = layer_norm_(queries, *n1, _LN_EPS)
            projected = ctx.projected if ctx is not None and i == 0 else None
            kv = None if projected is None else (projected[0], projected[1])
            attn = tokens_to_image(block.t2i, queries + prompt, keys_pe, keys, self.runner, kv)
            queries = layer_norm_(queries + attn, *n2, _LN_EPS)
            hidden = relu_(linear(queries, *block.mlp[0]))
            queries = layer_norm_(queries + linear(hidden, *block.mlp[1]), *n3, _LN_EPS)
            keys, keys_pe = image_to_tokens(block.i2t, keys_pe, queries + prompt, queries, keys, n4, _LN_EPS,
                                            self.pe, self.runner, None if projected is None else projected[2])
        out = tokens_to_image(self.final, queries + prompt, keys_pe, keys, self.runner)
        return layer_norm(queries + out, *self.final_norm, _LN_EPS), keys

    def _masks(self, tokens: np.ndarray, keys: np.ndarray, chosen: list[int],
               valid_size: tuple[int, int] | None) -> np.ndarray:
        """Upscaling + hypernetworks for the chosen tokens over the grid cells that cover the image,
        in bands of grid rows (each band's intermediates stay in the CPU cache; the bands run on the tiles'
        threads)."""
        vh, vw = valid_size if valid_size is not None else (4 * GRID, 4 * GRID)
        ch, cw = min(GRID, max(1, -(-int(vh) // 4))), min(GRID, max(1, -(-int(vw) // 4)))
        hyper = np.stack([mlp(tokens[1 + i : 2 + i], self.hyper[i])[0] for i in chosen])  # (K, 32)
        k = hyper.shape[0]
        out = np.full((k, 4 * GRID, 4 * GRID), PADDING_LOGIT, dtype=np.float32)
        grid_rows = keys.reshape(GRID, GRID, -1)
        if self.upsampler is not None:  # the whole region in one call: ONNX Runtime threads it itself
            x = self.upsampler(grid_rows[:ch, :cw].reshape(-1, EMBED_DIM)).reshape(-1, self.up2_w.shape[1] // 4)
            logits = (hyper @ x.T).reshape(k, ch, cw, 2, 2, 2, 2).transpose(0, 1, 3, 5, 2, 4, 6)
            out[:, : 4 * ch, : 4 * cw] = logits.reshape(k, 4 * ch, 4 * cw)
            return out
        band = max(1, _BAND_CELLS // cw)
        starts = list(range(0, ch, band))

        def upsample(i: int) -> None:
            y0 = starts[i]
            y1 = min(ch, y0 + band)
            rows = grid_rows[y0:y1, :cw].reshape(-1, EMBED_DIM)
            x = linear(rows, self.up1_w, self.up1_b).reshape(-1, self.up_norm[0].shape[0])  # (cells·4, 64)
            gelu_(layer_norm_(x, *self.up_norm, _LN2D_EPS, centered=True))
            x = gelu_(linear(x, self.up2_w, self.up2_b)).reshape(-1, self.up2_w.shape[1] // 4)  # (cells·16, 32)
            logits = (hyper @ x.T).reshape(k, y1 - y0, cw, 2, 2, 2, 2).transpose(0, 1, 3, 5, 2, 4, 6)
            out[:, 4 * y0 : 4 * y1, : 4 * cw] = logits.reshape(k, 4 * (y1 - y0), 4 * cw)

        self.runner.run(upsample, len(starts))
        return out


def token_set(multimask: bool | str) -> tuple[int, ...]:
    """The mask tokens a ``multimask`` value asks for (0 = single mask, 1-3 = SAM's three; "all" = every one)."""
    return (0, 1, 2, 3) if multimask == "all" else ((1, 2, 3) if multimask else (0,))


def decode(
    decoder: NumpyPromptDecoder,
    embedding: np.ndarray,
    box_256: np.ndarray | None = None,
    points_256: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    mask_logits_256: np.ndarray | None = None,
    multimask: bool | str = False,
    *,
    best: bool = False,
    valid_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One object's prompts (256 frame) → float32 (C, 256, 256) logits and (C,) predicted IoU.

    Same arguments and results as :func:`inference.models.litemedsam.decode` with ``embedding`` a float32
    numpy array (1, 256, 64, 64): ``C`` is 1, 3 (``multimask=True``) or 4 (``"all"``), 1 with ``best``
    (the highest predicted IoU among them); ``valid_size`` (unpadded h, w in the 256 frame) leaves the
    padding at :data:`PADDING_LOGIT` instead of computing it.
    """
    if not (isinstance(embedding, np.ndarray) and embedding.shape == (1, EMBED_DIM, GRID, GRID)):
        raise ValueError(f"expected a (1, {EMBED_DIM}, {GRID}, {GRID}) numpy embedding, "
                         f"got {getattr(embedding, 'shape', type(embedding).__name__)}")
    box = None if box_256 is None else np.asarray(box_256, dtype=np.float32).reshape(4)
    points = labels = None
    if points_256 is not None and len(points_256):
        points = np.asarray(points_256, dtype=np.float32).reshape(-1, 2)
        labels = np.asarray(point_labels, dtype=np.int64).reshape(-1)
        if labels.shape[0] != points.shape[0]:
            raise ValueError("decode needs one label per point")
    if box is None and points is None and mask_logits_256 is None:
        raise ValueError("decode needs at least one prompt")
    sparse = decoder.prompt_encoder.sparse(points, labels, box)
    dense = None if mask_logits_256 is None else decoder.prompt_encoder.dense(mask_logits_256)
    return decoder.run(embedding, sparse, dense, token_set(multimask), best, valid_size)
