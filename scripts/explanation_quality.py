"""Before/after measurement of the X-ray explanation maps on the dev cohort → ``docs/results.md``
("Explanations on the lungs").

    nice -n 10 .venv/bin/python scripts/explanation_quality.py --data ../shared/data/cxr \
        --embeddings /work/cache/predictor/emb --cache DIR --out DIR [--outcome went_icu] [--limit N]

For every X-ray with lungs of every dev patient whose shipped 'both' head reads the image block, both
explainers of ``OutcomeService.image_attribution`` ("lung occlusion": a cell taken out of the lung mask;
"normal-lung reference": a cell replaced by a normal lung) are run and scored:

- (a) Spearman correlation, per X-ray, between the positive part of the cell attributions and the cells'
  opacity (mean lung pixel ÷ soft-tissue level, the features' own normalisation); median over X-rays.
- (b) fraction of the lung area that is red (map > +0.1 of its maximum |value|) and blue (< −0.1), mean
  over the X-rays of the top-quartile-risk patients (the shipped model's probability).
- (c) seconds per X-ray map, both methods in the same run (a ratio; the machine is shared).
- deletion check: each method's own perturbation applied to its top-attributed cells first vs random
  orders (3 per X-ray); area under the logit-drop curve (mean over 10 steps of logit_k − logit_0), and
  the fraction of X-rays where the top-first curve lies below the random mean.

Writes ``rows.csv`` (one row per X-ray and method) and ``summary.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from build_normal_lung_reference import cohort_builder, load_image  # noqa: E402

from inference.explain.anatomy import _scored_cells, cells_by_attribution, deletion_curve, restrict_to_lungs  # noqa: E402
from inference.fusion.case import ImageInput  # noqa: E402
from inference.fusion.cohort import read_cohort  # noqa: E402
from inference.fusion.design import PatientRecord  # noqa: E402
from inference.fusion.lung_features import soft_tissue_level  # noqa: E402
from inference.fusion.normal_lung import NormalLungReference  # noqa: E402
from inference.fusion.outcome_model import OutcomePredictor  # noqa: E402
from inference.fusion.service import MASK_METHOD, OCCLUSION_CELL, OutcomeService  # noqa: E402

MODEL_DIR = REPO / "resources" / "models" / "fusion"
SIGNIFICANT = 0.1  # |map| above this share of the X-ray's strongest cell counts as red / blue
STEPS = 10
RANDOM_ORDERS = 3


def cell_opacity(frame: np.ndarray, lungs: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
    """Mean lung pixel ÷ soft-tissue level per cell (the opacity proxy)."""
    soft = soft_tissue_level(frame, lungs)
    out = []
    for r, c in cells:
        sel = lungs[r:r + OCCLUSION_CELL, c:c + OCCLUSION_CELL]
        out.append(float(frame[r:r + OCCLUSION_CELL, c:c + OCCLUSION_CELL][sel].mean() / soft))
    return np.array(out)


def score_map(service: OutcomeService, record: PatientRecord, t: int, parts, logit, rng: np.random.Generator  # noqa: ANN001
              ) -> dict[str, float]:
    """One X-ray, one method: the measurements of the module docstring."""
    lungs = parts.frame_lungs
    t0 = time.perf_counter()
    attr = service.image_attribution(record, t, parts, logit)
    seconds = time.perf_counter() - t0
    cells = _scored_cells(lungs, OCCLUSION_CELL, 0.2)
    values = np.array([attr[r, c] for r, c in cells])
    opacity = cell_opacity(parts.frame, lungs, cells)
    pos = np.clip(values, 0, None)
    rho_pos = stats.spearmanr(pos, opacity).statistic if pos.std() > 0 else 0.0
    rho = stats.spearmanr(values, opacity).statistic if values.std() > 0 else 0.0
    shown = restrict_to_lungs(attr, lungs, cell=OCCLUSION_CELL,
                              scored=_scored_pixels(lungs)).values[lungs]
    perturb = service.image_logit(record, t, parts, logit)
    if service.reference is None:  # lung_occlusion's function takes the mask: "changed" = cells taken out
        def changed_logit(changed: np.ndarray) -> float:
            return perturb(lungs & ~changed)
    else:
        changed_logit = perturb
    top = deletion_curve(changed_logit, lungs, cells_by_attribution(attr, lungs, OCCLUSION_CELL), OCCLUSION_CELL, STEPS)
    rand = [deletion_curve(changed_logit, lungs, [cells[i] for i in rng.permutation(len(cells))], OCCLUSION_CELL, STEPS)
            for _ in range(RANDOM_ORDERS)]
    auc_top = float((top[1:] - top[0]).mean())
    auc_rand = float(np.mean([(r[1:] - r[0]).mean() for r in rand]))
    return {"seconds": seconds, "cells": len(cells), "rho_pos": float(np.nan_to_num(rho_pos)),
            "rho": float(np.nan_to_num(rho)), "red": float((shown > SIGNIFICANT).mean()),
            "blue": float((shown < -SIGNIFICANT).mean()), "auc_top": auc_top, "auc_random": auc_rand,
            "all_normal_drop": float(rand[0][-1] - rand[0][0])}


def _scored_pixels(lungs: np.ndarray) -> np.ndarray:
    from inference.explain.anatomy import scored_pixels

    return scored_pixels(lungs, OCCLUSION_CELL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cxr")
    parser.add_argument("--embeddings", type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--outcome", default="went_icu")
    parser.add_argument("--limit", type=int, default=0, help="first N patients only (a smoke run)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    predictor = OutcomePredictor.load(MODEL_DIR)
    builder = cohort_builder(args.cache, args.embeddings, args.data)
    builder._memory_items = 64  # noqa: SLF001 - a patient's embeddings stay in memory while it is explained
    reference = NormalLungReference.load(MODEL_DIR / "normal_lung.json")
    services = {MASK_METHOD: OutcomeService(predictor, builder), "normal-lung reference":
                OutcomeService(predictor, builder, reference)}
    patients = read_cohort(args.data / "metadata.csv")[: args.limit or None]
    rows: list[dict[str, object]] = []
    rng = np.random.default_rng(0)
    t_start = time.time()
    for i, patient in enumerate(patients):
        images = []
        for im in patient.images:
            pixels, mask = load_image(builder, args.data, args.embeddings, im.filename)
            images.append(ImageInput(im.filename, im.offset, pixels, mask))
        record = builder.build(patient.patient_id, patient.ehr, images)
        seen, mod = predictor.effective(record, "both")
        head = predictor.head(args.outcome, mod)
        if "image" not in head.model.spec.blocks or not seen.images:
            continue
        encoders = predictor.encoders_for(mod)

        def logit(rec: PatientRecord, head=head, encoders=encoders) -> float:  # noqa: ANN001
            return float(head.model.logits([rec], encoders)[0])

        risk = float(head.probability(np.array([logit(seen)]))[0])
        by_name = {im.filename: im for im in images}
        for t, name in enumerate(seen.filenames):
            parts = builder.image_parts(by_name[name].image, by_name[name].mask)
            if parts.frame_lungs is None:
                continue
            for method, service in services.items():
                row = score_map(service, seen, t, parts, logit, rng)
                rows.append({"patient": patient.patient_id, "image": name, "risk": risk, "method": method,
                             "mask": parts.source, **row})
        print(f"{i + 1}/{len(patients)} patients, {len(rows) // 2} X-rays, {time.time() - t_start:.0f} s", flush=True)
    with open(args.out / "rows.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.md").write_text(summarise(rows, args.outcome) + "\n")
    print(summarise(rows, args.outcome))
    return 0


def summarise(rows: list[dict], outcome: str) -> str:
    """The table of ``docs/results.md`` (computed from rows.csv)."""
    risks = sorted({(r["patient"], r["risk"]) for r in rows}, key=lambda pr: pr[1])
    cut = np.quantile([r for _, r in risks], 0.75)
    lines = [f"Outcome `{outcome}`, {len(risks)} patients, {len(rows) // 2} X-rays with lungs; top risk quartile: "
             f"p ≥ {cut:.2f}.", "",
             "| method | (a) Spearman ρ, positive part vs opacity: median [IQR] | ρ > 0 | signed ρ median | "
             "(b) top-quartile risk: red / blue lung area | all X-rays: red / blue | (c) s per X-ray map (median) | "
             "deletion: top-first vs random, mean logit drop | top-first faster |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        own = [r for r in rows if r["method"] == method]
        top = [r for r in own if r["risk"] >= cut]
        rho = np.array([r["rho_pos"] for r in own])
        q1, med, q3 = np.percentile(rho, [25, 50, 75])
        lines.append(
            f"| {method} | {med:.2f} [{q1:.2f}, {q3:.2f}] | {np.mean(rho > 0):.0%} | "
            f"{statistics.median(r['rho'] for r in own):.2f} | "
            f"{np.mean([r['red'] for r in top]):.0%} / {np.mean([r['blue'] for r in top]):.0%} | "
            f"{np.mean([r['red'] for r in own]):.0%} / {np.mean([r['blue'] for r in own]):.0%} | "
            f"{statistics.median(r['seconds'] for r in own):.2f} | "
            f"{np.mean([r['auc_top'] for r in own]):+.2f} vs {np.mean([r['auc_random'] for r in own]):+.2f} | "
            f"{np.mean([r['auc_top'] < r['auc_random'] for r in own]):.0%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
