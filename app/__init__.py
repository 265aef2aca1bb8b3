"""MedFusion Viewer desktop app (Qt/VTK)."""

from __future__ import annotations


def _preload_triton() -> None:
    """Load Triton's bundled LLVM before Mesa (llvmpipe, used under Xvfb/software GL) loads its own.

    torch imports ``triton`` lazily (e.g. via torchvision/torch._dynamo) from worker threads; when Mesa's
    LLVM is already in the process, initialising Triton's second copy segfaults. Loaded first, both coexist.
    """
    try:
        import triton  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or broken: torch then runs without it
        pass


_preload_triton()
