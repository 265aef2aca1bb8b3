"""Small linear models fitted with our own code and stored as plain numbers (JSON), never pickled.

Why own code: every model file is untrusted input (no pickle), and logistic regression needs *sign
bounds* for clinically fixed directions (a lower SpO₂ must never lower the risk of ICU admission);
scipy's L-BFGS-B gives both in a few lines. The objective is sklearn's: ``C · Σ logloss + ½‖w‖²``
(intercept not penalised), so ``LogisticModel(C=0.3)`` reproduces ``sklearn LogisticRegression(C=0.3)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit


@dataclass
class LogisticModel:
    """L2-regularised logistic regression; ``signs[j]`` = +1 / −1 bounds coefficient j to ≥ 0 / ≤ 0."""

    C: float = 1.0
    signs: dict[int, int] = field(default_factory=dict)
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept: float = 0.0
    sample_weight_balanced: bool = False

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticModel:
        X = np.asarray(X, np.float64)
        y = np.asarray(y, np.float64)
        n, d = X.shape
        if n == 0 or len(np.unique(y)) < 2:
            self.coef, self.intercept = np.zeros(d), _logit(float(np.clip(np.mean(y) if n else 0.5, 0.01, 0.99)))
            return self
        weights = np.ones(n)
        if self.sample_weight_balanced:
            for c in (0.0, 1.0):
                weights[y == c] = n / (2.0 * max(1, int((y == c).sum())))

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:d], theta[d]
            z = X @ w + b
            p = expit(z)
            value = self.C * float(np.sum(weights * (np.logaddexp(0.0, z) - y * z))) + 0.5 * float(w @ w)
            r = self.C * weights * (p - y)
            return value, np.concatenate([X.T @ r + w, [r.sum()]])

        bounds = [(0.0, None) if self.signs.get(j) == 1 else (None, 0.0) if self.signs.get(j) == -1 else (None, None)
                  for j in range(d)] + [(None, None)]
        start = np.zeros(d + 1)
        start[d] = _logit(float(np.clip(np.average(y, weights=weights), 0.01, 0.99)))
        result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": 2000, "gtol": 1e-8})
        self.coef, self.intercept = result.x[:d].copy(), float(result.x[d])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, np.float64) @ self.coef + self.intercept

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return expit(self.decision_function(X))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "logistic", "C": self.C, "coef": self.coef.tolist(), "intercept": self.intercept,
                "signs": {str(k): v for k, v in self.signs.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticModel:
        coef = np.asarray(data["coef"], np.float64)
        if coef.ndim != 1 or not np.isfinite(coef).all() or not np.isfinite(float(data["intercept"])):
            raise ValueError("logistic model coefficients must be a finite vector")
        return cls(float(data["C"]), {int(k): int(v) for k, v in data.get("signs", {}).items()}, coef,
                   float(data["intercept"]))


@dataclass
class RidgeModel:
    """Ridge regression on standardised inputs (for the severity scores); closed form."""

    alpha: float = 10.0
    coef: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    intercept: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, X: np.ndarray, Y: np.ndarray) -> RidgeModel:
        X = np.asarray(X, np.float64)
        Y = np.asarray(Y, np.float64).reshape(len(X), -1)
        mean_x, mean_y = X.mean(0), Y.mean(0)
        Xc = X - mean_x
        self.coef = np.linalg.solve(Xc.T @ Xc + self.alpha * np.eye(X.shape[1]), Xc.T @ (Y - mean_y))
        self.intercept = mean_y - mean_x @ self.coef
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, np.float64) @ self.coef + self.intercept

    def to_dict(self) -> dict[str, Any]:
        return {"type": "ridge", "alpha": self.alpha, "coef": self.coef.tolist(), "intercept": self.intercept.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RidgeModel:
        coef = np.asarray(data["coef"], np.float64)
        intercept = np.asarray(data["intercept"], np.float64)
        if coef.ndim != 2 or intercept.shape != (coef.shape[1],) or not np.isfinite(coef).all():
            raise ValueError("ridge model coefficients have the wrong shape")
        return cls(float(data["alpha"]), coef, intercept)


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))
