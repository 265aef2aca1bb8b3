"""MedFusion Viewer desktop app (Qt/VTK)."""

from __future__ import annotations


def _preload_triton() -> None:
    """Load Triton's bundled LLVM before Mesa (llvmpipe, used under Xvfb/software GL) loads its own.

    torch imports ``triton`` lazily (e.g. via torchvision/torch._dynamo) from worker threads; when Mesa's
    LLVM is already in the process, initialising Triton's second copy segfaults. Loaded first, both coexist.
    Only the shared library is loaded here (``dlopen``, as Python's own import does, so the later
    ``import triton`` reuses it): importing the Python package would add ~1 s to every start.
    """
    import ctypes
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec("triton")
        if spec is None or spec.origin is None:
            return
        library = os.path.join(os.path.dirname(spec.origin), "_C", "libtriton.so")
        if os.path.exists(library):
            ctypes.CDLL(library, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        else:  # another layout: fall back to importing the package
            import triton  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or broken: torch then runs without it
        pass


_preload_triton()
