"""3-D propagation through a 50-slice lesion → the "Propagation" section of docs/performance.md.

``python -m benchmarks propagation [--threads 2] [--slices 50] [--no-write]``.

The data: no shared CT has a 50-slice lesion (the lung1 nodule spans 3 slices, the demo CT has 20
slices), so the benchmark builds one: the lung1 chest CT (real anatomy, HU), resampled along z to
``--slices`` + 20 slices of 1.5 mm around the lungs, with a synthetic soft-tissue lesion painted into
the right lung (an elongated ellipsoid whose radius varies smoothly along z, 30–60 HU with noise,
``--slices`` slices long). A box is drawn on its middle slice and the session propagates it both ways
through the lesion's range, cold cache (every slice runs the encoder), as a user would.

Reference, same run: the upstream per-slice forward (preprocess + encoder + decoder, fp32 NCHW) timed
on two slices after a warm-up call, times the number of slices. On CUDA the batched-prefetch path (8 slices per encoder
call, then propagation on cached embeddings) is timed as well.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import numpy as np
import torch
from scipy import ndimage

from benchmarks import REPO, publish, record_headline
from inference.io.loader import open_image
from inference.io.volume import Volume
from inference.models.device import select_device
from inference.models.preprocess import LUNG_LESION_WINDOW, preprocess_slice
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.evaluation import padded_box
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend, prefetch_embeddings
from inference.segmentation.session import SegmentationSession

SHARED = REPO.parent / "shared" / "data"


def lesion_volume(n_lesion: int, seed: int = 0) -> tuple[Volume, np.ndarray]:
    """lung1 CT resampled to ``n_lesion + 20`` slices with a synthetic ``n_lesion``-slice lesion (see module doc)."""
    ct = open_image(SHARED / "ct" / "lung1" / "image.nrrd")
    arr = ct.array
    lungs = arr < -500
    z_lung = np.flatnonzero(lungs.mean(axis=(1, 2)) > 0.05)
    z0, z1 = int(z_lung[0]), int(z_lung[-1])
    nz = n_lesion + 20
    zoom = nz / (z1 - z0 + 1)
    sub = ndimage.zoom(arr[z0 : z1 + 1], (zoom, 1, 1), order=1).astype(np.float32)[:nz]
    rng = np.random.default_rng(seed)
    # The lesion's axis runs through the right lung's (image left) centroid on the middle slice.
    mid = sub[nz // 2] < -500
    mid[:, arr.shape[2] // 2 :] = False
    lab, _ = ndimage.label(mid)
    biggest = np.argmax(np.bincount(lab.ravel())[1:]) + 1
    cy, cx = ndimage.center_of_mass(lab == biggest)
    yy, xx = np.mgrid[: arr.shape[1], : arr.shape[2]]
    truth = np.zeros(sub.shape, dtype=bool)
    z_start = (nz - n_lesion) // 2
    for i in range(n_lesion):
        t = (i + 0.5) / n_lesion
        radius = 10 + 14 * np.sin(np.pi * t)  # pixels: 10 at the ends, 24 in the middle
        oy, ox = 6 * np.sin(2 * np.pi * t), 4 * np.cos(2 * np.pi * t)
        disk = ((yy - cy - oy) / radius) ** 2 + ((xx - cx - ox) / (0.8 * radius)) ** 2 <= 1.0
        z = z_start + i
        truth[z] = disk
        sub[z][disk] = rng.normal(45.0, 12.0, int(disk.sum()))
    volume = Volume(sub, spacing=(ct.spacing[0], ct.spacing[1], 1.5), modality="CT", units="HU")
    return volume, truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks propagation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slices", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    volume, truth = lesion_volume(args.slices)
    zs = np.flatnonzero(truth.any(axis=(1, 2)))
    z_lo, z_hi = int(zs[0]), int(zs[-1])
    z_mid = int(zs[len(zs) // 2])
    box = padded_box(truth[z_mid], 5)
    backend = LiteMedSAMBackend.load("cpu")
    engine = getattr(backend.model, "encoder_runtime", "eager")

    # Reference: upstream forward (encoder + decoder per slice, fp32 NCHW), two slices, same process.
    ref_model = copy.deepcopy(LiteMedSAMBackend.load("cpu", encoder_runtime="eager").model)
    ref_model.image_encoder.to(memory_format=torch.contiguous_format)
    ref_ms = []
    backend.embed(volume.array[0], LUNG_LESION_WINDOW)  # warm-up of both engines (first-call allocations)
    backend.encoder_calls = 0
    for z in (z_mid - 1, z_mid, z_mid + 1):
        t0 = time.perf_counter()
        tensor, info = preprocess_slice(volume.array[z], LUNG_LESION_WINDOW)
        with torch.no_grad():
            low, _ = ref_model(tensor, torch.from_numpy(info.box_to_model(np.asarray(box, dtype=np.float32))))
            _ = info.logits_to_original(low) > 0
        ref_ms.append((time.perf_counter() - t0) * 1000)
    ref_per_slice = statistics.mean(ref_ms[1:])  # the first call was the warm-up

    session = SegmentationSession(backend, EmbeddingCache.from_megabytes(512), window=LUNG_LESION_WINDOW)
    session.set_image(volume)
    t0 = time.perf_counter()
    session.add_box(z_mid, box, "lesion")
    result = session.propagate("lesion", (z_lo, z_hi))
    total_s = time.perf_counter() - t0
    got = session.mask_for("lesion")
    dice = 2 * float((got & truth).sum()) / float(got.sum() + truth.sum())
    kept = sorted(result.slices)
    n_encoded = backend.encoder_calls
    ratio = total_s * 1000 / (ref_per_slice * n_encoded)
    rows = [
        f"| box on slice {z_mid} + propagate {z_lo}..{z_hi}, cold cache, CPU `{engine}` encoder | {total_s:.1f} | "
        f"{n_encoded} | {total_s * 1000 / n_encoded:.0f} | {ratio:.2f}× |",
        f"| reference: upstream forward per slice × {n_encoded} slices (fp32 NCHW, measured on 2 after a warm-up) | "
        f"{ref_per_slice * n_encoded / 1000:.1f} | {n_encoded} | {ref_per_slice:.0f} | 1.00× |",
    ]
    if torch.cuda.is_available():
        device = select_device("cuda")
        gpu = LiteMedSAMBackend.load(device)
        for batch in (1, 8):
            s = SegmentationSession(gpu, EmbeddingCache.from_megabytes(512), window=LUNG_LESION_WINDOW)
            s.set_image(volume)
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            if batch > 1:
                prefetch_embeddings(s, range(z_lo, z_hi + 1), batch=batch)
            s.add_box(z_mid, box, "lesion")
            s.propagate("lesion", (z_lo, z_hi))
            torch.cuda.synchronize()
            gpu_s = time.perf_counter() - t1
            rows.append(f"| same on {torch.cuda.get_device_name()} ({'batched prefetch, 8 per call' if batch > 1 else 'one slice per call'}) "
                        f"| {gpu_s:.1f} | {z_hi - z_lo + 1} | {gpu_s * 1000 / (z_hi - z_lo + 1):.0f} | "
                        f"{gpu_s * 1000 / (ref_per_slice * (z_hi - z_lo + 1)):.3f}× |")
    else:
        rows.append("| GPU (autocast, batched prefetch) | not measured: no CUDA device on this machine | – | – | – |")
    record_headline("3-D propagation, 50-slice lesion (CPU)", f"{total_s:.0f} s ({total_s * 1000 / n_encoded:.0f} ms/slice)",
                    f"{ratio:.2f}× of upstream per-slice forward", "–", write=not args.no_write)
    lines = [
        f"### Propagation through a {args.slices}-slice lesion (LiteMedSAM; `python -m benchmarks propagation`)", "",
        f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads, {time.strftime('%Y-%m-%d')}; "
        "machine shared with other jobs (read the ratio).",
        f"Volume: lung1 chest CT resampled to {volume.shape[0]} slices × 512², with a synthetic {args.slices}-slice "
        "soft-tissue lesion in the right lung (elongated ellipsoid, radius 10–24 px, 45 ± 12 HU); box on the middle "
        "slice, propagation both ways through the lesion's range.", "",
        "| run | total s | slices encoded | ms / slice | time vs reference |", "|---|---|---|---|---|", *rows, "",
        f"Slices kept: {len(kept)} of {z_hi - z_lo + 1} ({kept[0]}..{kept[-1]}), stop reasons {result.stop_reason or 'none'}; "
        f"3-D Dice vs the painted lesion {dice:.3f}.",
    ]
    publish("propagation", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
