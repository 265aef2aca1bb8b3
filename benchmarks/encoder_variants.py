"""CPU engines for the TinyViT image encoder: speed vs the fp32 reference and Dice of the decoded masks.

``python -m benchmarks encoder_variants [--threads 2] [--repeats 3] [--variants eager,fused,...] [--no-write]``
→ the "Encoder variants" section of docs/performance.md. The reference is the upstream way of running
the encoder: fp32, contiguous NCHW, ``no_grad``, measured in the same process. Quality: every variant's
embedding of each test slice goes through the same fp32 decoder with the same box; Dice against the
reference mask (1.0 = identical). Slices: lung1 CT nodule (z 32–34) and the lungs of two CXRs.
"""

from __future__ import annotations

import argparse
import copy
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
from inference.models.encoder_runtime import ENCODER_RUNTIMES, apply_encoder_runtime, resolve_runtime
from inference.models.litemedsam import LiteMedSAM, decode, encode, load_litemedsam
from inference.models.preprocess import LUNG_LESION_WINDOW, PreprocessInfo, preprocess_slice
from inference.segmentation.evaluation import component_boxes, padded_box

SHARED = REPO.parent / "shared" / "data"
CXR_IMAGES = ("00870a9c", "08d780ae")


def quality_slices() -> list[tuple[str, np.ndarray, tuple[float, float] | None, tuple[float, float, float, float]]]:
    """(name, 2-D slice, window, box) cases: boxes from the reference masks, as a user would draw them."""
    from PIL import Image

    ct = open_image(SHARED / "ct" / "lung1" / "image.nrrd").array
    label = open_image(SHARED / "ct" / "lung1" / "label.nrrd").array > 0
    cases = [(f"lung1 CT z{z} nodule", ct[z], LUNG_LESION_WINDOW, padded_box(label[z], 5)) for z in (32, 33, 34)]
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


def run(variants: list[str], repeats: int, threads: int, n_slices: int = 5) -> tuple[list[str], dict[str, float]]:
    """Returns the markdown lines and a summary ``{variant: speed-up over reference}``."""
    base = load_litemedsam("cpu")
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
        for name in variants:
            model = copy.deepcopy(base)
            t0 = time.perf_counter()
            apply_encoder_runtime(model, name, cache_dir=Path(cache), threads=threads)
            encode(model, tensors[0])  # first call: compile / session warm-up
            setup_s = time.perf_counter() - t0
            embs = [encode(model, t) for t in tensors]
            err = max(float((e - r).abs().max() / r.abs().max()) for e, r in zip(embs, ref_emb, strict=True))
            dices = [dice(m, r) for m, r in zip(masks_for(base, embs, infos, boxes), ref_masks, strict=True)]
            quality[name] = (setup_s, min(dices), err)
            engines[name] = lambda x, m=model: encode(m, x)
            print(f"{name}: setup {setup_s:.1f} s, min Dice {min(dices):.4f}", flush=True)
        times = interleaved(engines, tensors[0], repeats)
    ref_t = times["reference"]
    rows = [f"| reference: fp32 NCHW, no_grad (upstream) | – | {statistics.median(ref_t):.0f} | {min(ref_t):.0f} "
            "| 1.00× | 1.0000 | – |"]
    speedups: dict[str, float] = {}
    for name in variants:
        t = times[name]
        ratio = statistics.median(r / v for r, v in zip(ref_t, t, strict=True))  # paired, same round
        speedups[name] = ratio
        setup_s, min_dice, err = quality[name]
        tag = " **(kept: default)**" if name == resolve_runtime("auto") else ""
        rows.append(f"| `{name}`{tag} | {setup_s:.1f} | {statistics.median(t):.0f} | {min(t):.0f} | {ratio:.2f}× | "
                    f"{min_dice:.4f} | {err:.1e} |")
    lines = [
        f"### Encoder variants (TinyViT, CPU, {threads} threads; `python -m benchmarks encoder_variants`)", "",
        f"{platform.machine()}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}. One 256² slice per call, "
        f"{repeats} rounds, engines timed round-robin; speed-up = median over rounds of reference ms / engine ms "
        "in the same round (the machine was shared with other jobs: read the ratios, not the absolute times).",
        f"Dice = min over {len(cases)} slices ({', '.join(c[0] for c in cases)}) of the mask decoded from the "
        "engine's embedding vs from the reference embedding, same box, fp32 decoder; max rel. err = "
        "max |Δembedding| / max |embedding|. Setup = preparing the engine + first call (compile, export).",
        "", "| engine | setup s | median ms | min ms | speed-up | min Dice vs ref | max rel. err |",
        "|---|---|---|---|---|---|---|", *rows, "",
        "Decision (one setting, `Settings.encoder_runtime`, default `auto`): engines whose masks fall below "
        f"Dice 0.995 are rejected ({', '.join(f'`{n}` {q[1]:.3f}' for n, q in quality.items() if q[1] < 0.995) or 'none'}); "
        "`compile` needs a C++ toolchain and compiles for tens of seconds at every start (Inductor's cache "
        "helps only the same machine), so it is opt-in. `auto` = `onnx` (exact, fastest where ONNX Runtime is "
        "installed: `pip install 'medfusion-viewer[onnx]'`, exported once per checkpoint into the cache folder) "
        "else `fused` (exact, no extra dependency). On CUDA the eager encoder runs under bf16/fp16 autocast "
        "(`inference.models.device.autocast_dtype`) and propagation can batch-encode slices "
        "(`litemedsam_backend.prefetch_embeddings`, 8 per call); GPU checks are `@pytest.mark.gpu`.",
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
    kept = resolve_runtime("auto")
    if kept in speedups:
        record_headline("Image encoder engine kept (`encoder_runtime=auto`)", f"`{kept}`, exact (Dice 1.000)",
                        f"{speedups[kept]:.1f}× upstream fp32 encoder", "Dice ≥ 0.995")
    publish("encoder-variants", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
