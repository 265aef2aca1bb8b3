"""``python main.py train --data DIR --out MODEL_DIR``: cross-validated ablation + final fusion model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inference.errors import MedFusionError

REPO = Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="cohort folder: metadata.csv, images/, lung_masks/")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache (default: settings cache dir)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="CV repeats with seeds 0..N-1")
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--results", type=Path, default=None, help="write the results table (markdown) here")
    parser.add_argument("--figures", type=Path, default=None, help="folder for the reliability diagrams (PNG)")


def run(args: argparse.Namespace) -> int:
    import torch

    from inference.fusion.experiments import format_results
    from inference.fusion.experiments import run as run_experiment
    from inference.fusion.features import FeatureExtractor
    from inference.models.litemedsam import load_litemedsam
    from inference.settings import Settings

    if not (args.data / "metadata.csv").is_file():
        raise MedFusionError(f"{args.data} has no metadata.csv (expected a cohort folder like shared/data/cxr).")
    torch.set_num_threads(2)
    cache = args.cache or Settings.load().resolved_cache_dir() / "features"
    extractor = FeatureExtractor(load_litemedsam("cpu"), cache)
    # Encoder features first (big convolutions: 2 threads help); then the fusion model, whose ops are tiny:
    # intra-op threads only add synchronisation there (one thread: 4× faster CV on a busy 2-core machine).
    from inference.fusion.features import fill_cache

    fill_cache(args.data / "images", args.data / "lung_masks", extractor,
               progress=lambda f, m: print(f"\rfeatures {f:5.1%}", end="", file=sys.stderr))
    torch.set_num_threads(1)
    rows = run_experiment(
        args.data, args.out, extractor, docs_dir=args.figures,
        folds=args.folds, seeds=tuple(range(args.seeds)), alpha=args.alpha,
        progress=lambda f, m: print(f"\rfeatures {f:5.1%}", end="", file=sys.stderr),
        log=lambda line: print(line, flush=True),
    )
    command = "python main.py " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else "python main.py train ..."
    text = format_results(rows, command, args.alpha, tuple(range(args.seeds)))
    print(text)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(text)
    print(f"model written to {args.out}")
    return 0
