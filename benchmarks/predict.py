"""Fusion prediction speed per patient (CPU) → the "Fusion prediction" section of docs/performance.md.

``python -m benchmarks predict [--threads 2] [--patients 8] [--model DIR] [--no-write]``. Times the
shipped model on the first patients of ``shared/data/cxr`` (those with images), as ``main.py predict``
runs them: image → LiteMedSAM features (uncached: encoder runs; cached: .npz read) → FusionPredictor
(calibrated probabilities, conformal sets, severity intervals). Model loading is timed separately.
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
from inference.fusion.cohort import Patient, read_cohort
from inference.fusion.features import FeatureExtractor, load_image_and_mask
from inference.fusion.predictor import FusionPredictor, PatientInput
from inference.models.litemedsam import load_litemedsam

CXR = REPO.parent / "shared" / "data" / "cxr"
MODEL = REPO / "resources" / "models" / "fusion"


def predict_patient(predictor: FusionPredictor, extractor: FeatureExtractor, patient: Patient,
                    tent: bool = False) -> float:
    """Seconds for one patient, features included."""
    t0 = time.perf_counter()
    images = []
    for rec in patient.images:
        path = CXR / "images" / rec.filename
        image, mask = load_image_and_mask(path, CXR / "lung_masks" / f"{path.stem}.png")
        images.append((rec.filename, rec.offset, extractor(image, mask)))
    predictor.predict(PatientInput(patient.patient_id, patient.ehr, images), tent=tent)
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
    predictor = FusionPredictor.load(args.model)
    load_fusion = time.perf_counter() - t0
    t0 = time.perf_counter()
    encoder = load_litemedsam("cpu")
    load_encoder = time.perf_counter() - t0
    patients = [p for p in read_cohort(CXR / "metadata.csv") if p.images][: args.patients]
    n_images = sum(len(p.images) for p in patients)
    with tempfile.TemporaryDirectory() as cache:
        extractor = FeatureExtractor(encoder, Path(cache))
        uncached = [predict_patient(predictor, extractor, p) for p in patients]
        cached = [predict_patient(predictor, extractor, p) for p in patients]
        tent = [predict_patient(predictor, extractor, p, tent=True) for p in patients]

    def row(name: str, values: list[float]) -> str:
        return f"| {name} | {statistics.mean(values):.3f} | {statistics.median(values):.3f} | {max(values):.3f} |"

    lines = [
        f"### Fusion prediction (CPU, {args.threads} threads; `python -m benchmarks predict`)", "",
        f"{platform.machine()}, torch {torch.__version__}; {len(patients)} cxr patients, {n_images} images "
        f"({n_images / len(patients):.1f} per patient). Load: fusion model (incl. sha256) {load_fusion * 1000:.0f} ms, "
        f"LiteMedSAM encoder {load_encoder * 1000:.0f} ms.", "",
        "| per patient | mean s | median s | max s |", "|---|---|---|---|",
        row("features uncached (encoder runs on every image)", uncached),
        row("features cached (.npz keyed by image hash + encoder)", cached),
        row("features cached + TENT (10 steps on the patient)", tent),
    ]
    record_headline("Predictor per patient, features cached / uncached",
                    f"{statistics.median(cached):.2f} s / {statistics.median(uncached):.1f} s (median)",
                    f"cached = {statistics.median(cached) / statistics.median(uncached):.3f}× uncached", "–")
    publish("fusion-predict", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
