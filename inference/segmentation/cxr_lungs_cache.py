"""Encode the shared CXRs (and augmented variants) once with the frozen LiteMedSAM encoder.

``python -m inference.segmentation.cxr_lungs_cache --cxr DIR --cache DIR [--augmentations K]``: resumable
(files already written are skipped), written atomically, so it can run niced in the background and be
stopped at any time. The embeddings are those of the inference path (``LiteMedSAMBackend.embed`` with
the X-ray percentile normalisation), so training sees exactly what the segmenter sees.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.segmentation.cxr_lungs_data import (
    LungCase,
    cache_jobs,
    cache_path,
    lung_cases,
    targets_256,
    variant,
)

if TYPE_CHECKING:
    from inference.segmentation.litemedsam_backend import LiteMedSAMBackend


def encode_variant(backend: LiteMedSAMBackend, case: LungCase, version: int, cache_dir: Path) -> Path:
    """Encode one (image, augmentation version) and write its cache file atomically."""
    image, sides = variant(case, version)
    emb = backend.embed(image, None)
    path = cache_path(cache_dir, case.stem, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp.npz")
    np.savez(tmp, features=emb.features[0].cpu().numpy().astype(np.float16), targets=targets_256(sides),
             new_size=np.asarray(emb.info.new_size))
    tmp.replace(path)
    return path


def build_cache(cxr_dir: Path, cache_dir: Path, augmentations: int, threads: int = 2) -> int:
    """Write every missing cache file; returns how many were encoded."""
    import torch

    from inference.segmentation.litemedsam_backend import LiteMedSAMBackend

    torch.set_num_threads(threads)
    cases = lung_cases(cxr_dir)
    jobs = [(c, v) for c, v in cache_jobs(cases, augmentations) if not cache_path(cache_dir, c.stem, v).exists()]
    print(f"{len(cases)} cases, {len(jobs)} files to encode", flush=True)
    if not jobs:
        return 0
    backend = LiteMedSAMBackend.load("cpu", encoder_runtime="auto", cache_dir=cache_dir / "encoder")
    started = time.perf_counter()
    for i, (case, version) in enumerate(jobs):
        encode_variant(backend, case, version, cache_dir)
        if i % 20 == 0 or i == len(jobs) - 1:
            rate = (time.perf_counter() - started) / (i + 1)
            print(f"{i + 1}/{len(jobs)} {case.stem} a{version} ({rate:.2f} s each)", flush=True)
    return len(jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cxr", type=Path, required=True, help="shared/data/cxr")
    parser.add_argument("--cache", type=Path, required=True, help="cache folder (e.g. /work/cache/lungs)")
    parser.add_argument("--augmentations", type=int, default=4, help="augmented variants per train/val image")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    build_cache(args.cxr, args.cache, args.augmentations, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
