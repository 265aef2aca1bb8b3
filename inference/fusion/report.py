"""``docs/results.md`` from an :class:`~inference.fusion.experiments.Experiment`: every number printed by code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from inference.fusion.candidates import auroc
from inference.fusion.cohort import OUTCOMES
from inference.fusion.cv_metrics import ALPHAS, RowMetrics, conformal_study, row_metrics
from inference.fusion.experiments import ABLATION, Experiment
from inference.fusion.nested_cv import CANDIDATES, LOGISTIC_BASELINE, SELECTED
from inference.fusion.outcome_model import OutcomePredictor

SHORT = {"went_icu": "ICU", "intubated": "intubation", "death": "death", "needed_supplemental_O2": "O₂"}


def _row(name: str, m: RowMetrics) -> str:
    per = " | ".join(f"{m.auroc.get(o, float('nan')):.3f}" for o in OUTCOMES)
    return (f"| {name} | {per} | **{m.macro:.3f}** ± {m.macro_sd:.3f} | {m.brier:.3f} | {m.ece:.3f} | "
            f"{m.coverage:.2f} | {m.singletons:.2f} |")


def spo2_check(predictor: OutcomePredictor, records: Sequence[object]) -> dict[str, int]:
    """Per outcome, how many (patient, SpO₂ step) pairs have a *lower* risk at a lower SpO₂ (should be 0)."""
    from inference.fusion.design import PatientRecord

    grid = np.arange(30.0, 100.5, 2.0)
    out = {}
    for outcome in OUTCOMES:
        bad = 0
        for rec in records:
            assert isinstance(rec, PatientRecord)
            probs = [predictor.probability(PatientRecord(rec.patient_id, {**rec.ehr, "pO2_saturation": v}, rec.images,
                                                         rec.filenames, rec.offsets), outcome) for v in grid]
            bad += int(np.sum(np.diff(probs) > 1e-12))
        out[outcome] = bad
    return out


def spo2_effect(predictor: OutcomePredictor, records: Sequence[object]) -> dict[str, float]:
    from inference.fusion.design import PatientRecord

    out = {}
    for outcome in OUTCOMES:
        deltas = []
        for rec in records:
            assert isinstance(rec, PatientRecord)
            p = [predictor.probability(PatientRecord(rec.patient_id, {**rec.ehr, "pO2_saturation": v}, rec.images,
                                                     rec.filenames, rec.offsets), outcome) for v in (60.0, 99.0)]
            deltas.append(p[0] - p[1])
        out[outcome] = float(np.median(deltas))
    return out


def format_results(exp: Experiment, predictor: OutcomePredictor, command: str, seeds: Sequence[int],
                   mamba_seeds: Sequence[int]) -> str:
    rows = [c.name for c in CANDIDATES] + list(SELECTED.values())
    metrics = {n: m for n in rows if (m := row_metrics(exp.runs, n, OUTCOMES)) is not None}
    mamba = {n: m for n in {k for r in exp.mamba_runs for k in r.logits}
             if (m := row_metrics(exp.mamba_runs, n, OUTCOMES)) is not None}
    head = ("| model | " + " | ".join(SHORT[o] for o in OUTCOMES)
            + " | macro-AUROC ± sd (seeds) | Brier | ECE | coverage 90 % | singletons 90 % |")
    rule = "|---" * (len(OUTCOMES) + 6) + "|"
    n_lab = {o: int((~np.isnan(exp.labels[:, k])).sum()) for k, o in enumerate(OUTCOMES)}
    lines = [
        "# Results: outcome predictor, nested cross-validation on the dev cohort", "",
        f"Produced by `{command}`; every number below is printed by that command (rerun it to reproduce).", "",
        f"Cohort: {len(exp.records)} patients, {sum(len(r.images) for r in exp.records)} X-rays; labelled patients "
        + ", ".join(f"{SHORT[o]} {n_lab[o]}" for o in OUTCOMES) + ".",
        "", "## How the models were compared", "",
        f"- **Nested CV, patient-grouped**: per outcome, stratified 5-fold outer CV over the labelled patients "
        f"(one row per patient, so a test patient's X-rays, severity scores and EHR never reach training), "
        f"repeated with seeds {', '.join(map(str, seeds))}. Inside each outer training set a stratified 5-fold inner "
        "CV tunes each candidate's single hyper-parameter (C of the logistic models from 0.03/0.1/0.3/1; trees are "
        "not tuned: depth 2, 60 rounds, learning rate 0.05) and scores it; every encoder (EHR medians, image "
        "PCA, severity regressor) is refitted inside each training set.",
        "- **Selection rows** run the shipping rule inside the outer loop: per outcome, the candidate with the best "
        "inner-CV AUROC (ties → the simpler one) within its group — the shipped default ('both') among the three "
        "fusion recipes, 'EHR only' and 'image only' among their two recipes each. Their outer AUROC is the honest "
        "estimate of shipping 'the winner per outcome'.",
        "- AUROC: out-of-fold, per outcome, mean over seeds (± sd over seeds, averaged over outcomes). Brier and "
        "ECE (10 equal-width bins) are **pooled over the four outcomes** after temperature scaling fitted on the "
        "other folds. Coverage and singletons: Mondrian split-conformal sets at 90 %, calibrated on the other "
        "folds; 'singletons' = fraction of patient-outcomes whose set is {yes} or {no}.",
        "- Missing EHR values: the logistic models use the training median **plus a missing-indicator column** "
        "(explicit choice, so 'not measured' is its own signal); the trees route NaN down a learnt branch. "
        "Never inputs: survival, intubated, went_icu, needed_supplemental_O2, in_icu, intubation_present, "
        "extubated, clinical_notes, other_notes, location. `finding` is read only by the logistic baseline row "
        "(the issue's recipe), never by a shipped model.",
        f"- MedFusion-Mamba (gated cross-attention, the previous shipped architecture) runs through its own trainer "
        f"(outer 5-fold with its inner early-stopping split, seeds {', '.join(map(str, mamba_seeds)) or 'none'}: it "
        "is ~100× slower than the rest on 2 CPU cores, so it has fewer seeds and is not part of the selection).",
        "", "## Nested-CV table", "", head, rule,
    ]
    for name in rows:
        if name in metrics:
            lines.append(_row(name, metrics[name]))
    for name, m in mamba.items():
        lines.append(_row(name, m))
    shipped, baseline = metrics[SELECTED["both"]], metrics[LOGISTIC_BASELINE.name]
    singles = {n: metrics[n].macro for n in (SELECTED["ehr"], SELECTED["image"]) if n in metrics}
    single_rows = {c.name: metrics[c.name].macro for c in CANDIDATES if c.modality != "both" and c is not LOGISTIC_BASELINE}
    best_single = max(single_rows, key=single_rows.__getitem__)
    lines += ["", "## What the numbers say (computed)", ""]
    verdict = "beats" if shipped.macro > baseline.macro else "equals" if shipped.macro == baseline.macro else "does NOT beat"
    lines.append(f"- The shipped procedure ({shipped.macro:.3f}) {verdict} the logistic baseline ({baseline.macro:.3f}) "
                 f"in nested-CV macro-AUROC; the best single-modality candidate is {best_single} "
                 f"({single_rows[best_single]:.3f}); the single-modality selections give "
                 + ", ".join(f"{n} {v:.3f}" for n, v in singles.items()) + ".")
    lines.append(f"- Differences of a few AUROC points are within the seed-to-seed spread (± {shipped.macro_sd:.3f} "
                 "for the shipped procedure): with 22–91 labelled patients per outcome the ranking is not reliable, "
                 "and the held-out cohort is the real test.")
    lines += ["", "## Ablation: image features (image-only and early-fusion logistic models)", "",
              head, rule]
    for spec in ABLATION:
        if (m := row_metrics(exp.runs, spec.name, OUTCOMES)) is not None:
            lines.append(_row(spec.name, m))
    for name in ("image · logistic", "early fusion · logistic"):
        lines.append(_row(f"{name} [zones + severity + embedding PCA] (used by every candidate)", metrics[name]))
    lines.append(f"\nSeverity estimate of the {len(exp.severity)} scored images, patient-grouped 5-fold out-of-fold "
                 "mean absolute error (extent 0–8, opacity 0–6): "
                 + "; ".join(f"{k} {v:.2f}" for k, v in exp.severity_mae.items()) + ". The shipped severity output "
                 "and its 90 % conformal interval come from the ridge regressor.")
    lines += ["", "## What ships, per outcome", "",
              "| outcome | both (default) | EHR only | image only | chosen in outer folds (both) | sets | base rate |",
              "|---|---|---|---|---|---|---|"]
    for outcome in OUTCOMES:
        picks = Counter(p for r in exp.runs if r.outcome == outcome for p in r.chosen.get("both", []))
        freq = ", ".join(f"{n} {c}" for n, c in picks.most_common(3))
        c = exp.chosen[outcome]
        lines.append(f"| {SHORT[outcome]} | {c['both']} | {c['ehr']} | {c['image']} | {freq} | "
                     f"{exp.conformal_kind[outcome]['both']} | {predictor.base_rates[outcome]:.2f} |")
    lines += ["", "Chosen by the inner-CV AUROC on all labelled patients, averaged over the seeds (the selection rows "
              "above used one inner CV per outer fold, so they are if anything pessimistic about this pick): "
              + "; ".join(f"{SHORT[o]}: " + ", ".join(f"{n} {v:.3f}" for n, v in sorted(
                  exp.inner_scores[o].items(), key=lambda kv: -kv[1])[:3]) for o in OUTCOMES) + "."]
    lines += conformal_section(exp)
    lines += auto_section(exp)
    bad = spo2_check(predictor, exp.records)
    effect = spo2_effect(predictor, exp.records)
    lines += ["", "## Directionality: SpO₂", "",
              "Every shipped model is constrained so that a lower SpO₂ can never lower a risk: the SpO₂ coefficient "
              "of the logistic models is bounded ≤ 0, the trees have a monotone (non-increasing) constraint on SpO₂, "
              "and stacking weights are ≥ 0. Check on the shipped model, every dev patient, SpO₂ swept 30 → 100 % "
              "in steps of 2 with everything else fixed — pairs where the risk *rose* with SpO₂: "
              + ", ".join(f"{SHORT[o]} {n}" for o, n in bad.items()) + ".",
              "", "How much SpO₂ moves the risk (median over the dev patients of p(SpO₂ 60 %) − p(SpO₂ 99 %), other "
              "inputs as recorded): " + ", ".join(f"{SHORT[o]} {v:+.3f}" for o, v in effect.items()) + ". SpO₂ is "
              "recorded for only a third of the patients, so the regularised models give it a modest weight; its "
              "direction is fixed, its size is what this cohort supports."]
    return "\n".join(lines) + "\n"


def conformal_section(exp: Experiment) -> list[str]:
    lines = ["", "## Conformal sets of the shipped models: coverage and singletons", "",
             "Each outcome's shipped recipe ('both'), its nested-CV out-of-fold probabilities calibrated on the "
             "other folds, mean over seeds. Mondrian = per-class thresholds (coverage guaranteed for each class); "
             "pooled = one threshold (guarantee only on average over the classes: a rare class can be "
             "under-covered). The shipped calibrator is pooled only where it gives more singletons at 90 % and "
             "keeps each class's out-of-fold coverage ≥ 0.85; otherwise Mondrian.", "",
             "| outcome | calibration | " + " | ".join(f"{round(100 * (1 - a))} %: cover / singletons / cover yes·no"
                                                      for a in ALPHAS) + " |",
             "|---|---|" + "---|" * len(ALPHAS)]
    half = []
    for outcome in OUTCOMES:
        pick = exp.chosen[outcome]["both"]
        study = conformal_study(exp.runs, pick, [outcome])
        shipped_kind = exp.conformal_kind[outcome]["both"]
        for kind in ("Mondrian", "pooled"):
            cells = []
            for a in ALPHAS:
                s = study.get((outcome, kind, a))
                cells.append("–" if s is None else
                             f"{s.coverage:.2f} / **{s.singletons:.2f}** / {s.coverage_pos:.2f}·{s.coverage_neg:.2f}")
            lines.append(f"| {SHORT[outcome]} | {kind}{' (shipped)' if kind == shipped_kind else ''} | "
                         + " | ".join(cells) + " |")
        shipped = study.get((outcome, shipped_kind, 0.1))
        if shipped is not None and shipped.singletons >= 0.5:
            half.append(SHORT[outcome])
    lines.append("")
    lines.append(f"- At 90 %, with the shipped calibrator, at least half of the sets are singletons for: "
                 f"{', '.join(half) or 'no outcome'}. Elsewhere the model's discrimination on this cohort (and, for "
                 "death and O₂, the few patients of one class) does not allow a confident answer for most patients "
                 "at that level: the set honestly says 'cannot decide'.")
    return lines


def auto_section(exp: Experiment) -> list[str]:
    """How much the lung masks matter: the shipped recipes on X-rays without the supplied masks."""
    if not exp.auto_runs:
        return []
    n_auto = sum(im.mask_source == "auto" for r in exp.auto_records for im in r.images)
    how = (f"the automatic lung segmenter made the mask of {n_auto} of "
           f"{sum(len(r.images) for r in exp.auto_records)} X-rays") if n_auto else \
        "no automatic lung segmenter is installed, so these X-rays have no lung features at all"
    lines = ["", "## Without supplied lung masks (`predict` without `--masks`)", "",
             f"The same recipes, refitted and recalibrated on the X-rays' features computed without the cohort's "
             f"masks ({how}); out-of-fold AUROC, seed 0, next to the same recipe with the supplied masks. The "
             "shipped model uses these '/auto' heads whenever none of a patient's X-rays comes with a mask.", "",
             "| outcome | recipe (both) | with masks | without | recipe (image only) | with masks | without |",
             "|---|---|---|---|---|---|---|"]
    for outcome in OUTCOMES:
        run = next(r for r in exp.auto_runs if r.outcome == outcome)
        ref = next(r for r in exp.runs if r.outcome == outcome and r.seed == run.seed)
        cells = []
        for modality in ("both", "image"):
            name = exp.chosen[outcome][modality]
            cells += [name, f"{auroc(ref.logits[name], ref.y):.3f}", f"{auroc(run.logits[name], run.y):.3f}"]
        lines.append(f"| {SHORT[outcome]} | " + " | ".join(cells) + " |")
    return lines
