"""UI responsiveness → the "UI responsiveness" section of docs/performance.md.

``python -m benchmarks ui [--no-write] [--cold-only]`` (``--cold-only``: just the interleaved cold-start
rounds, printed, ~1 min). Runs ``benchmarks/_ui_probe.py`` in a fresh process (under
``xvfb-run -a`` when there is no display) with the real main window: cold start to the first image
(target < 3 s), time from ``open_path`` to the first rendered slice of the demo CT series, and the longest
event-loop stall (5 ms QTimer heartbeat) while LiteMedSAM embeds 5 slices on ``window.runner`` (target
< 100 ms) and while a box prompt is segmented and drawn. References, same run: a bare Qt+VTK start to its
first frame (``benchmarks/_qtvtk_floor.py``; cold starts are interleaved rounds of both, fresh processes,
median ratio), SimpleITK reading the same series, the idle heartbeat's
longest gap, and the embedding time per slice (the stall if inference ran on the UI thread).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO, prepare_encoder_cache, publish, record_headline
from benchmarks.io_load import DEMO_CT, sitk_load


def _json_line(command: list[str], env: dict, timeout: float = 300) -> dict:
    done = subprocess.run(_command(command), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{command[-1]} failed: {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def cold_start_rounds(env: dict, rounds: int) -> tuple[list[float], list[float]]:
    """(viewer cold starts, bare Qt+VTK first frames) in seconds, interleaved with alternating order so load
    from other jobs hits both alike; each run is a fresh process."""
    viewer: list[float] = []
    floor: list[float] = []
    for k in range(rounds):
        for which in (("floor", "viewer") if k % 2 == 0 else ("viewer", "floor")):
            if which == "floor":
                floor.append(_json_line([sys.executable, "-m", "benchmarks._qtvtk_floor"], env)["first_frame_s"])
            else:
                viewer.append(_json_line([sys.executable, "-m", "benchmarks._ui_probe", "--cold-only"], env)[
                    "cold_start_s"])
    return viewer, floor


def cold_only(env: dict, rounds: int) -> int:
    """``--cold-only``: the cold-start row alone (each round and the medians printed; nothing written)."""
    for package in ("app", "inference", "benchmarks"):
        compileall.compile_dir(str(REPO / package), quiet=1)
    with tempfile.TemporaryDirectory() as home:
        prepare_encoder_cache(Path(home))
        colds, floors = cold_start_rounds({**env, "MEDFUSION_HOME": home}, rounds)
    for k, (c, f) in enumerate(zip(colds, floors, strict=True)):
        print(f"round {k}: viewer {c:.2f} s, bare Qt+VTK {f:.2f} s ({c / f:.2f}×)")
    ratio = statistics.median(c / f for c, f in zip(colds, floors, strict=True))
    print(f"| cold start → first image (process start → demo CT axial slice rendered; median of {len(colds)}) | "
          f"{statistics.median(colds):.1f} s | {ratio:.1f}× a bare Qt+VTK start to its first frame "
          f"({statistics.median(floors):.1f} s; `benchmarks/_qtvtk_floor.py`, interleaved) | < 3 s |")
    return 0


def _command(args: list[str]) -> list[str]:
    if os.environ.get("DISPLAY") or not shutil.which("xvfb-run"):
        return args
    return ["xvfb-run", "-a", *args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks ui")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--cold-rounds", type=int, default=3)
    parser.add_argument("--cold-only", action="store_true",
                        help="only the interleaved cold-start rounds: print the row, write nothing (~1 min)")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if args.cold_only:
        return cold_only(env, args.cold_rounds)
    sitk_load(DEMO_CT)
    t0 = time.perf_counter()
    sitk_load(DEMO_CT)
    sitk_s = time.perf_counter() - t0
    # An installed viewer starts from compiled bytecode; write it even where PYTHONDONTWRITEBYTECODE is set,
    # so the cold start does not include compiling the project's own modules.
    for package in ("app", "inference", "benchmarks"):
        compileall.compile_dir(str(REPO / package), quiet=1)
    with tempfile.TemporaryDirectory() as home:
        prepare_encoder_cache(Path(home))
        colds, floors = cold_start_rounds({**env, "MEDFUSION_HOME": home}, args.cold_rounds)
        done = subprocess.run(_command([sys.executable, "-m", "benchmarks._ui_probe"]), env={**env, "MEDFUSION_HOME": home},
                              cwd=REPO, capture_output=True, text=True, timeout=900)
    lines_out = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines_out:
        print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
        return 1
    r = json.loads(lines_out[-1])
    per_slice_ms = r["embed_s"] * 1000 / r["embed_slices"]
    cold = statistics.median(colds)
    floor = statistics.median(floors)
    cold_ratio = statistics.median(c / f for c, f in zip(colds, floors, strict=True))
    rows = [
        f"| cold start → first image (process start → demo CT axial slice rendered; median of {len(colds)}) | "
        f"{cold:.1f} s | {cold_ratio:.1f}× a bare Qt+VTK start to its first frame ({floor:.1f} s; "
        f"`benchmarks/_qtvtk_floor.py`, interleaved) | < 3 s |",
        f"| open demo CT series → first slice on screen (warm window) | {r['first_slice_s'] * 1000:.0f} ms | "
        f"{r['first_slice_s'] / sitk_s:.2f}× SimpleITK reading the series ({sitk_s * 1000:.0f} ms) | – |",
        f"| longest event-loop stall, idle (reference) | {r['idle_gap_ms']:.0f} ms | 1.0× | – |",
        f"| longest stall while 5 slices are embedded on the worker (`{r['encoder_runtime']}`) | "
        f"{r['embed_gap_ms']:.0f} ms | {r['embed_gap_ms'] / per_slice_ms:.3f}× one embedding on the UI thread "
        f"({per_slice_ms:.0f} ms) | < 100 ms |",
        f"| longest stall while a box prompt is segmented and drawn (2×2 layout: slice views + 3-D label "
        f"surface, software GL) | {r['prompt_gap_ms']:.0f} ms | {r['prompt_gap_ms'] / r['render_3d_ms']:.2f}× one "
        f"3-D render ({r['render_3d_ms']:.0f} ms) | < 100 ms |",
        f"| longest stall while a box prompt is segmented and drawn (axial view alone) | "
        f"{r['prompt_axial_gap_ms']:.0f} ms | {r['prompt_axial_gap_ms'] / r['render_2d_max_ms']:.1f}× one render of "
        f"the maximised slice view ({r['render_2d_max_ms']:.0f} ms) | < 100 ms |",
        f"| one 3-D view render on the UI thread (software GL) / one slice view render (2×2; maximised) | "
        f"{r['render_3d_ms']:.0f} ms / {r['render_2d_ms']:.0f} ms; {r['render_2d_max_ms']:.0f} ms | – | – |",
        f"| one 3-D view render over the volume's kept picture (camera unchanged: cursor moves, label surfaces) | "
        f"{r['backdrop_3d_ms']:.0f} ms | {r['backdrop_3d_ms'] / r['render_3d_ms']:.2f}× ray casting the volume "
        f"({r['render_3d_ms']:.0f} ms) | – |",
    ]
    if not args.no_write:
        record_headline("Cold start → first image", f"{cold:.1f} s (bare Qt+VTK first frame {floor:.1f} s)",
                        f"{cold_ratio:.1f}× a bare Qt+VTK start, same run", "< 3 s")
    record_headline("Open DICOM series → first slice on screen (warm window)", f"{r['first_slice_s'] * 1000:.0f} ms",
                    f"{r['first_slice_s'] / sitk_s:.1f}× SimpleITK reading the series", "–", write=not args.no_write)
    record_headline("Longest UI stall while LiteMedSAM embeds (worker thread)", f"{r['embed_gap_ms']:.0f} ms",
                    f"{r['embed_gap_ms'] / r['idle_gap_ms']:.1f}× idle heartbeat gap", "< 100 ms", write=not args.no_write)
    record_headline("Longest UI stall when a box prompt's mask is drawn (axial view alone)",
                    f"{r['prompt_axial_gap_ms']:.0f} ms",
                    f"{r['prompt_axial_gap_ms'] / r['render_2d_max_ms']:.1f}× one render of the maximised slice view "
                    "(label layers composed off the UI thread)", "< 100 ms", write=not args.no_write)
    record_headline("Longest UI stall when a box prompt's mask is drawn",
                    f"{r['prompt_gap_ms']:.0f} ms",
                    f"{r['prompt_gap_ms'] / r['render_3d_ms']:.2f}× one software-GL 3-D render (2×2 layout, until the "
                    "3-D label surfaces are drawn)", "< 100 ms", write=not args.no_write)
    lines = [
        "### UI responsiveness (`python -m benchmarks ui`)", "",
        f"{time.strftime('%Y-%m-%d')}, Xvfb + Mesa llvmpipe (software OpenGL), machine shared with other jobs. "
        "Stalls = longest gap between beats of a 5 ms QTimer on the UI thread.", "",
        "| what | measured | vs reference (same run) | target |", "|---|---|---|---|", *rows, "",
        "Reading: inference does not block the UI thread (the worker releases the GIL inside torch / ONNX "
        "Runtime); the embedding-time stall is the same size as the idle one. What remains of the stall after a "
        "prompt is UI-thread work on the result (slice-view renders on software GL, the overlay's label-map "
        "lookup). Speed work behind these numbers (2026-12-01): the viewer starts without importing torch "
        "(it loads on the worker at the first model call; from 2026-12-03 on a CPU machine, from the second start on, "
        "segmentation runs without torch: ONNX Runtime encoder + numpy decoder), slice-view renders are coalesced to one per view per "
        "event-loop turn (a new volume used to cost 36 renders), the 3-D view's first software render waits for "
        "its 150 ms throttle so the slices appear first, and the label overlay skips empty label maps. Cold start "
        "(2026-12-03): slice planes are cut as views (a whole-volume copy per render before), only Triton's "
        "library is preloaded before Mesa, matplotlib / scipy.ndimage / the PDF stack load on first use; "
        "later that day the image readers (pydicom, SimpleITK, Pillow) load on the worker that opens the first "
        "image while the window draws itself, the memory check and the read share one header scan, the series "
        "browser lists the folder once the image is open, and the first model load waits for the views' first "
        "renders. 3-D view "
        "(2026-12-03): while camera, volume, transfer functions and window size are unchanged, the volume's "
        "pixels are kept from the last still render and drawn as the background; slice-plane outlines and label "
        "surfaces are drawn on a layer over it (`app/rendering/volume_backdrop.py`), so a cursor move or a new "
        "surface no longer ray casts the volume; rotating still does. Box and click masks are drawn after one "
        "decoder pass; their confidence is scored on the worker after. What remains of the axial-alone stall is "
        "one software-GL render of the large maximised view (hardware GL renders it in a few ms).",
    ]
    publish("ui", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
