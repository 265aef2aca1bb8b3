"""MedSAM/LiteMedSAM input geometry and intensity preprocessing, reproduced from the upstream scripts.

Upstream (bowang-lab/MedSAM, ``CVPR24_LiteMedSAM_infer.py`` + its data preparation):
1. CT: clip to a window (default level 40 / width 400), scale to 0–255 (uint8); other images: intensity
   normalised to 0–255 (here: 0.5–99.5 percentile clip, which equals min–max on clean 8-bit images).
2. Repeat to 3 channels, resize so the longest side is 256 (``int(side * 256 / max(H, W) + 0.5)``,
   area interpolation), min–max normalise to [0, 1], pad bottom/right with zeros to 256×256.
3. Boxes/points are scaled by the same factor into that 256 frame.
4. The decoder's 256×256 logits are cropped to the unpadded region, bilinearly upsampled to the
   original size and thresholded at 0 (sigmoid > 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inference.models.interpolation import area_resize, bilinear_resize

if TYPE_CHECKING:  # torch loads on first use: the viewer starts without it (cold start < 3 s)
    import torch

MODEL_SIDE = 256
DEFAULT_CT_WINDOW: tuple[float, float] = (40.0, 400.0)  # MedSAM's soft-tissue default (level, width)
LUNG_WINDOW: tuple[float, float] = (-437.0, 1174.0)  # clips to [-1024, 150]: whole lungs
# [-800, 200]: aerated lung to soft tissue, mid-grey near the nodule/parenchyma partial-volume edge.
# Chosen on the shared dev nodule (ct/lung1), see docs/segmentation.md for the window sensitivity.
LUNG_LESION_WINDOW: tuple[float, float] = (-300.0, 1000.0)
PERCENTILES: tuple[float, float] = (0.5, 99.5)


@dataclass(frozen=True)
class PreprocessInfo:
    """Geometry linking an original slice (H, W) to the padded 256×256 model frame."""

    original_size: tuple[int, int]  # (H, W)
    new_size: tuple[int, int]  # (h, w) after the longest-side resize, before padding
    side: int = MODEL_SIDE

    @property
    def scale_xy(self) -> tuple[float, float]:
        return self.new_size[1] / self.original_size[1], self.new_size[0] / self.original_size[0]

    def coords_to_model(self, xy: np.ndarray) -> np.ndarray:
        """(…, 2) pixel (x=column, y=row) coordinates → the 256 frame (SAM's ``apply_coords``)."""
        sx, sy = self.scale_xy
        out = np.asarray(xy, dtype=np.float32).copy()
        out[..., 0] *= sx
        out[..., 1] *= sy
        return out

    def box_to_model(self, box: np.ndarray) -> np.ndarray:
        """(…, 4) ``x0, y0, x1, y1`` → the 256 frame."""
        b = np.asarray(box, dtype=np.float32)
        return self.coords_to_model(b.reshape(*b.shape[:-1], 2, 2)).reshape(b.shape)

    def logits_to_original(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, C, 256, 256) logits → crop padding → bilinear to (N, C, H, W).

        CPU tensors go through :meth:`logits_to_original_array` (faster than torch's kernel here, and the
        torch and torch-free backends then threshold identical logits); others through ``F.interpolate``.
        """
        import torch

        if logits.device.type == "cpu":
            return torch.from_numpy(self.logits_to_original_array(logits.detach().float().numpy()))
        import torch.nn.functional as F

        h, w = self.new_size
        cropped = logits[..., :h, :w]
        return F.interpolate(cropped.float(), size=self.original_size, mode="bilinear", align_corners=False)

    def logits_to_original_array(self, logits: np.ndarray) -> np.ndarray:
        """numpy :meth:`logits_to_original`: (…, 256, 256) logits → crop padding → bilinear to (…, H, W).

        Same maths as torch's ``F.interpolate(..., mode="bilinear", align_corners=False)``, float32
        (agrees to float rounding); needs no torch.
        """
        h, w = self.new_size
        return bilinear_resize(np.asarray(logits, dtype=np.float32)[..., :h, :w], self.original_size)

    def mask_to_model(self, mask: np.ndarray) -> np.ndarray:
        """Boolean (H, W) mask → float (256, 256) in the padded model frame (for box/mask prompts)."""
        h, w = self.new_size
        out = np.zeros((self.side, self.side), dtype=np.float32)
        out[:h, :w] = bilinear_resize(np.asarray(mask, dtype=np.float32), self.new_size)
        return out


def resized_size(height: int, width: int, side: int = MODEL_SIDE) -> tuple[int, int]:
    scale = side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def to_uint8_range(
    slice2d: np.ndarray,
    window: tuple[float, float] | None,
    percentiles: tuple[float, float] = PERCENTILES,
) -> np.ndarray:
    """Window (level, width) or percentile-normalise to float 0..255 with uint8 truncation (as upstream)."""
    x = np.asarray(slice2d, dtype=np.float32)
    if window is not None:
        level, width = float(window[0]), max(float(window[1]), 1e-3)
        lo, hi = level - width / 2, level + width / 2
    else:
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            return np.zeros_like(x)
        lo, hi = (float(v) for v in np.percentile(finite, percentiles))
    if hi <= lo:
        return np.zeros_like(x)
    x = np.nan_to_num(x, nan=lo)
    scaled = (np.clip(x, lo, hi) - lo) / (hi - lo) * 255.0
    return np.floor(scaled).astype(np.float32)


def preprocess_slice_array(
    slice2d: np.ndarray,
    window: tuple[float, float] | None,
    percentiles: tuple[float, float] = PERCENTILES,
) -> tuple[np.ndarray, PreprocessInfo]:
    """One (H, W) slice → float32 (1, 3, 256, 256) array in [0, 1] and its geometry, without torch.

    Upstream's steps (module docstring) with torch's ``area`` / ``bilinear`` interpolation reproduced in
    :mod:`inference.models.interpolation`.
    """
    if slice2d.ndim != 2 or min(slice2d.shape) < 2:
        raise ValueError(f"expected a 2-D slice, got shape {slice2d.shape}")
    img = to_uint8_range(slice2d, window, percentiles)
    h0, w0 = img.shape
    new_h, new_w = resized_size(h0, w0)
    if (new_h, new_w) != (h0, w0):
        img = area_resize(img, (new_h, new_w)) if new_h <= h0 else bilinear_resize(img, (new_h, new_w))
    lo, hi = img.min(), img.max()
    out = np.zeros((1, 3, MODEL_SIDE, MODEL_SIDE), dtype=np.float32)
    out[0, 0, :new_h, :new_w] = (img - lo) / max(hi - lo, np.float32(1e-8))
    out[0, 1:] = out[0, 0]
    return out, PreprocessInfo((h0, w0), (new_h, new_w))


def preprocess_slice(
    slice2d: np.ndarray,
    window: tuple[float, float] | None,
    percentiles: tuple[float, float] = PERCENTILES,
) -> tuple[torch.Tensor, PreprocessInfo]:
    """One (H, W) slice → (1, 3, 256, 256) float tensor in [0, 1] and its geometry.

    The tensor wraps :func:`preprocess_slice_array`'s result: the same values as torch's own
    ``area``/``bilinear`` interpolation (to the bit on the shared data) and several times faster.
    """
    import torch

    array, info = preprocess_slice_array(slice2d, window, percentiles)
    return torch.from_numpy(array), info
