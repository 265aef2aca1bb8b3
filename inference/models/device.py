"""Pick the torch device once, from the user's setting, instead of sprinkling ``cuda`` checks around."""

from __future__ import annotations

import torch

from inference.errors import ModelLoadError


def select_device(preference: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``/``cuda``/``cuda:N`` are taken as asked.

    Asking for CUDA on a machine without it is a user error (a setting), reported in one sentence.
    """
    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"Device '{preference}' was requested but no CUDA GPU is available; use 'auto' or 'cpu'."
            )
        return torch.device(pref)
    raise ModelLoadError(f"Unknown device '{preference}'; use 'auto', 'cpu' or 'cuda'.")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Reduced precision for GPU inference (bf16 where supported, else fp16); ``None`` on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
