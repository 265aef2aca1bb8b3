"""segment_anything's ``PromptEncoder`` for LiteMedSAM in float32 numpy (no torch): points, box, mask.

Same maths as upstream: points and box corners are shifted to pixel centres, normalised by the 256 frame
and positionally encoded, plus a learnt embedding per kind (negative/positive point, box corner 0/1,
padding); points without a box get SAM's padding point (0, 0) with label -1. A mask prompt (256 × 256
low-resolution logits) goes through ``mask_downscaling``: two stride-2 2×2 convolutions (non-overlapping
patches, so matrix products on patch rows) with LayerNorm2d + GELU, then a 1×1 convolution to 256 channels.
"""

from __future__ import annotations

import numpy as np

from inference.models.numpy_ops import gelu_, layer_norm_
from inference.models.numpy_weights import EMBED_DIM, GRID, positional_encoding

_PE = "prompt_encoder"
MODEL_FRAME = 4 * GRID  # 256: prompts are given in this frame
_LN2D_EPS = 1e-6  # segment_anything's LayerNorm2d


class NumpyPromptEncoder:
    """Sparse (points, box) and dense (mask) prompt embeddings from validated float32 arrays."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        def get(name: str) -> np.ndarray:
            return arrays[f"{_PE}.{name}"]

        self.gaussian = get("pe_layer.positional_encoding_gaussian_matrix")
        self.point_embeddings = [get(f"point_embeddings.{i}.weight")[0] for i in range(4)]
        self.not_a_point = get("not_a_point_embed.weight")[0]
        self.no_mask = get("no_mask_embed.weight").reshape(1, EMBED_DIM)

        def patch_weight(name: str) -> np.ndarray:  # conv (out, in, kh, kw) → (in·kh·kw, out) for patch rows
            w = get(f"mask_downscaling.{name}.weight")
            return np.ascontiguousarray(w.reshape(w.shape[0], -1).T)

        self.down = [
            (patch_weight("0"), get("mask_downscaling.0.bias"), get("mask_downscaling.1.weight"),
             get("mask_downscaling.1.bias")),
            (patch_weight("3"), get("mask_downscaling.3.bias"), get("mask_downscaling.4.weight"),
             get("mask_downscaling.4.bias")),
        ]
        self.down_out = (patch_weight("6"), get("mask_downscaling.6.bias"))

    def _encode(self, coords: np.ndarray) -> np.ndarray:
        """(N, 2) coordinates in the 256 frame (already shifted to pixel centres) → (N, C)."""
        return positional_encoding(self.gaussian, coords / np.float32(MODEL_FRAME))

    def sparse(self, points: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray | None) -> np.ndarray:
        """(Ns, C) sparse embeddings: the points (plus the padding point when there is no box), then the box."""
        parts = []
        if points is not None:
            coords = points.reshape(-1, 2).astype(np.float32) + np.float32(0.5)
            lab = np.asarray(labels).reshape(-1).astype(np.int64)
            if box is None:
                coords = np.concatenate([coords, np.zeros((1, 2), np.float32)])
                lab = np.concatenate([lab, np.array([-1], np.int64)])
            emb = self._encode(coords)
            emb[lab == -1] = self.not_a_point
            emb[lab == 0] += self.point_embeddings[0]
            emb[lab == 1] += self.point_embeddings[1]
            parts.append(emb)
        if box is not None:
            corners = self._encode(box.reshape(2, 2).astype(np.float32) + np.float32(0.5))
            corners[0] += self.point_embeddings[2]
            corners[1] += self.point_embeddings[3]
            parts.append(corners)
        return np.concatenate(parts) if parts else np.zeros((0, EMBED_DIM), np.float32)

    def dense(self, mask_logits: np.ndarray) -> np.ndarray:
        """(256, 256) mask-prompt logits → (GRID·GRID, C) dense embedding rows, y-major."""
        x = np.asarray(mask_logits, dtype=np.float32).reshape(MODEL_FRAME, MODEL_FRAME)[:, :, None]  # (H, W, ch)
        for w_t, b, norm_w, norm_b in self.down:
            h, w, ch = x.shape
            patches = x.reshape(h // 2, 2, w // 2, 2, ch).transpose(0, 2, 4, 1, 3)  # (y, x, in, dy, dx)
            x = patches.reshape(-1, ch * 4) @ w_t
            x += b
            layer_norm_(x, norm_w, norm_b, _LN2D_EPS)
            gelu_(x)
            x = x.reshape(h // 2, w // 2, -1)
        out = x.reshape(GRID * GRID, -1) @ self.down_out[0]
        out += self.down_out[1]
        return out
