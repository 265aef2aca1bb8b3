"""The automatic CXR lung segmenter for a caller that already has the X-ray's LiteMedSAM embedding.

Why: the outcome predictor's case builder (``inference.fusion.case``) embeds every X-ray for its features;
handing that embedding to the lung head means an X-ray without a mask is encoded once, not twice, and the
lungs come from exactly the segmenter the viewer's "Segment lungs (automatic)" uses. The fusion package may
not import this package (import-linter layers: they are independent siblings), so the CLI and the app pass
:func:`load_shared_lung_segmenter` to ``CaseBuilder.from_settings`` / ``OutcomeService.load``; the builder
only knows the structural protocol (``model_id``, ``segment``, ``labels_from_embedding``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from inference.errors import MedFusionError
from inference.segmentation.cxr_lungs import LungSegmenter, check_image, load_lung_segmenter

log = logging.getLogger("medfusion.segmentation.cxr_lungs_shared")


class SharedEmbeddingLungs:
    """A :class:`LungSegmenter` that also reads a (256, 64, 64) embedding computed by its caller."""

    def __init__(self, segmenter: LungSegmenter, weights_sha256: str) -> None:
        self.segmenter = segmenter
        # The weights' digest is part of the id: masks cached under it are redone after a retrained head.
        self.model_id = f"{segmenter.model_id}|{weights_sha256[:16]}"

    def segment(self, image2d: np.ndarray) -> np.ndarray:
        """uint8 (H, W) labels: 0 background, 1 right lung (image left), 2 left lung (own encoder pass)."""
        return self.segmenter.segment(image2d)

    def labels_from_embedding(self, image2d: np.ndarray, embed: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The same labels from ``embed(image)``: the caller's (256, 64, 64) embedding of the image, preprocessed
        as every X-ray the segmentation backend sees. The image is checked first (size, aspect, blank:
        :class:`UnsupportedInputError`), so nothing is encoded for an image the lung head cannot read."""
        import torch

        from inference.models.preprocess import preprocess_slice
        from inference.segmentation.backend import Embedding

        image = check_image(image2d)
        _, info = preprocess_slice(image, None)
        features = torch.from_numpy(np.ascontiguousarray(embed(image), dtype=np.float32))[None]
        embedding = Embedding(features, info, self.model_id, features.numel() * features.element_size())
        return self.segmenter.labels(embedding)


def load_shared_lung_segmenter(device: str = "cpu", encoder: object | None = None) -> SharedEmbeddingLungs | None:
    """The shipped lung head on ``encoder`` (the caller's loaded LiteMedSAM model: no second encoder is
    loaded), or None with a warning when its weights cannot be loaded (lung features are then missing)."""
    from inference.models.registry import cxr_lungs_file
    from inference.segmentation.litemedsam_backend import LiteMedSAMBackend

    try:
        model_file = cxr_lungs_file()
        backend = LiteMedSAMBackend(encoder) if encoder is not None else None  # type: ignore[arg-type]
        return SharedEmbeddingLungs(load_lung_segmenter(device, backend=backend, model_file=model_file),
                                    model_file.sha256)
    except MedFusionError as err:  # e.g. its weights are missing or corrupt: predict without lung features
        log.warning("The automatic lung segmenter could not be loaded: %s", err)
        return None
