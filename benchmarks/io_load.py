"""DICOM series load vs SimpleITK's ImageSeriesReader on the same files → "Series load" in docs/performance.md.

``python -m benchmarks io_load [--repeats 7] [--slices 150] [--no-write]``. Two series: the demo CT
(20 slices, 512², JPEG 2000 lossless: decode-bound) and a synthetic uncompressed 512² CT series of
``--slices`` slices written with the project's test writer (parse/IO-bound). Both readers run
interleaved in the same process, files already in the page cache after a warm-up; our time includes
everything ``open_image`` does (scan, series grouping, geometry from IPP/IOP, rescale to HU, headers).
Target: ≤ 1.2× SimpleITK. Time to first slice on screen is measured in ``benchmarks/ui.py``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from benchmarks import REPO, publish, record_headline

DEMO_CT = REPO / "resources" / "demo" / "ct"


def sitk_load(folder: Path) -> np.ndarray:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def compare(folder: Path, repeats: int) -> dict:
    """Interleaved rounds of ours vs SimpleITK (the order alternates each round so neither always runs
    second on a warmer cache); medians of wall time, of per-round ratios and of process CPU time."""
    from inference.io.loader import open_image

    ours_arr, ref_arr = open_image(folder).array, sitk_load(folder)  # warm-up (page cache, imports)
    same = ours_arr.shape == ref_arr.shape and bool(
        np.allclose(ours_arr, ref_arr, atol=0.5) or np.allclose(ours_arr, ref_arr[::-1], atol=0.5)
    )
    del ours_arr, ref_arr
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "ref": []}
    loaders = {"ours": open_image, "ref": sitk_load}
    for k in range(repeats):
        for name in (("ours", "ref") if k % 2 == 0 else ("ref", "ours")):
            t0, c0 = time.perf_counter(), time.process_time()
            loaders[name](folder)
            runs[name].append((time.perf_counter() - t0, time.process_time() - c0))
    ours = [w for w, _ in runs["ours"]]
    ref = [w for w, _ in runs["ref"]]
    return {
        "ours": statistics.median(ours), "ref": statistics.median(ref),
        "ratio": statistics.median(o / r for o, r in zip(ours, ref, strict=True)),
        "ours_cpu": statistics.median(c for _, c in runs["ours"]),
        "ref_cpu": statistics.median(c for _, c in runs["ref"]), "same": same,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks io_load")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--slices", type=int, default=150)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    from tests import synthetic_dicom as sd

    rows = []
    results = {}
    absolute: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "series"
        synthetic.mkdir()
        sd.write_volume_series(synthetic, n=args.slices, rows=512, cols=512, pixel_spacing=(0.7, 0.7), z_spacing=2.0)
        for name, folder in (("demo CT, 20 × 512², JPEG 2000 lossless", DEMO_CT),
                             (f"synthetic CT, {args.slices} × 512², uncompressed", synthetic)):
            r = compare(folder, args.repeats)
            results[name] = r["ratio"]
            absolute.append(f"{r['ours'] * 1000:.0f} ms ({name.split(',')[1].strip()})")
            rows.append(f"| {name} | {r['ours'] * 1000:.0f} | {r['ref'] * 1000:.0f} | **{r['ratio']:.2f}×** | "
                        f"{r['ours_cpu'] * 1000:.0f} / {r['ref_cpu'] * 1000:.0f} | {'yes' if r['same'] else '**no**'} |")
            print(rows[-1], flush=True)
    worst = max(results.values())
    if not args.no_write:
        record_headline("DICOM series load vs SimpleITK ImageSeriesReader", "; ".join(absolute),
                        f"{worst:.2f}× (worst of the 2 series)", "≤ 1.2×")
    lines = [
        "### Series load (`python -m benchmarks io_load`)", "",
        f"{time.strftime('%Y-%m-%d')}. Reference: SimpleITK `ImageSeriesReader` (GDCM) on the same files, same "
        f"process, {args.repeats} interleaved rounds (order alternating), warm page cache. Ratio = median of "
        "the per-round ratios (robust to load from other jobs); CPU = process CPU time (ours runs a thread "
        "pool, SimpleITK one thread per series). Target ≤ 1.2× SimpleITK.", "",
        "| series | open_image ms | SimpleITK ms | ratio (same run) | CPU ms ours / SimpleITK | same voxels |",
        "|---|---|---|---|---|---|", *rows, "",
        "Uncompressed slices are read straight from the end of each file into the volume "
        "(`inference/io/dicom_native.py`, values identical to pydicom's); compressed ones go through GDCM "
        "(SimpleITK) in a thread pool, pydicom + pylibjpeg as fallback. The largest remaining part of ours is the "
        "Python header scan (pydicom, every element's VR checked).",
    ]
    publish("series-load", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
