"""Patients → design matrices for the small-data candidates (EHR block, image block), fitted per fold.

Missing values (NAIM principle, stated explicitly): the *linear* models see a missing EHR value as the
training median **plus a missing-indicator column** — the model learns what "not measured" means and
never mistakes a filled-in median for a measurement; the *trees* see NaN and learn a branch for it. The
image block summarises a patient's X-rays (all of them, ordered by time) by their mean, with the
severity estimate as the worst (max) image.

Every fitted encoder is a handful of numbers (medians, means, PCA axes, ridge weights) stored as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.fusion.cohort import NUMERIC_FIELDS
from inference.fusion.linear import RidgeModel
from inference.fusion.lung_features import SCALAR_NAMES, ImageFeatures
from inference.fusion.severity_head import ZoneHead

NUMERIC = tuple(f[0] for f in NUMERIC_FIELDS)
SPO2 = "pO2_saturation"
VIEWS = ("AP", "AP Supine")  # PA is the reference level; any other view counts as "other view"
SEVERITY_NAMES = ("geographic_extent", "opacity")
SEVERITY_TOP = (8.0, 6.0)


@dataclass
class PatientRecord:
    """One patient as every candidate sees it: presentation EHR + the features of each X-ray in time order."""

    patient_id: str
    ehr: dict[str, float | str | None]
    images: list[ImageFeatures] = field(default_factory=list)
    filenames: list[str] = field(default_factory=list)
    offsets: list[float | None] = field(default_factory=list)
    finding: str = ""  # only the logistic baseline reads it (never a shipped input)


def _num(value: object) -> float:
    if value is None or isinstance(value, str):
        return math.nan
    v = float(value)  # type: ignore[arg-type]
    return v if math.isfinite(v) else math.nan


def _finite_or(values: np.ndarray, default: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else default


@dataclass
class EHREncoder:
    """Numeric fields: median-filled, standardised, + missing indicator; sex and view one-hot."""

    medians: list[float] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # non-empty only for the baseline's encoder

    @classmethod
    def fit(cls, records: Sequence[PatientRecord], with_finding: bool = False) -> EHREncoder:
        raw = np.array([[_num(r.ehr.get(n)) for n in NUMERIC] for r in records], np.float64).reshape(-1, len(NUMERIC))
        medians = [_finite_or(raw[:, j], 0.0) for j in range(len(NUMERIC))]
        filled = np.where(np.isnan(raw), medians, raw)
        means = filled.mean(0).tolist() if len(records) else [0.0] * len(NUMERIC)
        stds = [float(s) if s > 1e-6 else 1.0 for s in (filled.std(0) if len(records) else np.ones(len(NUMERIC)))]
        findings = sorted({r.finding for r in records if r.finding}) if with_finding else []
        return cls(medians, means, stds, findings)

    @property
    def names(self) -> list[str]:
        return ([f"{n}" for n in NUMERIC] + [f"{n} missing" for n in NUMERIC]
                + ["sex F", "sex missing"] + [f"view {v}" for v in VIEWS] + ["view other/missing"]
                + [f"finding {f}" for f in self.findings])

    def transform(self, records: Sequence[PatientRecord]) -> np.ndarray:
        """(n, d) matrix for the linear models (no NaN)."""
        rows = []
        for r in records:
            values = [_num(r.ehr.get(n)) for n in NUMERIC]
            missing = [1.0 if math.isnan(v) else 0.0 for v in values]
            z = [((self.medians[j] if math.isnan(v) else v) - self.means[j]) / self.stds[j]
                 for j, v in enumerate(values)]
            sex, view = r.ehr.get("sex"), r.ehr.get("view")
            cat = [1.0 if sex == "F" else 0.0, 1.0 if sex not in ("M", "F") else 0.0]
            cat += [1.0 if view == v else 0.0 for v in VIEWS] + [0.0 if view in (*VIEWS, "PA") else 1.0]
            cat += [1.0 if r.finding == f else 0.0 for f in self.findings]
            rows.append(z + missing + cat)
        return np.array(rows, np.float64).reshape(len(records), len(self.names))

    def transform_nan(self, records: Sequence[PatientRecord]) -> np.ndarray:
        """(n, d') matrix for the trees: raw numeric values with NaN for missing, one-hot categories."""
        rows = []
        for r in records:
            sex, view = r.ehr.get("sex"), r.ehr.get("view")
            row = [_num(r.ehr.get(n)) for n in NUMERIC]
            row += [math.nan if sex not in ("M", "F") else float(sex == "F")]
            row += [math.nan if view is None else float(view == v) for v in VIEWS]
            rows.append(row)
        return np.array(rows, np.float64).reshape(len(records), len(self.tree_names))

    @property
    def tree_names(self) -> list[str]:
        return list(NUMERIC) + ["sex F"] + [f"view {v}" for v in VIEWS]

    def spo2_columns(self, trees: bool = False) -> list[int]:
        """Columns whose coefficient must be ≤ 0 (risk never falls as SpO₂ falls)."""
        return [NUMERIC.index(SPO2)]

    def to_dict(self) -> dict[str, Any]:
        return {"medians": self.medians, "means": self.means, "stds": self.stds, "findings": self.findings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EHREncoder:
        out = cls([float(v) for v in data["medians"]], [float(v) for v in data["means"]],
                  [float(v) for v in data["stds"]], [str(f) for f in data.get("findings", [])])
        if not (len(out.medians) == len(out.means) == len(out.stds) == len(NUMERIC)):
            raise ValueError("EHR encoder has the wrong number of fields")
        return out


IMAGE_SETS = ("pooled", "zones", "zones+severity", "zones+head", "all")
WITH_SEVERITY = ("zones+severity", "zones+head", "all")


def _stack(records: Sequence[PatientRecord], attr: str) -> list[np.ndarray]:
    return [np.stack([getattr(im, attr) for im in r.images]) if r.images else np.empty(0) for r in records]


@dataclass
class ImageEncoder:
    """Per-patient image block: lung-zone statistics, embedding PCA, predicted severity (see ``feature_set``).

    ``feature_set``: 'pooled' = PCA of the lung-pooled embedding only (the old representation);
    'zones' = lung-zone opacity statistics; 'zones+severity' adds the severity regressor's estimate;
    'zones+head' takes the severity from a small head on the frozen encoder's zone embeddings instead
    (:class:`~inference.fusion.severity_head.ZoneHead`); 'all' = 'zones+severity' + the embedding PCA.
    """

    feature_set: str = "all"
    n_components: int = 8
    medians: list[float] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    pca_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pca_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pca_axes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    severity: RidgeModel | None = None
    head: ZoneHead | None = None
    out_means: list[float] = field(default_factory=list)
    out_stds: list[float] = field(default_factory=list)

    @classmethod
    def fit(cls, records: Sequence[PatientRecord], severity_targets: dict[str, tuple[float, float]],
            feature_set: str = "all", n_components: int = 8, ridge_alpha: float = 30.0) -> ImageEncoder:
        if feature_set not in IMAGE_SETS:
            raise ValueError(f"unknown image feature set {feature_set!r}")
        enc = cls(feature_set, n_components)
        images = [im for r in records for im in r.images]
        scal = np.stack([im.scalars for im in images]).astype(np.float64) if images else np.zeros((0, len(SCALAR_NAMES)))
        enc.medians = [_finite_or(scal[:, j], 0.0) for j in range(scal.shape[1])]
        filled = np.where(np.isnan(scal), enc.medians, scal)
        enc.means = filled.mean(0).tolist() if len(filled) else [0.0] * len(SCALAR_NAMES)
        enc.stds = [float(s) if s > 1e-6 else 1.0 for s in (filled.std(0) if len(filled) else np.ones(len(SCALAR_NAMES)))]
        source = "pooled" if feature_set == "pooled" else "emb_inside"
        emb = np.stack([getattr(im, source) for im in images]).astype(np.float64) if images else np.zeros((1, 256))
        emb = np.nan_to_num(emb)
        enc.pca_mean = emb.mean(0)
        enc.pca_scale = np.where(emb.std(0) > 1e-6, emb.std(0), 1.0)
        _, _, vt = np.linalg.svd((emb - enc.pca_mean) / enc.pca_scale, full_matrices=False)
        enc.pca_axes = vt[:n_components]
        if feature_set in WITH_SEVERITY:
            scored = [(im, severity_targets[name]) for r in records
                      for im, name in zip(r.images, r.filenames, strict=True) if name in severity_targets]
            if len(scored) >= 10 and feature_set == "zones+head":
                enc.head = ZoneHead.fit(np.stack([im.emb_zones for im, _ in scored]), np.array([t for _, t in scored]))
            elif len(scored) >= 10:
                enc.severity = RidgeModel(ridge_alpha).fit(np.array([enc._per_image(im) for im, _ in scored]),
                                                           np.array([t for _, t in scored]))
        block = enc._raw_block(records)
        enc.out_means = block.mean(0).tolist() if len(block) else [0.0] * block.shape[1]
        enc.out_stds = [float(s) if s > 1e-6 else 1.0 for s in (block.std(0) if len(block) else np.ones(block.shape[1]))]
        return enc

    def _per_image(self, im: ImageFeatures) -> np.ndarray:
        """One image → standardised zone statistics + embedding PCA (the severity regressor's input)."""
        scal, pca, _ = self._image_arrays([im], with_severity=False)
        return np.concatenate([self._standard(scal), pca], axis=1)[0]

    def _standard(self, scal: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(scal), np.asarray(self.medians), scal)
        return (filled - np.asarray(self.means)) / np.asarray(self.stds)

    def _image_arrays(self, images: Sequence[ImageFeatures], with_severity: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per image, in one batch: raw zone statistics (NaN kept), embedding PCA, severity (n, 2)."""
        n = len(images)
        scal = np.stack([im.scalars for im in images]).astype(np.float64) if n else np.zeros((0, len(SCALAR_NAMES)))
        width = self.pca_mean.shape[0]
        src = np.stack([im.pooled if self.feature_set == "pooled" else im.emb_inside for im in images]).astype(
            np.float64) if n else np.zeros((0, width))
        pca = ((np.nan_to_num(src) - self.pca_mean) / self.pca_scale) @ self.pca_axes.T
        sev = np.full((n, 2), np.nan)
        if with_severity and n:
            if self.head is not None:
                sev = self.head.predict(np.stack([im.emb_zones for im in images]))
            elif self.severity is not None:
                sev = self.severity.predict(np.concatenate([self._standard(scal), pca], axis=1))
            sev = np.clip(sev, 0.0, SEVERITY_TOP)
        return scal, pca, sev

    def severity_of(self, im: ImageFeatures) -> np.ndarray:
        """Estimated (geographic extent 0–8, opacity 0–6) of one image (NaN without a regressor)."""
        return self._image_arrays([im])[2][0]

    @property
    def names(self) -> list[str]:
        pca = [f"embedding PC{k + 1}" for k in range(len(self.pca_axes))]
        if self.feature_set == "pooled":
            return pca + ["no image"]
        out = list(SCALAR_NAMES) + ["no lung mask"]
        if self.feature_set in WITH_SEVERITY:
            out += ["severity extent (max)", "severity opacity (max)"]
        if self.feature_set == "all":
            out += pca
        return out + ["no image"]

    def _raw_block(self, records: Sequence[PatientRecord]) -> np.ndarray:
        images = [im for r in records for im in r.images]
        scal, pca, sev = self._image_arrays(images, with_severity=self.feature_set in WITH_SEVERITY)
        rows = []
        start = 0
        for r in records:
            stop = start + len(r.images)
            if stop == start:
                rows.append(np.concatenate([np.zeros(len(self.names) - 1), [1.0]]))
                continue
            if self.feature_set == "pooled":
                rows.append(np.concatenate([pca[start:stop].mean(0), [0.0]]))
                start = stop
                continue
            own = scal[start:stop]
            no_mask = float(np.isnan(own).all())
            with np.errstate(all="ignore"):
                mean = np.nanmean(own, 0) if not no_mask else np.full(own.shape[1], np.nan)
            row = [np.where(np.isnan(mean), self.medians, mean), [no_mask]]
            if self.feature_set in WITH_SEVERITY:
                row.append(np.nan_to_num(sev[start:stop].max(0), nan=0.0))
            if self.feature_set == "all":
                row.append(pca[start:stop].mean(0))
            rows.append(np.concatenate([*row, [0.0]]))
            start = stop
        return np.array(rows, np.float64).reshape(len(records), len(self.names))

    def transform(self, records: Sequence[PatientRecord]) -> np.ndarray:
        """Standardised (n, d) image block; a patient without images is all-typical with 'no image' = 1."""
        block = self._raw_block(records)
        return (block - np.asarray(self.out_means)) / np.asarray(self.out_stds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_set": self.feature_set, "n_components": self.n_components, "medians": self.medians,
            "means": self.means, "stds": self.stds, "pca_mean": self.pca_mean.tolist(),
            "pca_scale": self.pca_scale.tolist(), "pca_axes": self.pca_axes.tolist(),
            "severity": self.severity.to_dict() if self.severity else None,
            "head": self.head.to_dict() if self.head else None, "out_means": self.out_means, "out_stds": self.out_stds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageEncoder:
        enc = cls(str(data["feature_set"]), int(data["n_components"]), [float(v) for v in data["medians"]],
                  [float(v) for v in data["means"]], [float(v) for v in data["stds"]],
                  np.asarray(data["pca_mean"], np.float64), np.asarray(data["pca_scale"], np.float64),
                  np.asarray(data["pca_axes"], np.float64),
                  RidgeModel.from_dict(data["severity"]) if data.get("severity") else None,
                  ZoneHead.from_dict(data["head"]) if data.get("head") else None,
                  [float(v) for v in data["out_means"]], [float(v) for v in data["out_stds"]])
        if enc.feature_set not in IMAGE_SETS or len(enc.medians) != len(SCALAR_NAMES):
            raise ValueError("image encoder does not match this version's features")
        if enc.pca_axes.ndim != 2 or enc.pca_axes.shape[1] != enc.pca_mean.shape[0]:
            raise ValueError("image encoder PCA axes have the wrong shape")
        if len(enc.out_means) != len(enc.names):
            raise ValueError("image encoder output size does not match its feature set")
        return enc
