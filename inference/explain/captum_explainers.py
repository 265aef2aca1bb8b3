"""Occlusion and GradientSHAP via Captum, with progress/cancel through the forward wrapper."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from captum.attr import GradientShap, Occlusion
from torch import Tensor

from inference.explain.base import Attribution, BaseExplainer, BaselineSpec, ModelFn, ProgressForward
from inference.progress import CancelToken, ProgressCallback, no_progress


class OcclusionExplainer(BaseExplainer):
    """Slide a baseline-valued window over each input and record the drop in the target logit.

    ``sliding_window_shapes``/``strides`` give one tuple per input (without the batch axis), e.g.
    ``((1, 16, 16), (1,))`` for an image and a vector of EHR features (per-feature ablation).
    Baselines must be scalars or tensors without the batch axis (Captum's rule for occlusion).
    """

    method = "occlusion"

    def __init__(self, model_fn: ModelFn, sliding_window_shapes: Sequence[tuple[int, ...]],
                 strides: Sequence[tuple[int, ...]] | None = None,
                 baselines: Sequence[float | Tensor] | None = None,
                 perturbations_per_eval: int = 8) -> None:
        super().__init__(model_fn, None)
        self.windows = tuple(tuple(w) for w in sliding_window_shapes)
        self.strides = tuple(tuple(s) for s in strides) if strides is not None else self.windows
        self.occ_baselines = tuple(baselines) if baselines is not None else None
        self.perturbations_per_eval = max(int(perturbations_per_eval), 1)

    def _n_evals(self, xs: tuple[Tensor, ...]) -> int:
        """Forward calls: per input, one unperturbed pass plus the perturbation batches."""
        total = 0
        for x, win, st in zip(xs, self.windows, self.strides, strict=True):
            n = 1
            for size, w, s in zip(x.shape[1:], win, st, strict=True):
                n *= math.ceil((size - w) / s) + 1
            total += 1 + math.ceil(n / self.perturbations_per_eval)
        return total

    def __call__(
        self, inputs: tuple[Tensor, ...], target: int, *, additional_forward_args: tuple[Any, ...] = (),
        progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
    ) -> Attribution:
        xs = self._check_inputs(inputs)
        if len(self.windows) != len(xs):
            raise ValueError(f"{len(self.windows)} window shapes for {len(xs)} inputs")
        fwd = ProgressForward(self.model_fn, self._n_evals(xs), progress, cancel, "Occlusion")
        extra = tuple(additional_forward_args)
        attrs = []
        # One input at a time: the other inputs travel as forward args (Captum expands them with
        # the perturbation batch). This avoids Captum 0.9's cross-tensor path, which mis-indexes
        # baselines and feature offsets for several inputs.
        for i, x in enumerate(xs):
            others = xs[:i] + xs[i + 1:]

            def f_i(xi: Tensor, *rest: Any, _i: int = i, _n: int = len(others)) -> Tensor:
                return fwd(*rest[:_i], xi, *rest[_i:_n], *rest[_n:])

            base = self.occ_baselines[i] if self.occ_baselines is not None else 0.0
            with torch.no_grad():
                a = Occlusion(f_i).attribute(
                    x, sliding_window_shapes=self.windows[i], strides=self.strides[i],
                    baselines=base, target=target, additional_forward_args=(*others, *extra) or None,
                    perturbations_per_eval=self.perturbations_per_eval,
                )
            attrs.append(a.detach())
        progress(1.0, "Occlusion done")
        return Attribution(self.method, target, tuple(attrs), extra={"forward_calls": fwd.calls})


class GradientShapExplainer(BaseExplainer):
    """Expected gradients from a baseline *distribution* (one row per reference), in sample chunks.

    ``baselines`` is one tensor ``[M, ...]`` per input (M references) or None for zeros. Results are
    reproducible: sampling uses ``seed`` in a forked RNG and never disturbs the global one.
    """

    method = "gradient_shap"

    def __init__(self, model_fn: ModelFn, baselines: BaselineSpec = None, n_samples: int = 50,
                 stdevs: float = 0.0, samples_per_chunk: int = 10, seed: int = 0) -> None:
        super().__init__(model_fn, baselines)
        self.n_samples = max(int(n_samples), 1)
        self.stdevs = stdevs
        self.samples_per_chunk = max(int(samples_per_chunk), 1)
        self.seed = seed

    def _distribution(self, xs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        if self.baselines is None:
            return tuple(torch.zeros_like(x[:1]) for x in xs)
        resolved = self.baselines(xs) if callable(self.baselines) else self.baselines
        if len(resolved) != len(xs):
            raise ValueError(f"{len(resolved)} baselines for {len(xs)} inputs")
        out = []
        for x, b in zip(xs, resolved, strict=True):
            if b is None:
                out.append(torch.zeros_like(x[:1]))
            elif isinstance(b, Tensor):
                out.append(b.detach().to(dtype=x.dtype, device=x.device))
            else:
                out.append(torch.full_like(x[:1], float(b)))
        return tuple(out)

    def __call__(
        self, inputs: tuple[Tensor, ...], target: int, *, additional_forward_args: tuple[Any, ...] = (),
        progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
    ) -> Attribution:
        xs = self._check_inputs(inputs)
        dist = self._distribution(xs)
        n_chunks = math.ceil(self.n_samples / self.samples_per_chunk)
        # GradientShap does one forward for the samples and one for the delta per chunk.
        fwd = ProgressForward(self.model_fn, 2 * n_chunks, progress, cancel, "GradientSHAP")
        explainer = GradientShap(fwd)
        sums = [torch.zeros_like(x) for x in xs]
        deltas: list[Tensor] = []
        np_state = np.random.get_state()  # Captum draws the path coefficients from numpy
        np.random.seed(self.seed)
        try:
            self._run_chunks(explainer, xs, dist, target, additional_forward_args, sums, deltas)
        finally:
            np.random.set_state(np_state)
        progress(1.0, "GradientSHAP done")
        return Attribution(self.method, target, tuple(s / self.n_samples for s in sums),
                           delta=torch.cat(deltas), extra={"n_samples": self.n_samples})

    def _run_chunks(self, explainer: GradientShap, xs: tuple[Tensor, ...], dist: tuple[Tensor, ...],
                    target: int, additional_forward_args: tuple[Any, ...], sums: list[Tensor],
                    deltas: list[Tensor]) -> None:
        done = 0
        cuda = sorted({x.device.index or 0 for x in xs if x.is_cuda})
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.seed)
            while done < self.n_samples:
                k = min(self.samples_per_chunk, self.n_samples - done)
                attrs, delta = explainer.attribute(
                    xs, baselines=dist, n_samples=k, stdevs=self.stdevs, target=target,
                    additional_forward_args=tuple(additional_forward_args) or None,
                    return_convergence_delta=True,
                )
                for s, a in zip(sums, attrs, strict=True):
                    s += a.detach() * k
                deltas.append(delta.detach())
                done += k
