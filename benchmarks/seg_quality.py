"""Box-prompt and box + click Dice of LiteMedSAM on the CXR set → the quality section of docs/segmentation.md.

``python -m benchmarks seg_quality [--limit N] [--no-write]``. Protocols (inference.segmentation.evaluation):
CXR: one box (bbox + 5 px) per lung from the mask's two largest components, Dice of the union; then up to
three rounds of one simulated corrective click per lung (RITM's clicker: the deepest error pixel).
CXR automatic variants (no reference mask at inference) are compared on a dev split (the first half of
the patients by patient id); the session default was picked there, the held-out half reports it.
CT lesions (``ct/lung1`` and synthetic lesions, box + propagate with default settings): ``ct_lesions.py``.
Embeddings are cached on disk (``.cache/seg_quality``), so re-runs cost decoder time only.
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from benchmarks import REPO, replace_section
from benchmarks._seg_cache import DiskCachedBackend
from inference.io.loader import open_image
from inference.models.litemedsam import decode
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.evaluation import (
    components,
    interactive_2d_objects,
    padded_box,
)
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
from inference.segmentation.postprocess import dice, fill_holes, largest_component
from inference.segmentation.prompts import SessionOptions
from inference.segmentation.session import SegmentationSession

Box = tuple[float, float, float, float]
Decode = Callable[..., tuple[np.ndarray, np.ndarray]]
SHARED = REPO.parent / "shared" / "data"
CXR = SHARED / "cxr"
# Click curves: the session default, its threshold with clicks sent to the decoder, and upstream
# (MedSAM's sigmoid > 0.5, clicks to the decoder: the session before the dev-split choice).
DEFAULT = SessionOptions()
CURVES = {
    "default": (DEFAULT, f"{DEFAULT.xray_mask_threshold:g}, clicks re-threshold (session default)"),
    "model-clicks": (
        SessionOptions(xray_clicks="model"),
        f"{DEFAULT.xray_mask_threshold:g}, clicks to the decoder",
    ),
    "upstream": (
        SessionOptions(xray_mask_threshold=0.0, xray_clicks="model"),
        "0, clicks to the decoder (upstream)",
    ),
}
MAX_CLICKS = 3


def _natural(pid: str) -> tuple[int, str]:
    m = re.match(r"(\d+)(.*)", pid)
    return (int(m.group(1)), m.group(2)) if m else (10**9, pid)


def cxr_cases(limit: int | None = None) -> tuple[list[Path], set[str]]:
    """Masked images sorted by name, and the stems of the dev split (first half of patients by id)."""
    with open(CXR / "metadata.csv", encoding="utf-8", errors="replace", newline="") as f:
        patient = {Path(r["filename"]).stem: r["patientid"] for r in csv.DictReader(f)}
    masks = sorted((CXR / "lung_masks").glob("*.png"))
    patients = sorted({patient[m.stem] for m in masks}, key=_natural)
    dev_patients = set(patients[: len(patients) // 2])
    dev = {m.stem for m in masks if patient[m.stem] in dev_patients}
    return (masks[:limit] if limit else masks), dev


def _tidy(mask: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The session's default clean-up (clip to box, largest component, holes filled)."""
    x0, y0, x1, y1 = (int(round(c)) for c in box)
    out = np.zeros_like(mask)
    region = (slice(max(y0, 0), y1 + 1), slice(max(x0, 0), x1 + 1))
    crop = mask[region]
    out[region] = fill_holes(largest_component(crop)) if crop.any() else crop
    return out


def _closing(mask: np.ndarray, radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = xx**2 + yy**2 <= radius**2
    pad = radius + 1
    return ndimage.binary_closing(np.pad(mask, pad), structure=disk)[pad:-pad, pad:-pad]


THRESHOLDS = (0.0, -2.0, -4.0, -6.0, -8.0, -10.0, -12.0, -16.0)
VARIANTS = [
    *(f"logit threshold {t:g}" for t in THRESHOLDS),
    "multimask: largest of the 3 masks",
    "mask-prompt refinement (1 pass)",
    "morphological closing (15 px @ 1024)",
    "box enlarged by 8 % (clipped to the box)",
]


def variant_masks(run: Decode, box: Box, hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """Automatic box-only alternatives (3 decoder passes); ``run`` → (low-res, (C, H, W) full) logits."""
    low, full = run(box, "all")  # one pass: 0 = single-mask output, 1..3 = SAM's multimask set
    out = {f"logit threshold {t:g}": full[0] > t for t in THRESHOLDS}
    multi = full[1:] > 0
    out["multimask: largest of the 3 masks"] = multi[int(np.argmax(multi.sum(axis=(1, 2))))]
    out["mask-prompt refinement (1 pass)"] = run(box, False, low[0])[1][0] > 0
    out["morphological closing (15 px @ 1024)"] = _closing(full[0] > 0, max(1, round(15 * max(hw) / 1024)))
    x0, y0, x1, y1 = box
    dx, dy = 0.08 * (x1 - x0), 0.08 * (y1 - y0)
    big = (max(x0 - dx, 0.0), max(y0 - dy, 0.0), min(x1 + dx, hw[1] - 1.0), min(y1 + dy, hw[0] - 1.0))
    out["box enlarged by 8 % (clipped to the box)"] = run(big)[1][0] > 0
    return out


def variant_dice(backend: DiskCachedBackend, image: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Box-only Dice of every automatic variant on one CXR, each with the session's clean-up."""
    lite = backend.backend
    emb = backend.embed(image, None)
    info = emb.info

    def run(
        box: Box, multimask: bool | str = False, mask_prompt: object = None
    ) -> tuple[np.ndarray, np.ndarray]:
        b256 = info.box_to_model(np.asarray(box, dtype=np.float32))
        prompt = None if mask_prompt is None else np.asarray(mask_prompt)
        logits, _ = decode(
            lite.model,
            emb.features,
            b256,
            None,
            None,
            prompt,
            multimask=multimask,
            cpu_dtype=lite.decoder_dtype,
        )
        return logits.numpy(), info.logits_to_original(logits[None])[0].numpy()

    unions = {name: np.zeros(reference.shape, dtype=bool) for name in VARIANTS}
    for part in components(reference):
        box = padded_box(part, 5.0)
        for name, mask in variant_masks(run, box, reference.shape).items():
            unions[name] |= _tidy(mask, box)
    return {name: dice(u, reference) for name, u in unions.items()}


def cxr_scores(
    backend: DiskCachedBackend, limit: int | None, split: str = "all", clicks: bool = True
) -> dict[str, dict[str, list]]:
    """Per image: click curves (session defaults and upstream threshold) and box-only variant Dice."""
    masks, dev = cxr_cases(limit)
    if split != "all":
        masks = [m for m in masks if (m.stem in dev) == (split == "dev")]
    subset = {m.stem for m in sorted((CXR / "lung_masks").glob("*.png"))[::53][:6]}  # the test's subset
    images = {p.stem: p for p in (CXR / "images").iterdir()}
    cache = EmbeddingCache.from_megabytes(64)
    # Dice only: no confidence (its jittered-box decodes do not change a prompt's mask)
    sessions = {
        name: SegmentationSession(backend, cache, options=replace(opt, confidence_jitter=0.0))
        for name, (opt, _) in CURVES.items()
    }
    out: dict[str, dict[str, list]] = {s: {} for s in ("dev", "held-out", "all", "subset")}
    for i, mask_path in enumerate(masks):
        reference = np.asarray(Image.open(mask_path)) > 127
        image = open_image(images[mask_path.stem])
        row: dict[str, list] = {}
        for name, session in sessions.items() if clicks else ():
            row[name] = interactive_2d_objects(
                session, image, reference, MAX_CLICKS, name=mask_path.stem
            ).dice
        row["variants"] = [variant_dice(backend, image.array[0], reference)]
        groups = ["all", "dev" if mask_path.stem in dev else "held-out"]
        groups += ["subset"] if mask_path.stem in subset else []
        for g in groups:
            for key, value in row.items():
                out[g].setdefault(key, []).extend([value] if key != "variants" else value)
        if i % 25 == 0:
            best = max(VARIANTS, key=lambda v: np.mean([d[v] for d in out["all"]["variants"]]))
            print(f"cxr {i + 1}/{len(masks)}: best variant so far {best}", flush=True)
    return out


def _fmt(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ({np.median(values):.3f})" if values else "–"


def cxr_tables(scores: dict[str, dict[str, list]]) -> list[str]:
    groups = [g for g in ("dev", "held-out", "all") if scores[g]]
    n = {g: len(scores[g]["variants"]) for g in groups}
    head = " | ".join(f"{g} ({n[g]})" for g in groups)
    lines = []
    if "default" in scores[groups[0]]:
        lines += [
            f"| prompts (per lung) | logit threshold, clicks | {head} |",
            "|---|---|" + "---|" * len(groups),
        ]
        for k in range(MAX_CLICKS + 1):
            what = "box only" if k == 0 else f"box + {k} click{'s' if k > 1 else ''}"
            for session, (_, label) in CURVES.items():
                if k == 0 and session == "model-clicks":
                    continue  # same as the default without clicks
                cells = " | ".join(_fmt([c[k] for c in scores[g][session]]) for g in groups)
                lines.append(f"| {what} | {label} | {cells} |")
        lines.append("")
    lines += [f"| automatic variant, box only | {head} |", "|---|" + "---|" * len(groups)]
    for name in VARIANTS:
        cells = " | ".join(_fmt([v[name] for v in scores[g]["variants"]]) for g in groups)
        lines.append(f"| {name} | {cells} |")
    sub = scores["subset"].get("default", [])
    if sub:
        lines += [
            "",
            f"Test subset ({len(sub)} images, every 53rd): "
            + ", ".join(
                f"{what} {np.mean([c[k] for c in sub]):.3f} (min {np.min([c[k] for c in sub]):.3f})"
                for k, what in ((0, "box"), (2, "box + 2 clicks"))
            )
            + ".",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks seg_quality")
    parser.add_argument("--limit", type=int, default=None, help="only the first N CXR images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--split", choices=("all", "dev", "held-out"), default="all")
    parser.add_argument("--no-clicks", action="store_true", help="box-only variants, no click curves")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lite = LiteMedSAMBackend.load("cpu")
    t0 = time.perf_counter()
    backend = DiskCachedBackend(lite)
    scores = cxr_scores(backend, args.limit, args.split, not args.no_clicks)
    body = "\n".join(
        [
            "### Measured Dice (LiteMedSAM; `python -m benchmarks seg_quality`)",
            "",
            "CXR lungs (V7 lung masks; one box per lung = component bbox + 5 px; clicks = RITM's simulated",
            "corrective click per lung per round; mean (median) Dice of the union; dev = first half of the",
            "patients by id, where the default was chosen; held-out = the other half):",
            "",
            *cxr_tables(scores),
            "",
            f"Run time {time.perf_counter() - t0:.0f} s on {torch.get_num_threads()} CPU threads "
            f"({lite.encoder_calls} embeddings computed, {backend.hits} read from the disk cache).",
        ]
    )
    print(body)
    partial = args.limit or args.split != "all" or args.no_clicks
    if not (args.no_write or partial):
        replace_section(REPO / "docs" / "segmentation.md", "seg-quality", body, "Segmentation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
