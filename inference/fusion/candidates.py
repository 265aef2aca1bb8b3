"""The small-data candidates compared by nested CV, and the per-outcome model they produce.

Each candidate is a recipe (:class:`CandidateSpec`): which blocks it reads (EHR, image or both), which
head (regularised logistic regression, gradient-boosted trees, or late-fusion stacking of the two
per-modality logistic models) and a tiny hyper-parameter grid tuned by an inner, stratified CV. The
result, :class:`OutcomeModel`, is plain numbers (JSON) with one rule baked in: a lower SpO₂ can never
lower the predicted risk (sign bound in the linear models, monotone constraint in the trees,
non-negative stacking weights on top of sign-bounded parts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from inference.fusion.design import NUMERIC, SPO2, EHREncoder, ImageEncoder, PatientRecord
from inference.fusion.linear import LogisticModel
from inference.fusion.trees import TreeEnsemble

C_GRID = (0.03, 0.1, 0.3, 1.0)
TREE_GRID = (60,)  # boosting rounds at learning rate 0.05, depth 2: not tuned (cost, and few knobs win here)


@dataclass(frozen=True)
class CandidateSpec:
    """A row of the nested-CV table."""

    name: str
    head: str  # "linear" | "trees" | "stack" | "baseline"
    blocks: tuple[str, ...]  # subset of ("ehr", "image")
    image_set: str = "all"  # lung-zone opacity + severity estimate + embedding PCA: won the image ablation

    @property
    def modality(self) -> str:
        return "both" if len(self.blocks) == 2 else self.blocks[0]


@dataclass
class Encoders:
    """Fitted per fold on the training patients only (EHR medians, image PCA + severity regressor)."""

    ehr: EHREncoder
    images: dict[str, ImageEncoder]
    ehr_baseline: EHREncoder | None = None
    memo: dict[tuple, np.ndarray] | None = None  # training only: blocks by (kind, record ids) — records live on

    @classmethod
    def fit(cls, records: Sequence[PatientRecord], severity: dict[str, tuple[float, float]],
            image_sets: Sequence[str]) -> Encoders:
        return cls(EHREncoder.fit(records), {s: ImageEncoder.fit(records, severity, s) for s in image_sets},
                   EHREncoder.fit(records, with_finding=True), memo={})

    def block(self, kind: str, records: Sequence[PatientRecord]) -> np.ndarray:
        """'ehr' | 'ehr_nan' | 'baseline' | 'image:<set>' design block of ``records``."""
        key = (kind, tuple(id(r) for r in records))
        if self.memo is not None and key in self.memo:
            return self.memo[key]
        if kind == "ehr":
            out = self.ehr.transform(records)
        elif kind == "ehr_nan":
            out = self.ehr.transform_nan(records)
        elif kind == "baseline":
            assert self.ehr_baseline is not None
            out = self.ehr_baseline.transform(records)
        else:
            out = self.images[kind.removeprefix("image:")].transform(records)
        if self.memo is not None:
            self.memo[key] = out
        return out


def linear_matrix(spec_blocks: Sequence[str], enc: Encoders, image_set: str,
                  records: Sequence[PatientRecord]) -> np.ndarray:
    parts = []
    if "ehr" in spec_blocks:
        parts.append(enc.block("ehr", records))
    if "image" in spec_blocks:
        parts.append(enc.block(f"image:{image_set}", records))
    return np.hstack(parts)


def tree_matrix(spec_blocks: Sequence[str], enc: Encoders, image_set: str,
                records: Sequence[PatientRecord]) -> np.ndarray:
    parts = []
    if "ehr" in spec_blocks:
        parts.append(enc.block("ehr_nan", records))
    if "image" in spec_blocks:
        parts.append(enc.block(f"image:{image_set}", records))
    return np.hstack(parts)


@dataclass
class OutcomeModel:
    """A fitted candidate for one outcome; ``logits(records, encoders)`` is all prediction needs."""

    spec: CandidateSpec
    estimator: LogisticModel | TreeEnsemble | None = None
    parts: list[OutcomeModel] = field(default_factory=list)  # stacking: [EHR model, image model]
    meta: LogisticModel | None = None
    hyper: dict[str, float] = field(default_factory=dict)

    def logits(self, records: Sequence[PatientRecord], enc: Encoders) -> np.ndarray:
        head = self.spec.head
        if head == "stack":
            assert self.meta is not None
            z = np.column_stack([p.logits(records, enc) for p in self.parts])
            return self.meta.decision_function(z)
        if head == "baseline":
            assert self.estimator is not None
            return self.estimator.decision_function(enc.block("baseline", records))
        build = tree_matrix if head == "trees" else linear_matrix
        assert self.estimator is not None
        return self.estimator.decision_function(build(self.spec.blocks, enc, self.spec.image_set, records))

    def to_dict(self) -> dict[str, Any]:
        return {"spec": {"name": self.spec.name, "head": self.spec.head, "blocks": list(self.spec.blocks),
                         "image_set": self.spec.image_set},
                "estimator": self.estimator.to_dict() if self.estimator is not None else None,
                "parts": [p.to_dict() for p in self.parts],
                "meta": self.meta.to_dict() if self.meta is not None else None, "hyper": self.hyper}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutcomeModel:
        s = data["spec"]
        spec = CandidateSpec(str(s["name"]), str(s["head"]), tuple(str(b) for b in s["blocks"]), str(s["image_set"]))
        if spec.head not in ("linear", "trees", "stack", "baseline") or not set(spec.blocks) <= {"ehr", "image"}:
            raise ValueError(f"unknown model recipe {spec}")
        raw = data.get("estimator")
        estimator: LogisticModel | TreeEnsemble | None = None
        if raw is not None:
            estimator = TreeEnsemble.from_dict(raw) if raw.get("type") == "trees" else LogisticModel.from_dict(raw)
        return cls(spec, estimator, [cls.from_dict(p) for p in data.get("parts", [])],
                   LogisticModel.from_dict(data["meta"]) if data.get("meta") else None,
                   {str(k): float(v) for k, v in data.get("hyper", {}).items()})


def spo2_signs(spec: CandidateSpec, enc: Encoders) -> dict[int, int]:
    """Linear models: coefficient of standardised SpO₂ ≤ 0 (its missing indicator is free)."""
    return {NUMERIC.index(SPO2): -1} if "ehr" in spec.blocks else {}


def _fit_head(spec: CandidateSpec, enc: Encoders, records: Sequence[PatientRecord], y: np.ndarray,
              hyper: float, seed: int) -> OutcomeModel:
    if spec.head == "baseline":  # the recipe, exactly: C = 0.3, no sign bounds, finding included
        return OutcomeModel(spec, LogisticModel(C=0.3).fit(enc.block("baseline", records), y), hyper={"C": 0.3})
    if spec.head == "trees":
        X = tree_matrix(spec.blocks, enc, spec.image_set, records)
        mono = {NUMERIC.index(SPO2): -1} if "ehr" in spec.blocks else {}
        model = TreeEnsemble.fit(X, y, max_iter=int(hyper), monotonic=mono, seed=seed)
        return OutcomeModel(spec, model, hyper={"rounds": float(hyper)})
    X = linear_matrix(spec.blocks, enc, spec.image_set, records)
    return OutcomeModel(spec, LogisticModel(C=hyper, signs=spo2_signs(spec, enc)).fit(X, y), hyper={"C": float(hyper)})


def auroc(scores: np.ndarray, y: np.ndarray) -> float:
    """Rank (Mann–Whitney) AUROC; ties count half. NaN when a class is absent."""
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def inner_splits(y: np.ndarray, seed: int, folds: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    k = int(min(folds, np.bincount(y.astype(int), minlength=2).min()))
    if k < 2:
        return []
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


@dataclass
class FitResult:
    model: OutcomeModel
    inner_auroc: float  # inner-CV AUROC at the chosen hyper-parameter (used to select among candidates)


class CandidateFitter:
    """Fits candidates on one training set; inner-CV encoders are fitted once per inner split and shared."""

    def __init__(self, records: Sequence[PatientRecord], y: np.ndarray, unlabelled: Sequence[PatientRecord],
                 severity: dict[str, tuple[float, float]], image_sets: Sequence[str], seed: int) -> None:
        self.records, self.y, self.seed = list(records), np.asarray(y, float), seed
        self.unlabelled = list(unlabelled)
        self.severity, self.image_sets = severity, tuple(image_sets)
        with threadpool_limits(1):
            self.encoders = Encoders.fit(self.records + self.unlabelled, severity, self.image_sets)
        self.splits = inner_splits(self.y, seed)
        self._inner_enc: list[Encoders] = []
        self._oof_cache: dict[tuple[str, float], np.ndarray] = {}

    def inner_encoders(self) -> list[Encoders]:
        if not self._inner_enc:
            for train, _ in self.splits:
                self._inner_enc.append(Encoders.fit([self.records[i] for i in train] + self.unlabelled,
                                                    self.severity, self.image_sets))
        return self._inner_enc

    def inner_oof(self, spec: CandidateSpec, hyper: float) -> np.ndarray:
        """Out-of-fold logits of the inner CV for one hyper-parameter value."""
        key = (spec.name, hyper)
        if key not in self._oof_cache:
            oof = np.zeros(len(self.y))
            for (train, test), enc in zip(self.splits, self.inner_encoders(), strict=True):
                part = [self.records[i] for i in train]
                if spec.head == "stack":
                    model = self._fit_stack(spec, enc, part, self.y[train], inner=False)
                else:
                    model = _fit_head(spec, enc, part, self.y[train], hyper, self.seed)
                oof[test] = model.logits([self.records[i] for i in test], enc)
            self._oof_cache[key] = oof
        return self._oof_cache[key]

    def _grid(self, spec: CandidateSpec) -> tuple[float, ...]:
        return {"linear": C_GRID, "trees": TREE_GRID}.get(spec.head, (0.0,))

    def tune(self, spec: CandidateSpec) -> tuple[float, float]:
        """(best hyper-parameter, its inner AUROC); ties go to the first (more regularised) value."""
        if not self.splits:
            return self._grid(spec)[0], float("nan")
        scores = [(auroc(self.inner_oof(spec, h), self.y), h) for h in self._grid(spec)]
        best = max(scores, key=lambda s: (s[0], -self._grid(spec).index(s[1])))
        return best[1], best[0]

    def _fit_stack(self, spec: CandidateSpec, enc: Encoders, records: list[PatientRecord], y: np.ndarray,
                   inner: bool = True) -> OutcomeModel:
        """Late fusion: EHR and image logistic models (C tuned on this fitter's inner CV), combined by a
        logistic meta-model with non-negative weights fitted on their inner out-of-fold logits."""
        parts_spec = [CandidateSpec(f"{spec.name}/{b}", "linear", (b,), spec.image_set) for b in ("ehr", "image")]
        hypers = [self.tune(p)[0] for p in parts_spec]
        parts = [_fit_head(p, enc, records, y, h, self.seed) for p, h in zip(parts_spec, hypers, strict=True)]
        if inner:
            z = np.column_stack([self.inner_oof(p, h) for p, h in zip(parts_spec, hypers, strict=True)])
        else:  # inside the inner CV: in-sample logits of the parts, shrunk by a strong meta prior
            z = np.column_stack([p.logits(records, enc) for p in parts])
        meta = LogisticModel(C=1.0, signs={0: 1, 1: 1}).fit(z, y)
        return OutcomeModel(spec, None, parts, meta, {"C_ehr": hypers[0], "C_image": hypers[1]})

    def fit(self, spec: CandidateSpec) -> FitResult:
        """Tune (inner CV) and refit one candidate. BLAS runs single-threaded here: on these tiny matrices
        thread hand-offs cost ~10× the arithmetic (measured on the 2-core machine)."""
        with threadpool_limits(1):
            return self._fit(spec)

    def _fit(self, spec: CandidateSpec) -> FitResult:
        if spec.head == "stack":
            model = self._fit_stack(spec, self.encoders, self.records, self.y)
            score = auroc(self.inner_oof(spec, 0.0), self.y) if self.splits else float("nan")
            return FitResult(model, score)
        if spec.head == "baseline":
            score = auroc(self.inner_oof(spec, 0.3), self.y) if self.splits else float("nan")
            return FitResult(_fit_head(spec, self.encoders, self.records, self.y, 0.3, self.seed), score)
        hyper, score = self.tune(spec)
        return FitResult(_fit_head(spec, self.encoders, self.records, self.y, hyper, self.seed), score)
