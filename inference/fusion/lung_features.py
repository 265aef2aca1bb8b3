"""Per-image chest X-ray features that follow the anatomy: lung zones, opacity inside the lungs, encoder
embedding pooled inside vs outside the lungs.

Why: the pooled whole-image LiteMedSAM embedding lost to the EHR (issue 13). Radiologists score COVID
pneumonia per lung zone (geographic extent, opacity: Cohen et al.), so the features here are computed
per zone — right/left lung (image left = patient right) × upper/middle/lower third — from the pixels of
the 256-px model frame (the same resize and percentile normalisation as the encoder input) and from the
64×64 embedding grid. Everything is a pure function of (image, lung mask, embedding); no labels.

An image without a lung mask has no lung features: they are NaN (missing, never guessed); the embedding
is then pooled over the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from inference.models.preprocess import MODEL_SIDE, PreprocessInfo

EMBED_GRID = 64
EMBED_DIM = 256
ZONES = ("right_upper", "right_middle", "right_lower", "left_upper", "left_middle", "left_lower")
SCALAR_NAMES: tuple[str, ...] = (
    "lung_area", "lung_balance", "lung_mean", "lung_std", "lung_p25", "lung_p75", "soft_tissue",
    "lung_to_soft", "opaque_fraction", "asymmetry", "extent_zones",
    *(f"{z}_to_soft" for z in ZONES), *(f"{z}_opaque" for z in ZONES),
)
OPAQUE_RATIO = 0.85  # a lung pixel at ≥ 85 % of the surrounding soft-tissue brightness counts as opaque
ZONE_OPAQUE = 0.25  # a zone with ≥ 25 % opaque pixels counts towards the extent (0–6)


@dataclass
class ImageFeatures:
    """Everything the predictors read from one image (cached as one ``.npz``)."""

    scalars: np.ndarray  # (len(SCALAR_NAMES),) float32, NaN when there is no lung mask
    emb_inside: np.ndarray  # (256,) mean embedding inside the lungs (whole image without a mask)
    emb_outside: np.ndarray  # (256,) mean embedding outside the lungs within their bounding box
    emb_zones: np.ndarray  # (6, 256) mean embedding per lung zone (NaN rows when a zone is empty)
    pooled: np.ndarray  # (513,) mean + max inside + area: the MedFusion-Mamba image token input
    mask_source: str = "none"  # "supplied" | "auto" | "none"

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"scalars": self.scalars, "emb_inside": self.emb_inside, "emb_outside": self.emb_outside,
                "emb_zones": self.emb_zones, "pooled": self.pooled, "mask_source": np.array(self.mask_source)}

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray]) -> ImageFeatures:
        """Rebuild from a cache file; shapes are checked because every file is untrusted."""
        out = cls(
            np.asarray(data["scalars"], np.float32), np.asarray(data["emb_inside"], np.float32),
            np.asarray(data["emb_outside"], np.float32), np.asarray(data["emb_zones"], np.float32),
            np.asarray(data["pooled"], np.float32), str(data["mask_source"]),
        )
        expected = {"scalars": (len(SCALAR_NAMES),), "emb_inside": (EMBED_DIM,), "emb_outside": (EMBED_DIM,),
                    "emb_zones": (len(ZONES), EMBED_DIM), "pooled": (2 * EMBED_DIM + 1,)}
        for name, shape in expected.items():
            if getattr(out, name).shape != shape:
                raise ValueError(f"cached {name} has shape {getattr(out, name).shape}, expected {shape}")
        return out

    def scalar(self, name: str) -> float:
        return float(self.scalars[SCALAR_NAMES.index(name)])


def to_model_frame(array: np.ndarray, info: PreprocessInfo, mode: str = "area") -> np.ndarray:
    """(H, W) array → the unpadded (h, w) part of the 256 model frame (longest-side resize)."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if tuple(t.shape[-2:]) != info.new_size:
        t = F.interpolate(t, size=info.new_size, mode=mode)
    return t[0, 0].numpy()


def to_grid(frame_weights: np.ndarray) -> np.ndarray:
    """(h, w) weights in the model frame → (64, 64) area weights on the embedding grid (padding = 0)."""
    h, w = frame_weights.shape
    t = torch.from_numpy(np.ascontiguousarray(frame_weights, dtype=np.float32))[None, None]
    t = F.pad(t, (0, MODEL_SIDE - w, 0, MODEL_SIDE - h))
    return F.interpolate(t, size=(EMBED_GRID, EMBED_GRID), mode="area")[0, 0].numpy()


def lung_zones(lungs: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean lung mask (h, w) → six boolean zone masks.

    The midline is the mask's column centre; each side is cut into thirds of its own row extent (lungs
    of different height, e.g. a raised hemidiaphragm, keep their own thirds).
    """
    zones: dict[str, np.ndarray] = {}
    cols = np.nonzero(lungs.any(axis=0))[0]
    mid = int(round(float(np.nonzero(lungs)[1].mean()))) if cols.size else lungs.shape[1] // 2
    for side, cut in (("right", slice(0, mid)), ("left", slice(mid, lungs.shape[1]))):
        part = np.zeros_like(lungs)
        part[:, cut] = lungs[:, cut]
        rows = np.nonzero(part.any(axis=1))[0]
        bounds = np.linspace(rows[0], rows[-1] + 1, 4) if rows.size else np.zeros(4)
        for k, level in enumerate(("upper", "middle", "lower")):
            band = np.zeros_like(lungs)
            band[int(bounds[k]):int(bounds[k + 1])] = True
            zones[f"{side}_{level}"] = part & band
    return zones


def soft_tissue_level(frame: np.ndarray, lungs: np.ndarray) -> float:
    """The per-image brightness unit of the opacity features: median pixel outside the lungs within their
    bounding box (mediastinum, diaphragm, chest wall), so a lung's opacity reads the same whatever the
    exposure and windowing of the X-ray."""
    rows, cols = np.nonzero(lungs)
    box = np.zeros_like(lungs)
    box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
    around = frame[box & ~lungs]
    soft = float(np.median(around)) if around.size > 20 else float(np.percentile(frame, 75))
    return max(soft, 1e-3)


def opacity_scalars(frame: np.ndarray, lungs: np.ndarray | None) -> np.ndarray:
    """Intensity statistics inside the lungs, relative to the surrounding soft tissue (NaN without lungs)."""
    values = dict.fromkeys(SCALAR_NAMES, np.nan)
    if lungs is None or lungs.sum() < 50:
        return np.array([values[n] for n in SCALAR_NAMES], np.float32)
    inside = frame[lungs]
    soft = soft_tissue_level(frame, lungs)
    zones = lung_zones(lungs)
    right = zones["right_upper"] | zones["right_middle"] | zones["right_lower"]
    left = lungs & ~right
    values.update(
        lung_area=float(lungs.mean()),
        lung_balance=float(min(right.sum(), left.sum()) / max(right.sum(), left.sum(), 1)),
        lung_mean=float(inside.mean()), lung_std=float(inside.std()),
        lung_p25=float(np.percentile(inside, 25)), lung_p75=float(np.percentile(inside, 75)),
        soft_tissue=soft, lung_to_soft=float(inside.mean() / soft),
        opaque_fraction=float((inside >= OPAQUE_RATIO * soft).mean()),
    )
    side_means = [float(frame[m].mean()) if m.any() else np.nan for m in (right, left)]
    values["asymmetry"] = float(abs(side_means[0] - side_means[1]) / soft) if np.isfinite(side_means).all() else np.nan
    extent = 0.0
    for name, zone in zones.items():
        if zone.sum() < 10:
            continue
        pixels = frame[zone]
        opaque = float((pixels >= OPAQUE_RATIO * soft).mean())
        values[f"{name}_to_soft"] = float(pixels.mean() / soft)
        values[f"{name}_opaque"] = opaque
        extent += float(opaque >= ZONE_OPAQUE)
    values["extent_zones"] = extent
    return np.array([values[n] for n in SCALAR_NAMES], np.float32)


def _weighted_mean(emb: torch.Tensor, weights: np.ndarray) -> np.ndarray:
    w = torch.from_numpy(weights).float()
    total = float(w.sum())
    if total < 1e-6:
        return np.full(emb.shape[0], np.nan, np.float32)
    return ((emb * w).sum(dim=(1, 2)) / total).numpy().astype(np.float32)


def compute_image_features(
    frame: np.ndarray, embedding: np.ndarray | torch.Tensor, lungs: np.ndarray | None, mask_source: str,
) -> ImageFeatures:
    """``frame``: (h, w) model-frame pixels in [0, 1]; ``embedding``: (256, 64, 64); ``lungs``: (h, w) bool."""
    emb = torch.as_tensor(np.asarray(embedding, dtype=np.float32))
    if emb.ndim == 4:
        emb = emb[0]
    scalars = opacity_scalars(frame, lungs)
    roi = lungs if lungs is not None and lungs.sum() >= 50 else np.ones(frame.shape, bool)
    w_in = to_grid(roi.astype(np.float32))
    rows, cols = np.nonzero(roi)
    box = np.zeros(frame.shape, np.float32)
    box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 1.0
    w_out = to_grid(box * (~roi))
    zones = lung_zones(roi) if lungs is not None else {z: np.zeros(frame.shape, bool) for z in ZONES}
    emb_zones = np.stack([_weighted_mean(emb, to_grid(zones[z].astype(np.float32))) for z in ZONES])
    return ImageFeatures(
        scalars, _weighted_mean(emb, w_in), _weighted_mean(emb, w_out), emb_zones,
        pool_inside(emb, w_in), mask_source,
    )


def pool_inside(emb: torch.Tensor, weights: np.ndarray) -> np.ndarray:
    """(256, 64, 64) embedding + grid weights → [mean, max, area] (513,), as the MedFusion-Mamba token."""
    w = torch.from_numpy(weights).float()
    inside = w > 0.5
    if not bool(inside.any()):
        inside = w > 0
    if not bool(inside.any()):
        inside = torch.ones_like(w, dtype=torch.bool)
    flat = emb[:, inside]
    area = torch.tensor([float(w.sum()) / float(EMBED_GRID * EMBED_GRID)])
    return torch.cat([flat.mean(dim=1), flat.max(dim=1).values, area]).numpy().astype(np.float32)
