"""Outcome prediction speed per patient (CPU) → the "Fusion prediction" section of docs/performance.md.

``python -m benchmarks predict [--threads 2] [--patients 8] [--model DIR] [--no-write]``. Times the
shipped model on the first patients of ``shared/data/cxr`` as ``main.py predict`` runs them: X-ray (+ lung
mask) → the one :class:`CaseBuilder` (uncached: LiteMedSAM encoder + lung features; cached: one .npz read)
→ :class:`OutcomePredictor` (calibrated probabilities, conformal sets, severity intervals). Model
loading is timed separately.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import REPO, publish, record_headline
from inference.fusion.case import CaseBuilder, ImageInput, read_mask_file
from inference.fusion.cohort import Patient, read_cohort
from inference.fusion.outcome_model import OutcomePredictor
from inference.io.loader import open_image
from inference.segmentation.cxr_lungs_shared import load_shared_lung_segmenter

CXR = REPO.parent / "shared" / "data" / "cxr"
MODEL = REPO / "resources" / "models" / "fusion"


def predict_patient(predictor: OutcomePredictor, builder: CaseBuilder, patient: Patient) -> float:
    """Seconds for one patient, image reading and features included."""
    t0 = time.perf_counter()
    images = []
    for rec in patient.images:
        pixels = open_image(CXR / "images" / rec.filename).array[0]
        mask = read_mask_file(CXR / "lung_masks" / f"{Path(rec.filename).stem}.png", pixels.shape)
        images.append(ImageInput(rec.filename, rec.offset, pixels, mask))
    predictor.predict(builder.build(patient.patient_id, patient.ehr, images))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    predictor = OutcomePredictor.load(args.model)
    load_model = time.perf_counter() - t0
    patients = [p for p in read_cohort(CXR / "metadata.csv") if p.images][: args.patients]
    n_images = sum(len(p.images) for p in patients)
    with tempfile.TemporaryDirectory() as cache:
        builder = CaseBuilder(Path(cache), lung_segmenter=load_shared_lung_segmenter)
        t0 = time.perf_counter()
        _ = builder.encoder
        load_encoder = time.perf_counter() - t0
        uncached = [predict_patient(predictor, builder, p) for p in patients]
        builder = CaseBuilder(Path(cache), lung_segmenter=load_shared_lung_segmenter)  # a fresh process' view: only the disk cache is warm
        cached = [predict_patient(predictor, builder, p) for p in patients]

    def row(name: str, values: list[float]) -> str:
        return f"| {name} | {statistics.mean(values):.3f} | {statistics.median(values):.3f} | {max(values):.3f} |"

    lines = [
        f"### Outcome prediction (CPU, {args.threads} threads; `python -m benchmarks predict`)", "",
        f"{platform.machine()}, torch {torch.__version__}; {len(patients)} cxr patients, {n_images} images "
        f"({n_images / len(patients):.1f} per patient), supplied lung masks. Load: outcome model (incl. sha256) "
        f"{load_model * 1000:.0f} ms, LiteMedSAM encoder {load_encoder * 1000:.0f} ms.", "",
        "| per patient | mean s | median s | max s |", "|---|---|---|---|",
        row("features uncached (encoder + lung features on every image)", uncached),
        row("features cached (.npz keyed by image + mask + encoder)", cached),
    ]
    record_headline("Predictor per patient, features cached / uncached",
                    f"{statistics.median(cached):.2f} s / {statistics.median(uncached):.1f} s (median)",
                    f"cached = {statistics.median(cached) / statistics.median(uncached):.3f}× uncached", "–", write=not args.no_write)
    publish("fusion-predict", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
