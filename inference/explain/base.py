"""Common types for explainers: the result object, the protocol, progress/cancel plumbing.

Why wrap the model's forward: Captum's loops offer no callbacks, but every batch of steps or
perturbations goes through the forward function, so polling the cancel token and reporting
progress there works for every method without re-implementing Captum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from inference.progress import CancelToken, ProgressCallback, no_progress

ModelFn = Callable[..., Tensor]
BaselineSpec = Sequence[Tensor | float | None] | Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]] | None


@dataclass
class Attribution:
    """Per-input attributions (same shapes as the inputs) for one target class.

    ``delta`` is the convergence delta per example (sum of attributions minus
    ``f(x) - f(baseline)``) for path methods; ``output`` is ``f(x)[:, target]``.
    """

    method: str
    target: int
    attributions: tuple[Tensor, ...]
    delta: Tensor | None = None
    output: Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, i: int) -> Tensor:
        return self.attributions[i]

    def __len__(self) -> int:
        return len(self.attributions)

    def totals(self) -> Tensor:
        """Sum of attributions per example over all inputs (shape [B])."""
        return torch.stack([a.flatten(1).sum(1) for a in self.attributions]).sum(0)


@runtime_checkable
class Explainer(Protocol):
    """What the UI and report code call; implementations are configured in ``__init__``."""

    def __call__(
        self, inputs: tuple[Tensor, ...], target: int, *, additional_forward_args: tuple[Any, ...] = (),
        progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
    ) -> Attribution: ...


def logits_2d(out: Tensor) -> Tensor:
    """Models with one output per example may return ``[B]``; explainers expect ``[B, K]``."""
    return out.unsqueeze(1) if out.ndim == 1 else out


class ProgressForward:
    """Forward wrapper: polls ``cancel`` before and reports progress after each model call."""

    def __init__(self, model_fn: ModelFn, expected_calls: int, progress: ProgressCallback,
                 cancel: CancelToken | None, message: str) -> None:
        self.model_fn = model_fn
        self.expected = max(int(expected_calls), 1)
        self.progress = progress
        self.cancel = cancel
        self.message = message
        self.calls = 0

    def __call__(self, *args: Any) -> Tensor:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        out = logits_2d(self.model_fn(*args))
        self.calls += 1
        self.progress(min(self.calls / self.expected, 0.99), self.message)
        return out


class BaseExplainer:
    """Shared input checks and baseline handling."""

    method = "base"

    def __init__(self, model_fn: ModelFn, baselines: BaselineSpec = None) -> None:
        self.model_fn = model_fn
        self.baselines = baselines

    @staticmethod
    def _check_inputs(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        if isinstance(inputs, Tensor):
            raise TypeError("inputs must be a tuple of tensors, e.g. (image,)")
        inputs = tuple(inputs)
        if not inputs or not all(isinstance(t, Tensor) for t in inputs):
            raise TypeError("inputs must be a non-empty tuple of tensors")
        b = inputs[0].shape[0]
        if any(t.ndim == 0 or t.shape[0] != b for t in inputs):
            raise ValueError("every input needs the same leading batch dimension")
        return tuple(t.detach() for t in inputs)

    def _baselines_for(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Resolve the configured baselines to tensors broadcast to each input's shape."""
        spec = self.baselines
        if callable(spec):
            resolved: Sequence[Tensor | float | None] = spec(inputs)
        elif spec is None:
            resolved = [None] * len(inputs)
        else:
            resolved = spec
        if len(resolved) != len(inputs):
            raise ValueError(f"{len(resolved)} baselines for {len(inputs)} inputs")
        out = []
        for x, b in zip(inputs, resolved, strict=True):
            if b is None:
                out.append(torch.zeros_like(x))
            elif isinstance(b, Tensor):
                out.append(b.detach().to(dtype=x.dtype, device=x.device).expand_as(x).clone())
            else:
                out.append(torch.full_like(x, float(b)))
        return tuple(out)
