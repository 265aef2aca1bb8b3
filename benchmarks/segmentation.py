"""Interactive segmentation latency → the "Segmentation" section of docs/performance.md.

``python -m benchmarks segmentation [--threads 2] [--repeats 20] [--no-write]``. Every row names the
reference it is compared with, measured in the same process and interleaved with it (round-robin, median
of paired ratios), so load from other jobs hits both alike:

- **Re-prompt on a cached embedding** (what a box drag or a click costs) vs upstream's re-prompt on the same
  embedding: MedSAM's ``medsam_inference`` = segment_anything's prompt encoder + ``get_dense_pe()`` + mask
  decoder (fp32) + crop, bilinear upsampling to the slice and threshold. Ours: ``LiteMedSAMBackend.decode``
  (reordered decoder, ``inference.models.fast_decoder``), fp32 and with the backend's default precision,
  both for a second+ prompt on the slice and for the first prompt on a new slice; and the torch-free path
  (``inference.models.numpy_decoder`` + numpy crop/upsampling/threshold, same weights and embedding, its
  own threads sharing the image-side tiles, numpy's BLAS on one thread). Boxes are jittered by a
  pixel per repetition (same work, nothing could be reused from an identical prompt).
- **Image embedding** with the engine ``encoder_runtime = "auto"`` chose on this machine vs the upstream
  encoder (fp32, contiguous NCHW, ``no_grad``).
- Quality guard: Dice of our masks vs upstream's on the same embeddings (lung1 CT nodule, two CXR lungs).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks import REPO, publish, record_headline
from inference.io.loader import open_image
from inference.models.cpu_runtime_export import write_cpu_runtime
from inference.models.encoder_runtime import settle
from inference.models.litemedsam import LiteMedSAM, load_litemedsam, reference_decode
from inference.models.machine import cpu_flags
from inference.models.numpy_decoder import NumpyPromptDecoder
from inference.models.numpy_decoder import decode as numpy_decode
from inference.models.numpy_decoder_export import decoder_arrays
from inference.models.preprocess import LUNG_LESION_WINDOW, PreprocessInfo, preprocess_slice
from inference.models.registry import litemedsam_file
from inference.segmentation.backend import Embedding, stability_score
from inference.segmentation.cache import EmbeddingCache
from inference.segmentation.evaluation import component_boxes, padded_box
from inference.segmentation.factory import create_backend
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
from inference.segmentation.session import SegmentationSession, SessionOptions
from inference.settings import Settings

SHARED = Path(os.environ.get("MEDFUSION_SHARED_DATA", REPO.parent / "shared" / "data"))
CXR_IMAGES = ("00870a9c", "1-s2.0-S0196070920301691-gr3_lrg")  # square-ish and 4:3 (padding path)


def interleaved(fns: dict[str, Callable[[int], object]], repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """ms per call of each function (called with the repetition index), round-robin."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(i)
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def paired_ratio(times: list[float], reference: list[float]) -> float:
    return statistics.median(t / r for t, r in zip(times, reference, strict=True))


def upstream_reprompt(model: LiteMedSAM, emb: torch.Tensor, info: PreprocessInfo, box: np.ndarray) -> np.ndarray:
    """MedSAM's ``medsam_inference`` on a cached embedding: decoder, crop + bilinear to the slice, threshold."""
    low, _ = reference_decode(model, emb, info.box_to_model(box))
    h, w = info.new_size
    full = F.interpolate(low[None, :, :h, :w], size=info.original_size, mode="bilinear", align_corners=False)
    return (full[0, 0] > 0).numpy()


def numpy_reprompt(decoder: NumpyPromptDecoder, emb: np.ndarray, info: PreprocessInfo, box: tuple) -> np.ndarray:
    """The torch-free path, the same steps as ``LiteMedSAMBackend.decode``: box → 256 frame, decode the best
    token over the unpadded cells, crop + bilinear to the slice, threshold, stability score."""
    logits, _ = numpy_decode(decoder, emb, info.box_to_model(np.asarray(box, dtype=np.float32)), best=True,
                             valid_size=info.new_size)
    mask = info.logits_to_original_array(logits[0]) > 0
    h, w = info.new_size
    stability_score(logits[0, :h, :w])
    return mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def quality(backend: LiteMedSAMBackend, model: LiteMedSAM,
            numpy_decoder: NumpyPromptDecoder) -> list[tuple[str, float, float, float]]:
    """(case, Dice fp32, Dice default precision, Dice torch-free) of our masks vs upstream's, same embedding
    and box."""
    from PIL import Image

    ct = open_image(SHARED / "ct" / "lung1" / "image.nrrd").array
    label = open_image(SHARED / "ct" / "lung1" / "label.nrrd").array > 0
    cases: list[tuple[str, np.ndarray, tuple[float, float] | None, tuple[float, float, float, float]]] = [
        (f"lung1 CT z{z} nodule", ct[z], LUNG_LESION_WINDOW, padded_box(label[z], 5)) for z in (32, 33, 34)]
    for stem in CXR_IMAGES:
        image = open_image(next((SHARED / "cxr" / "images").glob(f"{stem}.*"))).array[0]
        mask = np.asarray(Image.open(SHARED / "cxr" / "lung_masks" / f"{stem}.png").convert("L")) > 127
        cases.append((f"CXR {stem[:12]} lung", image, None, component_boxes(mask)[0]))
    out = []
    dtype = backend.decoder_dtype
    for name, plane, window, box in cases:
        emb = backend.embed(plane, window)
        want = upstream_reprompt(model, emb.features, emb.info, np.asarray(box, dtype=np.float32))
        backend.decoder_dtype = None
        fp32 = backend.decode(emb, box).mask
        backend.decoder_dtype = dtype
        default = backend.decode(emb, box).mask
        torch_free = numpy_reprompt(numpy_decoder, emb.features.numpy(), emb.info, box)
        out.append((name, dice(fp32, want), dice(default, want), dice(torch_free, want)))
    return out


def gpu_rows(plane: np.ndarray, box: np.ndarray, repeats: int) -> list[str]:
    """The same comparisons on CUDA (autocast engine vs upstream fp32), or one "not measured" row."""
    if not torch.cuda.is_available():
        return ["| GPU rows | not measured: no CUDA device on this machine | – | – | – |"]
    from inference.models.litemedsam import decode, encode

    gpu = load_litemedsam("cuda")
    tensor, info = preprocess_slice(plane, LUNG_LESION_WINDOW)
    x = tensor.cuda()
    emb = encode(gpu, x)
    b256 = info.box_to_model(box)

    def synced(fn: Callable[[], object]) -> Callable[[int], object]:
        def call(_: int) -> object:
            out = fn()
            torch.cuda.synchronize()
            return out

        return call

    def upstream_encoder() -> object:
        with torch.no_grad():
            return gpu.image_encoder(x)

    t = interleaved({
        "up dec": synced(lambda: reference_decode(gpu, emb, b256)),
        "dec": synced(lambda: decode(gpu, emb, b256, best=True, valid_size=info.new_size)),
        "up enc": synced(upstream_encoder),
        "enc": synced(lambda: encode(gpu, x)),
    }, repeats)
    name = torch.cuda.get_device_name(0)
    return [
        f"| GPU ({name}): upstream prompt encoder + mask decoder, fp32 | {statistics.median(t['up dec']):.2f} | "
        f"{min(t['up dec']):.2f} | 1.00× | – |",
        f"| GPU: ours, re-prompt (autocast) | {statistics.median(t['dec']):.2f} | {min(t['dec']):.2f} | "
        f"{paired_ratio(t['dec'], t['up dec']):.2f}× | GPU upstream decoder (row above) |",
        f"| GPU: upstream image encoder, fp32 | {statistics.median(t['up enc']):.2f} | {min(t['up enc']):.2f} | "
        "1.00× | – |",
        f"| GPU: ours, image embedding (autocast) | {statistics.median(t['enc']):.2f} | {min(t['enc']):.2f} | "
        f"{paired_ratio(t['enc'], t['up enc']):.2f}× | GPU upstream encoder (row above) |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks segmentation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as cache:  # a first start: export + engine measurement included
        t0 = time.perf_counter()
        backend = LiteMedSAMBackend.load("cpu", cache_dir=Path(cache) / "encoder")
        load_s = time.perf_counter() - t0
        settle(backend.model)  # the first encodes of a first start: the engine is measured on them
        settle_s = time.perf_counter() - t0 - load_s
        # ... which records the torch-free path when ONNX Runtime won; a later start runs what this builds
        torch_free_recorded = write_cpu_runtime(backend.model, Path(cache) / "encoder", litemedsam_file().sha256)
        viewer_backend = create_backend(Settings(cache_dir=cache, device="cpu"))
    runs = type(viewer_backend).__name__
    model = backend.model
    upstream = load_litemedsam("cpu", runtime="eager")  # the reference: upstream fp32 NCHW encoder
    upstream.image_encoder.to(memory_format=torch.contiguous_format)
    image = open_image(SHARED / "ct" / "lung1" / "image.nrrd")
    reference = open_image(SHARED / "ct" / "lung1" / "label.nrrd").array > 0
    z = 33
    plane = image.array[z]
    box = np.asarray(padded_box(reference[z], 5), dtype=np.float32)
    tensor, info = preprocess_slice(plane, LUNG_LESION_WINDOW)
    emb = backend.embed(plane, LUNG_LESION_WINDOW)
    emb_np = emb.features.numpy()
    # the torch-free decoder a later start runs (numpy + its ONNX upsampling graph), else numpy alone
    torch_free = getattr(getattr(viewer_backend, "model", None), "decoder", None)
    if not isinstance(torch_free, NumpyPromptDecoder):
        torch_free = NumpyPromptDecoder(decoder_arrays(model), threads=args.threads)
    dtype = backend.decoder_dtype
    precision = "bf16 autocast (CPU has native bf16)" if dtype is not None else "fp32 (no native bf16 on this CPU)"

    def jitter(i: int) -> tuple[float, float, float, float]:
        d = float(i % 3 - 1)
        return (box[0] + d, box[1], box[2], box[3] - d)

    # A first prompt on a new slice decodes a copy of the embedding (a new object, as a new slice's is):
    # clearing the decoder's cache instead would make the re-prompt rows, interleaved with it, pay the
    # second prompt's one-off projections every time.
    def ours(dtype_: torch.dtype | None, new_slice: bool) -> Callable[[int], object]:
        def call(i: int) -> object:
            backend.decoder_dtype = dtype_
            features = emb.features.clone() if new_slice else emb.features
            return backend.decode(Embedding(features, info, emb.model_id, emb.nbytes), jitter(i))

        return call

    def ours_numpy(new_slice: bool) -> Callable[[int], object]:
        def call(i: int) -> object:
            return numpy_reprompt(torch_free, emb_np.copy() if new_slice else emb_np, info, jitter(i))

        return call

    decoders: dict[str, Callable[[int], object]] = {
        "upstream": lambda i: upstream_reprompt(model, emb.features, info, np.asarray(jitter(i), np.float32)),
        "ours fp32": ours(None, False),
        "ours fp32, first prompt on the slice": ours(None, True),
        "ours numpy": ours_numpy(False),
        "ours numpy, first prompt on the slice": ours_numpy(True),
    }
    if dtype is not None:
        decoders["ours bf16"] = ours(dtype, False)
    dec = interleaved(decoders, args.repeats)
    backend.decoder_dtype = dtype
    ref = dec["upstream"]

    def encode_ours(_: int) -> object:
        return backend.embed(plane, LUNG_LESION_WINDOW)

    def encode_upstream(_: int) -> object:
        with torch.no_grad():
            return upstream.image_encoder(preprocess_slice(plane, LUNG_LESION_WINDOW)[0])

    reps = max(3, args.repeats // 5)
    enc = interleaved({"upstream": encode_upstream, "ours": encode_ours}, reps, warmup=1)

    session = SegmentationSession(viewer_backend, EmbeddingCache.from_megabytes(256), window=LUNG_LESION_WINDOW)
    session.set_image(image)
    session.add_box(z, tuple(box), "nodule")
    viewer = SegmentationSession(viewer_backend, EmbeddingCache.from_megabytes(256), window=LUNG_LESION_WINDOW,
                                 options=SessionOptions(defer_confidence=True))  # what the viewer runs
    viewer.set_image(image)
    viewer.add_box(z, tuple(box), "nodule")
    viewer.score_slice("nodule", z)
    calls = viewer_backend.encoder_calls
    gestures = interleaved({
        "upstream": decoders["upstream"],
        "add_box": lambda i: session.add_box(z, jitter(i), "nodule"),
        "add_box viewer": lambda i: viewer.add_box(z, jitter(i), "nodule"),
        "score": lambda i: viewer.score_slice("nodule", z),
        "add_point": lambda i: viewer.add_point(z, box[0] + 16, box[1] + 16 + i % 2, True, "nodule"),
    }, args.repeats)
    assert viewer_backend.encoder_calls == calls, "the cached path must not run the encoder"
    dices = quality(backend, model, torch_free)

    def row(what: str, times: list[float], reference: list[float] | None, ref_name: str) -> str:
        ratio = f"{paired_ratio(times, reference):.2f}×" if reference is not None else "1.00×"
        return f"| {what} | {statistics.median(times):.1f} | {min(times):.1f} | {ratio} | {ref_name} |"

    up_name = "upstream re-prompt (row 1)"
    lines = [
        f"### Segmentation (LiteMedSAM, CPU, {torch.get_num_threads()} threads; `python -m benchmarks segmentation`)",
        "",
        f"{platform.machine()}, {', '.join(cpu_flags()) or 'ISA flags unknown'}; torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}; load average {os.getloadavg()[1]:.1f} on {os.cpu_count()} cores. "
        f"{args.repeats} round-robin repetitions; ratio = median over repetitions of ours / reference in the "
        "same repetition (read the ratios: absolute times on a shared machine are inflated). lung1 CT "
        f"slice {z} (512², no padding), box around the nodule, jittered by a pixel per repetition.",
        "",
        "| step | median ms | min ms | vs reference, same run | reference |",
        "|---|---|---|---|---|",
        row("**upstream re-prompt on a cached embedding**: prompt encoder + `get_dense_pe()` + mask decoder "
            "(fp32) + crop, bilinear to 512², threshold (MedSAM `medsam_inference`)", ref, None, "–"),
        row("**ours, re-prompt** (2nd+ prompt on the slice), fp32 → mask", dec["ours fp32"], ref, up_name),
        row("ours, first prompt on a new slice, fp32 → mask", dec["ours fp32, first prompt on the slice"], ref,
            up_name),
        *([row(f"ours, re-prompt, {precision} → mask (the backend's default here)", dec["ours bf16"], ref, up_name)]
          if "ours bf16" in dec else []),
        row("**ours, torch-free (numpy) re-prompt → mask** (2nd+ prompt on the slice; `numpy_decoder`"
            f"{', upsampling on ONNX Runtime' if torch_free.upsampler is not None else ''}, {args.threads} threads)", dec["ours numpy"], ref, up_name),
        row("ours, torch-free (numpy), first prompt on a new slice → mask", dec["ours numpy, first prompt on the slice"],
            ref, up_name),
        f"| *the gestures below run on the backend a later start of the viewer builds here: `{runs}`* | | | | |",
        row("box gesture: `SegmentationSession.add_box` (cache hit, post-processing, undo diff, confidence from "
            "4 jittered boxes + the best window)", gestures["add_box"], gestures["upstream"],
            "upstream re-prompt, interleaved with it"),
        row("**box gesture as the viewer runs it: mask drawn** (`defer_confidence`: one decode, post-processing, "
            "undo diff)", gestures["add_box viewer"], gestures["upstream"], "upstream re-prompt, interleaved with it"),
        row("… then its confidence, scored on the worker after the mask is on screen (`score_slice`)",
            gestures["score"], gestures["upstream"], "upstream re-prompt, interleaved with it"),
        row("point click refining the box as the viewer runs it: mask drawn (`add_point`, cache hit)",
            gestures["add_point"], gestures["upstream"],
            "upstream re-prompt, interleaved with it"),
        row("upstream image encoder (fp32, contiguous NCHW, `no_grad`) + preprocessing", enc["upstream"], None, "–"),
        row(f"ours: image embedding, `{model.encoder_runtime}` engine + preprocessing", enc["ours"], enc["upstream"],
            "upstream encoder (row above)"),
        *gpu_rows(plane, box, args.repeats),
        "",
        f"Encoder engine: {getattr(model, 'encoder_engine', model.encoder_runtime)}. First start with an empty "
        f"cache: model load incl. ONNX export + check {load_s:.0f} s, then the encodes that measured the "
        f"engines {settle_s:.0f} s (real work in the app, where they embed the first slices).",
        "",
        "Our masks vs upstream's on the same embedding and box (Dice; 1.0000 = identical pixels): "
        + "; ".join(f"{n} {a:.4f}" + (f" (bf16 {b:.4f})" if dtype is not None else "") + f" (torch-free {c:.4f})"
                    for n, a, b, c in dices) + ".",
    ]
    if not args.no_write:
        record_headlines(dec, enc, model.encoder_runtime, gestures, torch_free_recorded)
    publish("segmentation", lines, write=not args.no_write)
    return 0


def record_headlines(dec: dict[str, list[float]], enc: dict[str, list[float]], engine: str,
                     gestures: dict[str, list[float]], torch_free: bool) -> None:
    record_headline(
        "Box gesture in the viewer, cached embedding (CPU): mask drawn",
        f"{statistics.median(gestures['add_box viewer']):.0f} ms (confidence after it: "
        f"{statistics.median(gestures['score']):.0f} ms on the worker)",
        f"{paired_ratio(gestures['add_box viewer'], gestures['upstream']):.2f}× upstream re-prompt, interleaved", "–")
    ref = dec["upstream"]
    ours, first = ("ours numpy", "ours numpy, first prompt on the slice") if torch_free else (
        "ours fp32", "ours fp32, first prompt on the slice")
    record_headline(
        "Re-prompt on a cached embedding (CPU, fp32)",
        f"{statistics.median(dec[ours]):.0f} ms vs upstream {statistics.median(ref):.0f} ms "
        f"({'numpy decoder, torch-free' if torch_free else 'PyTorch decoder'}: what the viewer runs here)",
        f"{paired_ratio(dec[ours], ref):.2f}× upstream prompt encoder + mask decoder + upsample (first prompt on a "
        f"slice: {paired_ratio(dec[first], ref):.2f}×)", "≤ 0.5×")
    record_headline(
        "Image embedding per slice (CPU)",
        f"{statistics.median(enc['ours']):.0f} ms (`{engine}`, chosen by measurement)",
        f"{paired_ratio(enc['ours'], enc['upstream']):.2f}× the upstream fp32 NCHW encoder's time", "–")


if __name__ == "__main__":
    raise SystemExit(main())
