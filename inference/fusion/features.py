"""Per-image features for the fusion predictor: the frozen LiteMedSAM encoder pooled inside an ROI.

Why: the encoder has medical pre-training and is already loaded for segmentation, so the predictor
reuses it instead of shipping a second backbone. An image embedding (256×64×64) is pooled inside the
region of interest (lung mask or the user's lesion mask, mapped onto the embedding grid with the same
longest-side resize + bottom/right pad as the encoder input; the whole image when there is no mask) as
mean and max over the ROI, plus the ROI's area fraction → a 513-d vector.

Encoding costs ~1.3 s per image on 2 CPU cores, so features are cached on disk as ``.npz`` keyed by the
image content hash, the mask hash and the encoder id (``python -m inference.fusion.features`` fills the
cache for a whole cohort folder).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inference.models.preprocess import MODEL_SIDE, preprocess_slice
from inference.progress import CancelToken, ProgressCallback, no_progress

FEATURE_DIM = 513
EMBED_GRID = 64


def embedding_roi_weights(mask: np.ndarray | None, original_size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
    """ROI mask (H, W) → (64, 64) weights in [0, 1] on the embedding grid (padding has weight 0)."""
    h0, w0 = original_size
    m = np.ones((h0, w0), np.float32) if mask is None else (np.asarray(mask) > 0).astype(np.float32)
    if m.shape != (h0, w0):
        raise ValueError(f"mask shape {m.shape} does not match image shape {(h0, w0)}")
    t = torch.from_numpy(m)[None, None]
    t = F.interpolate(t, size=new_size, mode="area")
    t = F.pad(t, (0, MODEL_SIDE - new_size[1], 0, MODEL_SIDE - new_size[0]))
    t = F.interpolate(t, size=(EMBED_GRID, EMBED_GRID), mode="area")
    return t[0, 0].numpy()


def pool_embedding(embedding: torch.Tensor, weights: np.ndarray) -> np.ndarray:
    """(1, C, 64, 64) embedding + (64, 64) ROI weights → [mean_C, max_C, area_fraction]."""
    emb = embedding[0].float()
    w = torch.from_numpy(weights).float()
    inside = w > 0.5
    if not bool(inside.any()):  # tiny ROI: fall back to any overlap, then to the whole image
        inside = w > 0
    if not bool(inside.any()):
        inside = torch.ones_like(w, dtype=torch.bool)
    flat = emb[:, inside]
    mean = flat.mean(dim=1)
    peak = flat.max(dim=1).values
    area = torch.tensor([float(w.sum()) / float(EMBED_GRID * EMBED_GRID)])
    return torch.cat([mean, peak, area]).numpy().astype(np.float32)


def image_key(image: np.ndarray, mask: np.ndarray | None, encoder_id: str,
              window: tuple[float, float] | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(encoder_id.encode())
    if window is not None:  # X-ray keys (no window) stay as they were: existing caches remain valid
        digest.update(f"window={window}".encode())
    digest.update(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    if mask is not None:
        digest.update(np.packbits(np.asarray(mask) > 0).tobytes())
    return digest.hexdigest()[:40]


class FeatureExtractor:
    """Configured once with a loaded LiteMedSAM model; ``__call__(image, mask[, window])`` → 513-d features.

    ``window`` (level, width) is for CT/PET slices; X-rays use the percentile normalisation (``None``).
    """

    def __init__(self, model: torch.nn.Module, cache_dir: Path | None = None) -> None:
        self.model = model
        self.encoder_id = f"litemedsam:{getattr(model, 'model_id', 'unknown')}:pool-v1"
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.encoder_calls = 0

    def __call__(
        self, image: np.ndarray, mask: np.ndarray | None = None, window: tuple[float, float] | None = None
    ) -> np.ndarray:
        from inference.models.litemedsam import encode

        image2d = np.asarray(image, dtype=np.float32)
        if image2d.ndim == 3 and image2d.shape[0] == 1:
            image2d = image2d[0]
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim == 3 and mask.shape[0] == 1:
                mask = mask[0]
        key = image_key(image2d, mask, self.encoder_id, window)
        path = self.cache_dir / f"{key}.npz" if self.cache_dir else None
        if path is not None and path.is_file():
            try:
                return np.load(path)["features"]
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # corrupt cache entry: recompute
        tensor, info = preprocess_slice(image2d, window)
        embedding = encode(self.model, tensor)  # type: ignore[arg-type]
        self.encoder_calls += 1
        features = pool_embedding(embedding, embedding_roi_weights(mask, info.original_size, info.new_size))
        if path is not None:
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, features=features)
            tmp.replace(path)
        return features


def load_image_and_mask(image_path: Path, mask_path: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    from PIL import Image

    from inference.io.loader import open_image

    image = open_image(image_path).array[0]
    mask = None
    if mask_path is not None and mask_path.is_file():
        mask = np.asarray(Image.open(mask_path).convert("L")) > 127
        if mask.shape != image.shape:
            mask = None  # a mask for another size is ignored rather than misaligned
    return image, mask


def fill_cache(
    images_dir: Path,
    masks_dir: Path | None,
    extractor: FeatureExtractor,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> int:
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for i, path in enumerate(files):
        if cancel is not None:
            cancel.raise_if_cancelled()
        mask_path = masks_dir / f"{path.stem}.png" if masks_dir else None
        image, mask = load_image_and_mask(path, mask_path)
        extractor(image, mask)
        progress((i + 1) / len(files), path.name)
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fill the fusion feature cache for a cohort folder.")
    parser.add_argument("--data", type=Path, required=True, help="folder with images/ and lung_masks/")
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args(argv)
    from inference.models.litemedsam import load_litemedsam

    torch.set_num_threads(2)
    extractor = FeatureExtractor(load_litemedsam("cpu"), args.cache)
    n = fill_cache(
        args.data / "images", args.data / "lung_masks", extractor,
        progress=lambda f, m: print(f"{f:6.1%} {m}", flush=True),
    )
    print(f"done: {n} images, {extractor.encoder_calls} encoded", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
