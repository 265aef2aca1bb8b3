"""The one case builder: X-rays (+ optional lung masks) + an EHR row → per-image features → a patient record.

Used by ``main.py predict``, the viewer, ``benchmarks/predict.py`` and the training experiment, so the
four paths compute identical features from one on-disk cache (``<cache dir>/fusion_features``).

Lung masks: a supplied mask wins; otherwise the automatic CXR lung segmenter
(``inference.segmentation.cxr_lungs``) makes one from the embedding the features use (one encoder pass
per X-ray) and it is kept on disk beside the features; without either, lung features are missing (NaN)
and the embedding is pooled over the whole image. The cache key holds the image content, the mask (or
the segmenter's id), the encoder id and the feature version, so a mask edit re-computes only that image.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from inference.errors import MedFusionError
from inference.fusion.design import PatientRecord
from inference.fusion.lung_features import ImageFeatures, compute_image_features, to_model_frame
from inference.progress import CancelToken, ProgressCallback, no_progress

log = logging.getLogger("medfusion.fusion.case")
FEATURE_VERSION = "cxr-lung-v2"
CACHE_FOLDER = "fusion_features"


class LungSegmenter(Protocol):
    """What the builder needs from the automatic lung segmenter (``inference.segmentation.cxr_lungs``)."""

    def segment(self, image2d: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class EmbeddingLungSegmenter(Protocol):
    """A segmenter that reads a LiteMedSAM embedding (``cxr_lungs.LungSegmenter``): the builder hands it the
    embedding it computes for the features anyway, so an X-ray without a mask is encoded once, not twice."""

    model_id: str

    def segment(self, image2d: np.ndarray) -> np.ndarray: ...

    def labels(self, embedding: Any) -> np.ndarray: ...


@dataclass
class ImageParts:
    """One X-ray in the encoder's frame: pixels (h, w) in [0, 1], embedding, lungs there and at full size."""

    frame: np.ndarray
    embedding: np.ndarray
    frame_lungs: np.ndarray | None
    lungs: np.ndarray | None
    source: str

    def features(self, frame_lungs: np.ndarray | None) -> ImageFeatures:
        """Features with another lung mask (the occlusion explainer removes one lung cell at a time)."""
        return compute_image_features(self.frame, self.embedding, frame_lungs, self.source)


def _as_2d(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D X-ray, got shape {image.shape}")
    return image


@dataclass
class ImageInput:
    """One X-ray of a patient: pixels (H, W), days since presentation, optional lung mask (H, W)."""

    filename: str
    offset: float | None
    image: np.ndarray
    mask: np.ndarray | None = None


def load_auto_segmenter(device: str = "cpu", encoder: object | None = None) -> LungSegmenter | None:
    """The automatic CXR lung segmenter, or None when this build has none (lung features are then missing).
    ``encoder``: the builder's loaded LiteMedSAM model, reused so a second encoder is not loaded."""
    try:
        from inference.segmentation.cxr_lungs import load_lung_segmenter
        from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
    except ImportError:
        return None
    try:
        backend = LiteMedSAMBackend(encoder) if encoder is not None else None  # type: ignore[arg-type]
        return load_lung_segmenter(device, backend=backend)
    except MedFusionError as err:  # e.g. its weights are not installed: predict without lung features
        log.warning("The automatic lung segmenter could not be loaded: %s", err)
        return None


def _encoder_loader(device: str, runtime: str) -> Callable[[], object]:
    def load() -> object:
        from inference.models.device import select_device
        from inference.models.litemedsam import load_litemedsam

        return load_litemedsam(select_device(device), runtime=runtime if runtime != "auto" else "fused")
    return load


class CaseBuilder:
    """Configured once (cache folder, device); ``image_features`` per X-ray, ``build`` per patient."""

    def __init__(
        self, cache_dir: Path | None, *, device: str = "cpu", encoder_runtime: str = "fused",
        encoder_loader: Callable[[], object] | None = None,
        segmenter_loader: Callable[[], LungSegmenter | None] | None = None, memory_items: int = 8,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._load_encoder = encoder_loader or _encoder_loader(device, encoder_runtime)
        self._load_segmenter = segmenter_loader or (lambda: load_auto_segmenter(device, self.encoder))
        self._encoder: object | None = None
        self._segmenter: LungSegmenter | None = None
        self._segmenter_loaded = False
        self._embeddings: OrderedDict[str, np.ndarray] = OrderedDict()
        self._auto_masks: OrderedDict[str, np.ndarray | None] = OrderedDict()
        self._memory_items = memory_items
        self.encoder_calls = 0
        self.on_message: Callable[[str], None] | None = None  # hears a GPU-out-of-memory → CPU fallback

    @classmethod
    def from_settings(cls, settings: object, cache_dir: Path | None = None) -> CaseBuilder:
        """Cache under the settings' cache folder (the viewer's and the CLI's default). The encoder always runs
        the exact ``fused`` engine, whatever the segmentation runtime setting: an approximate engine (int8)
        would feed the outcome models features they were not trained on."""
        root = cache_dir or settings.resolved_cache_dir() / CACHE_FOLDER  # type: ignore[attr-defined]
        return cls(root, device=str(getattr(settings, "device", "cpu")), encoder_runtime="fused")

    # ---- models, loaded on first use ---------------------------------------------------------
    @property
    def encoder(self) -> object:
        if self._encoder is None:
            self._encoder = self._load_encoder()
        return self._encoder

    @property
    def encoder_id(self) -> str:
        return "litemedsam-v1"  # the runtimes in use ("fused", "eager") give the same embedding

    @property
    def segmenter(self) -> LungSegmenter | None:
        if not self._segmenter_loaded:
            self._segmenter = self._load_segmenter()
            self._segmenter_loaded = True
            if self._segmenter is None:
                log.warning("No automatic lung segmenter in this build: X-rays without a lung mask get no lung features.")
        return self._segmenter

    # ---- per image ---------------------------------------------------------------------------
    @staticmethod
    def image_hash(image: np.ndarray) -> str:
        arr = np.ascontiguousarray(image, dtype=np.float32)
        return hashlib.sha256(str(arr.shape).encode() + arr.tobytes()).hexdigest()[:40]

    def remember_embedding(self, image: np.ndarray, embedding: np.ndarray) -> None:
        """Seed the in-memory embedding store (e.g. from a precomputed cohort embedding file)."""
        self._remember(self._embeddings, self.image_hash(image), np.asarray(embedding, np.float32))

    def _remember(self, store: OrderedDict, key: str, value: object) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self._memory_items:
            store.popitem(last=False)

    def embedding(self, image: np.ndarray) -> np.ndarray:
        """(256, 64, 64) frozen LiteMedSAM embedding of the percentile-normalised X-ray (kept in memory)."""
        key = self.image_hash(image)
        if key in self._embeddings:
            self._embeddings.move_to_end(key)
            return self._embeddings[key]
        from inference.gpu_fallback import run_with_gpu_fallback
        from inference.models.litemedsam import encode
        from inference.models.preprocess import preprocess_slice

        tensor, _ = preprocess_slice(np.asarray(image, np.float32), None)
        emb = run_with_gpu_fallback(encode, self.encoder, tensor, on_message=self.on_message)[0].cpu().numpy()
        self.encoder_calls += 1
        self._remember(self._embeddings, key, emb)
        return emb

    def lung_mask(self, image: np.ndarray, supplied: np.ndarray | None = None) -> tuple[np.ndarray | None, str]:
        """(H, W) bool lung mask and where it came from: 'supplied', 'auto' or 'none'."""
        if supplied is not None:
            mask = np.asarray(supplied)
            if mask.ndim == 3 and mask.shape[0] == 1:
                mask = mask[0]
            if mask.shape == image.shape and mask.any():
                return mask > 0, "supplied"
            log.warning("A supplied lung mask does not fit its image (shape or empty); the automatic mask is used.")
        key = self.image_hash(image)
        if key not in self._auto_masks:
            self._remember(self._auto_masks, key, self._auto_lungs(image, key))
        made: np.ndarray | None = self._auto_masks[key]
        return (made, "auto") if made is not None else (None, "none")

    def _auto_lungs(self, image: np.ndarray, key: str) -> np.ndarray | None:
        """The segmenter's lungs (bool, the image's shape) from the disk cache or made now; None when
        there is no segmenter or it finds nothing usable (features without lungs then)."""
        segmenter = self.segmenter
        if segmenter is None:
            return None
        path = self._auto_mask_path(key, segmenter)
        if path is not None and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    shape = tuple(int(v) for v in data["shape"])
                    bits = np.unpackbits(data["bits"])[: int(np.prod(shape))]
                if shape == image.shape:
                    return bits.reshape(shape).astype(bool) if bits.any() else None
            except (OSError, ValueError, KeyError):
                pass
            path.unlink(missing_ok=True)  # corrupt, foreign or for another shape: segment again
        try:
            auto = np.asarray(self._segment(segmenter, image)) > 0
        except MedFusionError as err:  # e.g. an image too small to hold lungs: features without lungs
            log.warning("No automatic lung mask: %s", err)
            return None
        if auto.shape != image.shape:
            log.warning("The automatic lung mask has shape %s for an image of %s; ignored.", auto.shape, image.shape)
            return None
        if path is not None:
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, shape=np.array(auto.shape), bits=np.packbits(auto))
            tmp.replace(path)
        return auto if auto.any() else None

    def _segment(self, segmenter: LungSegmenter, image: np.ndarray) -> np.ndarray:
        """Label map of the automatic segmenter; from the builder's own embedding when it can read one."""
        if not isinstance(segmenter, EmbeddingLungSegmenter):
            return segmenter.segment(np.asarray(image, np.float32))
        import torch

        from inference.models.preprocess import preprocess_slice
        from inference.segmentation.backend import Embedding
        from inference.segmentation.cxr_lungs import check_image

        checked = check_image(image)  # the segmenter's own input checks (size, aspect, blank)
        _, info = preprocess_slice(checked, None)
        features = torch.from_numpy(np.ascontiguousarray(self.embedding(checked)))[None]
        embedding = Embedding(features, info, self.encoder_id, features.numel() * features.element_size())
        return np.asarray(segmenter.labels(embedding))

    def _auto_mask_path(self, key: str, segmenter: LungSegmenter) -> Path | None:
        if self.cache_dir is None:
            return None
        model_id = str(getattr(segmenter, "model_id", type(segmenter).__name__))
        try:  # the shipped weights' digest too: retrained weights under the same id segment again
            from inference.models.registry import cxr_lungs_file

            shipped = cxr_lungs_file()
            if shipped.model_id == model_id:
                model_id += f"|{shipped.sha256}"
        except ImportError:
            pass
        name = hashlib.sha256(f"auto-lungs|{model_id}|{key}".encode()).hexdigest()[:40]
        return self.cache_dir / f"lungs-{name}.npz"

    def _cache_key(self, image: np.ndarray, mask: np.ndarray | None, source: str) -> str:
        digest = hashlib.sha256(f"{FEATURE_VERSION}|{self.encoder_id}|{source}".encode())
        digest.update(self.image_hash(image).encode())
        if mask is not None:
            digest.update(np.packbits(mask).tobytes())
        if source == "auto":
            digest.update(str(getattr(self._segmenter, "model_id", "auto")).encode())
        return digest.hexdigest()[:40]

    def image_parts(self, image: np.ndarray, mask: np.ndarray | None = None) -> ImageParts:
        """What the anatomy explainer re-uses: model-frame pixels and lungs, embedding, full-size lungs."""
        from inference.models.preprocess import preprocess_slice

        image = _as_2d(image)
        lungs, source = self.lung_mask(image, mask)
        tensor, info = preprocess_slice(image, None)
        frame = tensor[0, 0, : info.new_size[0], : info.new_size[1]].numpy()
        frame_lungs = to_model_frame(lungs.astype(np.float32), info) > 0.5 if lungs is not None else None
        return ImageParts(frame, self.embedding(image), frame_lungs, lungs, source)

    def image_features(self, image: np.ndarray, mask: np.ndarray | None = None) -> ImageFeatures:
        """Features of one X-ray (H, W); ``mask`` is the supplied lung mask or None (automatic)."""
        image = _as_2d(image)
        lungs, source = self.lung_mask(image, mask)
        key = self._cache_key(image, lungs, source)
        path = self.cache_dir / f"{key}.npz" if self.cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    return ImageFeatures.from_arrays(dict(data))
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # corrupt or foreign cache entry: recompute
        parts = self.image_parts(image, mask)
        features = compute_image_features(parts.frame, parts.embedding, parts.frame_lungs, parts.source)
        if path is not None:
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **features.as_arrays())  # type: ignore[arg-type]
            tmp.replace(path)
        return features

    # ---- per patient -------------------------------------------------------------------------
    def build(
        self, patient_id: str, ehr: dict[str, float | str | None], images: Sequence[ImageInput],
        progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
    ) -> PatientRecord:
        """Time-ordered (unknown offsets last) record; the EHR dict is taken as given (missing = None)."""
        ordered = sorted(images, key=lambda im: (im.offset is None, im.offset or 0.0))
        record = PatientRecord(patient_id, dict(ehr))
        for i, im in enumerate(ordered):
            if cancel is not None:
                cancel.raise_if_cancelled()
            record.images.append(self.image_features(im.image, im.mask))
            record.filenames.append(im.filename)
            record.offsets.append(im.offset)
            progress((i + 1) / len(ordered), f"image features {i + 1}/{len(ordered)}")
        return record


def read_mask_file(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """A lung mask PNG (any non-zero = lung) for an image of ``shape``; None when absent or another size."""
    if not path.is_file():
        return None
    from inference.io.loader import open_image

    mask = open_image(path).array[0] > 0
    return mask if mask.shape == shape else None
