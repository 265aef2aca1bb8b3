"""Box + propagate on CT lesions with default settings → the CT section of docs/segmentation.md.

``python -m benchmarks ct_lesions [--only NAME ...] [--no-write] [--cache-dir DIR]``.

Cases: ``ct/lung1`` (the one real nodule, 3 slices) and the synthetic suite of
``inference.segmentation.synthetic`` (lung nodules of 8–35 mm, solid / ground-glass / part-solid /
juxtapleural, in the lung1 CT away from its nodule; liver lesions in the TotalSegmentator demo CT),
each with an exact reference. Protocol, as a user works: one box (reference bbox + 5 px) on the middle
slice of the lesion, then "propagate" over the WHOLE volume (the session must find the ends itself).
Reported per configuration: 3-D Dice, Dice of the centre slice and of the two end slices, slices drawn
outside the lesion / lesion slices missed, and how the per-slice confidence tracks the per-slice Dice
(the strip is green at ≥ 0.85: how often green is wrong, how often a bad slice is not green).

Configurations: "before" = the previous defaults (soft-tissue window, the model's predicted IoU as
confidence, stop on area/IoU/growth only); "default" = the session's defaults now; "soft forced" = the
defaults with the soft-tissue window chosen by hand (does the confidence notice?); lung1 only: a lung
display W/L as the model window with the old and the new rules (issue 15: it leaked). Embeddings are
cached on disk (``--cache-dir``), so a re-run costs decoder time only.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks import REPO, replace_section
from benchmarks._seg_cache import CACHE_DIR, DiskCachedBackend
from inference.io.loader import open_image
from inference.io.volume import Volume
from inference.models.preprocess import DEFAULT_CT_WINDOW
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.evaluation import padded_box
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
from inference.segmentation.postprocess import dice
from inference.segmentation.prompts import SessionOptions
from inference.segmentation.session import SegmentationSession
from inference.segmentation.synthetic import lesion_suite

SHARED = Path(os.environ.get("MEDFUSION_SHARED_DATA", REPO.parent / "shared" / "data"))
GREEN = 0.85  # the confidence strip's green threshold (app/widgets/confidence_strip.py)
CONFIGS: dict[str, tuple[object, SessionOptions]] = {
    "before": (DEFAULT_CT_WINDOW, SessionOptions(confidence_jitter=0.0, min_overlap=0.0, contrast_stop=False)),
    "default": ("auto", SessionOptions()),
    "soft forced": (DEFAULT_CT_WINDOW, SessionOptions()),  # the old window, chosen by hand, new rest
}
LUNG_DISPLAY = (-600.0, 1500.0)  # a lung display W/L used as the model window (issue 15: leaked 32 slices)
LUNG1_ONLY: dict[str, tuple[object, SessionOptions]] = {
    "lung display W/L, before": (LUNG_DISPLAY, CONFIGS["before"][1]),
    "lung display W/L forced": (LUNG_DISPLAY, SessionOptions()),
}


@dataclass
class LesionRun:
    name: str
    dice: float
    centre: float
    edges: list[float]
    extra: int  # slices drawn outside the reference
    missed: int  # reference slices left empty
    window: object
    stops: str
    pairs: list[tuple[float, float]] = field(default_factory=list)  # (confidence, Dice) per drawn slice


def run_case(session: SegmentationSession, name: str, image: Volume, truth: np.ndarray) -> LesionRun:
    zs = np.flatnonzero(truth.any(axis=(1, 2)))
    z_mid = int(zs[len(zs) // 2])
    session.set_image(image)
    session.add_box(z_mid, padded_box(truth[z_mid], 5.0), "lesion")
    result = session.propagate("lesion")
    got = session.mask_for("lesion").astype(bool)
    drawn = set(np.flatnonzero(got.any(axis=(1, 2))).tolist())
    ends = sorted({int(zs[0]), int(zs[-1])} - {z_mid})
    pairs = [(c, dice(got[z], truth[z])) for z, c in result.confidence.items() if z in drawn]
    return LesionRun(
        name, dice(got, truth), dice(got[z_mid], truth[z_mid]), [dice(got[z], truth[z]) for z in ends],
        len(drawn - set(zs.tolist())), len(set(zs.tolist()) - drawn), result.window,
        "; ".join(f"{d}: {r}" for d, r in result.stop_reason.items()), pairs,
    )


def cases(only: set[str] | None) -> list[tuple[str, Volume, np.ndarray]]:
    lung = open_image(SHARED / "ct" / "lung1" / "image.nrrd")
    reference = open_image(SHARED / "ct" / "lung1" / "label.nrrd").array > 0
    out: list[tuple[str, Volume, np.ndarray]] = []
    if only is None or "lung1" in only:
        out.append(("ct/lung1 nodule (real)", lung, reference))
    abdomen = open_image(SHARED / "ct" / "totalseg_example_dicom")
    zs = np.flatnonzero(reference.any(axis=(1, 2)))
    out += lesion_suite(lung, abdomen, exclude_z=(int(zs[0]), int(zs[-1])), only=only)
    return out


def _window(w: object) -> str:
    if not isinstance(w, tuple):
        return str(w)
    level, width = w
    return f"[{level - width / 2:g}, {level + width / 2:g}]"


def summary(runs: list[LesionRun]) -> str:
    syn = [r for r in runs if "(real)" not in r.name]
    pairs = [p for r in runs for p in r.pairs]
    green_bad = sum(1 for c, d in pairs if c >= GREEN and d < GREEN)
    bad = sum(1 for _, d in pairs if d < GREEN)
    alarm = sum(1 for c, d in pairs if c < GREEN <= d)
    corr = float(np.corrcoef(*zip(*pairs, strict=True))[0, 1]) if len(pairs) > 2 else float("nan")
    edges = [e for r in syn for e in r.edges]
    if not syn:
        return (f"confidence vs slice Dice: {green_bad} of {bad} slices with Dice < {GREEN} shown green, "
                f"{alarm} of {len(pairs) - bad} with Dice ≥ {GREEN} not green")
    return (
        f"synthetic mean 3-D Dice {np.mean([r.dice for r in syn]):.3f} (min {np.min([r.dice for r in syn]):.3f}), "
        f"centre slices {np.mean([r.centre for r in syn]):.3f}, end slices {np.mean(edges):.3f}; "
        f"{sum(r.extra for r in runs)} slices drawn outside lesions, {sum(r.missed for r in runs)} lesion slices "
        f"missed; confidence vs slice Dice: r = {corr:.2f}, {green_bad} of {bad} slices with Dice < {GREEN} shown "
        f"green, {alarm} of {len(pairs) - bad} with Dice ≥ {GREEN} not green"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks ct_lesions")
    parser.add_argument("--only", nargs="*", default=None, help="case names (lung1 = the real nodule)")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lite = LiteMedSAMBackend.load("cpu")
    backend = DiskCachedBackend(lite, args.cache_dir)
    cache = EmbeddingCache.from_megabytes(1024)
    t0 = time.perf_counter()
    all_cases = cases(set(args.only) if args.only else None)
    lines = ["| case | config | window | 3-D Dice (volume) | centre | end slices | outside / missed | stopped |",
             "|---|---|---|---|---|---|---|---|"]
    runs: dict[str, list[LesionRun]] = {c: [] for c in [*args.configs, *LUNG1_ONLY]}
    for name, image, truth in all_cases:
        extra = list(LUNG1_ONLY) if "(real)" in name else []
        for config in [*args.configs, *extra]:
            window, options = {**CONFIGS, **LUNG1_ONLY}[config]
            session = SegmentationSession(backend, cache, window=window, options=options)  # type: ignore[arg-type]
            run = run_case(session, name, image, truth)
            runs[config].append(run)
            ml = float(session.volume_ml("lesion"))
            lines.append(
                f"| {name} | {config} | {_window(run.window)} | {run.dice:.3f} ({ml:.2f} ml) | {run.centre:.3f} | "
                f"{', '.join(f'{e:.2f}' for e in run.edges) or '–'} | {run.extra} / {run.missed} | {run.stops} |"
            )
            print(lines[-1], flush=True)
    body = "\n".join(
        [
            "### CT lesions: box + propagate with default settings (`python -m benchmarks ct_lesions`)",
            "",
            "Box = reference bbox + 5 px on the lesion's middle slice, then propagation over the whole",
            "volume. \"before\" = soft-tissue window, predicted IoU as confidence, old stop rules; \"default\" =",
            "the session now; \"soft forced\" = the session now with the soft-tissue window picked by hand.",
            "End slices = the lesion's first and last slice (Dice of that slice; 0 = not drawn). lung1 only:",
            "a lung display window (-600/1500) as the model window, with the old and the new rules.",
            "",
            *lines,
            "",
            *(f"- **{c}**: {summary(r)}." for c, r in runs.items() if r and c in CONFIGS),
            "",
            f"Run time {time.perf_counter() - t0:.0f} s on {torch.get_num_threads()} CPU threads "
            f"({lite.encoder_calls} embeddings computed, {backend.hits} read from the disk cache).",
        ]
    )
    print(body)
    if not (args.no_write or args.only):
        replace_section(REPO / "docs" / "segmentation.md", "ct-lesions", body, "Segmentation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
