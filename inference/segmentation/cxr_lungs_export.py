"""Make the shipped lung-head file from a training run: fp16 deltas, threshold chosen on ``val`` patients.

``python -m inference.segmentation.cxr_lungs_export --cache DIR --cxr DIR --run NAME --out FILE``.
The threshold and the post-processing are picked on the validation patients (full-resolution Dice of
the fp16 weights, i.e. exactly what ships); the test patients are not read. Prints the file's size and
sha256 for ``inference.models.registry``.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
import warnings
from pathlib import Path

import torch

from inference.models.registry import file_sha256
from inference.segmentation.cxr_lungs_data import lung_cases
from inference.segmentation.cxr_lungs_eval import cached_embedding, summary, sweep
from inference.segmentation.cxr_lungs_model import LungDecoder
from inference.segmentation.cxr_lungs_train import base_decoder

THRESHOLDS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)


def load_run(cache_dir: Path, run: str) -> LungDecoder:
    """The run's best state in a fresh head, passed through the fp16 shipping format."""
    head = base_decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        trained = torch.load(cache_dir / "runs" / run / "best.pt", map_location="cpu", weights_only=True)
    named = dict(head.named_parameters())
    with torch.no_grad():
        for name, value in trained.items():
            named[name].copy_(value)
    config = json.loads((cache_dir / "runs" / run / "config.json").read_text())
    head.pool = int(config.get("pool", 1))
    shipped = base_decoder()
    shipped.load_shipped(head.export_state(), "run state")
    return shipped.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--cxr", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    head = load_run(args.cache, args.run)
    val = [c for c in lung_cases(args.cxr) if c.split == "val"]

    def embed(case, shape):  # type: ignore[no-untyped-def]
        emb = cached_embedding(args.cache, case, shape)
        if emb is None:
            raise SystemExit(f"{case.stem}: no cached embedding; run cxr_lungs_cache first")
        return emb

    results = sweep(head, val, embed, THRESHOLDS)
    print("| threshold | keep largest | val mean | median | p5 | right | left |")
    for (t, k), scores in results.items():
        s = summary(scores)
        print(f"| {t:g} | {k} | {s['mean']:.4f} | {s['median']:.4f} | {s['p5']:.4f} | {s['right']:.4f} | {s['left']:.4f} |")
    (threshold, keep), _ = max(results.items(), key=lambda item: (summary(item[1])["mean"], item[0][1], -abs(item[0][0])))
    head.threshold, head.keep_largest = threshold, keep
    print(f"chosen on val: threshold {threshold:g}, keep largest {keep}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f"{args.out.name}.{uuid.uuid4().hex[:6]}.tmp")
    torch.save(head.export_state(), tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out}: {args.out.stat().st_size} bytes, sha256 {file_sha256(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
