"""Survive a GPU running out of memory: retry the call on the CPU and tell the user.

:func:`run_with_gpu_fallback` retries a CUDA call on the CPU when the GPU runs out of memory and
tells the user through a callback and the ``medfusion.gpu`` logger (slower, but the result still
arrives). (Studies too large for main memory are refused before loading: ``inference.io.memory_budget``.)
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
GPU_LOG = logging.getLogger("medfusion.gpu")  # the app shows this logger's warnings in the status bar


def is_cuda_oom(exc: BaseException) -> bool:
    """CUDA out-of-memory, as raised by current torch (``OutOfMemoryError``) or older builds (text)."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


def _to_cpu(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor | torch.nn.Module):
        return value.to("cpu")
    if isinstance(value, torch.device):
        return torch.device("cpu")
    if isinstance(value, str) and value.startswith("cuda"):
        return "cpu"
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


class MessageHandler(logging.Handler):
    """Forwards warnings of a logger (e.g. :data:`GPU_LOG`) to a callback such as the viewer's status bar."""

    def __init__(self, callback: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.callback(record.getMessage())
        except RuntimeError:  # the window behind the callback is gone; the log file still has the message
            pass


GPU_FALLBACK_MESSAGE = "The GPU ran out of memory; this step is running on the CPU instead (slower)."


def run_with_gpu_fallback(
    fn: Callable[..., T],
    *args: Any,
    on_message: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``; on CUDA OOM, free the cache and retry once with everything on the CPU.

    Tensors and modules in ``args``/``kwargs`` (also inside lists/tuples/dicts), ``torch.device`` and
    ``'cuda…'`` strings are moved to the CPU for the retry (modules move in place, so later calls stay
    on the CPU too); ``on_message`` receives :data:`GPU_FALLBACK_MESSAGE`, which is also logged as a
    warning on :data:`GPU_LOG` (the viewer shows it in the status bar). Other errors propagate.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if not is_cuda_oom(exc):
            raise
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
    GPU_LOG.warning(GPU_FALLBACK_MESSAGE)
    if on_message is not None:
        on_message(GPU_FALLBACK_MESSAGE)
    return fn(*_to_cpu(args), **_to_cpu(kwargs))
