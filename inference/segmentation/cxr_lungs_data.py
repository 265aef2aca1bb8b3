"""Training data for the automatic CXR lung segmenter: patient split, side labels, augmentation, embedding cache.

Why a cache: the LiteMedSAM image encoder stays frozen, so each (image, augmentation) is encoded once
(~1.5 s on 2 CPU threads) and stored as a (256, 64, 64) fp16 embedding plus its target masks in the
256-pixel model frame; training then runs only the small decoder and fits on 2 CPU cores.

Sides: the shared masks are binary. The label map uses 1 = the patient's RIGHT lung, which is on the
IMAGE LEFT of a frontal (PA/AP) film in the standard display, and 2 = the patient's left lung.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from inference.models.preprocess import MODEL_SIDE, resized_size

RIGHT_LUNG, LEFT_LUNG = 1, 2  # patient's right = image left on a frontal film
SPLITS = ("train", "val", "test")
TEST_PERCENT, VAL_PERCENT = 20, 15  # of patients, by a salted hash of the patient id
SPLIT_SALT = "cxr-lungs-v1"
CACHE_TAG = "v1"  # bump when preprocessing, augmentation or target encoding changes
AUG_WORK_SIDE = 512  # augment at this longest side: the model sees 256 px anyway


def patient_split(patient_id: str) -> str:
    """``train`` / ``val`` / ``test`` for a patient: stable, never mixes one patient's images."""
    bucket = int(hashlib.sha256(f"{SPLIT_SALT}:{patient_id}".encode()).hexdigest(), 16) % 100
    if bucket < TEST_PERCENT:
        return "test"
    return "val" if bucket < TEST_PERCENT + VAL_PERCENT else "train"


@dataclass(frozen=True)
class LungCase:
    """One shared CXR with a lung mask."""

    stem: str
    image: Path
    mask: Path
    patient_id: str
    view: str
    split: str


def lung_cases(cxr_dir: Path) -> list[LungCase]:
    """Every image of ``cxr_dir/metadata.csv`` that has ``lung_masks/<stem>.png``, with its split."""
    cases = []
    with (cxr_dir / "metadata.csv").open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.DictReader(handle):
            name = row.get("filename", "")
            stem = Path(name).stem
            mask = cxr_dir / "lung_masks" / f"{stem}.png"
            if not name or not mask.is_file():
                continue
            pid = row.get("patientid", "")
            cases.append(LungCase(stem, cxr_dir / "images" / name, mask, pid, row.get("view", ""),
                                  patient_split(pid)))
    return cases


def read_mask(path: Path) -> np.ndarray:
    """Shared lung mask PNG (0/255) → bool (H, W)."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("L")) > 127


def split_sides(mask: np.ndarray) -> np.ndarray:
    """Binary lungs → uint8 labels (1 = image-left component = patient's right lung, 2 = the other).

    Two large components are the two lungs; smaller pieces join the side whose centroid is nearer.
    One large component (lungs touching in the mask) is cut at the narrowest column of its middle third.
    """
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    out = np.zeros(mask.shape, dtype=np.uint8)
    if n == 0:
        return out
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    centroids = [c[1] for c in ndimage.center_of_mass(mask, labels, range(1, n + 1))]
    if n >= 2 and sizes[order[1]] >= 0.15 * sizes[order[0]]:
        a, b = sorted(order[:2], key=lambda i: centroids[i])
        ca, cb = centroids[a], centroids[b]
        for i in range(n):
            side = RIGHT_LUNG if abs(centroids[i] - ca) <= abs(centroids[i] - cb) else LEFT_LUNG
            out[labels == i + 1] = side
        return out
    cols = np.flatnonzero(mask.any(axis=0))
    x0, x1 = int(cols[0]), int(cols[-1])
    lo, hi = x0 + (x1 - x0) // 3, x0 + 2 * (x1 - x0) // 3
    counts = mask[:, lo : hi + 1].sum(axis=0)
    cut = lo + int(np.argmin(counts)) if hi > lo else (x0 + x1) // 2
    out[:, :cut][mask[:, :cut]] = RIGHT_LUNG
    out[:, cut:][mask[:, cut:]] = LEFT_LUNG
    return out


def targets_256(sides: np.ndarray) -> np.ndarray:
    """(H, W) side labels → uint8 (2, 256, 256): per side the pixel fraction ×255 in the padded model frame.

    Area-averaged (soft) targets, so the decoder learns sub-pixel boundaries at 256 px.
    """
    import torch
    import torch.nn.functional as F

    h, w = sides.shape
    nh, nw = resized_size(h, w)
    stack = np.stack([sides == RIGHT_LUNG, sides == LEFT_LUNG]).astype(np.float32)
    t = F.interpolate(torch.from_numpy(stack)[None], size=(nh, nw), mode="area")[0]
    t = F.pad(t, (0, MODEL_SIDE - nw, 0, MODEL_SIDE - nh))
    return np.round(t.numpy() * 255).astype(np.uint8)


def _shrink(image: np.ndarray, sides: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape
    scale = side / max(h, w)
    if scale >= 1:
        return image, sides
    img = ndimage.zoom(image, scale, order=1, prefilter=False)
    lab = ndimage.zoom(sides, (img.shape[0] / h, img.shape[1] / w), order=0)
    return img.astype(np.float32), lab


def augment(image: np.ndarray, sides: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random, anatomy-preserving variant (no left/right flip: the heart's side is a cue).

    Affine (rotation ±8°, scale 0.85–1.15, shift ±6 %), an occasional crop that changes the field of view,
    then intensity: gamma 0.7–1.5, contrast, blur or noise. The label map follows the geometry exactly.
    """
    img, lab = _shrink(image.astype(np.float32), sides, AUG_WORK_SIDE)
    h, w = img.shape
    if rng.random() < 0.4:  # field of view: crop up to 12 % per edge (films framed differently)
        t, b = (int(rng.uniform(0, 0.12) * h) for _ in range(2))
        left, r = (int(rng.uniform(0, 0.12) * w) for _ in range(2))
        img, lab = img[t : h - b, left : w - r], lab[t : h - b, left : w - r]
        h, w = img.shape
    angle = np.deg2rad(rng.uniform(-8, 8))
    scale = rng.uniform(0.85, 1.15)
    shift = rng.uniform(-0.06, 0.06, size=2) * np.array([h, w])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
    centre = np.array([h, w]) / 2.0
    offset = centre - rot @ (centre + shift)
    fill = float(np.percentile(img, 1))
    img = ndimage.affine_transform(img, rot, offset, order=1, mode="constant", cval=fill)
    lab = ndimage.affine_transform(lab, rot, offset, order=0, mode="constant", cval=0)
    lo, hi = float(img.min()), float(img.max())
    x = (img - lo) / max(hi - lo, 1e-6)
    x = x ** rng.uniform(0.7, 1.5)
    x = np.clip((x - 0.5) * rng.uniform(0.8, 1.25) + 0.5 + rng.uniform(-0.08, 0.08), 0, 1)
    if rng.random() < 0.3:
        x = ndimage.gaussian_filter(x, rng.uniform(0.5, 1.5))
    elif rng.random() < 0.3:
        x = np.clip(x + rng.normal(0, rng.uniform(0.01, 0.04), x.shape), 0, 1)
    return (x * 255).astype(np.float32), lab.astype(np.uint8)


def cache_path(cache_dir: Path, stem: str, version: int) -> Path:
    return cache_dir / CACHE_TAG / f"{stem}__a{version}.npz"


def load_cached(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(features fp16 (256, 64, 64), targets uint8 (2, 256, 256), new_size (h, w)) from one cache file."""
    with np.load(path) as z:
        size = tuple(int(v) for v in z["new_size"])
        return z["features"], z["targets"], (size[0], size[1])


def cache_jobs(cases: list[LungCase], augmentations: int) -> Iterator[tuple[LungCase, int]]:
    """Originals of every case first (evaluation can start), then augmented versions of train/val cases."""
    for case in cases:
        yield case, 0
    for version in range(1, augmentations + 1):
        for case in cases:
            if case.split != "test":
                yield case, version


def variant(case: LungCase, version: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32, H×W) and side labels of ``case``; version 0 is the original, others augmented."""
    from inference.io.loader import open_image

    image = open_image(case.image).array[0]
    mask = read_mask(case.mask)
    if mask.shape != image.shape:
        raise ValueError(f"{case.stem}: mask {mask.shape} != image {image.shape}")
    sides = split_sides(mask)
    if version == 0:
        return image, sides
    seed = int(hashlib.sha256(f"{case.stem}:{version}".encode()).hexdigest()[:8], 16)
    return augment(image, sides, np.random.default_rng(seed))
