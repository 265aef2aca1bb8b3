"""Segmentation backends by name: a registry instead of an if/elif chain, and lazy loading.

A backend registers a :class:`BackendSpec` (display name, version for DICOM SEG algorithm identification,
and a loader); ``create_backend(settings)`` builds the one the settings name. :class:`LazyBackend` defers
the load to its first use (on a worker thread), so opening the viewer stays instant.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.errors import ModelLoadError
from inference.segmentation.backend import Box, Decoded, Embedding, Point, SegmentationBackend
from inference.settings import Settings

if TYPE_CHECKING:  # torch loads with the first backend, not with the viewer
    import torch


@dataclass(frozen=True)
class BackendSpec:
    """How to build one backend, and how it is named in exported DICOM SEG files."""

    name: str  # settings / CLI key, e.g. "litemedsam"
    display_name: str  # SegmentAlgorithmName, e.g. "LiteMedSAM"
    version: str  # SegmentAlgorithm version recorded with AI segments
    load: Callable[[Settings, torch.device], SegmentationBackend]
    # Tried first: a backend that needs no PyTorch import (``None`` when these settings or files rule it out)
    load_without_torch: Callable[[Settings], SegmentationBackend | None] | None = None


def _load_litemedsam(settings: Settings, device: torch.device) -> SegmentationBackend:
    from inference.segmentation.litemedsam_backend import LiteMedSAMBackend

    return LiteMedSAMBackend.load(
        device, encoder_runtime=settings.encoder_runtime, cache_dir=settings.resolved_cache_dir() / "encoder"
    )


def _litemedsam_without_torch(settings: Settings) -> SegmentationBackend | None:
    """The torch-free CPU LiteMedSAM when a previous start recorded it for this machine (``cpu_runtime``)."""
    import logging

    from inference.models.cpu_runtime import load_cpu_runtime, torch_free_reason
    from inference.models.registry import litemedsam_file

    reason = torch_free_reason(str(settings.device).lower(), str(settings.encoder_runtime).lower())
    if reason is not None:
        logging.getLogger(__name__).info("segmenting with PyTorch: %s", reason)
        return None
    model = load_cpu_runtime(settings.resolved_cache_dir() / "encoder", litemedsam_file().sha256)
    if model is None:
        return None
    from inference.segmentation.litemedsam_cpu_backend import CpuLiteMedSAMBackend

    return CpuLiteMedSAMBackend(model)


def _load_medsam2(settings: Settings, device: torch.device) -> SegmentationBackend:
    from inference.segmentation.medsam2_backend import MedSAM2Backend

    return MedSAM2Backend.from_settings(settings, device)


_REGISTRY: dict[str, BackendSpec] = {}


def register_backend(spec: BackendSpec) -> None:
    """Make a backend selectable by ``spec.name`` (settings, ``segment --backend``, the viewer)."""
    _REGISTRY[spec.name] = spec


def backend_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def backend_spec(name: str) -> BackendSpec | None:
    return _REGISTRY.get(name.lower())


register_backend(BackendSpec("litemedsam", "LiteMedSAM", "litemedsam-v1", _load_litemedsam, _litemedsam_without_torch))
register_backend(BackendSpec("medsam2", "MedSAM2", "medsam2", _load_medsam2))
BACKENDS = backend_names()  # the built-in ones (CLI choices)


def create_backend(settings: Settings, name: str | None = None) -> SegmentationBackend:
    """``litemedsam`` (bundled weights) or ``medsam2`` (user checkpoint + config from the settings)."""
    name = (name or settings.segmentation_backend or "litemedsam").lower()
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ModelLoadError(f"Unknown segmentation backend '{name}'; choose one of {', '.join(_REGISTRY)}.")
    if spec.load_without_torch is not None:
        backend = spec.load_without_torch(settings)
        if backend is not None:
            return backend
    from inference.models.device import select_device

    return spec.load(settings, select_device(settings.device))


class LazyBackend:
    """Loads the real backend on first use (on a worker thread), so opening the viewer stays instant."""

    def __init__(self, factory: Callable[[], SegmentationBackend]) -> None:
        self._factory = factory
        self._backend: SegmentationBackend | None = None
        self._lock = threading.Lock()

    def get(self) -> SegmentationBackend:
        with self._lock:
            if self._backend is None:
                self._backend = self._factory()
            return self._backend

    @property
    def model_id(self) -> str:
        return self.get().model_id

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding:
        return self.get().embed(slice2d, window)

    def decode(
        self, embedding: Embedding, boxes: Box | None, points: Sequence[Point] = (), mask_prompt: Any = None
    ) -> Decoded:
        return self.get().decode(embedding, boxes, points, mask_prompt)
