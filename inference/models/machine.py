"""What the machine is, for decisions measured on it and cached (encoder engine, torch-free CPU path).

Read from the OS only: no torch import, so the torch-free segmentation path can check a cached decision.
"""

from __future__ import annotations

import platform
from pathlib import Path

_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "neon", "asimd")


def cpu_flags() -> list[str]:
    """The instruction-set flags that decide which kernels the engines use (Linux /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                return [f for f in _ISA_FLAGS if f in have]
    except OSError:
        pass
    return []


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    """An installed distribution's version, read from its metadata (the package itself is not imported)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def gpu_may_be_present() -> bool:
    """True where PyTorch could find an accelerator: an NVIDIA driver is loaded, or macOS (Metal).

    Checked without importing torch: where this is False, ``device = auto`` can only mean the CPU.
    """
    import sys

    if sys.platform == "darwin":
        return True
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()


def machine_key() -> dict[str, object]:
    """What a CPU speed decision depends on, readable without torch: CPU, instruction sets, cores, the
    thread setting and the versions of the libraries that run the model."""
    import os

    return {
        "cpu": cpu_model(), "isa": cpu_flags(), "cores": os.cpu_count() or 1,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "torch": package_version("torch"),
        "onnxruntime": package_version("onnxruntime"), "numpy": package_version("numpy"),
    }
