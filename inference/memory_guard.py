"""Moved: ``inference.io.memory_budget`` (memory budget before loading) and ``inference.gpu_fallback``
(GPU out-of-memory → CPU). Re-exported here only until every branch imports the new modules; delete then."""

from __future__ import annotations

from inference.gpu_fallback import (  # noqa: F401
    GPU_FALLBACK_MESSAGE,
    GPU_LOG,
    MessageHandler,
    is_cuda_oom,
    run_with_gpu_fallback,
)
from inference.io.memory_budget import (  # noqa: F401
    MAX_FACTOR,
    MemoryBudgetExceeded,
    MemoryCheck,
    budget_bytes,
    check_memory,
    downsample_factor,
    guarded_open,
    open_downsampled,
)
