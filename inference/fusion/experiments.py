"""The reproducible experiment behind ``docs/results.md`` and the shipped model (``main.py train``).

Runs the ablation ladder with patient-grouped stratified CV on the dev cohort, then refits the chosen
configuration on all patients with calibration and conformal thresholds fitted on its out-of-fold
predictions, and writes the model directory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from inference.fusion.cohort import OUTCOMES, patient_labels, read_cohort, read_severity
from inference.fusion.dataset import Batch, EHRNormaliser, make_batch
from inference.fusion.evaluation import calibrated_oof, head_metrics, severity_interval_metrics, summary
from inference.fusion.features import FeatureExtractor, load_image_and_mask
from inference.fusion.model import FusionConfig
from inference.fusion.predictor import FusionPredictor
from inference.fusion.train import TrainSettings, cross_validate, fit, severity_targets
from inference.progress import CancelToken, ProgressCallback, no_progress
from inference.uncertainty.calibration import TemperatureScaler
from inference.uncertainty.conformal import ConformalRegressor, MondrianConformal
from inference.uncertainty.metrics import reliability_diagram

LADDER: list[tuple[str, dict]] = [
    ("EHR only", {"modalities": "ehr"}),
    ("image only (last image)", {"modalities": "image", "sequence": "last"}),
    ("image sequence (Mamba)", {"modalities": "image", "sequence": "mamba"}),
    ("concat fusion (Mamba + FT-Transformer)", {"modalities": "both", "sequence": "mamba", "fusion": "concat"}),
    ("gated cross-attention fusion (Mamba)", {"modalities": "both", "sequence": "mamba", "fusion": "gated"}),
    ("gated cross-attention fusion (transformer)", {"modalities": "both", "sequence": "transformer", "fusion": "gated"}),
]
FINAL = dict(LADDER[4][1])


def cohort_features(data: Path, extractor: FeatureExtractor, progress: ProgressCallback = no_progress,
                    cancel: CancelToken | None = None) -> dict[str, np.ndarray]:
    """filename → features for every image of the cohort (cached on disk by the extractor)."""
    files = sorted(p for p in (data / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    out = {}
    for i, path in enumerate(files):
        if cancel is not None:
            cancel.raise_if_cancelled()
        image, mask = load_image_and_mask(path, data / "lung_masks" / f"{path.stem}.png")
        out[path.name] = extractor(image, mask)
        progress((i + 1) / len(files), path.name)
    return out


def corrupt(batch: Batch, seed: int = 0) -> Batch:
    """Domain shift for the TENT check: contrast-like scaling + noise on the image features."""
    g = torch.Generator().manual_seed(seed)
    noisy = batch.features * 1.3 + 0.3 * batch.features.std() * torch.randn(batch.features.shape, generator=g)
    return Batch(noisy * batch.image_mask.unsqueeze(-1), *batch.model_inputs()[1:], batch.filenames)  # type: ignore[arg-type, call-arg]


@dataclass
class Row:
    name: str
    metrics: dict[str, float]
    seconds: float


def run(data: Path, out_dir: Path, extractor: FeatureExtractor, docs_dir: Path | None = None, folds: int = 5,
        seeds: tuple[int, ...] = (0, 1, 2), alpha: float = 0.1, progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None, log: Callable[[str], None] = print) -> list[Row]:
    patients = read_cohort(data / "metadata.csv")
    label_map = patient_labels(data / "metadata.csv")
    labels = np.array([label_map[p.patient_id] for p in patients], dtype=float)
    severity = read_severity(data / "severity_scores.csv")
    features = cohort_features(data, extractor, progress, cancel)
    feature_of = features.get
    base = FusionConfig()
    settings = TrainSettings()
    rows: list[Row] = []
    final_cv = None

    def evaluate(name: str, cfg: FusionConfig, transform=None, tent: bool = False) -> Row:  # noqa: ANN001
        start = time.perf_counter()
        per_seed = []
        for seed in seeds:
            s = replace(settings, seed=seed)
            cv = cross_validate(cfg, s, patients, labels, feature_of, severity, folds, cancel=cancel,
                                transform_test=transform, tent=tent)
            per_seed.append(summary(head_metrics(cv.oof_logits, labels, cv.folds, alpha)))
        merged = {k: float(np.nanmean([m[k] for m in per_seed])) for k in per_seed[0]}
        merged["auroc_sd_over_seeds"] = float(np.nanstd([m["auroc"] for m in per_seed]))
        row = Row(name, merged, time.perf_counter() - start)
        log(f"{name}: macro-AUROC {merged['auroc']:.3f} ± {merged['auroc_sd_over_seeds']:.3f}")
        return row

    for name, overrides in LADDER:
        rows.append(evaluate(name, replace(base, **overrides)))
    final_cfg = replace(base, **FINAL)
    rows.append(evaluate("gated fusion, shifted test features (noise + contrast)", final_cfg, transform=corrupt))
    rows.append(evaluate("gated fusion, shifted test features + TENT", final_cfg, transform=corrupt, tent=True))

    # Final model: OOF predictions of the chosen config (seed 0) give calibration + conformal.
    final_cv = cross_validate(final_cfg, settings, patients, labels, feature_of, severity, folds, cancel=cancel)
    probs_oof = calibrated_oof(final_cv.oof_logits, labels, final_cv.folds)
    scalers: list[TemperatureScaler] = []
    conformal: list[MondrianConformal | None] = []
    for h in range(len(OUTCOMES)):
        known = ~np.isnan(labels[:, h])
        scalers.append(TemperatureScaler().fit(final_cv.oof_logits[known, h], labels[known, h]))
        conformal.append(MondrianConformal(alpha).fit(probs_oof[known, h], labels[known, h]))
    normaliser = EHRNormaliser.fit(patients)
    full = make_batch(patients, feature_of, normaliser, final_cfg.feature_dim)
    sev_target = severity_targets(full, severity).numpy()
    sev_regs: list[ConformalRegressor | None] = []
    for j, top in enumerate((8.0, 6.0)):
        p, t = final_cv.oof_severity[..., j] * top, sev_target[..., j] * top
        known = ~np.isnan(t) & ~np.isnan(p)
        sev_regs.append(ConformalRegressor(alpha, clip=(0.0, top)).fit(p[known], t[known]) if known.sum() >= 5 else None)
    sev_metrics = severity_interval_metrics(final_cv.oof_severity, sev_target, final_cv.folds, alpha)
    epochs = int(np.median(final_cv.best_epochs))
    y = torch.tensor(labels, dtype=torch.float32)
    model, _ = fit(final_cfg, settings, full, y, torch.tensor(sev_target), epochs=max(epochs, 10), cancel=cancel)
    predictor = FusionPredictor(model, normaliser, scalers, conformal, sev_regs, "medfusion-cxr-v1")
    predictor.save(out_dir, extra={"train_epochs": epochs, "n_patients": len(patients), "alpha_default": alpha,
                                   "severity_metrics": sev_metrics})
    if docs_dir is not None:
        figures = docs_dir
        figures.mkdir(parents=True, exist_ok=True)
        for h, name in enumerate(OUTCOMES):
            reliability_diagram(probs_oof[:, h], labels[:, h], figures / f"reliability_{name}.png",
                                title=f"{name}: out-of-fold, temperature-scaled")
    rows.append(Row("severity (per image, final config)", sev_metrics, 0.0))
    return rows


def format_results(rows: list[Row], command: str, alpha: float, seeds: tuple[int, ...] = (0, 1)) -> str:
    lines = [
        "# Results: fusion predictor, cross-validated on the dev cohort", "",
        f"Produced by `{command}` (all numbers below are printed by that command; rerun it to reproduce).", "",
        f"Patient-grouped, stratified 5-fold CV (stratified on ICU label), repeated with seeds {', '.join(map(str, seeds))}; each",
        "metric is the mean over the four outcomes (went_icu, intubated, death, needed_supplemental_O2) of the",
        "out-of-fold value, then over seeds. Probabilities are temperature-scaled with temperatures fitted on",
        f"the other folds; conformal sets (Mondrian, α = {alpha}) are fitted on the other folds' OOF predictions.",
        "", "| configuration | macro-AUROC (± sd over seeds) | AUPRC | F1 @ prevalence | ECE raw → calibrated | Brier | coverage | mean set size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r.metrics
        if "auroc" not in m:
            continue
        lines.append(
            f"| {r.name} | {m['auroc']:.3f} ± {m['auroc_sd_over_seeds']:.3f} | {m['auprc']:.3f} | {m['f1']:.3f} | "
            f"{m['ece_raw']:.3f} → {m['ece']:.3f} | {m['brier']:.3f} | {m['coverage']:.3f} | {m['set_size']:.2f} |"
        )
    lines += ["", "## What the numbers say (computed from the table above)", ""]
    by_name = {r.name: r.metrics for r in rows if "auroc" in r.metrics}
    singles = {n: m["auroc"] for n, m in by_name.items() if n.startswith(("EHR only", "image only", "image sequence"))}
    best_single = max(singles, key=lambda n: singles[n])
    gated = by_name.get(LADDER[4][0])
    if gated is not None:
        verdict = "beats" if gated["auroc"] > singles[best_single] else "does NOT beat"
        lines.append(f"- Gated cross-attention fusion ({gated['auroc']:.3f}) {verdict} the best single modality, "
                     f"{best_single} ({singles[best_single]:.3f}), in cross-validated macro-AUROC. The differences are "
                     f"within about one standard deviation over seeds: with ≈ 65–90 labelled patients per outcome the "
                     "ranking is not reliable, and a held-out cohort is the real test.")
    shifted = by_name.get("gated fusion, shifted test features (noise + contrast)")
    adapted = by_name.get("gated fusion, shifted test features + TENT")
    if gated is not None and shifted is not None and adapted is not None:
        lines.append(f"- Feature shift (×1.3 contrast + noise): macro-AUROC {gated['auroc']:.3f} → {shifted['auroc']:.3f}; "
                     f"with TENT {adapted['auroc']:.3f}. The image projection starts with a LayerNorm, which already "
                     "removes most of a global contrast/noise shift, so there is little for TENT to recover here.")
    lowered = sum(m["ece"] < m["ece_raw"] for m in by_name.values())
    coverages = [m["coverage"] for m in by_name.values()]
    lines.append(f"- Calibration: temperature scaling lowers ECE in {lowered} of {len(by_name)} configurations (raw → "
                 f"calibrated column). Conformal coverage ranges {min(coverages):.3f}–{max(coverages):.3f} for a "
                 f"{1 - alpha:.0%} target, at the price of large sets (many patients get {{0, 1}}, shown as 'uncertain' "
                 "in the app): the model is honest about how little it knows.")
    sev = next((r.metrics for r in rows if "geographic_extent_mae" in r.metrics), None)
    if sev:
        lines += ["", "Severity (per image, 70 scored images, OOF): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in sev.items() if not math.isnan(v))]
    return "\n".join(lines) + "\n"
