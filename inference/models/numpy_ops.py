"""float32 numpy building blocks of the torch-free LiteMedSAM decoder: layer norm, softmax, exact GELU.

Written for speed with plain numpy (no scipy, no torch): the ufuncs run in place on row blocks small
enough to stay in the CPU cache (a 1 M-element array pass from memory costs several times one from L2),
and the GELU uses an erf approximation that is accurate to float32 rounding (|Δerf| ≤ 1.5e-7,
Abramowitz & Stegun 7.1.26): ``scipy.special.erf`` would cost 26 MiB and 0.3 s to import and runs
~6× slower here (its float32 loop goes through double-precision cephes, ~30 ns an element).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCK_ELEMENTS = 1 << 16  # 256 KiB of float32 per block: in L2 on current x86 CPUs

# Abramowitz & Stegun 7.1.26: erfc(z) ≈ t·(a1 + t·(a2 + …)) · exp(-z²), t = 1 / (1 + p z), z ≥ 0.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
# GELU(x) = x·Φ(x) = relu(x) - |x|·Φ(-|x|) and Φ(-a) = ½ erfc(a/√2): the constants folded in.
_P_SCALED = np.float32(_P / math.sqrt(2.0))
_A_HALF = tuple(np.float32(a / 2.0) for a in _A)
_MINUS_HALF = np.float32(-0.5)


def _gelu_block(x: np.ndarray, out: np.ndarray) -> None:
    """``out = gelu(x)`` for one cache-sized block (``out`` may be ``x``); 15 in-place ufunc passes."""
    a = np.abs(x)
    t = a * _P_SCALED
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * _A_HALF[4]
    for coef in (_A_HALF[3], _A_HALF[2], _A_HALF[1], _A_HALF[0]):
        poly += coef
        poly *= t
    e = a * a
    e *= _MINUS_HALF
    np.exp(e, out=e)
    poly *= e  # Φ(-|x|)
    poly *= a  # |x|·Φ(-|x|)
    np.maximum(x, 0.0, out=out)
    out -= poly


def gelu_(x: np.ndarray) -> np.ndarray:
    """Exact-erf GELU of a C-contiguous float32 array, in place (max |Δ| vs float64 ~3e-7 on N(0, 2²))."""
    flat = x.reshape(-1)
    for start in range(0, flat.size, BLOCK_ELEMENTS):
        block = flat[start : start + BLOCK_ELEMENTS]
        _gelu_block(block, block)
    return x


def layer_norm_(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float, *,
                centered: bool = False) -> np.ndarray:
    """``torch.nn.functional.layer_norm`` over the last axis of a C-contiguous float32 (rows, C), in place.

    ``centered``: the rows already have zero mean (e.g. made by a linear layer whose weights were centred),
    so the mean is not computed again.
    """
    c = x.shape[-1]
    rows = x.reshape(-1, c)
    step = max(1, BLOCK_ELEMENTS // c)
    inv_c = np.float32(1.0 / c)
    averaging = np.full(c, inv_c, np.float32)
    for start in range(0, rows.shape[0], step):
        block = rows[start : start + step]
        if not centered:
            block -= (block @ averaging)[:, None]  # the row means by a BLAS product: faster than .mean()
        var = np.einsum("ij,ij->i", block, block)[:, None]
        var *= inv_c
        var += np.float32(eps)
        np.sqrt(var, out=var)
        np.reciprocal(var, out=var)
        block *= var
        block *= weight
        block += bias
    return x


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """Layer norm over the last axis into a new C-contiguous array."""
    return layer_norm_(np.array(x, dtype=np.float32, order="C"), weight, bias, eps)


def softmax_(x: np.ndarray, axis: int) -> np.ndarray:
    """Softmax along ``axis`` in place (float32), as ``torch.softmax``: max subtracted first."""
    x -= x.max(axis=axis, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=axis, keepdims=True)
    return x


def relu_(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


def linear(x: np.ndarray, weight_t: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``F.linear`` with the weight stored transposed, (in, out)."""
    out = x @ weight_t
    out += bias
    return out


def mlp(x: np.ndarray, layers: tuple[tuple[np.ndarray, np.ndarray], ...]) -> np.ndarray:
    """segment_anything's ``MLP``: linear layers with ReLU between them, none after the last."""
    for i, (w_t, b) in enumerate(layers):
        x = linear(x, w_t, b)
        if i < len(layers) - 1:
            relu_(x)
    return x


_blas_lock = threading.Lock()  # numpy's BLAS thread count is one setting per process: one guard for it
_blas_users = 0
_blas_saved: list[tuple[object, int]] = []
_blas_libs: list[object] | None = None  # threadpoolctl's controllers, found once (a scan costs ~1 ms)


def _set_threads_checked(lib: object, threads: int, attempts: int = 3) -> None:
    """Set a BLAS library's thread count and read it back, setting it again if it did not hold.

    Why not ``lib.set_num_threads``: threadpoolctl 3.8's OpenBLAS controller (pthreads build) lets only the
    first thread that set the count change it while that thread lives; a set from any other thread is
    silently dropped. The viewer decodes on whichever worker thread runs the task, so a decode on the second
    pool thread ran with BLAS on two threads under the decoder's tiles (measured: 49-61 ms vs 30 ms a
    decode; it also failed CI's BLAS test once a Qt worker had set the count first). The count is one value
    per process and this module is its only writer here (``_blas_lock``, ``_blas_users``): set it through
    the controller's real setter when it has one; the read-back guards against a future version that
    drops sets another way.
    """
    setter = getattr(lib, "_real_set_num_threads", None) or lib.set_num_threads  # type: ignore[attr-defined]
    for _ in range(attempts):
        setter(threads)
        if lib.num_threads == threads:  # type: ignore[attr-defined]
            return


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """numpy's BLAS on one thread while the decoder runs (re-entrant, shared by concurrent decodes).

    The decoder parallelises by tiles itself; a multi-threaded BLAS under it would oversubscribe the
    cores, and OpenBLAS's own threads are slow to hand work over on a busy machine (measured: a
    56 × 4096 × 256 product took 61 ms on 2 threads vs 1.9 ms on one, with other jobs running).
    """
    global _blas_users, _blas_libs
    with _blas_lock:
        if _blas_users == 0:
            if _blas_libs is None:
                from threadpoolctl import ThreadpoolController

                _blas_libs = list(ThreadpoolController().select(user_api="blas").lib_controllers)
            _blas_saved.clear()
            for lib in _blas_libs:
                _blas_saved.append((lib, lib.num_threads))  # type: ignore[attr-defined]
                _set_threads_checked(lib, 1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for lib, threads in _blas_saved:
                    _set_threads_checked(lib, threads)  # type: ignore[arg-type]
                _blas_saved.clear()


class TileRunner:
    """Runs ``fn(0) … fn(n - 1)`` (independent tiles) on the calling thread plus ``threads - 1`` helpers.

    Work stealing: every thread takes the next tile until none is left, so a helper that the OS has not
    scheduled yet (a busy machine) never holds the caller up by more than the tile it is on; one that
    never started is cancelled. numpy's ufuncs and BLAS release the GIL, so tiles run in parallel.
    """

    def __init__(self, threads: int) -> None:
        self.threads = max(1, int(threads))
        self._pool = ThreadPoolExecutor(self.threads - 1, "numpy-decoder") if self.threads > 1 else None

    def run(self, fn: Callable[[int], None], n: int) -> None:
        counter = itertools.count()

        def work() -> None:
            while (i := next(counter)) < n:
                fn(i)

        helpers = [self._pool.submit(work) for _ in range(min(self.threads, n) - 1)] if self._pool else []
        try:
            work()
        finally:
            for helper in helpers:
                if not helper.cancel():
                    helper.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
