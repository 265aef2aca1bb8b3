"""Automatic lung masks for frontal chest X-rays: no prompt, both lungs labelled by side.

Why: the predictor's lung-region features and the attribution maps need lungs, and users rarely have
masks. The frozen LiteMedSAM encoder (same runtime and embedding cache as interactive segmentation)
feeds a fine-tuned lung head (``cxr_lungs_model.LungDecoder``, weights in
``resources/models/cxr_lungs/``, sha256-checked through ``inference.models.registry``).

Output convention (uint8, the image's H×W): 0 background, 1 the patient's RIGHT lung, 2 the patient's
LEFT lung. On a frontal film in the standard display (PA or AP, patient facing the viewer) the right
lung is on the IMAGE LEFT. A mirrored film gets mirrored labels: sides are by image position.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from inference.errors import ModelLoadError, UnsupportedInputError
from inference.progress import CancelToken, ProgressCallback, no_progress

if TYPE_CHECKING:
    import torch

    from inference.models.registry import ModelFile
    from inference.segmentation.backend import Embedding
    from inference.segmentation.cache import EmbeddingCache
    from inference.segmentation.cxr_lungs_model import LungDecoder
    from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
    from inference.settings import Settings

BACKGROUND, RIGHT_LUNG, LEFT_LUNG = 0, 1, 2
LABEL_NAMES = {RIGHT_LUNG: "right lung", LEFT_LUNG: "left lung"}
MIN_SIDE = 64  # pixels: smaller images carry no usable lung anatomy
MAX_ASPECT = 4.0  # a frontal CXR is roughly square; a strip is not a chest film


def check_image(image2d: Any) -> np.ndarray:
    """The image as float32 (H, W), or :class:`UnsupportedInputError` saying what is wrong with it."""
    if not isinstance(image2d, np.ndarray):
        raise UnsupportedInputError(f"Lung segmentation needs a 2-D image array, not {type(image2d).__name__}.")
    if image2d.ndim == 3 and image2d.shape[0] == 1:
        image2d = image2d[0]  # a 2-D Volume's (1, H, W) array
    if image2d.ndim != 2:
        raise UnsupportedInputError(
            f"Lung segmentation needs one 2-D chest X-ray (H×W grayscale); got an array of shape {image2d.shape}."
        )
    if image2d.dtype.kind not in "uif":
        raise UnsupportedInputError(f"Lung segmentation needs a numeric image, not dtype {image2d.dtype}.")
    h, w = image2d.shape
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_ASPECT * min(h, w):
        raise UnsupportedInputError(
            f"A {h}×{w} image is not a chest X-ray the lung model can read (needs ≥ {MIN_SIDE} px a side, "
            f"aspect ≤ {MAX_ASPECT:g})."
        )
    image = np.asarray(image2d, dtype=np.float32)
    finite = np.isfinite(image)
    if not finite.any() or float(np.ptp(image[finite])) == 0.0:
        raise UnsupportedInputError("The image is blank (no finite pixel values that vary): no lungs to find.")
    return image


def labels_from_logits(logits: np.ndarray, threshold: float, keep_largest: bool = True) -> np.ndarray:
    """(2, H, W) side logits → uint8 label map: a pixel is lung if either side's logit passes
    ``threshold``, and belongs to the side with the higher logit; optionally each side keeps its largest
    connected piece with holes filled (a lung is one region)."""
    right, left = logits[0], logits[1]
    lung = np.maximum(right, left) > threshold
    out = np.zeros(right.shape, dtype=np.uint8)
    out[lung & (right >= left)] = RIGHT_LUNG
    out[lung & (right < left)] = LEFT_LUNG
    if keep_largest:
        for side in (RIGHT_LUNG, LEFT_LUNG):
            part = out == side
            labels, n = ndimage.label(part)
            if n > 1:
                sizes = np.bincount(labels.ravel())[1:]
                part = labels == (int(np.argmax(sizes)) + 1)
            part = ndimage.binary_fill_holes(part) & (part | (out == BACKGROUND))
            out[(out == side) & ~part] = BACKGROUND
            out[part] = side
    return out


class LungSegmenter:
    """Loaded once (encoder backend + lung head), then ``segment`` per image; thread-compatible, not thread-safe."""

    def __init__(self, backend: LiteMedSAMBackend, head: LungDecoder, *, model_id: str,
                 cache: EmbeddingCache | None = None) -> None:
        self.backend = backend
        self.head = head
        self.model_id = model_id
        self.cache = cache

    def embedding(self, image: np.ndarray) -> Embedding:
        """The LiteMedSAM embedding (from the shared embedding cache when given; same key as the session)."""
        from inference.segmentation.cache import cache_key, slice_hash

        if self.cache is None:
            return self.backend.embed(image, None)
        key = cache_key(slice_hash(image), self.backend.model_id, None)
        return self.cache.get_or_compute(key, lambda: self.backend.embed(image, None))

    def logits(self, embedding: Embedding) -> torch.Tensor:
        """(2, H, W) full-size side logits of one embedding (the lung head only: no encoder call)."""
        import torch

        device = next(self.head.parameters()).device
        with torch.inference_mode():
            low = self.head.frame_logits(torch.as_tensor(embedding.features).to(device).float())  # numpy if torch-free
            return embedding.info.logits_to_original(low)[0].cpu()

    def labels(self, embedding: Embedding) -> np.ndarray:
        return labels_from_logits(self.logits(embedding).numpy(), self.head.threshold, self.head.keep_largest)

    def segment(self, image2d: np.ndarray, *, progress: ProgressCallback = no_progress,
                cancel: CancelToken | None = None) -> np.ndarray:
        """uint8 (H, W): 0 background, 1 right lung (image left), 2 left lung. Raises
        :class:`UnsupportedInputError` for input that is not one 2-D grayscale image."""
        image = check_image(image2d)
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(0.0, "Encoding the X-ray")
        embedding = self.embedding(image)
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(0.9, "Finding the lungs")
        out = self.labels(embedding)
        progress(1.0, "Lungs found")
        return out


def read_head_state(model_file: ModelFile) -> dict[str, Any]:
    """Verify size + sha256 (registry), then unpickle with ``weights_only=True`` (no code runs)."""
    import torch

    from inference.models.registry import verify_checkpoint

    verify_checkpoint(model_file.path, model_file.sha256, model_file.size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(Path(model_file.path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a usable checkpoint"
        raise ModelLoadError(
            f"Model file {Path(model_file.path).name} could not be read as a PyTorch checkpoint ({type(err).__name__})."
        ) from err
    if not isinstance(state, dict):
        raise ModelLoadError(f"Model file {Path(model_file.path).name} is not a CXR lung decoder.")
    return state


def load_lung_segmenter(device: str = "auto", settings: Settings | None = None, *,
                        backend: LiteMedSAMBackend | None = None, cache: EmbeddingCache | None = None,
                        model_file: ModelFile | None = None) -> LungSegmenter:
    """Load the encoder (or reuse ``backend``, e.g. the viewer's) and the verified lung head.

    ``device="auto"`` takes ``settings.device`` when settings are given. ``cache``: an
    :class:`EmbeddingCache` shared with a segmentation session, so an X-ray already embedded there is
    not encoded again. Raises :class:`ModelLoadError` for a missing, corrupt or foreign checkpoint.
    """
    from inference.models.device import select_device
    from inference.models.registry import cxr_lungs_file
    from inference.segmentation.cxr_lungs_model import LungDecoder
    from inference.segmentation.litemedsam_backend import LiteMedSAMBackend

    mf = model_file or cxr_lungs_file()
    state = read_head_state(mf)  # before the 1 s encoder load: a bad file fails fast
    if device == "auto" and settings is not None:
        device = settings.device
    torch_device = select_device(device)
    if backend is None:
        runtime = settings.encoder_runtime if settings is not None else "auto"
        cache_dir = settings.resolved_cache_dir() / "encoder" if settings is not None else None
        backend = LiteMedSAMBackend.load(torch_device, encoder_runtime=runtime, cache_dir=cache_dir)
    model = backend.model
    head = LungDecoder(model.prompt_encoder, model.mask_decoder)
    head.load_shipped(state, Path(mf.path).name)
    head = head.to(model_device_of(model)).eval()
    return LungSegmenter(backend, head, model_id=mf.model_id, cache=cache)


def model_device_of(model: Any) -> torch.device:
    from inference.models.litemedsam import model_device

    return model_device(model)
