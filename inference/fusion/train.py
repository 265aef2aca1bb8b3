"""Training and cross-validated evaluation of the fusion model (issue 5).

Patient-grouped, stratified k-fold CV with fixed seeds; inside each training fold an inner validation
split drives early stopping. Out-of-fold (OOF) logits feed temperature scaling per head, Mondrian
conformal sets and severity intervals; the final model is refit on all patients for the median best
epoch count. Small model, weight decay, early stopping: the cohort is tiny (≈ 90 labelled patients per
outcome), so variance, not capacity, is the enemy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedKFold

from inference.fusion.cohort import Patient
from inference.fusion.dataset import Batch, EHRNormaliser, make_batch
from inference.fusion.model import FusionConfig, MedFusionModel
from inference.fusion.tent import tent_adapt
from inference.progress import CancelToken, ProgressCallback, no_progress


@dataclass
class TrainSettings:
    max_epochs: int = 200
    patience: int = 25
    lr: float = 3e-3
    weight_decay: float = 5e-2
    severity_weight: float = 0.1
    seed: int = 0


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def masked_losses(out_logits: torch.Tensor, severity: torch.Tensor, labels: torch.Tensor,
                  sev_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    known = ~torch.isnan(labels)
    bce = F.binary_cross_entropy_with_logits(out_logits[known], labels[known]) if known.any() else out_logits.sum() * 0
    sev_known = ~torch.isnan(sev_target)
    mse = F.mse_loss(severity[sev_known], sev_target[sev_known]) if sev_known.any() else severity.sum() * 0
    return bce, mse


def severity_targets(batch: Batch, severity: dict[str, tuple[float, float]]) -> torch.Tensor:
    n, length = batch.image_mask.shape
    target = torch.full((n, length, 2), math.nan)
    for i, names in enumerate(batch.filenames):
        for j, name in enumerate(names):
            if name in severity:
                g, o = severity[name]
                target[i, j] = torch.tensor([g / 8.0, o / 6.0])  # trained on the 0–1 scale
    return target


def subset(batch: Batch, idx: np.ndarray) -> Batch:
    t = torch.as_tensor(idx, dtype=torch.long)
    return Batch(*(x[t] for x in batch.model_inputs()), [batch.filenames[i] for i in idx])  # type: ignore[arg-type, call-arg]


def fit(config: FusionConfig, settings: TrainSettings, train: Batch, y: torch.Tensor, sev: torch.Tensor,
        val: tuple[Batch, torch.Tensor] | None = None, epochs: int | None = None,
        cancel: CancelToken | None = None) -> tuple[MedFusionModel, int]:
    """Full-batch AdamW; early stopping on the validation BCE when ``val`` is given, else ``epochs``."""
    set_seed(settings.seed)
    model = MedFusionModel(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    best_state, best_loss, best_epoch = copy.deepcopy(model.state_dict()), math.inf, 0
    for epoch in range(1, (epochs or settings.max_epochs) + 1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        model.train()
        optimiser.zero_grad()
        out = model(*train.model_inputs())
        bce, mse = masked_losses(out.logits, out.severity, y, sev)
        (bce + settings.severity_weight * mse).backward()
        optimiser.step()
        if val is not None:
            model.eval()
            with torch.no_grad():
                vout = model(*val[0].model_inputs())
                vloss, _ = masked_losses(vout.logits, vout.severity, val[1], torch.full_like(vout.severity, math.nan))
            if float(vloss) < best_loss - 1e-4:
                best_loss, best_epoch, best_state = float(vloss), epoch, copy.deepcopy(model.state_dict())
            elif epoch - best_epoch > settings.patience:
                break
    if val is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = epochs or settings.max_epochs
    model.eval()
    return model, best_epoch


def strata(labels: np.ndarray) -> np.ndarray:
    """Stratify on the most common outcome (ICU: positive / negative / unknown)."""
    icu = labels[:, 0]
    return np.where(np.isnan(icu), 2, icu).astype(int)


@dataclass
class CVResult:
    oof_logits: np.ndarray  # (N, K)
    oof_severity: np.ndarray  # (N, L, 2) on the 0–1 scale
    folds: np.ndarray  # (N,) fold index
    best_epochs: list[int]


def cross_validate(
    config: FusionConfig, settings: TrainSettings, patients: Sequence[Patient], labels: np.ndarray,
    feature_of: Callable[[str], np.ndarray | None], severity: dict[str, tuple[float, float]],
    n_folds: int = 5, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
    transform_test: Callable[[Batch], Batch] | None = None, tent: bool = False,
) -> CVResult:
    """``transform_test`` shifts each test fold (robustness checks); ``tent`` adapts a copy of the fold's
    model to that test fold with TENT before predicting it."""
    n = len(patients)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=settings.seed)
    oof = np.full((n, labels.shape[1]), np.nan)
    folds = np.zeros(n, dtype=int)
    best_epochs: list[int] = []
    oof_sev = None
    for k, (train_idx, test_idx) in enumerate(skf.split(np.zeros(n), strata(labels))):
        inner = StratifiedKFold(n_splits=5, shuffle=True, random_state=settings.seed + 1)
        fit_idx, val_idx = next(inner.split(np.zeros(len(train_idx)), strata(labels[train_idx])))
        fit_idx, val_idx = train_idx[fit_idx], train_idx[val_idx]
        normaliser = EHRNormaliser.fit([patients[i] for i in fit_idx])
        full = make_batch(patients, feature_of, normaliser, config.feature_dim)
        y = torch.tensor(labels, dtype=torch.float32)
        sev = severity_targets(full, severity)
        model, best = fit(config, settings, subset(full, fit_idx), y[fit_idx], sev[fit_idx],
                          val=(subset(full, val_idx), y[val_idx]), cancel=cancel)
        best_epochs.append(best)
        test = subset(full, test_idx)
        if transform_test is not None:
            test = transform_test(test)
        if tent:
            model = tent_adapt(model, test.model_inputs())
        with torch.no_grad():
            out = model(*test.model_inputs())
        oof[test_idx] = out.logits.numpy()
        if oof_sev is None:
            oof_sev = np.full((n, full.image_mask.shape[1], 2), np.nan)
        oof_sev[test_idx, : out.severity.shape[1]] = out.severity.numpy()
        folds[test_idx] = k
        progress((k + 1) / n_folds, f"fold {k + 1}/{n_folds}")
    assert oof_sev is not None
    return CVResult(oof, oof_sev, folds, best_epochs)
