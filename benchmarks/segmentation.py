"""Interactive segmentation latency → the "Segmentation" section of docs/performance.md.

``python -m benchmarks segmentation [--threads 2] [--repeats 20] [--no-write]``. In one process it times:
the image encoder per slice (eager vs channels_last), one box prompt with a cached embedding (decoder +
upsampling, and the full ``SegmentationSession.add_box`` gesture), the reference LiteMedSAM forward
(encoder + decoder per prompt, as upstream runs it), and 3-D propagation of the ct/lung1 nodule.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks import REPO, publish, record_headline
from inference.io.loader import open_image
from inference.models.litemedsam import encode, load_litemedsam
from inference.models.preprocess import LUNG_LESION_WINDOW, preprocess_slice
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.evaluation import padded_box
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
from inference.segmentation.session import SegmentationSession

SHARED = REPO.parent / "shared" / "data"


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median and min wall time in ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks segmentation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    backend = LiteMedSAMBackend.load("cpu")
    load_ms = (time.perf_counter() - t0) * 1000
    model = backend.model
    image = open_image(SHARED / "ct" / "lung1" / "image.nrrd")
    reference = open_image(SHARED / "ct" / "lung1" / "label.nrrd").array > 0
    z = 33
    plane = image.array[z]
    box = padded_box(reference[z], 5)
    tensor, info = preprocess_slice(plane, LUNG_LESION_WINDOW)
    rows: list[tuple[str, float, float]] = []

    rows.append(
        (
            "preprocess one 512² slice (window, resize, pad)",
            *timed(lambda: preprocess_slice(plane, LUNG_LESION_WINDOW), 10),
        )
    )
    reps = max(3, args.repeats // 5)
    engine = getattr(model, "encoder_runtime", "eager")
    enc = timed(lambda: encode(model, tensor), reps, warmup=1)
    rows.append((f"image encoder (embedding), `{engine}` engine (default, `Settings.encoder_runtime`)", *enc))
    upstream = load_litemedsam("cpu", runtime="eager")  # the reference: upstream fp32 NCHW forward
    upstream.image_encoder.to(memory_format=torch.contiguous_format)

    def encoder_contiguous() -> None:
        with torch.inference_mode():
            upstream.image_encoder(tensor)

    upstream_enc = timed(encoder_contiguous, reps, warmup=1)
    rows.append(("image encoder, contiguous NCHW (upstream)", *upstream_enc))
    emb = backend.embed(plane, LUNG_LESION_WINDOW)
    dec = timed(lambda: backend.decode(emb, box), args.repeats)
    precision = "bf16 autocast" if backend.decoder_dtype is not None else "fp32"
    rows.append((f"**box prompt, cached embedding** ({precision} decoder + upsample to 512²)", *dec))
    dtype = backend.decoder_dtype
    backend.decoder_dtype = None
    rows.append(
        ("box prompt, cached embedding, fp32 decoder", *timed(lambda: backend.decode(emb, box), args.repeats))
    )
    backend.decoder_dtype = dtype
    session = SegmentationSession(backend, EmbeddingCache.from_megabytes(256), window=LUNG_LESION_WINDOW)
    session.set_image(image)
    session.add_box(z, box, "nodule")
    calls = backend.encoder_calls
    gesture = timed(lambda: session.add_box(z, box, "nodule"), args.repeats)
    assert backend.encoder_calls == calls, "the cached path must not run the encoder"
    rows.append(("box prompt through SegmentationSession.add_box (cache hit, undo diff)", *gesture))
    rows.append(
        (
            "point click refining the box (cache hit)",
            *timed(lambda: session.add_point(z, box[0] + 16, box[1] + 16, True, "nodule"), args.repeats),
        )
    )

    box_256 = torch.from_numpy(info.box_to_model(np.asarray(box, dtype=np.float32)))

    def reference_forward() -> None:
        with torch.inference_mode():
            low, _ = upstream(preprocess_slice(plane, LUNG_LESION_WINDOW)[0], box_256)
            _ = info.logits_to_original(low) > 0

    ref = timed(reference_forward, reps, warmup=1)
    rows.append(("reference: preprocess + encoder + decoder per prompt (upstream forward, fp32)", *ref))

    cold = SegmentationSession(backend, EmbeddingCache.from_megabytes(256), window=LUNG_LESION_WINDOW)
    cold.set_image(image)
    t1 = time.perf_counter()
    cold.add_box(z, box, "nodule")
    prop = cold.propagate("nodule", (28, 38))
    cold_ms = (time.perf_counter() - t1) * 1000
    n_slices = len(prop.slices) + len(prop.stop_reason)  # slices decoded, incl. the ones that stopped it
    t2 = time.perf_counter()
    cold.propagate("nodule", (28, 38))
    warm_ms = (time.perf_counter() - t2) * 1000

    lines = [
        f"### Segmentation (LiteMedSAM, CPU, {torch.get_num_threads()} threads; `python -m benchmarks segmentation`)",
        "",
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}; model load incl. sha256 {load_ms:.0f} ms.",
        "",
        "| step | median ms | min ms |",
        "|---|---|---|",
        *[f"| {name} | {med:.1f} | {best:.1f} |" for name, med, best in rows],
        f"| 3-D: box on slice 33 + propagate through 28..38, cold cache ({n_slices} slices embedded) | {cold_ms:.0f} | – |",
        f"| 3-D: same propagation again, warm cache (decoder only) | {warm_ms:.0f} | – |",
        "",
        f"Speed-up of a re-prompt over the reference forward: {ref[0] / dec[0]:.0f}× "
        f"(propagation kept {sorted(prop.confidence)}, stopped: {prop.stop_reason}).",
    ]
    record_headline("Prompt → mask, cached embedding (CPU)", f"{dec[0]:.0f} ms median, {dec[1]:.0f} ms min",
                    f"{ref[0] / dec[0]:.0f}× faster than the upstream forward per prompt", "< 50 ms")
    record_headline("Image embedding per slice (CPU)", f"{enc[0]:.0f} ms median, {enc[1]:.0f} ms min (`{engine}`)",
                    f"{upstream_enc[0] / enc[0]:.1f}× faster than upstream fp32 NCHW", "–")
    publish("segmentation", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
