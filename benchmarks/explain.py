"""Integrated-gradients explanation time per outcome → the "Explanation" section of docs/performance.md.

``python -m benchmarks explain [--threads 2] [--no-write]``. Runs what the viewer runs when the user asks
"why?": the shipped fusion model (``resources/models/fusion``) through the app's ``FusionCaseAdapter`` on
the bundled demo X-ray case (its lung masks), IG on the encoder's 64×64 embedding grid of every image
plus the EHR values (16 steps, as configured in the app). Reference, same run: one prediction of the
same case with cached features (what the user already waited for). The first explanation also encodes
the images (LiteMedSAM); later ones reuse the embeddings.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

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
    from app.controllers.fusion_adapter import FusionCaseAdapter
    from app.model.clinical import load_case
    from inference.fusion.cohort import OUTCOMES
    from inference.progress import no_progress
    from inference.settings import Settings

    case = load_case(DEMO_CASE)
    masks = {im.filename: np.asarray(Image.open(im.mask_path).convert("L")) > 127
             for im in case.images if im.mask_path is not None}
    ehr = dict(case.presentation)
    with tempfile.TemporaryDirectory() as tmp:
        adapter = FusionCaseAdapter.load(MODEL_DIR, Settings(device="cpu", cache_dir=tmp))
        t0 = time.perf_counter()
        adapter.predict(case, ehr, masks, 0.1, False, no_progress, None)
        first_predict = time.perf_counter() - t0  # encoder + disk feature cache
        predict_s = []
        for _ in range(3):
            t0 = time.perf_counter()
            adapter.predict(case, ehr, masks, 0.1, False, no_progress, None)
            predict_s.append(time.perf_counter() - t0)
        ref = statistics.median(predict_s)
        rows = []
        t0 = time.perf_counter()
        adapter.explain(case, ehr, masks, OUTCOMES[0], "ig", no_progress, None)
        cold = time.perf_counter() - t0
        per_outcome: dict[str, float] = {}
        for outcome in OUTCOMES:
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                result = adapter.explain(case, ehr, masks, outcome, "ig", no_progress, None)
                times.append(time.perf_counter() - t0)
            per_outcome[outcome] = statistics.median(times)
            assert result.heatmaps, "an explanation without a heat-map is not an explanation"
            rows.append(f"| IG, outcome `{outcome}` (embeddings reused) | {per_outcome[outcome] * 1000:.0f} | "
                        f"{per_outcome[outcome] / ref:.1f}× |")
    mean_ig = statistics.mean(per_outcome.values())
    record_headline("Explanation (integrated gradients) per outcome", f"{mean_ig:.2f} s (first one, incl. "
                    f"image encoding: {cold:.1f} s)", f"{mean_ig / ref:.1f}× one cached prediction", "–")
    lines = [
        "### Explanation time (`python -m benchmarks explain`)", "",
        f"{time.strftime('%Y-%m-%d')}, CPU {args.threads} threads, machine shared with other jobs. Demo CXR case "
        f"({len(case.images)} images, lung masks), shipped fusion model, IG with the app's settings (16 steps, "
        "8 per chunk) on each image's 64×64 embedding grid + the EHR vector; median of "
        f"{args.repeats}.", "",
        "| run | ms | vs one cached prediction |", "|---|---|---|",
        f"| reference: prediction, features cached | {ref * 1000:.0f} | 1.0× |",
        f"| first prediction (LiteMedSAM features computed) | {first_predict * 1000:.0f} | {first_predict / ref:.1f}× |",
        f"| first explanation (encodes the images' embeddings once) | {cold * 1000:.0f} | {cold / ref:.1f}× |",
        *rows,
    ]
    publish("explain", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
