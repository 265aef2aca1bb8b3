"""Dice of the automatic lung segmenter on patients it never saw → docs/segmentation.md (``lung-auto`` block).

``python -m benchmarks lung_auto [--cache DIR] [--limit N] [--no-write]``. Loads the shipped weights
through ``load_lung_segmenter`` (sha256-checked) and scores ``LungSegmenter.labels`` (exactly what
``segment`` returns) against the shared V7 masks, per patient split (``cxr_lungs_data.patient_split``):
``test`` is the held-out report; ``val`` was used for training choices and is shown for comparison.
A baseline row runs the bare LiteMedSAM decoder with one fixed whole-image box (also no user prompt).
Embeddings of the original images are read from / written to the training cache format (``--cache``,
default ``.cache/cxr_lungs``), so a re-run costs decoder time only.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import REPO, replace_section
from inference.models.litemedsam import decode
from inference.segmentation.cxr_lungs import LungSegmenter, load_lung_segmenter
from inference.segmentation.cxr_lungs_cache import encode_variant
from inference.segmentation.cxr_lungs_data import LungCase, lung_cases, read_mask
from inference.segmentation.cxr_lungs_eval import CaseScore, cached_embedding, score, summary
from inference.segmentation.postprocess import dice

CXR = Path(os.environ.get("MEDFUSION_SHARED_DATA", REPO.parent / "shared" / "data")) / "cxr"
DOC = REPO / "docs" / "segmentation.md"


def evaluate(segmenter: LungSegmenter, cases: list[LungCase], cache: Path) -> tuple[list[CaseScore], list[float]]:
    """Scores of the shipped segmenter and, per case, the bare-model whole-image-box Dice (threshold −6)."""
    scores, baseline = [], []
    for i, case in enumerate(cases):
        reference = read_mask(case.mask)
        emb = cached_embedding(cache, case, reference.shape)
        if emb is None:
            encode_variant(segmenter.backend, case, 0, cache)
            emb = cached_embedding(cache, case, reference.shape)
        assert emb is not None
        scores.append(score(case, segmenter.labels(emb), reference))
        h, w = emb.info.new_size
        logits, _ = decode(segmenter.backend.model, emb.features, np.array([0, 0, w - 1, h - 1], np.float32))
        full = emb.info.logits_to_original(logits[None])[0, 0].numpy()
        baseline.append(dice(full > -6.0, reference))
        if (i + 1) % 20 == 0:
            print(f"  {i + 1}/{len(cases)}", flush=True)
    return scores, baseline


def row(name: str, scores: list[CaseScore]) -> str:
    s = summary(scores)
    return (f"| {name} | {int(s['n'])} | {len({c.patient_id for c in scores})} | {s['mean']:.3f} | {s['median']:.3f} "
            f"| {s['p5']:.3f} | {s['min']:.3f} | {s['right']:.3f} | {s['left']:.3f} |")


def timing(segmenter: LungSegmenter, cases: list[LungCase]) -> str:
    """End-to-end ``segment`` vs decoder-only time on a few images (same run; the machine is shared)."""
    from inference.io.loader import open_image

    full, head = [], []
    for case in cases:
        image = open_image(case.image).array[0]
        t0 = time.perf_counter()
        emb = segmenter.embedding(image)
        t1 = time.perf_counter()
        segmenter.labels(emb)
        t2 = time.perf_counter()
        full.append(t2 - t0)
        head.append(t2 - t1)
    return (f"Time per image on {torch.get_num_threads()} CPU threads (shared, busy machine; median of "
            f"{len(cases)}): {np.median(full):.2f} s end to end, of which {np.median(head):.2f} s for the lung "
            f"head + post-processing after the embedding ({np.median(full) / np.median(head):.0f}×): with the "
            "viewer's embedding cache warm, an auto mask costs only the head.")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks lung_auto")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "cxr_lungs")
    parser.add_argument("--limit", type=int, default=0, help="first N images per split (quick look)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    started = time.perf_counter()
    segmenter = load_lung_segmenter("cpu")
    cases = lung_cases(CXR)
    by_split = {s: [c for c in cases if c.split == s] for s in ("test", "val")}
    if args.limit:
        by_split = {s: c[: args.limit] for s, c in by_split.items()}
    results = {s: evaluate(segmenter, c, args.cache) for s, c in by_split.items()}
    test_scores, test_base = results["test"]
    head = "| split | images | patients | mean Dice | median | 5th pct | min | right lung | left lung |"
    lines = [
        "### Measured (`python -m benchmarks lung_auto`)", "",
        f"Weights `{segmenter.model_id}` (threshold {segmenter.head.threshold:g}, largest region per side "
        f"{'on' if segmenter.head.keep_largest else 'off'}). Dice of lungs (union) against the V7 masks at full "
        "resolution; right/left = per-side Dice (label 1/2 vs the mask's image-left/right component).", "",
        head, "|---|---|---|---|---|---|---|---|---|",
        row("**test (held-out patients)**", test_scores),
        *(row(f"test, {view}", [s for s in test_scores if s.view == view])
          for view in sorted({s.view for s in test_scores})),
        row("val (used for choices)", results["val"][0]), "",
        "Baseline without fine-tuning, also prompt-free (bare LiteMedSAM, one whole-image box, logit > −6): "
        f"test mean {np.mean(test_base):.3f}, median {np.median(test_base):.3f}, 5th pct "
        f"{np.percentile(test_base, 5):.3f}.", "",
        timing(segmenter, by_split["test"][:3]), "",
        f"Run time {time.perf_counter() - started:.0f} s.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        replace_section(DOC, "lung-auto", body, "Segmentation")
    return 0
