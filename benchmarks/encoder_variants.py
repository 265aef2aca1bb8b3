"""CPU engines for the TinyViT image encoder: speed vs the fp32 reference and Dice of the decoded masks.

``python -m benchmarks encoder_variants [--threads 2] [--repeats 3] [--variants eager,fused,...] [--no-write]``
→ the "Encoder variants" section of docs/performance.md. The reference is the upstream way of running
the encoder: fp32, contiguous NCHW, ``no_grad``, measured in the same process. Quality: every variant's
embedding of each test slice goes through the same fp32 decoder with the same box; Dice against the
reference mask (1.0 = identical). Slices: lung1 CT nodule (z 32–34) and the lungs of two CXRs.

Why the speed-up differs between machines: besides each named engine, the ONNX engine is timed with one
thread and with lower graph-optimisation levels, and PyTorch ``fused`` with one thread; the CPU's
instruction-set flags are printed; and the engine ``encoder_runtime = "auto"`` measures and keeps at a
first start on this machine (``inference.models.engine_choice``) is marked.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks import REPO, publish, record_headline
from inference.io.loader import open_image
from inference.models.encoder_runtime import ENCODER_RUNTIMES, _weights_digest, apply_encoder_runtime, settle
from inference.models.litemedsam import LiteMedSAM, decode, encode, load_litemedsam
from inference.models.machine import cpu_flags
from inference.models.onnx_encoder import OnnxEncoder, export_file_name, load_or_export
from inference.models.preprocess import LUNG_LESION_WINDOW, PreprocessInfo, preprocess_slice
from inference.segmentation.evaluation import component_boxes, padded_box

SHARED = Path(os.environ.get("MEDFUSION_SHARED_DATA", REPO.parent / "shared" / "data"))
CXR_IMAGES = ("00870a9c", "08d780ae")


def quality_slices() -> list[tuple[str, np.ndarray, tuple[float, float] | None, tuple[float, float, float, float]]]:
    """(name, 2-D slice, window, box) cases: boxes from the reference masks, as a user would draw them."""
    from PIL import Image

    ct = open_image(SHARED / "ct" / "lung1" / "image.nrrd").array
    label = open_image(SHARED / "ct" / "lung1" / "label.nrrd").array > 0
    cases: list[tuple[str, np.ndarray, tuple[float, float] | None, tuple[float, float, float, float]]] = [
        (f"lung1 CT z{z} nodule", ct[z], LUNG_LESION_WINDOW, padded_box(label[z], 5)) for z in (32, 33, 34)]
    for stem in CXR_IMAGES:
        images = sorted((SHARED / "cxr" / "images").glob(f"{stem}.*"))
        image = open_image(images[0]).array[0]
        mask = np.asarray(Image.open(SHARED / "cxr" / "lung_masks" / f"{stem}.png").convert("L")) > 127
        box = component_boxes(mask)[0]
        cases.append((f"CXR {stem} lung", image, None, box))
    return cases


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def masks_for(model: LiteMedSAM, embeddings: list[torch.Tensor], infos: list[PreprocessInfo],
              boxes: list[tuple[float, float, float, float]]) -> list[np.ndarray]:
    """fp32 decode of each embedding with its box → full-resolution boolean mask."""
    out = []
    for emb, info, box in zip(embeddings, infos, boxes, strict=True):
        logits, _ = decode(model, emb, info.box_to_model(np.asarray(box, dtype=np.float32)))
        out.append((info.logits_to_original(logits[None])[0, 0] > 0).cpu().numpy())
    return out


def interleaved(engines: dict[str, Callable[[torch.Tensor], object]], tensor: torch.Tensor,
                repeats: int) -> dict[str, list[float]]:
    """ms per call of every engine, measured round-robin so load from other jobs hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        for name, fn in engines.items():
            t0 = time.perf_counter()
            fn(tensor)
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def _engine_setups(base: LiteMedSAM, variants: list[str], threads: int, cache: Path,
                   ) -> dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]]:
    """name → preparation of each engine to time (the named runtimes, then the thread / graph-level probes)."""
    setups: dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]] = {}
    for name in variants:
        def named(name: str = name) -> Callable[[torch.Tensor], torch.Tensor]:
            model = apply_encoder_runtime(copy.deepcopy(base), name, cache_dir=cache, threads=threads)
            return lambda x: encode(model, x)

        setups[f"`{name}`"] = named
    folded = apply_encoder_runtime(copy.deepcopy(base), "fused", cache_dir=cache, threads=threads)

    def fused_one_thread() -> Callable[[torch.Tensor], torch.Tensor]:
        def call(x: torch.Tensor) -> torch.Tensor:
            torch.set_num_threads(1)
            try:
                return encode(folded, x)
            finally:
                torch.set_num_threads(threads)

        return call

    setups["`fused`, 1 thread"] = fused_one_thread
    if "onnx" in variants:
        for opt, n in (("all", 1), ("extended", threads), ("basic", threads)):
            def onnx(opt: str = opt, n: int = n) -> Callable[[torch.Tensor], torch.Tensor]:
                path = cache / export_file_name(_weights_digest(folded.image_encoder))
                engine = OnnxEncoder(load_or_export(folded.image_encoder, path).data, n, opt)
                return lambda x: engine(x)

            setups[f"`onnx`, {n} thread{'s' if n > 1 else ''}, graph opt `{opt}`"] = onnx
    return setups


def run(variants: list[str], repeats: int, threads: int, n_slices: int = 5) -> tuple[list[str], dict[str, float]]:
    """Returns the markdown lines and ``{engine: speed-up over reference}`` of the engines with Dice ≥ 0.995."""
    base = load_litemedsam("cpu", runtime="eager")
    cases = quality_slices()[:n_slices] if n_slices >= 5 else [quality_slices()[i] for i in (1, 3, 4)[:n_slices]]
    prepared = [preprocess_slice(s, w) for _, s, w, _ in cases]
    tensors = [t for t, _ in prepared]
    infos = [i for _, i in prepared]
    boxes = [b for *_, b in cases]

    ref_model = copy.deepcopy(base)
    ref_model.image_encoder.to(memory_format=torch.contiguous_format)

    def reference(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return ref_model.image_encoder(x)

    ref_emb = [reference(t) for t in tensors]
    ref_masks = masks_for(base, ref_emb, infos, boxes)
    engines: dict[str, Callable[[torch.Tensor], object]] = {"reference": reference}
    quality: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        auto = apply_encoder_runtime(copy.deepcopy(base), "auto", cache_dir=Path(cache) / "auto", threads=threads)
        settle(auto)
        auto_s = time.perf_counter() - t0
        for name, setup in _engine_setups(base, variants, threads, Path(cache)).items():
            t0 = time.perf_counter()
            fn = setup()
            fn(tensors[0])  # first call: compile / session warm-up
            setup_s = time.perf_counter() - t0
            embs = [fn(t) for t in tensors]
            err = max(float((e - r).abs().max() / r.abs().max()) for e, r in zip(embs, ref_emb, strict=True))
            dices = [dice(m, r) for m, r in zip(masks_for(base, embs, infos, boxes), ref_masks, strict=True)]
            quality[name] = (setup_s, min(dices), err)
            engines[name] = fn
            print(f"{name}: setup {setup_s:.1f} s, min Dice {min(dices):.4f}", flush=True)
        times = interleaved(engines, tensors[0], repeats)
    ref_t = times["reference"]
    rows = [f"| reference: upstream encoder, fp32 NCHW, no_grad | – | {statistics.median(ref_t):.0f} | "
            f"{min(ref_t):.0f} | 1.00× | 1.0000 | – |"]
    speedups: dict[str, float] = {}
    for name in engines:
        if name == "reference":
            continue
        t = times[name]
        ratio = statistics.median(r / v for r, v in zip(ref_t, t, strict=True))  # paired, same round
        setup_s, min_dice, err = quality[name]
        if min_dice >= 0.995:  # only engines that keep the masks count as candidates
            speedups[name] = ratio
        rows.append(f"| {name} | {setup_s:.1f} | {statistics.median(t):.0f} | {min(t):.0f} | {ratio:.2f}× | "
                    f"{min_dice:.4f} | {err:.1e} |")
    rejected = ", ".join(f"{n} {q[1]:.3f}" for n, q in quality.items() if q[1] < 0.995) or "none"
    lines = [
        f"### Encoder variants (TinyViT, CPU, {threads} threads; `python -m benchmarks encoder_variants`)", "",
        f"{platform.machine()} ({', '.join(cpu_flags()) or 'ISA flags unknown'}), torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[1]:.1f} on {os.cpu_count()} cores. "
        f"One 256² slice per call, {repeats} rounds, engines timed round-robin; speed-up = median over rounds "
        "of reference ms / engine ms in the same round (read the ratios, not the absolute times).",
        f"Dice = min over {len(cases)} slices ({', '.join(c[0] for c in cases)}) of the mask decoded from the "
        "engine's embedding vs from the reference embedding, same box, fp32 decoder; max rel. err = "
        "max |Δembedding| / max |embedding|. Setup = preparing the engine + first call (compile, export).",
        "", "| engine | setup s | median ms | min ms | speed-up vs reference | min Dice vs ref | max rel. err |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"**`auto` on this machine** (first start, empty cache: export + check + the encodes that measured the "
        f"engines took {auto_s:.0f} s): "
        f"{auto.encoder_engine}.",
        "",
        "Decision (one setting, `Settings.encoder_runtime`, default `auto`): `auto` times the exact engines on the first encodes "
        "(`fused`; `onnx` at the process's threads and at one thread) of the first start and keeps the fastest "
        "unless it beats the default (`onnx`, all threads) by less than 10 %; the decision is cached with the "
        "machine's CPU model, instruction-set flags, cores, threads and library versions, and measured again "
        "when any of those changes. Any other value forces that engine. Engines whose masks fall below Dice "
        f"0.995 are never chosen ({rejected}); `compile` needs a C++ toolchain and compiles at every start, so "
        "it is opt-in. On CUDA the eager encoder runs under bf16/fp16 autocast and propagation batch-encodes "
        "slices (`litemedsam_backend.prefetch_embeddings`); GPU: not measured here (`pytest -m gpu`).",
    ]
    return lines, speedups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks encoder_variants")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", default=",".join(v for v in ENCODER_RUNTIMES if v != "auto"))
    parser.add_argument("--slices", type=int, default=5, help="quality slices (3 or 5)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines, speedups = run([v for v in args.variants.split(",") if v], args.repeats, args.threads, args.slices)
    best = max(speedups, key=lambda k: speedups[k])
    if not args.no_write:
        record_headline("Fastest exact encoder engine here (`encoder_variants`)", best,
                        f"{speedups[best]:.2f}× faster than the upstream fp32 encoder, same run", "Dice ≥ 0.995")
    publish("encoder-variants", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
