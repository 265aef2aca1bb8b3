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

from inference.explain.anatomy import cells_by_attribution, deletion_curve, restrict_to_lungs, scored_cells  # noqa: E402
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
PIXELS = "normal lung: pixels"
PIXELS_EMBEDDING = "normal lung: pixels + encoder vectors"


def cell_opacity(frame: np.ndarray, lungs: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
    """Mean lung pixel ÷ soft-tissue level per cell (the opacity proxy)."""
    soft = soft_tissue_level(frame, lungs)
    out = []
    for r, c in cells:
        sel = lungs[r:r + OCCLUSION_CELL, c:c + OCCLUSION_CELL]
        out.append(float(frame[r:r + OCCLUSION_CELL, c:c + OCCLUSION_CELL][sel].mean() / soft))
    return np.array(out)


def perturbations(services: dict[str, OutcomeService], record: PatientRecord, t: int, parts, logit  # noqa: ANN001
                  ) -> dict[str, object]:
    """Each method's own change as "logit with these cells changed" (the mask method: cells taken out)."""
    out = {}
    for method, service in services.items():
        perturb = service.image_logit(record, t, parts, logit)
        if service.reference is None:
            out[method] = (lambda changed, perturb=perturb: perturb(parts.frame_lungs & ~changed))
        else:
            out[method] = perturb
    return out


def score_xray(services: dict[str, OutcomeService], record: PatientRecord, t: int, parts, logit,  # noqa: ANN001
               rng: np.random.Generator, deletion: bool = True) -> list[dict[str, float]]:
    """One X-ray, every method: the measurements of the module docstring."""
    lungs = parts.frame_lungs
    cells = scored_cells(lungs, OCCLUSION_CELL, 0.2)
    opacity = cell_opacity(parts.frame, lungs, cells)
    changes = perturbations(services, record, t, parts, logit)

    def drop(change, order) -> float:  # noqa: ANN001 - mean logit change over the deletion steps
        if not deletion or change is None:
            return float("nan")
        curve = deletion_curve(change, lungs, order, OCCLUSION_CELL, STEPS)
        return float((curve[1:] - curve[0]).mean())

    orders = [[cells[i] for i in rng.permutation(len(cells))] for _ in range(RANDOM_ORDERS)]
    random_drop = {m: float(np.mean([drop(change, o) for o in orders])) for m, change in changes.items()}
    rows = []
    for method, service in services.items():
        t0 = time.perf_counter()
        attr = service.image_attribution(record, t, parts, logit)
        seconds = time.perf_counter() - t0
        values = np.array([attr[r, c] for r, c in cells])
        pos = np.clip(values, 0, None)
        rho_pos = stats.spearmanr(pos, opacity).statistic if pos.std() > 0 else 0.0
        rho = stats.spearmanr(values, opacity).statistic if values.std() > 0 else 0.0
        shown = restrict_to_lungs(attr, lungs, cell=OCCLUSION_CELL, scored=_scored_pixels(lungs)).values[lungs]
        top = cells_by_attribution(attr, lungs, OCCLUSION_CELL)
        row = {"method": method, "seconds": seconds, "cells": len(cells), "rho_pos": float(np.nan_to_num(rho_pos)),
               "rho": float(np.nan_to_num(rho)), "red": float((shown > SIGNIFICANT).mean()),
               "blue": float((shown < -SIGNIFICANT).mean()),
               "drop_top_own": drop(changes[method], top), "drop_random_own": random_drop[method]}
        for name, key in ((PIXELS, "pixels"), (PIXELS_EMBEDDING, "both")):
            row[f"drop_top_{key}"] = drop(changes.get(name), top)
            row[f"drop_random_{key}"] = random_drop.get(name, float("nan"))
        rows.append(row)
    return rows


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
    parser.add_argument("--no-deletion", action="store_true", help="skip the deletion check (3× faster)")
    parser.add_argument("--shipped-only", action="store_true", help="only the earlier and the shipped map")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    predictor = OutcomePredictor.load(MODEL_DIR)
    builder = cohort_builder(args.cache, args.embeddings, args.data)
    builder._memory_items = 64  # noqa: SLF001 - a patient's embeddings stay in memory while it is explained
    reference = NormalLungReference.load(MODEL_DIR / "normal_lung.json")
    services = {MASK_METHOD: OutcomeService(predictor, builder),
                PIXELS: OutcomeService(predictor, builder, reference, replace_embedding=False),
                PIXELS_EMBEDDING: OutcomeService(predictor, builder, reference, replace_embedding=True)}
    if args.shipped_only:
        del services[PIXELS_EMBEDDING]
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
            for row in score_xray(services, seen, t, parts, logit, rng, not args.no_deletion):
                rows.append({"patient": patient.patient_id, "image": name, "risk": risk, "mask": parts.source, **row})
        print(f"{i + 1}/{len(patients)} patients, {len(rows) // len(services)} X-rays, {time.time() - t_start:.0f} s",
              flush=True)
    with open(args.out / "rows.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.md").write_text(summarise(rows, args.outcome) + "\n")
    print(summarise(rows, args.outcome))
    return 0


def summarise(rows: list[dict], outcome: str) -> str:
    """The tables of ``docs/results.md`` (computed from rows.csv)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    risks = sorted({(r["patient"], r["risk"]) for r in rows}, key=lambda pr: pr[1])
    cut = np.quantile([r for _, r in risks], 0.75)
    n_xrays = len(rows) // len(methods)
    lines = [f"Outcome `{outcome}`, {len(risks)} dev patients whose shipped model reads the X-rays, {n_xrays} X-rays "
             f"with lungs; top risk quartile: p ≥ {cut:.2f} "
             f"({len({r['image'] for r in rows if r['risk'] >= cut})} X-rays).", "",
             "| method | (a) Spearman ρ, positive part vs cell opacity: median [IQR] | ρ > 0 | signed map: median ρ | "
             "(b) top-quartile risk: red / blue lung area | all X-rays: red / blue | (c) s per X-ray map (median) |",
             "|---|---|---|---|---|---|---|"]
    for method in methods:
        own = [r for r in rows if r["method"] == method]
        top = [r for r in own if r["risk"] >= cut]
        rho = np.array([float(r["rho_pos"]) for r in own])
        q1, med, q3 = np.percentile(rho, [25, 50, 75])
        lines.append(
            f"| {method} | {med:.2f} [{q1:.2f}, {q3:.2f}] | {np.mean(rho > 0):.0%} | "
            f"{statistics.median(float(r['rho']) for r in own):.2f} | "
            f"{np.mean([float(r['red']) for r in top]):.0%} / {np.mean([float(r['blue']) for r in top]):.0%} | "
            f"{np.mean([float(r['red']) for r in own]):.0%} / {np.mean([float(r['blue']) for r in own]):.0%} | "
            f"{statistics.median(float(r['seconds']) for r in own):.2f} |")
    if all(np.isnan(float(r["drop_top_own"])) for r in rows):
        return "\n".join(lines)
    lines += ["", "Deletion check: mean logit change over 10 steps of changing the map's top cells first vs random "
              "cells (mean of 3 orders); more negative = the risk falls faster. 'faster' = share of X-rays where "
              "top-first falls below random.", "",
              "| map | under its own change: top / random (faster) | cells made normal (pixels): top / random (faster) "
              "| cells made normal (pixels + encoder vectors): top / random (faster) |", "|---|---|---|---|"]
    for method in methods:
        own = [r for r in rows if r["method"] == method]
        cells = []
        for key in ("own", "pixels", "both"):
            top = np.array([float(r[f"drop_top_{key}"]) for r in own])
            rand = np.array([float(r[f"drop_random_{key}"]) for r in own])
            cells.append(f"{top.mean():+.2f} / {rand.mean():+.2f} ({np.mean(top < rand):.0%})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
