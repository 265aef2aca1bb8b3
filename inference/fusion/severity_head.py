"""A small head on the frozen encoder: severity scores from the lung-zone embeddings (an ablation candidate).

Why: the ridge severity regressor sees lung-wide averages; the expert scores are given per lung zone, so a
head that looks at each zone's embedding through one shared projection (256 → k, ReLU), then combines the
six zones linearly, can follow *where* the opacity is. Trained on the scored images only (70 in the dev
cohort) with strong weight decay; stored as arrays (JSON), evaluated in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.fusion.lung_features import EMBED_DIM, ZONES


@dataclass
class ZoneHead:
    w1: np.ndarray = field(default_factory=lambda: np.zeros((0, EMBED_DIM)))
    b1: np.ndarray = field(default_factory=lambda: np.zeros(0))
    w2: np.ndarray = field(default_factory=lambda: np.zeros((2, 0)))
    b2: np.ndarray = field(default_factory=lambda: np.zeros(2))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(EMBED_DIM))
    scale: np.ndarray = field(default_factory=lambda: np.ones(EMBED_DIM))

    @classmethod
    def fit(cls, zones: np.ndarray, targets: np.ndarray, hidden: int = 4, steps: int = 300,
            weight_decay: float = 0.05, seed: int = 0) -> ZoneHead:
        """``zones`` (n, 6, 256) zone embeddings (NaN rows = empty zone), ``targets`` (n, 2) on the 0–8/0–6 scales."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a few thousand multiply-adds per step: threads cost 30× more than they save
        try:
            return cls._fit(zones, targets, hidden, steps, weight_decay, seed)
        finally:
            torch.set_num_threads(threads)

    @classmethod
    def _fit(cls, zones: np.ndarray, targets: np.ndarray, hidden: int, steps: int, weight_decay: float,
             seed: int) -> ZoneHead:
        import torch

        flat = zones.reshape(-1, EMBED_DIM)
        mean = np.nanmean(flat, axis=0)
        scale = np.nanstd(flat, axis=0)
        scale = np.where(scale > 1e-6, scale, 1.0)
        head = cls(mean=np.nan_to_num(mean), scale=scale)
        x = torch.from_numpy(head._standardise(zones)).float()
        y = torch.from_numpy(np.asarray(targets, np.float32) / np.array([8.0, 6.0], np.float32))
        g = torch.Generator().manual_seed(seed)
        w1 = torch.nn.Parameter(torch.randn(hidden, EMBED_DIM, generator=g) * 0.05)
        b1 = torch.nn.Parameter(torch.zeros(hidden))
        w2 = torch.nn.Parameter(torch.randn(2, len(ZONES) * hidden, generator=g) * 0.05)
        b2 = torch.nn.Parameter(y.mean(0).clone())
        optimiser = torch.optim.AdamW([w1, b1, w2, b2], lr=1e-2, weight_decay=weight_decay)
        for _ in range(steps):
            optimiser.zero_grad()
            h = torch.relu(x @ w1.T + b1).reshape(len(x), -1)
            loss = torch.nn.functional.mse_loss(h @ w2.T + b2, y)
            loss.backward()
            optimiser.step()
        head.w1, head.b1 = w1.detach().numpy().astype(np.float64), b1.detach().numpy().astype(np.float64)
        head.w2, head.b2 = w2.detach().numpy().astype(np.float64), b2.detach().numpy().astype(np.float64)
        return head

    def _standardise(self, zones: np.ndarray) -> np.ndarray:
        z = (np.asarray(zones, np.float64) - self.mean) / self.scale
        return np.nan_to_num(z)  # an empty zone contributes the cohort-average zone

    def predict(self, zones: np.ndarray) -> np.ndarray:
        """(n, 6, 256) → (n, 2) severity on the 0–8 / 0–6 scales."""
        x = self._standardise(zones)
        h = np.maximum(x @ self.w1.T + self.b1, 0.0).reshape(len(x), -1)
        return (h @ self.w2.T + self.b2) * np.array([8.0, 6.0])

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("w1", "b1", "w2", "b2", "mean", "scale")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ZoneHead:
        head = cls(*(np.asarray(data[k], np.float64) for k in ("w1", "b1", "w2", "b2", "mean", "scale")))
        k = head.w1.shape[0]
        if head.w1.shape != (k, EMBED_DIM) or head.w2.shape != (2, len(ZONES) * k) or head.b1.shape != (k,):
            raise ValueError("severity head weights have the wrong shape")
        return head
