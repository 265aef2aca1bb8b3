"""The reproducible experiment behind ``docs/results.md`` and the shipped model (``main.py train``).

1. Features of every X-ray of the cohort through the one :class:`CaseBuilder` (supplied lung masks where
   the cohort has them, the automatic mask otherwise).
2. Nested CV of every candidate per outcome, repeated over seeds; the MedFusion-Mamba model through its
   own trainer (outer CV with its inner early-stopping split; fewer seeds, it is the slow one).
3. The selection procedure run once more on all patients picks, per outcome and per modality, the model
   that ships; temperatures and conformal scores come from that procedure's out-of-fold predictions.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.fusion.candidates import CandidateFitter, CandidateSpec, Encoders, OutcomeModel, auroc
from inference.fusion.case import CaseBuilder, ImageInput, read_mask_file
from inference.fusion.cohort import OUTCOMES, patient_labels, read_cohort, read_rows, read_severity
from inference.fusion.cv_metrics import calibrated, conformal_study, oof_probabilities, pooled_logits
from inference.fusion.design import SEVERITY_TOP, ImageEncoder, PatientRecord
from inference.fusion.nested_cv import CANDIDATES, GROUPS, OutcomeRun, run_all, run_outcome, select
from inference.fusion.outcome_model import MODALITIES, OutcomeHead, OutcomePredictor
from inference.progress import CancelToken, ProgressCallback, no_progress
from inference.uncertainty.calibration import TemperatureScaler
from inference.uncertainty.conformal import ConformalRegressor, MondrianConformal, PooledConformal

MODEL_ID = "medfusion-cxr-v2"
ABLATION: tuple[CandidateSpec, ...] = (
    CandidateSpec("image · logistic [pooled embedding only (previous features)]", "linear", ("image",), "pooled"),
    CandidateSpec("image · logistic [lung-zone opacity statistics]", "linear", ("image",), "zones"),
    CandidateSpec("image · logistic [zones + severity regressor]", "linear", ("image",), "zones+severity"),
    CandidateSpec("image · logistic [zones + severity head on the frozen encoder]", "linear", ("image",), "zones+head"),
    CandidateSpec("early fusion · logistic [pooled embedding only (previous features)]", "linear", ("ehr", "image"),
                  "pooled"),
    CandidateSpec("early fusion · logistic [zones + severity regressor]", "linear", ("ehr", "image"), "zones+severity"),
)
IMAGE_SETS = ("all", "pooled", "zones", "zones+severity", "zones+head")
SHIPPED_SET = "all"


@dataclass
class Experiment:
    records: list[PatientRecord]
    labels: np.ndarray  # (N, 4) 1/0/NaN
    severity: dict[str, tuple[float, float]]
    runs: list[OutcomeRun] = field(default_factory=list)
    mamba_runs: list[OutcomeRun] = field(default_factory=list)
    chosen: dict[str, dict[str, str]] = field(default_factory=dict)  # outcome → modality → candidate
    conformal_kind: dict[str, dict[str, str]] = field(default_factory=dict)  # outcome → modality → Mondrian|pooled
    inner_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    severity_mae: dict[str, float] = field(default_factory=dict)
    auto_records: list[PatientRecord] = field(default_factory=list)  # the same X-rays without supplied masks
    auto_runs: list[OutcomeRun] = field(default_factory=list)
    predictor: OutcomePredictor | None = None  # what was saved to the model folder


def cohort_records(data: Path, builder: CaseBuilder, progress: ProgressCallback = no_progress,
                   cancel: CancelToken | None = None, supplied_masks: bool = True,
                   ) -> tuple[list[PatientRecord], np.ndarray]:
    """Every patient of ``data/metadata.csv`` with its X-ray features (the training-only label matrix too).

    ``supplied_masks=False`` ignores ``lung_masks/``: the features a user without masks gets (automatic
    lung mask when a segmenter is installed, none otherwise)."""
    from inference.io.loader import open_image

    finding: dict[str, tuple[float, str]] = {}
    for row in read_rows(data / "metadata.csv"):
        pid = (row.get("patientid") or "").strip()
        try:
            offset = float(row.get("offset") or "inf")
        except ValueError:
            offset = math.inf
        if pid not in finding or offset < finding[pid][0]:
            finding[pid] = (offset, (row.get("finding") or "").strip())
    patients = read_cohort(data / "metadata.csv")
    total = sum(len(p.images) for p in patients)
    done = 0
    records = []
    for patient in patients:
        images = []
        for rec in patient.images:
            if cancel is not None:
                cancel.raise_if_cancelled()
            path = data / "images" / rec.filename
            if not path.is_file():
                continue
            image = open_image(path).array[0]
            mask = read_mask_file(data / "lung_masks" / f"{Path(rec.filename).stem}.png", image.shape) \
                if supplied_masks else None
            images.append(ImageInput(rec.filename, rec.offset, image, mask))
            done += 1
            progress(done / max(total, 1), rec.filename)
        record = builder.build(patient.patient_id, patient.ehr, images)
        record.finding = finding.get(patient.patient_id, (0.0, ""))[1]
        records.append(record)
    label_map = patient_labels(data / "metadata.csv")
    return records, np.array([label_map[r.patient_id] for r in records], dtype=float)


def mamba_runs(exp: Experiment, data: Path, seeds: Sequence[int], log: Callable[[str], None],
               cancel: CancelToken | None = None) -> list[OutcomeRun]:
    """The MedFusion-Mamba architecture (gated cross-attention) as a candidate: outer CV with its trainer."""
    import torch

    from inference.fusion.model import FusionConfig
    from inference.fusion.train import TrainSettings, cross_validate

    torch.set_num_threads(1)
    pooled = {name: im.pooled for r in exp.records for name, im in zip(r.filenames, r.images, strict=True)}
    patients = read_cohort(data / "metadata.csv")
    order = {r.patient_id: i for i, r in enumerate(exp.records)}
    labels = np.array([exp.labels[order[p.patient_id]] for p in patients])
    runs = []
    for seed in seeds:
        cv = cross_validate(FusionConfig(), TrainSettings(seed=seed), patients, labels, pooled.get, exp.severity,
                            cancel=cancel)
        for k, outcome in enumerate(OUTCOMES):
            known = ~np.isnan(labels[:, k])
            run = OutcomeRun(outcome, seed, labels[known, k], cv.folds[known], [p.patient_id for p, m in
                                                                               zip(patients, known, strict=True) if m])
            run.logits["MedFusion-Mamba (gated cross-attention)"] = cv.oof_logits[known, k]
            runs.append(run)
        log(f"MedFusion-Mamba seed {seed}: macro-AUROC "
            f"{np.mean([auroc(r.logits['MedFusion-Mamba (gated cross-attention)'], r.y) for r in runs[-4:]]):.3f}")
    return runs


def choose_and_fit(exp: Experiment, seeds: Sequence[int]) -> tuple[dict[str, dict[str, OutcomeHead]], Encoders]:
    """Per outcome and modality, the selection rule on all labelled patients, with the inner-CV AUROC
    averaged over ``seeds`` (less noisy than the single inner CV each outer fold had); the chosen recipe's
    own nested-CV out-of-fold predictions give its temperature and conformal calibration.

    The encoders are fitted on all patients (unsupervised, plus the severity scores), so every outcome's
    fitter builds the same ones; the last is returned, reduced to what the shipped heads read.
    """
    heads: dict[str, dict[str, OutcomeHead]] = {}
    encoders: Encoders | None = None
    for k, outcome in enumerate(OUTCOMES):
        known = ~np.isnan(exp.labels[:, k])
        labelled = [r for r, m in zip(exp.records, known, strict=True) if m]
        unlabelled = [r for r, m in zip(exp.records, known, strict=True) if not m]
        fits: dict[str, OutcomeModel] = {}
        scores: dict[str, list[float]] = {}
        for seed in seeds:
            fitter = CandidateFitter(labelled, exp.labels[known, k], unlabelled, exp.severity, (SHIPPED_SET,), seed)
            for spec in CANDIDATES:
                if any(spec.name in group for group in GROUPS.values()):
                    result = fitter.fit(spec)
                    scores.setdefault(spec.name, []).append(result.inner_auroc)
                    fits.setdefault(spec.name, result.model)  # the first seed's fitted model ships
            encoders = encoders or fitter.encoders
        exp.inner_scores[outcome] = {name: float(np.nanmean(v)) for name, v in scores.items()}
        heads[outcome], exp.chosen[outcome] = {}, {}
        for modality in MODALITIES:
            pick = select(exp.inner_scores[outcome], GROUPS[modality])
            exp.chosen[outcome][modality] = pick
            logits, y = pooled_logits(exp.runs, pick, outcome)
            temperature = TemperatureScaler().fit(logits, y).temperature
            kind = conformal_choice(exp.runs, pick, outcome)
            exp.conformal_kind.setdefault(outcome, {})[modality] = kind
            probs, y0 = oof_probabilities(exp.runs, pick, outcome, seeds[0])
            calibrator = (PooledConformal if kind == "pooled" else MondrianConformal)(0.1).fit(probs, y0)
            heads[outcome][modality] = OutcomeHead(fits[pick], temperature, calibrator, auroc(logits, y))
    assert encoders is not None
    return heads, Encoders(encoders.ehr, {SHIPPED_SET: encoders.images[SHIPPED_SET]})


def fit_auto_heads(exp: Experiment, heads: dict[str, dict[str, OutcomeHead]], seed: int = 0) -> Encoders:
    """The chosen 'both' and 'image' recipes once more on features made *without* the supplied lung masks
    (what ``predict`` without ``--masks`` computes): refitted on them, calibrated on their own 5-fold
    out-of-fold predictions (one seed: the recipe is fixed, only its calibration is estimated here).
    Returns the encoders they read (fitted on those features too)."""
    by_name = {c.name: c for c in CANDIDATES}
    for k, outcome in enumerate(OUTCOMES):
        known = ~np.isnan(exp.labels[:, k])
        labelled = [r for r, m in zip(exp.auto_records, known, strict=True) if m]
        unlabelled = [r for r, m in zip(exp.auto_records, known, strict=True) if not m]
        specs = [by_name[exp.chosen[outcome][m]] for m in ("both", "image")]
        run = run_outcome(exp.auto_records, exp.labels[:, k], outcome, exp.severity, seed,
                          list({s.name: s for s in specs}.values()), (SHIPPED_SET,))
        exp.auto_runs.append(run)
        fitter = CandidateFitter(labelled, exp.labels[known, k], unlabelled, exp.severity, (SHIPPED_SET,), seed)
        for modality, spec in zip(("both", "image"), specs, strict=True):
            logits = run.logits[spec.name]
            kind = exp.conformal_kind[outcome][modality]
            probs = calibrated(logits, run.y, run.folds)
            calibrator = (PooledConformal if kind == "pooled" else MondrianConformal)(0.1).fit(probs, run.y)
            heads[outcome][f"{modality}/auto"] = OutcomeHead(
                fitter.fit(spec).model, TemperatureScaler().fit(logits, run.y).temperature, calibrator,
                auroc(logits, run.y))
        encoders = fitter.encoders  # fitted on all patients: the same for every outcome
    return Encoders(encoders.ehr, {SHIPPED_SET: encoders.images[SHIPPED_SET]})


def conformal_choice(runs: Sequence[OutcomeRun], row: str, outcome: str, alpha: float = 0.1,
                     tolerance: float = 0.05) -> str:
    """'pooled' when it gives more singletons at 90 % *and* keeps each class's out-of-fold coverage within
    ``tolerance`` of the target; otherwise 'Mondrian' (per-class guarantee)."""
    study = conformal_study(runs, row, [outcome])
    mondrian, pooled = study.get((outcome, "Mondrian", alpha)), study.get((outcome, "pooled", alpha))
    if mondrian is None or pooled is None:
        return "Mondrian"
    fair = min(pooled.coverage_pos, pooled.coverage_neg) >= 1 - alpha - tolerance
    return "pooled" if fair and pooled.singletons > mondrian.singletons else "Mondrian"


def severity_intervals(exp: Experiment, seed: int = 0, folds: int = 5) -> list[ConformalRegressor | None]:
    """Out-of-fold (grouped by patient) severity estimates of the scored images → split-conformal residuals."""
    from sklearn.model_selection import KFold

    scored = [i for i, r in enumerate(exp.records) if any(n in exp.severity for n in r.filenames)]
    preds: dict[str, list[np.ndarray]] = {SHIPPED_SET: [], "zones+head": [], "mean": []}
    targets: list[tuple[float, float]] = []
    for _train, test in KFold(folds, shuffle=True, random_state=seed).split(scored):
        test_ids = {exp.records[scored[i]].patient_id for i in test}
        rest = [r for r in exp.records if r.patient_id not in test_ids]
        encoders = {kind: ImageEncoder.fit(rest, exp.severity, kind) for kind in (SHIPPED_SET, "zones+head")}
        train_mean = np.mean([exp.severity[n] for r in rest for n in r.filenames if n in exp.severity], axis=0)
        for i in test:
            r = exp.records[scored[i]]
            for name, im in zip(r.filenames, r.images, strict=True):
                if name in exp.severity:
                    for kind, enc in encoders.items():
                        preds[kind].append(enc.severity_of(im))
                    preds["mean"].append(train_mean)
                    targets.append(exp.severity[name])
    t = np.array(targets)
    out: list[ConformalRegressor | None] = []
    for kind, values in preds.items():
        p = np.array(values)
        label = {SHIPPED_SET: "ridge on zone statistics + embedding PCA", "zones+head": "head on the frozen encoder",
                 "mean": "reference: the training mean"}[kind]
        for j, name in enumerate(("geographic_extent", "opacity")):
            exp.severity_mae[f"{name}, {label}"] = float(np.mean(np.abs(p[:, j] - t[:, j])))
            if kind == SHIPPED_SET:
                out.append(ConformalRegressor(0.1, clip=(0.0, SEVERITY_TOP[j])).fit(p[:, j], t[:, j]))
    return out


def run(data: Path, out_dir: Path, builder: CaseBuilder, *, seeds: Sequence[int] = (0, 1, 2, 3, 4),
        mamba_seeds: Sequence[int] = (0,), figures: Path | None = None, progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None, log: Callable[[str], None] = print) -> Experiment:
    records, labels = cohort_records(data, builder, progress, cancel)
    exp = Experiment(records, labels, read_severity(data / "severity_scores.csv"))
    log(f"{len(records)} patients, {sum(len(r.images) for r in records)} X-rays; "
        f"{sum(im.mask_source == 'auto' for r in records for im in r.images)} with an automatic lung mask")
    exp.runs = run_all(records, labels, OUTCOMES, exp.severity, seeds, (*CANDIDATES, *ABLATION), IMAGE_SETS,
                       cancel=cancel, log=log)
    if mamba_seeds:
        exp.mamba_runs = mamba_runs(exp, data, mamba_seeds, log, cancel)
    heads, encoders = choose_and_fit(exp, seeds)
    exp.auto_records, _ = cohort_records(data, builder, progress, cancel, supplied_masks=False)
    auto_encoders = fit_auto_heads(exp, heads, seeds[0])
    log("heads for X-rays without supplied lung masks: fitted")
    base_rates = {o: float(np.nanmean(labels[:, k])) for k, o in enumerate(OUTCOMES)}
    predictor = OutcomePredictor(encoders, heads, base_rates, severity_intervals(exp), MODEL_ID,
                                 auto_encoders=auto_encoders)
    predictor.save(out_dir, extra={
        "n_patients": len(records), "n_labelled": {o: int((~np.isnan(labels[:, k])).sum()) for k, o in enumerate(OUTCOMES)},
        "chosen": exp.chosen, "conformal": exp.conformal_kind, "inner_auroc": exp.inner_scores,
        "severity_mae": exp.severity_mae,
        "feature_version": "cxr-lung-v2", "encoder_id": builder.encoder_id, "alpha_default": 0.1,
    })
    exp.predictor = predictor
    if figures is not None:
        write_reliability(exp, figures)
    return exp


def write_reliability(exp: Experiment, figures: Path) -> None:
    from inference.uncertainty.metrics import reliability_diagram

    figures.mkdir(parents=True, exist_ok=True)
    for outcome in OUTCOMES:
        probs, y = oof_probabilities(exp.runs, exp.chosen[outcome]["both"], outcome)
        reliability_diagram(probs, y, figures / f"reliability_{outcome}.png", n_bins=10,
                            title=f"{outcome}: {exp.chosen[outcome]['both']}, nested-CV out-of-fold")


def write_oof_csv(exp: Experiment, path: Path) -> None:
    """Per patient and outcome, the shipped recipe's nested-CV OOF probability (seed 0): for audits."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["outcome", "patientid", "label", "p_oof"])
        for outcome in OUTCOMES:
            r = next(r for r in exp.runs if r.outcome == outcome and r.seed == 0)
            probs, _ = oof_probabilities(exp.runs, exp.chosen[outcome]["both"], outcome)
            for pid, y, p in zip(r.patient_ids, r.y, probs, strict=True):
                writer.writerow([outcome, pid, int(y), f"{p:.4f}"])
