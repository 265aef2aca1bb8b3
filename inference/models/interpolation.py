"""torch's ``F.interpolate`` modes used around LiteMedSAM, in numpy (no torch, no BLAS).

- ``bilinear`` with ``align_corners=False``: output pixel ``i`` samples the input at ``(i + ½)·in/out − ½``
  (clamped at 0), two taps per axis; the width pass runs first, then the height pass, as in torch's kernel,
  so results agree to float32 rounding.
- ``area`` (adaptive average pooling): output ``i`` averages inputs ``floor(i·in/out)`` … ``ceil((i+1)·in/out)``
  − 1, divided by the window's height, then its width (as torch's kernel); on integer-valued images (the
  0–255 slices the preprocessing resizes) every window sum is exact and the result is torch's to the bit.

Gathers and elementwise passes instead of interpolation-matrix products: numpy's multi-threaded BLAS is
slow to hand work over on a busy machine, and these stay cheap (a 512² output is ~1 ms).
"""

from __future__ import annotations

import numpy as np


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, λ0, λ1) per output index, computed in float32 like torch's float kernels."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = scale * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    np.maximum(src, np.float32(0.0), out=src)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)  # src ≥ 0: truncation = floor
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam1 = (src - i0.astype(np.float32)).astype(np.float32)
    lam0 = (np.float32(1.0) - lam1).astype(np.float32)
    return i0, i1, lam0, lam1


def bilinear_resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``F.interpolate(x, size, mode="bilinear", align_corners=False)`` over the last two axes, float32."""
    x = np.asarray(x, dtype=np.float32)
    out_h, out_w = int(size[0]), int(size[1])
    if x.shape[-2:] == (out_h, out_w):
        return x.copy()
    j0, j1, w0, w1 = _bilinear_taps(x.shape[-1], out_w)
    rows = np.take(x, j0, axis=-1)
    rows *= w0
    rows += np.take(x, j1, axis=-1) * w1
    i0, i1, h0, h1 = _bilinear_taps(x.shape[-2], out_h)
    out = np.take(rows, i0, axis=-2)
    out *= h0[:, None]
    out += np.take(rows, i1, axis=-2) * h1[:, None]
    return out


def _window_sums(x: np.ndarray, n_out: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 sums over the adaptive-pooling windows along ``axis`` and the window lengths (float32).

    One gather-and-add per position inside the longest window; positions past a window's end read an
    appended zero. Integer-valued inputs (below 2²⁴ in total) are summed exactly.
    """
    n_in = x.shape[axis]
    i = np.arange(n_out)
    start = (i * n_in) // n_out
    end = -((-(i + 1) * n_in) // n_out)  # ceil
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, 1)
    padded = np.pad(x, pad)
    sums = np.take(padded, start, axis=axis)
    for t in range(1, int((end - start).max())):
        sums += np.take(padded, np.where(start + t < end, start + t, n_in), axis=axis)
    return sums, (end - start).astype(np.float32)


def area_resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``F.interpolate(x, size, mode="area")`` (adaptive average pooling) of a 2-D array, float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"area_resize expects a 2-D array, got shape {x.shape}")
    sums, count_h = _window_sums(x, int(size[0]), axis=0)
    sums, count_w = _window_sums(sums, int(size[1]), axis=1)
    sums /= count_h[:, None]  # torch divides the window sum by its height, then by its width
    sums /= count_w[None, :]
    return sums
