"""Full-resolution Dice of the lung head against the shared masks, from cached or fresh embeddings.

Shared by the export step (choices on the ``val`` patients) and ``python -m benchmarks lung_auto``
(the held-out ``test`` patients), so both measure exactly what ``LungSegmenter.segment`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inference.models.preprocess import PreprocessInfo
from inference.segmentation.backend import Embedding
from inference.segmentation.cxr_lungs import LEFT_LUNG, RIGHT_LUNG, labels_from_logits
from inference.segmentation.cxr_lungs_data import LungCase, cache_path, load_cached, read_mask, split_sides
from inference.segmentation.cxr_lungs_model import LungDecoder
from inference.segmentation.postprocess import dice


@dataclass(frozen=True)
class CaseScore:
    stem: str
    patient_id: str
    view: str
    lungs: float  # Dice of the union (lung vs not lung)
    right: float  # Dice of the patient's right lung (label 1)
    left: float


def cached_embedding(cache_dir: Path, case: LungCase, shape: tuple[int, int]) -> Embedding | None:
    """The original image's embedding from the training cache (``None`` when it is not there)."""
    path = cache_path(cache_dir, case.stem, 0)
    if not path.exists():
        return None
    features, _, new_size = load_cached(path)
    feats = torch.from_numpy(features.astype(np.float32))[None]
    return Embedding(feats, PreprocessInfo(shape, new_size), "cached", feats.numel() * 4)


def side_logits(head: LungDecoder, embedding: Embedding) -> np.ndarray:
    with torch.inference_mode():
        low = head.frame_logits(embedding.features.float())
        return embedding.info.logits_to_original(low)[0].numpy()


def score(case: LungCase, labels: np.ndarray, reference: np.ndarray) -> CaseScore:
    sides = split_sides(reference)
    return CaseScore(case.stem, case.patient_id, case.view, dice(labels > 0, reference),
                     dice(labels == RIGHT_LUNG, sides == RIGHT_LUNG), dice(labels == LEFT_LUNG, sides == LEFT_LUNG))


def sweep(head: LungDecoder, cases: Iterable[LungCase], embed: Callable[[LungCase, tuple[int, int]], Embedding],
          thresholds: Iterable[float], keep_largest: Iterable[bool] = (True, False)) -> dict[tuple[float, bool], list[CaseScore]]:
    """Scores per (threshold, keep_largest) option; logits are computed once per case."""
    options = [(float(t), bool(k)) for t in thresholds for k in keep_largest]
    out: dict[tuple[float, bool], list[CaseScore]] = {o: [] for o in options}
    for case in cases:
        reference = read_mask(case.mask)
        logits = side_logits(head, embed(case, reference.shape))
        for t, k in options:
            out[(t, k)].append(score(case, labels_from_logits(logits, t, k), reference))
    return out


def summary(scores: list[CaseScore]) -> dict[str, float]:
    lungs = np.array([s.lungs for s in scores])
    return {
        "n": float(len(scores)),
        "mean": float(lungs.mean()),
        "median": float(np.median(lungs)),
        "p5": float(np.percentile(lungs, 5)),
        "min": float(lungs.min()),
        "right": float(np.mean([s.right for s in scores])),
        "left": float(np.mean([s.left for s in scores])),
    }
