"""Explanation time per outcome → the "Explanation" section of docs/performance.md.

``python -m benchmarks explain [--threads 2] [--no-write]``. Runs what the viewer runs when the user asks
"why?": the shipped outcome model (``resources/models/fusion``) through :class:`OutcomeService` on the
bundled demo X-ray case (its lung masks): the lung map against a normal lung (one lung cell at a time
replaced by the normal-lung reference, features and logit recomputed) on every image, EHR attribution
against the cohort medians.
Reference, same run: one prediction of the same case with cached features (what the user already waited
for). The first explanation reuses the embeddings the first prediction computed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import REPO, publish, record_headline

MODEL_DIR = REPO / "resources" / "models" / "fusion"
DEMO_CASE = REPO / "resources" / "demo" / "cxr"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks explain")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from inference.fusion.case import ImageInput, read_mask_file
    from inference.fusion.cohort import read_cohort
    from inference.fusion.service import OutcomeService
    from inference.io.loader import open_image
    from inference.segmentation.cxr_lungs_shared import load_shared_lung_segmenter
    from inference.settings import Settings

    patient = read_cohort(DEMO_CASE / "metadata.csv")[0]
    images = []
    for rec in patient.images:
        pixels = open_image(DEMO_CASE / "images" / rec.filename).array[0]
        mask = read_mask_file(DEMO_CASE / "lung_masks" / f"{Path(rec.filename).stem}.png", pixels.shape)
        images.append(ImageInput(rec.filename, rec.offset, pixels, mask))
    with tempfile.TemporaryDirectory() as tmp:
        service = OutcomeService.load(MODEL_DIR, Settings(device="cpu", cache_dir=tmp),
                                      lung_segmenter=load_shared_lung_segmenter)
        t0 = time.perf_counter()
        service.predict(patient.patient_id, patient.ehr, images)
        first_predict = time.perf_counter() - t0
        predict_s = []
        for _ in range(3):
            t0 = time.perf_counter()
            service.predict(patient.patient_id, patient.ehr, images)
            predict_s.append(time.perf_counter() - t0)
        ref = statistics.median(predict_s)
        rows = []
        per_outcome: dict[str, float] = {}
        for outcome in service.predictor.outcomes:
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                result = service.explain(patient.patient_id, patient.ehr, images, outcome)
                times.append(time.perf_counter() - t0)
            per_outcome[outcome] = statistics.median(times)
            kind = f"{result.method} + EHR" if result.image_maps else "EHR only (model reads no image)"
            rows.append(f"| {kind}, outcome `{outcome}` | {per_outcome[outcome] * 1000:.0f} | "
                        f"{per_outcome[outcome] / ref:.1f}× |")
    mean = statistics.mean(per_outcome.values())
    record_headline("Explanation (lung map + EHR) per outcome", f"{mean:.2f} s", f"{mean / ref:.1f}× one cached prediction",
                    "–", write=not args.no_write)
    lines = [
        "### Explanation time (`python -m benchmarks explain`)", "",
        f"{time.strftime('%Y-%m-%d')}, CPU {args.threads} threads, machine shared with other jobs. Demo CXR case "
        f"({len(images)} images, lung masks), shipped outcome model; median of {args.repeats}.", "",
        "| run | ms | vs one cached prediction |", "|---|---|---|",
        f"| reference: prediction, features cached | {ref * 1000:.0f} | 1.0× |",
        f"| first prediction (LiteMedSAM features computed) | {first_predict * 1000:.0f} | {first_predict / ref:.1f}× |",
        *rows,
    ]
    publish("explain", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
