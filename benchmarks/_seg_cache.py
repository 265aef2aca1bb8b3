"""Disk cache of LiteMedSAM image embeddings for the quality benchmark (decoder-only re-runs).

The encoder costs ~1.3 s per image on 2 CPU threads, the decoder ~50 ms: caching embeddings on disk
(``.cache/seg_quality/``, gitignored) lets every prompt/post-processing variant run in seconds.
Keys hash the slice content, model id, window and percentiles, so a change never reads a stale file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from benchmarks import REPO
from inference.models.preprocess import PreprocessInfo
from inference.segmentation.backend import Box, Decoded, Embedding, Point
from inference.segmentation.cache import slice_hash
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend

CACHE_DIR = REPO / ".cache" / "seg_quality"


class DiskCachedBackend:
    """A :class:`LiteMedSAMBackend` whose ``embed`` reads/writes ``CACHE_DIR``; ``decode`` is unchanged."""

    def __init__(self, backend: LiteMedSAMBackend, directory: Path = CACHE_DIR) -> None:
        self.backend = backend
        self.model_id = backend.model_id
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0

    def _path(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Path:
        key = f"{slice_hash(slice2d)}|{self.model_id}|{window}|{self.backend.percentiles}"
        return self.directory / f"{hashlib.sha1(key.encode()).hexdigest()}.npz"

    def embed(self, slice2d: np.ndarray, window: tuple[float, float] | None) -> Embedding:
        path = self._path(slice2d, window)
        if path.exists():
            with np.load(path) as z:
                features = torch.from_numpy(z["features"])
                info = PreprocessInfo(tuple(z["original"].tolist()), tuple(z["new"].tolist()))  # type: ignore[arg-type]
            self.hits += 1
            return Embedding(features, info, self.model_id, features.numel() * features.element_size())
        emb = self.backend.embed(slice2d, window)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            features=emb.features.cpu().numpy(),
            original=np.asarray(emb.info.original_size),
            new=np.asarray(emb.info.new_size),
        )
        tmp.replace(path)
        return emb

    def decode(
        self,
        embedding: Embedding,
        boxes: Box | None,
        points: list[Point] | tuple[Point, ...] = (),
        mask_prompt: object = None,
    ) -> Decoded:
        return self.backend.decode(embedding, boxes, points, mask_prompt)
