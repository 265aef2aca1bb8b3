"""Synthetic lesions painted into real CT, with an exact reference mask, to test segmentation honestly.

Why: the shared data hold one lung nodule (``ct/lung1``); a rule tuned on it says nothing about the
held-out tumour. A lesion inserted into real anatomy (real noise, vessels, pleura, liver texture) with a
known shape gives as many reference cases as needed, of chosen size, contrast and position.

Model: an irregular (lobulated) ellipsoid, sampled on a grid finer than the voxels, so edge voxels get
the partial-volume mix ``(1 - f) * background + f * lesion`` that a scanner produces; the reference is
``f >= 0.5``. A part-solid lesion has a solid core inside a ground-glass rim. The lesion's own texture is
Gaussian noise smoothed like the scanner's, at the level measured in the background.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from inference.io.volume import Volume


@dataclass(frozen=True)
class LesionSpec:
    """One lesion: where (voxel index z, y, x), how big (mm), how bright (HU)."""

    name: str
    centre: tuple[int, int, int]  # (z, y, x) voxel index of the centre
    diameter_mm: float  # in-plane diameter
    hu: float  # intensity of the (solid) lesion
    z_ratio: float = 1.0  # extent along z relative to in-plane (elongation)
    rim_hu: float | None = None  # part-solid: the outer shell has this intensity (ground glass)
    core_fraction: float = 0.6  # part-solid: radius fraction of the solid core
    lobulation: float = 0.15  # amplitude of the smooth radial irregularity (0 = ellipsoid)
    seed: int = 0


SUPERSAMPLE_XY = 3  # sub-samples per voxel in-plane
SUPERSAMPLE_Z_MM = 0.5  # sub-sample spacing along z (thick slices get more sub-samples)


def noise_sd(region: np.ndarray) -> float:
    """Robust image-noise estimate: MAD of the difference of neighbouring voxels (structure cancels)."""
    d = np.diff(region.astype(np.float64), axis=-1).ravel()
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def insert_lesion(
    volume: Volume, spec: LesionSpec, host: np.ndarray | None = None
) -> tuple[Volume, np.ndarray]:
    """A copy of ``volume`` with the lesion painted in, and its reference mask (bool [z, y, x]).

    ``host``: where the lesion may grow (e.g. the lung mask: a juxtapleural nodule stops at the chest
    wall); ``None`` = anywhere."""
    rng = np.random.default_rng(spec.seed)
    sx, sy, sz = (float(s) for s in volume.spacing)
    r_xy = spec.diameter_mm / 2.0
    r_z = r_xy * spec.z_ratio
    cz, cy, cx = spec.centre
    reach = 1.0 + 2.0 * spec.lobulation + 0.1
    half = (int(np.ceil(r_z * reach / sz)) + 1, int(np.ceil(r_xy * reach / sy)) + 1, int(np.ceil(r_xy * reach / sx)) + 1)
    nz, ny, nx = volume.shape
    lo = (max(cz - half[0], 0), max(cy - half[1], 0), max(cx - half[2], 0))
    hi = (min(cz + half[0] + 1, nz), min(cy + half[1] + 1, ny), min(cx + half[2] + 1, nx))
    shape = tuple(h - lo_ for lo_, h in zip(lo, hi, strict=True))
    sub_z = max(1, int(round(sz / SUPERSAMPLE_Z_MM)))
    sub = (sub_z, SUPERSAMPLE_XY, SUPERSAMPLE_XY)
    # Sub-sample centres in mm relative to the lesion centre.
    axes = []
    for k, (start, n, s, c) in enumerate(zip(lo, shape, (sz, sy, sx), (cz, cy, cx), strict=True)):
        offsets = (np.arange(sub[k]) + 0.5) / sub[k] - 0.5
        axes.append(((np.arange(start, start + n)[:, None] + offsets[None, :]).ravel() - c) * s)
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    radius = np.sqrt((zz / r_z) ** 2 + (yy / r_xy) ** 2 + (xx / r_xy) ** 2)  # 1 on the ellipsoid
    if spec.lobulation > 0:  # smooth random bumps: low-frequency noise on the unit sphere of directions
        field = ndimage.gaussian_filter(rng.standard_normal((9, 9, 9)), 1.5, mode="wrap")
        field /= np.abs(field).max() + 1e-9
        unit = np.stack([zz / r_z, yy / r_xy, xx / r_xy]) / np.maximum(radius, 1e-6)
        idx = np.clip(((unit + 1.0) / 2.0 * 8.0).round().astype(int), 0, 8)
        radius = radius / (1.0 + spec.lobulation * field[idx[0], idx[1], idx[2]])
    inside = radius <= 1.0
    value = np.full(radius.shape, float(spec.hu), dtype=np.float32)
    if spec.rim_hu is not None:
        value[radius > spec.core_fraction] = float(spec.rim_hu)
    pooled = (shape[0], sub[0], shape[1], sub[1], shape[2], sub[2])
    fraction = inside.reshape(pooled).mean(axis=(1, 3, 5))
    lesion_hu = (value * inside).reshape(pooled).sum(axis=(1, 3, 5)) / np.maximum(
        inside.reshape(pooled).sum(axis=(1, 3, 5)), 1
    )
    region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    background = volume.array[region]
    if host is not None:  # abutting the chest wall: the lesion stops at other tissue
        fraction = fraction * host[region]
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), (0.0, 0.8, 0.8))
    texture *= noise_sd(background) / max(float(texture.std()), 1e-6)
    array = volume.array.copy()
    array[region] = (1.0 - fraction) * background + fraction * (lesion_hu + texture)
    truth = np.zeros(volume.shape, dtype=bool)
    truth[region] = fraction >= 0.5
    return replace(volume, array=array.astype(np.float32)), truth


def lung_mask(volume: Volume) -> np.ndarray:
    """Aerated lung with its vessels: air-like regions not connected to the outside air, holes filled."""
    low = ndimage.binary_opening(volume.array < -400, structure=np.ones((1, 3, 3), dtype=bool))
    labels, _ = ndimage.label(low)
    outside = np.unique(np.concatenate([labels[:, 0].ravel(), labels[:, -1].ravel(),
                                        labels[:, :, 0].ravel(), labels[:, :, -1].ravel()]))
    lungs = low & ~np.isin(labels, outside)
    return np.stack([ndimage.binary_fill_holes(s) for s in lungs])


def tissue_mask(volume: Volume, hu: tuple[float, float]) -> np.ndarray:
    """Voxels whose local (3×3 median) intensity lies in ``hu``: e.g. enhanced liver parenchyma."""
    smooth = ndimage.median_filter(volume.array, size=(1, 3, 3))
    return (smooth >= hu[0]) & (smooth <= hu[1])


def place_lesions(
    volume: Volume,
    count: int,
    diameter_mm: float,
    host: np.ndarray,
    seed: int,
    exclude_z: tuple[int, int] | None = None,
    min_fraction: float = 0.9,
) -> list[tuple[int, int, int]]:
    """Centres (z, y, x) where a ball of the lesion's size (+2 mm) lies (``min_fraction``) in ``host``.

    Centres are drawn at random among qualifying voxels, at least one diameter apart, with two slices
    to spare at both ends of the volume (so propagation can be seen to stop).
    """
    rng = np.random.default_rng(seed)
    sx, sy, sz = (float(s) for s in volume.spacing)
    r = diameter_mm / 2.0 + 2.0
    kz, ky, kx = (max(1, int(np.ceil(r / s))) for s in (sz, sy, sx))
    step = max(1, int(r / sy / 3))  # score a coarse grid: cheap, and plenty of candidates
    zg, yg, xg = np.mgrid[-kz : kz + 1, -ky : ky + 1 : step, -kx : kx + 1 : step]
    ball = ((zg * sz) ** 2 + (yg * sy) ** 2 + (xg * sx) ** 2) <= r * r
    score = ndimage.convolve(host[:, ::step, ::step].astype(np.float32), ball / ball.sum(), mode="constant")
    ok = score >= min_fraction
    ok[: kz + 2] = False
    ok[-(kz + 2) :] = False
    if exclude_z is not None:
        ok[max(exclude_z[0] - kz - 1, 0) : exclude_z[1] + kz + 2] = False
    candidates = np.argwhere(ok)
    rng.shuffle(candidates)
    chosen: list[tuple[int, int, int]] = []
    for z, y, x in candidates:
        c = (int(z), int(y) * step, int(x) * step)
        if all(
            ((c[0] - o[0]) * sz) ** 2 + ((c[1] - o[1]) * sy) ** 2 + ((c[2] - o[2]) * sx) ** 2 > (2 * r) ** 2
            for o in chosen
        ):
            chosen.append(c)
        if len(chosen) == count:
            break
    return chosen


# (name, diameter mm, HU (liver: offset from the host's median), rim HU, lobulation, z ratio, host fraction)
LUNG_LESIONS = (
    ("solid 8 mm", 8.0, 30.0, None, 0.1, 1.0, 0.9),
    ("solid 12 mm lobulated", 12.0, 20.0, None, 0.25, 1.0, 0.9),
    ("solid 20 mm", 20.0, 40.0, None, 0.15, 1.0, 0.9),
    ("solid 30 mm lobulated", 30.0, 10.0, None, 0.25, 0.8, 0.9),
    ("ground glass 15 mm", 15.0, -550.0, None, 0.15, 1.0, 0.9),
    ("ground glass 25 mm", 25.0, -450.0, None, 0.2, 1.0, 0.9),
    ("part-solid 20 mm", 20.0, 20.0, -450.0, 0.15, 1.0, 0.9),
    ("part-solid 30 mm", 30.0, 0.0, -550.0, 0.2, 0.9, 0.9),
    ("juxtapleural 20 mm", 20.0, 30.0, None, 0.15, 1.0, 0.6),
    ("juxtapleural 35 mm", 35.0, 20.0, None, 0.2, 0.8, 0.6),
)
LIVER_HU = (60.0, 200.0)  # contrast-enhanced liver / spleen parenchyma
LIVER_LESIONS = (
    ("liver hypodense 12 mm", 12.0, -60.0, None, 0.1, 1.0, 0.95),
    ("liver hypodense 20 mm", 20.0, -90.0, None, 0.15, 1.0, 0.95),
    ("liver subtle hypodense 18 mm", 18.0, -35.0, None, 0.15, 1.0, 0.95),
    ("liver hyperdense 16 mm", 16.0, 60.0, None, 0.15, 1.0, 0.95),
)


def lesion_suite(
    lung_ct: Volume | None, abdomen_ct: Volume | None, seed: int = 0, exclude_z: tuple[int, int] | None = None,
    only: set[str] | None = None,
) -> list[tuple[str, Volume, np.ndarray]]:
    """The standard synthetic set: lung nodules of several sizes/densities in ``lung_ct`` (away from
    ``exclude_z``, e.g. a real nodule) and liver lesions in ``abdomen_ct``; one lesion per volume.
    ``only``: build just these names (tests)."""
    cases: list[tuple[str, Volume, np.ndarray]] = []
    for ct, table in ((lung_ct, LUNG_LESIONS), (abdomen_ct, LIVER_LESIONS)):
        if ct is None or not any(only is None or row[0] in only for row in table):
            continue
        is_lung = table is LUNG_LESIONS
        host = lung_mask(ct) if is_lung else tissue_mask(ct, LIVER_HU)
        for i, (name, diameter, hu, rim, lob, z_ratio, fraction) in enumerate(table):
            if only is not None and name not in only:
                continue
            centres = place_lesions(ct, 1, diameter, host, seed + 101 * i, exclude_z, fraction)
            if not centres:
                continue
            z, y, x = centres[0]
            level = hu
            if not is_lung:
                r = int(diameter / ct.spacing[0])
                level += float(np.median(ct.array[z, max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1]))
            spec = LesionSpec(name, (z, y, x), diameter, level, z_ratio, rim, lobulation=lob, seed=seed + i)
            image, truth = insert_lesion(ct, spec, host if fraction < 0.9 else None)
            cases.append((name, image, truth))
    return cases
