"""``python main.py train --data DIR --out MODEL_DIR``: nested-CV model selection + the shipped outcome model."""

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
    parser.add_argument("--seeds", type=int, default=5, help="nested-CV repeats with seeds 0..N-1")
    parser.add_argument("--mamba-seeds", type=int, default=1, help="CV repeats of the MedFusion-Mamba candidate (0: skip)")
    parser.add_argument("--results", type=Path, default=None, help="write the results (markdown) here")
    parser.add_argument("--figures", type=Path, default=None, help="folder for the reliability diagrams (PNG)")
    parser.add_argument("--oof", type=Path, default=None, help="write the shipped procedure's OOF probabilities (CSV)")


def run(args: argparse.Namespace) -> int:
    import torch

    from inference.fusion.case import CaseBuilder
    from inference.fusion.experiments import run as run_experiment
    from inference.fusion.experiments import write_oof_csv
    from inference.fusion.outcome_model import OutcomePredictor
    from inference.fusion.report import format_results
    from inference.fusion.shipped import is_shipped
    from inference.segmentation.cxr_lungs_shared import load_shared_lung_segmenter
    from inference.settings import Settings

    if not (args.data / "metadata.csv").is_file():
        raise MedFusionError(f"{args.data} has no metadata.csv (expected a cohort folder like shared/data/cxr).")
    if args.seeds < 1:
        raise MedFusionError("--seeds must be at least 1.")
    torch.set_num_threads(2)
    builder = CaseBuilder.from_settings(Settings.load(), args.cache, lung_segmenter=load_shared_lung_segmenter)
    exp = run_experiment(
        args.data, args.out, builder, seeds=tuple(range(args.seeds)), mamba_seeds=tuple(range(args.mamba_seeds)),
        figures=args.figures, progress=lambda f, m: print(f"\rfeatures {f:5.1%}", end="", file=sys.stderr),
        log=lambda line: print(line, flush=True),
    )
    command = "python main.py " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else "python main.py train ..."
    if is_shipped(args.out):  # its hashes live in the code: the new files load only after they are pasted there
        predictor = exp.predictor
        print("The shipped model was rewritten: paste the output of `python -m inference.fusion.shipped` into "
              "inference/fusion/shipped.py (SHIPPED_SHA256).", file=sys.stderr)
    else:
        predictor = OutcomePredictor.load(args.out)  # round trip through the files just written
    assert predictor is not None
    text = format_results(exp, predictor, command, tuple(range(args.seeds)), tuple(range(args.mamba_seeds)))
    print(text)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(text)
    if args.oof:
        write_oof_csv(exp, args.oof)
    print(f"model written to {args.out}")
    return 0
