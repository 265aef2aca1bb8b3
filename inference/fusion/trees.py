"""Gradient-boosted trees: trained with scikit-learn, shipped as plain node tables, evaluated in numpy.

Why: trees handle missing values natively (a NaN follows the branch learnt for "missing", nothing is
imputed) and take monotone constraints (``monotonic_cst``: risk non-increasing in SpO₂). A pickled
scikit-learn estimator would run code on load, so the shipped form is the node arrays in JSON and
:class:`TreeEnsemble` re-implements scikit-learn's prediction rule (tested to match it exactly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

NODE_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf")


@dataclass
class TreeEnsemble:
    """Binary-classification boosting: ``logit = baseline + Σ tree(x)``."""

    baseline: float = 0.0
    trees: list[dict[str, np.ndarray]] = field(default_factory=list)
    n_features: int = 0

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, *, max_iter: int = 100, learning_rate: float = 0.05,
            max_depth: int = 2, min_samples_leaf: int = 8, l2: float = 1.0,
            monotonic: dict[int, int] | None = None, seed: int = 0) -> TreeEnsemble:
        from sklearn.ensemble import HistGradientBoostingClassifier

        X = np.asarray(X, np.float64)
        y = np.asarray(y)
        if len(np.unique(y)) < 2:
            p = float(np.clip(np.mean(y) if len(y) else 0.5, 0.01, 0.99))
            return cls(float(np.log(p / (1 - p))), [], X.shape[1])
        X = np.where(np.isnan(X).all(axis=0), 0.0, X)  # an all-missing column breaks sklearn's binning; no split uses it
        cst = [(monotonic or {}).get(j, 0) for j in range(X.shape[1])]
        model = HistGradientBoostingClassifier(
            max_iter=max_iter, learning_rate=learning_rate, max_depth=max_depth, min_samples_leaf=min_samples_leaf,
            l2_regularization=l2, monotonic_cst=cst, early_stopping=False, random_state=seed,
        ).fit(X, y)
        return cls.from_sklearn(model, X.shape[1])

    @classmethod
    def from_sklearn(cls, model: Any, n_features: int) -> TreeEnsemble:  # noqa: ANN401 - sklearn estimator
        trees = []
        for (predictor,) in model._predictors:  # noqa: SLF001 - the fitted node tables; no public accessor
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported in the shipped tree format")
            trees.append(_typed({name: np.asarray(nodes[name]) for name in NODE_FIELDS}))
        return cls(float(np.ravel(model._baseline_prediction)[0]), trees, n_features)  # noqa: SLF001

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float64)
        out = np.full(len(X), self.baseline)
        for tree in self.trees:
            out += _tree_values(tree, X)
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return expit(self.decision_function(X))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "trees", "baseline": self.baseline, "n_features": self.n_features,
                "trees": [{k: v.tolist() for k, v in t.items()} for t in self.trees]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeEnsemble:
        n_features = int(data["n_features"])
        trees = []
        for raw in data["trees"]:
            tree = _typed({name: raw[name] for name in NODE_FIELDS})
            _check_tree(tree, n_features)
            trees.append(tree)
        return cls(float(data["baseline"]), trees, n_features)


def _typed(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    """Fixed dtypes (sklearn stores flags as uint8, where ``~`` would be a bitwise not, not a logical one)."""
    return {
        "value": np.asarray(raw["value"], np.float64).copy(),
        "feature_idx": np.asarray(raw["feature_idx"], np.int64).copy(),
        "num_threshold": np.asarray(raw["num_threshold"], np.float64).copy(),
        "missing_go_to_left": np.asarray(raw["missing_go_to_left"]).astype(bool),
        "left": np.asarray(raw["left"], np.int64).copy(),
        "right": np.asarray(raw["right"], np.int64).copy(),
        "is_leaf": np.asarray(raw["is_leaf"]).astype(bool),
    }


def _check_tree(tree: dict[str, np.ndarray], n_features: int) -> None:
    """Untrusted file: every index in range, children after parents (no cycles), finite leaf values."""
    n = len(tree["value"])
    if n == 0 or any(len(v) != n for v in tree.values()):
        raise ValueError("tree arrays differ in length")
    inner = ~tree["is_leaf"]
    idx = np.arange(n)
    if ((tree["left"][inner] <= idx[inner]) | (tree["right"][inner] <= idx[inner])).any():
        raise ValueError("tree children must come after their parent")
    if (tree["left"][inner] >= n).any() or (tree["right"][inner] >= n).any():
        raise ValueError("tree child index out of range")
    if ((tree["feature_idx"][inner] < 0) | (tree["feature_idx"][inner] >= n_features)).any():
        raise ValueError("tree feature index out of range")
    if not np.isfinite(tree["value"]).all():
        raise ValueError("tree values must be finite")


def _tree_values(tree: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    node = np.zeros(len(X), np.int64)
    active = ~tree["is_leaf"][node]
    while active.any():
        rows = np.nonzero(active)[0]
        current = node[rows]
        x = X[rows, tree["feature_idx"][current]]
        go_left = np.where(np.isnan(x), tree["missing_go_to_left"][current], x <= tree["num_threshold"][current])
        node[rows] = np.where(go_left, tree["left"][current], tree["right"][current])
        active = ~tree["is_leaf"][node]
    return tree["value"][node]
