"""Mamba (pure-PyTorch selective scan) vs same-width transformer: latency and peak tensor memory over
sequence length → the "Sequence models" section of docs/performance.md.

``python -m benchmarks sequence_models [--threads 2] [--lengths 8,32,128,512] [--no-write]``.

Why a dispatch-mode memory counter: on CPU there is no ``max_memory_allocated``; counting the bytes of
live tensor storages created inside the forward gives the peak activation memory of each block, which is
what grows with sequence length (attention's L×L scores vs the scan's fixed-size state).
"""

from __future__ import annotations

import argparse
import platform
import time
import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks import publish, record_headline
from inference.fusion.mamba import MambaBlock, TransformerSequence


class PeakMemory(TorchDispatchMode):
    """Tracks live bytes of tensors created by ops inside the context and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def _release(self, key: int, nbytes: int) -> None:
        self._seen.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key in self._seen or key == 0:
                    continue
                nbytes = storage.nbytes()
                self._seen.add(key)
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._release, key, nbytes)
        return out


def measure(block: torch.nn.Module, length: int, d_model: int, repeats: int) -> tuple[float, float]:
    """Min ms (least disturbed by other load) and peak activation MiB of one (1, length, d_model) forward."""
    x = torch.randn(1, length, d_model)
    mask = torch.ones(1, length, dtype=torch.bool)
    with torch.no_grad():
        block(x, mask)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            block(x, mask)
            times.append((time.perf_counter() - t0) * 1000)
        with PeakMemory() as mem:
            block(x, mask)
    return min(times), mem.peak / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    # One thread: the blocks' ops are tiny; with 2 threads on a busy 2-core machine intra-op
    # synchronisation dominated (100× slower, noisy).
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lengths", default="8,32,128,512")
    parser.add_argument("--d-model", type=int, default=48, help="the shipped fusion model's width")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    torch.backends.mha.set_fastpath_enabled(False)  # the fused fast path hides attention's intermediates
    blocks = {"Mamba (selective scan)": MambaBlock(args.d_model).eval(),
              "Transformer layer": TransformerSequence(args.d_model).eval()}
    lines = [
        f"### Sequence models (CPU, {args.threads} thread(s); `python -m benchmarks sequence_models`)", "",
        f"{platform.machine()}, torch {torch.__version__}; batch 1, d_model {args.d_model}, inference, one block.",
        "Peak = live bytes of tensors created during one forward (dispatch-mode counter).", "",
        "| sequence length | Mamba min ms | Mamba peak MiB | Transformer min ms | Transformer peak MiB |",
        "|---|---|---|---|---|",
    ]
    for length in (int(v) for v in args.lengths.split(",")):
        cells = []
        measured = []
        for block in blocks.values():
            ms, mib = measure(block, length, args.d_model, args.repeats)
            cells += [f"{ms:.1f}", f"{mib:.2f}"]
            measured.append((ms, mib))
        (m_ms, m_mib), (t_ms, t_mib) = measured
        last = (length, m_ms, m_mib, t_ms, t_mib)
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines += ["", "Reading: the pure-PyTorch scan is sequential in time, so its latency grows linearly with L and is",
              "dominated by per-step overhead; its peak memory is linear in L (every step's output is kept).",
              "PyTorch's CPU attention (fused scaled-dot-product) does not materialise the L×L score matrix, so",
              "the transformer layer stays faster and small up to 512 here. At the cohort's lengths (≤ 8 images)",
              "both cost about a millisecond, negligible next to the image encoder (~1.3 s per image). Mamba's",
              "linear-time advantage needs the fused `mamba-ssm` kernel (GPU); not measured on this CPU machine."]
    length, m_ms, m_mib, t_ms, t_mib = last
    record_headline(f"Mamba vs same-width transformer, sequence length {length}",
                    f"{m_ms:.1f} ms, {m_mib:.2f} MiB vs {t_ms:.1f} ms, {t_mib:.2f} MiB",
                    f"Mamba = {m_ms / t_ms:.1f}× the latency, {m_mib / t_mib:.1f}× the peak memory", "–", write=not args.no_write)
    publish("sequence-models", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
