"""LiteMedSAM's prompt encoder + mask decoder for one image, reordered so that a re-prompt costs less.

Same weights and the same maths as segment_anything's ``PromptEncoder`` + ``MaskDecoder`` (all four mask
tokens, predicted IoU); only the order of the linear algebra changes, so results agree to float rounding
(``tests/inference/test_fast_decoder.py`` checks logits and masks against the upstream modules on real
slices). Upstream spends most of a re-prompt on the 4096 image tokens; this module avoids that work:

1. **Attention never projects the image side.** Between the 4096 image tokens and the ~7 prompt tokens,
   ``(x Wᵀ)·q = x·(W q)``: the few prompt tokens go through the projection instead of the 4096 image
   rows, and the value projection is applied after the softmax-weighted sum (the weights add up to 1).
   An image-side attention then costs 2 × 4096 × 256 × 56 multiply-adds instead of 2 × 4096 × 256 × 128;
   token-to-image query biases are constant along the softmax axis and drop out exactly.
2. **Work that does not depend on the prompt is done once per embedding** (without a mask prompt):
   ``embedding + no_mask_embed`` and its sum with the positional encoding are kept for the last two
   embeddings decoded, and from the second prompt on an embedding also the first block's three
   image-side projections (a third and later prompt, e.g. dragging a box, skip them); the dense
   positional encoding is computed once per model.
3. **The upsampling runs only where it is used.** Both stride-2 transposed convolutions map each pixel
   to its own 2×2 block (no overlap), so they run as matrix products on (pixels, channels) rows, only
   over the 64-grid cells that cover the unpadded image (a 2:1 X-ray skips half of them), and the
   hypernetwork product only for the mask tokens asked for (``best``: the one with the highest predicted
   IoU). Logits in the padding, which every consumer crops away, are set to :data:`PADDING_LOGIT`.

Measured against the upstream modules on the same cached embedding: ``python -m benchmarks segmentation``.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder, PromptEncoder
from segment_anything.modeling.transformer import Attention, TwoWayAttentionBlock

PADDING_LOGIT = -32.0  # "background" for the padded model frame that is never upsampled
_CONTEXTS_KEPT = 2  # embeddings whose prompt-independent part is kept (current + previous slice)


@dataclass(frozen=True)
class _Folded:
    """One ``Attention``'s projections per head, laid out for the folded products."""

    heads: int
    scale: float
    wq: torch.Tensor  # (H, d, C): q_proj.weight per head
    bq: torch.Tensor  # (H, d)
    wk: torch.Tensor  # (H, d, C)
    wv_t: torch.Tensor  # (H, C, d): v_proj.weight per head, transposed
    bv: torch.Tensor  # (H, 1, d)
    wo: torch.Tensor  # (H, d, C): out_proj.weight's columns per head, transposed


def _fold(attn: Attention) -> _Folded:
    h, inner = attn.num_heads, attn.internal_dim
    d, c = inner // h, attn.embedding_dim

    def per_head(w: torch.Tensor) -> torch.Tensor:
        return w.detach().reshape(h, d, c).contiguous()

    return _Folded(
        heads=h,
        scale=1.0 / math.sqrt(d),
        wq=per_head(attn.q_proj.weight),
        bq=attn.q_proj.bias.detach().reshape(h, d).contiguous(),
        wk=per_head(attn.k_proj.weight),
        wv_t=per_head(attn.v_proj.weight).transpose(1, 2).contiguous(),
        bv=attn.v_proj.bias.detach().reshape(h, 1, d).contiguous(),
        wo=attn.out_proj.weight.detach().reshape(c, h, d).permute(1, 2, 0).contiguous(),
    )


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(N, H·d) → (H, N, d)."""
    n, inner = x.shape
    return x.reshape(n, heads, inner // heads).transpose(0, 1)


def tokens_to_image(attn: Attention, f: _Folded, q: torch.Tensor, k_img: torch.Tensor, v_img: torch.Tensor,
                    cached: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``attn(q=q, k=k_img, v=v_img)`` for few queries (N, C) over many image rows (P, C), folded.

    ``cached`` = the image side already projected, ``(k_proj(k_img), v_proj(v_img))`` as (H, P, d).
    """
    n = q.shape[0]
    qh = _split_heads(F.linear(q, attn.q_proj.weight, attn.q_proj.bias), f.heads)  # (H, N, d)
    if cached is not None:
        weights = torch.softmax(torch.bmm(qh * f.scale, cached[0].transpose(1, 2)), dim=-1)  # (H, N, P)
        out = torch.bmm(weights, cached[1])  # (H, N, d)
    else:
        q_img = torch.bmm(qh, f.wk).mul_(f.scale).reshape(f.heads * n, -1)  # (H·N, C); k bias drops out
        weights = torch.softmax(torch.mm(q_img, k_img.t()), dim=-1)  # (H·N, P)
        pooled = torch.mm(weights, v_img).reshape(f.heads, n, -1)  # (H, N, C): Σ weights · v rows
        out = torch.baddbmm(f.bv, pooled, f.wv_t)  # (H, N, d) = v_proj applied after pooling
    return F.linear(out.transpose(0, 1).reshape(n, -1), attn.out_proj.weight, attn.out_proj.bias)


def image_to_tokens(attn: Attention, f: _Folded, q_img: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    residual: torch.Tensor, cached_q: torch.Tensor | None = None) -> torch.Tensor:
    """``residual + attn(q=q_img, k=k, v=v)`` for many image rows (P, C) over few tokens (N, C), folded.

    The logits are laid out (H·N, P) so the softmax over each head's N tokens runs along a strided axis
    with P contiguous (a softmax over a last axis of 7 is slow); ``out_proj``'s bias is spread over the
    H·N value rows (each head's weights add up to 1) so the residual add happens inside the last product.
    ``cached_q`` = ``q_proj(q_img)`` as (H, P, d), when the image side was projected before.
    """
    n = k.shape[0]
    kh = _split_heads(F.linear(k, attn.k_proj.weight, attn.k_proj.bias), f.heads)  # (H, N, d)
    if cached_q is not None:
        logits = torch.bmm(kh * f.scale, cached_q.transpose(1, 2)).reshape(f.heads * n, -1)  # (H·N, P)
    else:
        k_img = torch.bmm(kh, f.wq).mul_(f.scale).reshape(f.heads * n, -1)  # (H·N, C)
        k_bias = (kh * f.bq[:, None, :]).sum(-1).mul_(f.scale).reshape(-1, 1)  # q bias · k, per (head, token)
        logits = torch.addmm(k_bias, k_img, q_img.t())  # (H·N, P)
    weights = torch.softmax(logits.reshape(f.heads, n, -1), dim=1).reshape(f.heads * n, -1)
    vh = _split_heads(F.linear(v, attn.v_proj.weight, attn.v_proj.bias), f.heads)  # (H, N, d)
    v_out = torch.bmm(vh, f.wo).reshape(f.heads * n, -1)  # (H·N, C): out_proj applied per token
    v_out += attn.out_proj.bias / f.heads
    return torch.addmm(residual, weights.t(), v_out)  # (P, C)


@dataclass
class _Context:
    """The prompt-independent image side of one embedding (no mask prompt).

    From the second prompt on the same embedding, the first block's image-side projections are kept too
    (three 4096 × 256 → 128 products, once): a third and later prompt skip them. A single prompt per
    slice (propagation) never pays for them.
    """

    embedding: torch.Tensor  # kept so its storage cannot be reused while the key is cached
    src: torch.Tensor  # (P, C) embedding + no_mask_embed
    src_pe: torch.Tensor  # (P, C) src + dense positional encoding
    # block 0, each (H, P, d): token→image k_proj(src_pe) and v_proj(src), image→token q_proj(src_pe)
    projected: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


class FastPromptDecoder:
    """Decode prompts against one cached embedding: same results as upstream, less work per prompt.

    Built from a loaded model's ``prompt_encoder`` and ``mask_decoder`` (shares their weights, inference
    only). ``run`` (or calling it) returns the chosen mask tokens' logits ``(K, 256, 256)`` and IoU ``(K,)``.
    """

    def __init__(self, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder, dense_pe: torch.Tensor) -> None:
        self.prompt_encoder = prompt_encoder
        self.decoder = mask_decoder
        transformer = mask_decoder.transformer
        self.blocks: list[TwoWayAttentionBlock] = list(transformer.layers)  # type: ignore[arg-type]
        self.final_attn: Attention = transformer.final_attn_token_to_image  # type: ignore[assignment]
        self.final_norm = transformer.norm_final_attn
        with torch.no_grad():
            self.t2i = [_fold(b.cross_attn_token_to_image) for b in self.blocks]
            self.i2t = [_fold(b.cross_attn_image_to_token) for b in self.blocks]
            self.final = _fold(self.final_attn)
            self.pe = dense_pe.detach().flatten(2)[0].t().contiguous()  # (P, C)
            self.grid = tuple(dense_pe.shape[-2:])
            self.no_mask = prompt_encoder.no_mask_embed.weight.detach().reshape(1, -1)
            self.output_tokens = torch.cat([mask_decoder.iou_token.weight, mask_decoder.mask_tokens.weight]).detach()
            up1, norm, _, up2, _ = mask_decoder.output_upscaling
            # ConvTranspose2d(k=2, s=2) weight (in, out, 2, 2) → (in, [dy, dx, out]) for (pixels, in) rows
            self.up1_w = up1.weight.detach().permute(0, 2, 3, 1).reshape(up1.in_channels, -1).contiguous()
            self.up1_b = up1.bias.detach().repeat(4)
            self.norm_w, self.norm_b, self.norm_eps = norm.weight.detach(), norm.bias.detach(), norm.eps
            self.up2_w = up2.weight.detach().permute(0, 2, 3, 1).reshape(up2.in_channels, -1).contiguous()
            self.up2_b = up2.bias.detach().repeat(4)
        self.device = dense_pe.device
        self.weights_version = -1  # set by the owner (``litemedsam.fast_decoder``) to detect weight edits
        self._contexts: OrderedDict[tuple[int, int, int, str], _Context] = OrderedDict()
        self._lock = threading.Lock()  # the context cache may be reached from two worker threads

    def context(self, embedding: torch.Tensor) -> _Context:
        """The embedding's prompt-independent image side, from the small cache when it was decoded lately."""
        version = 0 if embedding.is_inference() else embedding._version  # inference tensors have none
        key = (id(embedding), embedding.data_ptr(), version, str(embedding.device))
        with self._lock:
            hit = self._contexts.get(key)
            if hit is not None and hit.embedding is embedding:
                self._contexts.move_to_end(key)
                if hit.projected is None:
                    self._project_first_block(hit)
                return hit
            src = embedding[0].flatten(1).t() + self.no_mask  # (P, C), a new contiguous tensor
            ctx = _Context(embedding, src, src + self.pe)
            self._contexts[key] = ctx
            while len(self._contexts) > _CONTEXTS_KEPT:
                self._contexts.popitem(last=False)
            return ctx

    def _project_first_block(self, ctx: _Context) -> None:
        t2i, i2t, heads = self.blocks[0].cross_attn_token_to_image, self.blocks[0].cross_attn_image_to_token, \
            self.t2i[0].heads

        def project(x: torch.Tensor, lin: torch.nn.Linear) -> torch.Tensor:
            return _split_heads(F.linear(x, lin.weight, lin.bias), heads).contiguous()

        with torch.autocast(ctx.src.device.type, enabled=False):  # kept fp32 whatever the caller's autocast
            ctx.projected = (
                project(ctx.src_pe, t2i.k_proj), project(ctx.src, t2i.v_proj), project(ctx.src_pe, i2t.q_proj)
            )

    def __getstate__(self) -> dict[str, object]:  # copy.deepcopy(model): no lock, no cached contexts
        state = self.__dict__.copy()
        state["_contexts"], state["_lock"] = OrderedDict(), None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def clear(self) -> None:
        self._contexts.clear()

    def __call__(self, *args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        return self.run(*args, **kwargs)  # type: ignore[arg-type]

    def run(
        self,
        embedding: torch.Tensor,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        *,
        tokens: Sequence[int] = (0, 1, 2, 3),
        best: bool = False,
        valid_size: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, C, 64, 64) embedding + prompts (256 frame) → (K, 256, 256) logits and (K,) predicted IoU.

        ``tokens``: which mask tokens (0 = single-mask output, 1–3 = SAM's multimask set); with ``best``
        only the one with the highest predicted IoU among them is upsampled (K = 1). ``valid_size``: the
        unpadded (h, w) in the 256 frame; logits outside it are :data:`PADDING_LOGIT`, not computed.
        """
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=masks)
        ctx: _Context | None = None
        if masks is None:
            ctx = self.context(embedding)
            src, src_pe = ctx.src, ctx.src_pe
        else:  # a mask prompt changes the image side: nothing to reuse
            src = (embedding + dense)[0].flatten(1).t().contiguous()
            src_pe = src + self.pe
        prompt = torch.cat([self.output_tokens, sparse[0]])  # (N, C)
        queries, keys = self._transformer(src, src_pe, prompt, ctx)
        iou = self.decoder.iou_prediction_head(queries[0])[list(tokens)]
        chosen = list(tokens)
        if best:
            top = int(torch.argmax(iou))
            chosen, iou = [chosen[top]], iou[top : top + 1]
        return self._masks(queries, keys, chosen, valid_size), iou

    def _transformer(self, keys: torch.Tensor, keys_pe: torch.Tensor, prompt: torch.Tensor,
                     ctx: _Context | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``TwoWayTransformer.forward`` with the image side as (P, C) rows and folded cross-attention."""
        queries = prompt
        for i, block in enumerate(self.blocks):
            if block.skip_first_layer_pe:
                queries = block.self_attn(q=queries[None], k=queries[None], v=queries[None])[0]
            else:
                q = (queries + prompt)[None]
                queries = queries + block.self_attn(q=q, k=q, v=queries[None])[0]
            queries = block.norm1(queries)
            if i > 0:
                keys_pe = keys + self.pe
            projected = ctx.projected if ctx is not None and i == 0 else None
            kv = None if projected is None else (projected[0], projected[1])
            attn = block.cross_attn_token_to_image
            queries = block.norm2(queries + tokens_to_image(attn, self.t2i[i], queries + prompt, keys_pe, keys, kv))
            queries = block.norm3(queries + block.mlp(queries))
            attn = block.cross_attn_image_to_token
            q1 = None if projected is None else projected[2]
            keys = block.norm4(image_to_tokens(attn, self.i2t[i], keys_pe, queries + prompt, queries, keys, q1))
        out = tokens_to_image(self.final_attn, self.final, queries + prompt, keys + self.pe, keys)
        return self.final_norm(queries + out), keys

    def _masks(self, tokens: torch.Tensor, keys: torch.Tensor, chosen: list[int],
               valid_size: tuple[int, int] | None) -> torch.Tensor:
        """Upscaling + hypernetworks (``MaskDecoder.predict_masks``' tail) for the chosen mask tokens, over
        the 64-grid cells that cover the image."""
        gh, gw = self.grid
        vh, vw = valid_size if valid_size is not None else (4 * gh, 4 * gw)
        ch, cw = min(gh, -(-vh // 4)), min(gw, -(-vw // 4))
        rows = keys if (ch, cw) == (gh, gw) else keys.reshape(gh, gw, -1)[:ch, :cw].reshape(ch * cw, -1)
        x = torch.addmm(self.up1_b, rows, self.up1_w).reshape(-1, self.norm_w.shape[0])  # (cells·4, 64)
        x = F.gelu(F.layer_norm(x, self.norm_w.shape, self.norm_w, self.norm_b, self.norm_eps))
        x = _addmm_gelu(self.up2_b, x, self.up2_w).reshape(-1, self.up2_w.shape[1] // 4)  # (cells·16, 32)
        mlps = self.decoder.output_hypernetworks_mlps
        hyper = torch.stack([mlps[i](tokens[1 + i]) for i in chosen])  # (K, 32)
        logits = torch.mm(hyper, x.t())  # (K, cells·16) in (y, x, dy, dx, dy2, dx2) order
        logits = logits.reshape(-1, ch, cw, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4, 6)
        logits = logits.reshape(-1, 4 * ch, 4 * cw)
        if (ch, cw) != (gh, gw):
            logits = F.pad(logits, (0, 4 * (gw - cw), 0, 4 * (gh - ch)), value=PADDING_LOGIT)
        return logits


def _addmm_gelu(bias: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``gelu(bias + x @ w)`` (exact erf GELU); on the CPU in place in the product's buffer."""
    if x.device.type == "cpu" and hasattr(torch.ops.aten, "_addmm_activation"):
        return torch.ops.aten._addmm_activation(bias, x, w, use_gelu=True)  # CPU: addmm, then gelu_ (erf)
    return F.gelu(torch.addmm(bias, x, w))  # CUDA's fused epilogue would use the tanh approximation
