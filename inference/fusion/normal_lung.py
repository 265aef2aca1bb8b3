"""The normal-lung reference of the explanation maps: what a clear lung looks like, per lung zone, in the
units the image features use.

Why: the clinician's question is "which parts of these lungs look worse than a normal lung, and by how
much does that raise the risk?". The explainer (``inference.explain.anatomy.reference_occlusion``) keeps
the lung mask and replaces one lung cell at a time by a normal lung; this module says what that is and
makes the replaced X-ray's features:

- **Pixels** (what the shipped maps replace): per zone (``lung_features.ZONES``), quantiles of lung
  pixel ÷ the image's soft-tissue level (``soft_tissue_level``: the per-image normalisation the opacity
  features use), averaged over the reference images. A replaced cell keeps its own texture *order*
  (rank-preserving quantile mapping) but takes the normal lung's brightness distribution for that zone:
  no flat patch, no new edge. The X-ray's own encoder vectors are kept: re-encoding the changed X-ray
  costs one encoder pass per cell (~2 s each on these CPUs), and on dev X-rays re-encoded for the check
  the whole-lung effect of the pixel change alone matched the re-encoded one (``docs/results.md``).
- **Encoder vectors** (``replace_embedding=True``, compared in ``docs/results.md``, not shipped): the
  grid vectors under the cell are pulled towards the reference images' mean vector at the same place in
  the lung (each lung side's bounding box cut into ``POSITION_BINS``). It doubled the whole-lung effect
  of the re-encoded X-ray and its maps followed opacity far less (the vectors vary with the place in the
  lung — edges, heart border, diaphragm — more than with the disease).

Reference images (``select_normal_images``): the shared cohort's X-rays with ``finding`` "No Finding" or
a mean expert geographic-extent score ≤ 1 of 8 (``severity_scores.csv``), lungs from the supplied mask
or the automatic segmenter. Built once by ``scripts/build_normal_lung_reference.py`` into
``resources/models/fusion/normal_lung.json`` (plain JSON, its provenance inside).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import ModelLoadError
from inference.fusion.lung_features import (
    EMBED_DIM,
    EMBED_GRID,
    ZONES,
    ImageFeatures,
    compute_image_features,
    lung_zones,
    soft_tissue_level,
    to_grid,
)
from inference.fusion.shipped import is_shipped, verify_files
from inference.models.preprocess import MODEL_SIDE

REFERENCE_FILE = "normal_lung.json"
MAX_REFERENCE_BYTES = 4 << 20  # the shipped file is ~80 kB: a larger one is not a reference
FORMAT = "medfusion-normal-lung-v1"
QUANTILES = np.linspace(0.0, 1.0, 21)
NORMAL_EXTENT = 1.0  # mean geographic-extent score (0–8) at or below which an X-ray counts as clear
MIN_ZONE_PIXELS = 50
POSITION_BINS = (6, 3)  # rows × columns of each lung side's bounding box (2 rows per zone third)
N_BINS = 2 * POSITION_BINS[0] * POSITION_BINS[1]


@dataclass
class NormalLungReference:
    """Per zone: lung pixel ÷ soft-tissue quantiles (6, 21); per lung position bin (``position_bins``):
    the mean encoder embedding (36, 256)."""

    pixel_quantiles: np.ndarray
    position_embeddings: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "zones": list(ZONES), "quantiles": QUANTILES.round(4).tolist(),
                "pixel_quantiles": self.pixel_quantiles.round(5).tolist(),
                "position_bins": list(POSITION_BINS), "position_embeddings": self.position_embeddings.round(4).tolist(),
                "provenance": self.provenance}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalLungReference:
        """Checked field by field: the file is untrusted (shapes, finite, increasing quantiles, sane range)."""
        if (data.get("format") != FORMAT or list(data.get("zones", [])) != list(ZONES)
                or list(data.get("position_bins", [])) != list(POSITION_BINS)):
            raise ValueError("not a normal-lung reference of this version")
        pix = np.asarray(data["pixel_quantiles"], np.float64)
        emb = np.asarray(data["position_embeddings"], np.float64)
        if pix.shape != (len(ZONES), len(QUANTILES)) or emb.shape != (N_BINS, EMBED_DIM):
            raise ValueError("normal-lung reference arrays have the wrong shape")
        if not (np.isfinite(pix).all() and np.isfinite(emb).all()):
            raise ValueError("normal-lung reference holds non-finite values")
        if np.any(np.diff(pix, axis=1) < 0) or pix.min() < 0 or pix.max() > 10:
            raise ValueError("normal-lung quantiles are not increasing ratios to soft tissue")
        provenance = data.get("provenance", {})
        return cls(pix, emb, dict(provenance) if isinstance(provenance, dict) else {})

    def save(self, path: Path) -> None:
        """Plain JSON, one table row a line (reviewable, ~100 kB)."""
        parts = []
        for key, value in self.to_dict().items():
            if isinstance(value, list) and value and isinstance(value[0], list):
                body = "[\n" + ",\n".join(f"  {json.dumps(row)}" for row in value) + "\n ]"
            else:
                body = json.dumps(value)
            parts.append(f" {json.dumps(key)}: {body}")
        Path(path).write_text("{\n" + ",\n".join(parts) + "\n}\n")

    @classmethod
    def load(cls, path: Path) -> NormalLungReference:
        """Read and check a reference file; the shipped one must also match the sha256 built into the
        program (``inference/fusion/shipped.py``), like the model beside it."""
        path = Path(path)
        if is_shipped(path.parent):
            verify_files(path.parent, (path.name,), "Normal-lung reference")
        try:
            if path.stat().st_size > MAX_REFERENCE_BYTES:
                raise ModelLoadError(f"The normal-lung reference {path} is too large to be one "
                                     f"({path.stat().st_size} bytes; at most {MAX_REFERENCE_BYTES}).")
            return cls.from_dict(json.loads(path.read_text()))
        except OSError as err:
            raise ModelLoadError(f"Cannot read the normal-lung reference {path}: {err.strerror}.") from err
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ModelLoadError(f"The normal-lung reference {path} does not match this version's format.") from err


def find_reference(model_dir: Path, fallback_dir: Path) -> Path | None:
    """The reference beside the model, else the shipped one (it depends on the encoder and the feature
    definitions, not on the outcome heads), else None."""
    for folder in (Path(model_dir), Path(fallback_dir)):
        if (folder / REFERENCE_FILE).is_file():
            return folder / REFERENCE_FILE
    return None


class NormalisableImage:
    """One X-ray in the model frame, ready for "replace these lung pixels by a normal lung"."""

    def __init__(self, reference: NormalLungReference, frame: np.ndarray, embedding: np.ndarray,
                 frame_lungs: np.ndarray, source: str, replace_embedding: bool = False) -> None:
        """``replace_embedding``: also pull the encoder vectors towards the reference's (not shipped; the
        default keeps the X-ray's own vectors and makes only the pixels normal)."""
        self.replace_embedding = replace_embedding
        self.frame = np.asarray(frame, np.float32)
        emb = np.asarray(embedding, np.float32)
        self.embedding = emb[0] if emb.ndim == 4 else emb
        self.lungs = np.asarray(frame_lungs, bool)
        self.source = source
        self.zone_of = np.full(self.lungs.shape, -1, np.int8)
        zones = lung_zones(self.lungs)
        for z, name in enumerate(ZONES):
            self.zone_of[zones[name]] = z
        soft = soft_tissue_level(self.frame, self.lungs) if self.lungs.any() else 1.0
        self.normal_pixels = reference.pixel_quantiles * soft  # (6, 21) in this image's pixel units
        bins = position_bins(self.lungs).ravel()
        self.normal_embedding = np.where(bins[None, :] >= 0, reference.position_embeddings[np.maximum(bins, 0)].T,
                                         0.0).astype(np.float32)  # (256, 64 * 64): the normal vector per grid cell
        self._as_is: ImageFeatures | None = None

    def features(self, replace: np.ndarray) -> ImageFeatures:
        """Features with the lung pixels in ``replace`` (h, w) made normal; the mask never changes."""
        replace = np.asarray(replace, bool) & self.lungs
        if not replace.any():
            if self._as_is is None:
                self._as_is = compute_image_features(self.frame, self.embedding, self.lungs, self.source)
            return self._as_is
        embedding = self._normal_embedding(replace) if self.replace_embedding else self.embedding
        return compute_image_features(self.normal_frame(replace), embedding, self.lungs, self.source)

    def normal_frame(self, replace: np.ndarray) -> np.ndarray:
        """The model-frame pixels with the lung pixels in ``replace`` made normal: per lung zone, each pixel
        takes the normal lung's quantile at its rank among the replaced pixels (the texture order stays)."""
        replace = np.asarray(replace, bool) & self.lungs
        frame = self.frame.copy()
        for z in np.unique(self.zone_of[replace]):
            if z < 0:
                continue
            sel = replace & (self.zone_of == z)
            values = self.frame[sel]
            ranks = (np.argsort(np.argsort(values, kind="stable"), kind="stable") + 0.5) / values.size
            frame[sel] = np.interp(ranks, QUANTILES, self.normal_pixels[z])
        return np.clip(frame, 0.0, 1.0)

    def _normal_embedding(self, replace: np.ndarray) -> np.ndarray:
        """Grid vectors pulled towards the normal vector of their lung position by the replaced share of
        each grid cell."""
        share = to_grid(replace.astype(np.float32)).ravel()
        touched = np.nonzero(share > 0)[0]
        emb = self.embedding.reshape(EMBED_DIM, -1).copy()
        s = share[touched]
        emb[:, touched] = emb[:, touched] * (1.0 - s) + self.normal_embedding[:, touched] * s
        return emb.reshape(self.embedding.shape)


def position_bins(lungs: np.ndarray) -> np.ndarray:
    """(64, 64) int: per embedding-grid cell, its lung position bin (side × ``POSITION_BINS`` of that side's
    bounding box, image-left side first), −1 where the cell holds no lung. Sides split at the mask's
    column centre, as ``lung_zones`` does."""
    lungs = np.asarray(lungs, bool)
    out = np.full((EMBED_GRID, EMBED_GRID), -1, np.int64)
    if not lungs.any():
        return out
    rows_n, cols_n = POSITION_BINS
    step = MODEL_SIDE / EMBED_GRID  # model-frame pixels per grid cell
    centre = (np.arange(EMBED_GRID) + 0.5) * step
    mid = int(round(float(np.nonzero(lungs)[1].mean())))
    weights = []
    for side, cut in enumerate((slice(0, mid), slice(mid, lungs.shape[1]))):
        part = np.zeros_like(lungs)
        part[:, cut] = lungs[:, cut]
        weights.append(to_grid(part.astype(np.float32)))
        if not part.any():
            continue
        rr, cc = np.nonzero(part)
        r_bin = np.clip(((centre - rr.min()) / (rr.max() + 1 - rr.min()) * rows_n).astype(int), 0, rows_n - 1)
        c_bin = np.clip(((centre - cc.min()) / (cc.max() + 1 - cc.min()) * cols_n).astype(int), 0, cols_n - 1)
        bins = side * rows_n * cols_n + r_bin[:, None] * cols_n + c_bin[None, :]
        mine = (weights[side] > 0) & ((side == 0) | (weights[side] >= weights[0]))
        out[mine] = bins[mine]
    return out


def select_normal_images(rows: Iterable[dict[str, str]], severity: dict[str, tuple[float, float]]) -> list[str]:
    """Filenames of clear X-rays: finding 'No Finding', or a mean geographic-extent score ≤ ``NORMAL_EXTENT``."""
    out = []
    for row in rows:
        name = (row.get("filename") or "").strip()
        extent = severity.get(name, (math.nan, math.nan))[0]
        if name and ((row.get("finding") or "").strip() == "No Finding" or extent <= NORMAL_EXTENT):
            out.append(name)
    return sorted(set(out))


def build_reference(images: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], provenance: dict[str, Any],
                    min_images: int = 5) -> NormalLungReference:
    """``images``: (model-frame pixels, embedding (256, 64, 64), frame lungs) of the reference X-rays.
    Per zone and per position bin, the per-image quantiles and mean vectors are averaged (each image once)."""
    quantiles: list[list[np.ndarray]] = [[] for _ in ZONES]
    embeddings: list[list[np.ndarray]] = [[] for _ in range(N_BINS)]
    used = 0
    for frame, embedding, lungs in images:
        lungs = np.asarray(lungs, bool)
        if lungs.sum() < MIN_ZONE_PIXELS * len(ZONES):
            continue
        used += 1
        soft = soft_tissue_level(frame, lungs)
        zone_masks = lung_zones(lungs)
        for z, name in enumerate(ZONES):
            if zone_masks[name].sum() >= MIN_ZONE_PIXELS:
                quantiles[z].append(np.quantile(frame[zone_masks[name]] / soft, QUANTILES))
        emb = np.asarray(embedding, np.float64).reshape(EMBED_DIM, -1)
        weight = to_grid(lungs.astype(np.float32)).ravel()
        bins = position_bins(lungs).ravel()
        for k in np.unique(bins[bins >= 0]):
            w = weight * (bins == k)
            embeddings[k].append(emb @ w / w.sum())
    if min(len(q) for q in quantiles) < min_images or min(len(e) for e in embeddings) < min_images:
        raise ValueError(f"too few reference X-rays with every lung zone and position (need {min_images})")
    return NormalLungReference(np.stack([np.mean(q, 0) for q in quantiles]),
                               np.stack([np.mean(e, 0) for e in embeddings]),
                               {**provenance, "images_used": used,
                                "images_per_zone": {n: len(q) for n, q in zip(ZONES, quantiles, strict=True)},
                                "fewest_images_per_position_bin": min(len(e) for e in embeddings)})
