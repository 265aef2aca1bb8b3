"""Patients → padded model tensors. Pure data plumbing shared by training and prediction.

Numeric EHR values are standardised with statistics from the training patients (stored with the model);
a missing value becomes a ``True`` in ``ehr_missing`` and a 0 placeholder the model never reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from inference.fusion.cohort import CATEGORICAL_FIELDS, NUMERIC_FIELDS, Patient

MAX_IMAGES = 8  # most recent images kept per patient (the cohort has ≤ 8)


@dataclass
class EHRNormaliser:
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, patients: Sequence[Patient]) -> EHRNormaliser:
        means, stds = [], []
        for name, *_ in NUMERIC_FIELDS:
            values = np.array([p.ehr[name] for p in patients if p.ehr.get(name) is not None], dtype=float)
            means.append(float(values.mean()) if values.size else 0.0)
            stds.append(float(values.std()) if values.size > 1 and values.std() > 1e-6 else 1.0)
        return cls(means, stds)

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}


@dataclass
class Batch:
    features: torch.Tensor
    times: torch.Tensor
    image_mask: torch.Tensor
    numeric: torch.Tensor
    categorical: torch.Tensor
    ehr_missing: torch.Tensor
    filenames: list[list[str]]

    def model_inputs(self) -> tuple[torch.Tensor, ...]:
        return (self.features, self.times, self.image_mask, self.numeric, self.categorical, self.ehr_missing)


def encode_ehr(ehr: dict, normaliser: EHRNormaliser) -> tuple[list[float], list[int], list[bool]]:
    numeric, categorical, missing = [], [], []
    for i, (name, *_) in enumerate(NUMERIC_FIELDS):
        value = ehr.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            numeric.append(0.0)
            missing.append(True)
        else:
            numeric.append((float(value) - normaliser.mean[i]) / normaliser.std[i])
            missing.append(False)
    for name, categories in CATEGORICAL_FIELDS.items():
        value = ehr.get(name)
        if value is None:
            categorical.append(0)
            missing.append(True)
        else:
            categorical.append(categories.index(value) + 1 if value in categories else len(categories) + 1)
            missing.append(False)
    return numeric, categorical, missing


def make_batch(
    patients: Sequence[Patient],
    feature_of: Callable[[str], np.ndarray | None],
    normaliser: EHRNormaliser,
    feature_dim: int,
    use_images: bool = True,
) -> Batch:
    """``feature_of(filename)`` returns the image's feature vector, or None when the image is unavailable."""
    rows = []
    for p in patients:
        imgs = []
        if use_images:
            for rec in p.images:
                f = feature_of(rec.filename)
                if f is not None:
                    imgs.append((rec.offset, f, rec.filename))
        imgs = imgs[-MAX_IMAGES:]
        rows.append(imgs)
    length = max(1, max(len(r) for r in rows))
    n = len(patients)
    features = torch.zeros(n, length, feature_dim)
    times = torch.zeros(n, length)
    mask = torch.zeros(n, length, dtype=torch.bool)
    names: list[list[str]] = []
    for i, imgs in enumerate(rows):
        first = next((o for o, _, _ in imgs if o is not None), 0.0)
        for j, (offset, f, _name) in enumerate(imgs):
            features[i, j] = torch.as_tensor(f, dtype=torch.float32)
            times[i, j] = 0.0 if offset is None else float(offset) - float(first)
            mask[i, j] = True
        names.append([name for _, _, name in imgs])
    enc = [encode_ehr(p.ehr, normaliser) for p in patients]
    numeric = torch.tensor([e[0] for e in enc], dtype=torch.float32)
    categorical = torch.tensor([e[1] for e in enc], dtype=torch.long)
    missing = torch.tensor([e[2] for e in enc], dtype=torch.bool)
    return Batch(features, times, mask, numeric, categorical, missing, names)
