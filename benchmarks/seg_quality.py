"""Box-prompt Dice of LiteMedSAM on the shared data → the quality section of docs/segmentation.md.

``python -m benchmarks seg_quality [--limit N] [--no-write]``. Protocols (inference.segmentation.evaluation):
CT nodule: box = mask bbox + 5 px on the centre slice, propagated through the lesion's z-range, 3-D Dice;
CXR: one box (bbox + 5 px) per lung from the mask's two largest components, Dice of the union.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from benchmarks import REPO, replace_section
from inference.io.loader import open_image
from inference.models.preprocess import DEFAULT_CT_WINDOW, LUNG_LESION_WINDOW, LUNG_WINDOW
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.evaluation import segment_2d_objects, segment_3d_lesion
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
from inference.segmentation.session import SegmentationSession, SessionOptions

SHARED = REPO.parent / "shared" / "data"
BARE = SessionOptions(keep_largest=False, fill_holes=False, clip_to_box=False, propagate_mask_prompt=False)


def nodule_rows(backend: LiteMedSAMBackend) -> list[str]:
    image = open_image(SHARED / "ct" / "lung1" / "image.nrrd")
    reference = open_image(SHARED / "ct" / "lung1" / "label.nrrd").array > 0
    cache = EmbeddingCache.from_megabytes(512)
    rows = []
    for wname, window in (
        ("lesion [-800, 200] (default for lung lesions)", LUNG_LESION_WINDOW),
        ("lung [-1024, 150]", LUNG_WINDOW),
        ("soft tissue [-160, 240] (MedSAM default)", DEFAULT_CT_WINDOW),
    ):
        for oname, options in (("session defaults", SessionOptions()), ("bare box propagation", BARE)):
            session = SegmentationSession(backend, cache, window=window, options=options)
            result, conf = segment_3d_lesion(session, image, reference)
            rows.append(
                f"| {wname} | {oname} | {result.dice:.3f} | {', '.join(f'{c:.2f}' for c in conf.values())} |"
            )
            print(rows[-1], flush=True)
    return rows


def cxr_scores(backend: LiteMedSAMBackend, limit: int | None) -> tuple[list[float], list[float]]:
    masks = sorted((SHARED / "cxr" / "lung_masks").glob("*.png"))
    subset = set(masks[::53][:6])  # the quality test's subset
    masks = masks[:limit] if limit else masks
    images = {p.stem: p for p in (SHARED / "cxr" / "images").iterdir()}
    session = SegmentationSession(backend, EmbeddingCache.from_megabytes(64))
    all_scores, sub_scores = [], []
    for i, mask_path in enumerate(masks):
        reference = np.asarray(Image.open(mask_path)) > 127
        result = segment_2d_objects(session, open_image(images[mask_path.stem]), reference, mask_path.stem)
        all_scores.append(result.dice)
        if mask_path in subset:
            sub_scores.append(result.dice)
        if i % 25 == 0:
            print(f"cxr {i + 1}/{len(masks)} mean Dice so far {np.mean(all_scores):.4f}", flush=True)
    return all_scores, sub_scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks seg_quality")
    parser.add_argument("--limit", type=int, default=None, help="only the first N CXR images")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    backend = LiteMedSAMBackend.load("cpu")
    t0 = time.perf_counter()
    rows = nodule_rows(backend)
    scores, subset = cxr_scores(backend, args.limit)
    s = np.asarray(scores)
    body = "\n".join(
        [
            "### Measured Dice (LiteMedSAM, box prompts; `python -m benchmarks seg_quality`)",
            "",
            "CT nodule (`ct/lung1`, 3 slices, box = mask bbox + 5 px on slice 33, propagated 32..34):",
            "",
            "| CT window | options | 3-D Dice | per-slice predicted IoU |",
            "|---|---|---|---|",
            *rows,
            "",
            f"CXR lungs ({len(s)} images with V7 lung masks, one box per lung = component bbox + 5 px):",
            "",
            "| images | mean Dice | median | 10th percentile | min |",
            "|---|---|---|---|---|",
            f"| all {len(s)} | {s.mean():.3f} | {np.median(s):.3f} | {np.percentile(s, 10):.3f} | {s.min():.3f} |",
            f"| test subset ({len(subset)}) | {np.mean(subset):.3f} | {np.median(subset):.3f} | – | {np.min(subset):.3f} |",
            "",
            f"Run time {time.perf_counter() - t0:.0f} s on {torch.get_num_threads()} CPU threads.",
        ]
    )
    print(body)
    if not args.no_write:
        replace_section(REPO / "docs" / "segmentation.md", "seg-quality", body, "Segmentation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
