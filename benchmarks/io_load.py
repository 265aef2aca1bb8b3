"""DICOM series load vs SimpleITK's ImageSeriesReader on the same files → "Series load" in docs/performance.md.

``python -m benchmarks io_load [--repeats 3] [--slices 150] [--no-write]``. Two series: the demo CT
(20 slices, 512², JPEG 2000 lossless: decode-bound) and a synthetic uncompressed 512² CT series of
``--slices`` slices written with the project's test writer (parse/IO-bound). Both readers run
round-robin in the same process, files already in the page cache after a warm-up; our time includes
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


def compare(folder: Path, repeats: int) -> tuple[float, float, bool]:
    """Median seconds (ours, SimpleITK) and whether the voxel arrays agree."""
    from inference.io.loader import open_image

    ours_arr, ref_arr = open_image(folder).array, sitk_load(folder)  # warm-up (page cache, imports)
    same = ours_arr.shape == ref_arr.shape and bool(
        np.allclose(ours_arr, ref_arr, atol=0.5) or np.allclose(ours_arr, ref_arr[::-1], atol=0.5)
    )
    ours, ref = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        open_image(folder)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sitk_load(folder)
        ref.append(time.perf_counter() - t0)
    return statistics.median(ours), statistics.median(ref), same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks io_load")
    parser.add_argument("--repeats", type=int, default=3)
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
            ours, ref, same = compare(folder, args.repeats)
            results[name] = ours / ref
            absolute.append(f"{ours * 1000:.0f} ms ({name.split(',')[1].strip()})")
            rows.append(f"| {name} | {ours * 1000:.0f} | {ref * 1000:.0f} | {ours / ref:.2f}× | "
                        f"{'yes' if same else '**no**'} |")
            print(rows[-1], flush=True)
    worst = max(results.values())
    record_headline("DICOM series load vs SimpleITK ImageSeriesReader", "; ".join(absolute),
                    f"{worst:.2f}× (worst of the 2 series)", "≤ 1.2×")
    lines = [
        "### Series load (`python -m benchmarks io_load`)", "",
        f"{time.strftime('%Y-%m-%d')}, median of {args.repeats} round-robin runs, warm page cache; the machine "
        "was shared with other jobs (read the ratio). Target ≤ 1.2× SimpleITK.", "",
        "| series | open_image ms | SimpleITK ImageSeriesReader ms | ratio | same voxels |",
        "|---|---|---|---|---|", *rows,
    ]
    publish("series-load", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
