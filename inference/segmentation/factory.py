"""Build the backend named in the settings (the model is loaded here, once; the caller keeps it)."""

from __future__ import annotations

from inference.errors import ModelLoadError
from inference.models.device import select_device
from inference.segmentation.backend import SegmentationBackend
from inference.settings import Settings

BACKENDS = ("litemedsam", "medsam2")


def create_backend(settings: Settings, name: str | None = None) -> SegmentationBackend:
    """``litemedsam`` (bundled weights) or ``medsam2`` (user checkpoint + config from the settings)."""
    name = (name or settings.segmentation_backend or "litemedsam").lower()
    device = select_device(settings.device)
    if name == "litemedsam":
        from inference.segmentation.litemedsam_backend import LiteMedSAMBackend

        return LiteMedSAMBackend.load(
            device, encoder_runtime=settings.encoder_runtime, cache_dir=settings.resolved_cache_dir() / "encoder"
        )
    if name == "medsam2":
        from inference.segmentation.medsam2_backend import MedSAM2Backend

        return MedSAM2Backend.from_settings(settings, device)
    raise ModelLoadError(f"Unknown segmentation backend '{name}'; choose one of {', '.join(BACKENDS)}.")
