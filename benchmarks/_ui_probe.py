"""Child process of ``benchmarks/ui.py`` (run under ``xvfb-run``): cold start, first slice, event-loop stalls.

Prints one JSON line (``--cold-only``: only the cold start, then exit). Times are taken inside the real
main window, as the user sees it:
- cold start: from this process's start (kernel start time, so interpreter start and imports count) to
  the first non-blank render of the demo CT's axial view;
- first slice: ``open_path`` on the demo CT series in the running window → first non-blank render;
- stalls: a 5 ms ``QTimer`` heartbeat on the UI thread; the longest gap between beats while idle
  (reference) and while the segmentation controller embeds 5 slices (LiteMedSAM on ``window.runner``)
  and while a box prompt is segmented and drawn — until the mask is on screen everywhere: the slice views'
  label layers and the 3-D view's label surfaces (meshed on the worker, one throttled 3-D render over the
  volume's kept picture) — in the
  2×2 layout and with the axial view alone (no 3-D render).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def process_age_s() -> float:
    """Seconds since this process started (``/proc/self/stat`` start time vs boot-time clock)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    start_ticks = int(fields[19])  # field 22 of stat; 20th after the command name
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def main() -> int:
    from PySide6.QtCore import QTimer

    from app.launch import DEMO_CT, build_viewer, wait_idle
    from inference.settings import Settings

    home = Path(os.environ["MEDFUSION_HOME"])
    runtime = os.environ.get("MEDFUSION_BENCH_RUNTIME", Settings().encoder_runtime)
    viewer = build_viewer(Settings(cache_dir=str(home / "cache"), encoder_runtime=runtime))
    app, window = viewer.app, viewer.window
    window.loader.remember_recent = False
    window.resize(1400, 900)
    window.show()

    def first_render(previous: object = None, timeout: float = 120.0) -> float:
        """Seconds until a volume other than ``previous`` is in the document and its axial slice is drawn."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            app.processEvents()
            if window.document.volume is not None and window.document.volume is not previous:
                pixels = window.views["axial"].grab_array()
                if pixels.size and float(pixels.std()) > 1.0:
                    return time.perf_counter() - t0
            time.sleep(0.002)
        raise RuntimeError("no image on screen")

    window.open_path(DEMO_CT)
    first_render()
    cold_start = process_age_s()
    if "--cold-only" in sys.argv:  # the interleaved cold-start rounds of benchmarks/ui.py stop here
        print(json.dumps({"cold_start_s": cold_start}), flush=True)
        os._exit(0)  # no teardown: the background model load has nothing to finish for this measure
    wait_idle(window, 600)  # model load + background embeddings of the shown slice and neighbours

    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))

    workspace = viewer.segmentation

    def drawn() -> bool:
        """The worker is idle and every view shows the labels (composed, rendered, surfaces meshed)."""
        surfaces = workspace.surfaces
        return (not window.runner.busy and not (workspace.renders is not None and workspace.renders.pending)
                and not (surfaces is not None and surfaces.pending) and not window.grid.view_3d.render_pending)

    def longest_gap(run, until_idle: bool = True, seconds: float = 1.5) -> tuple[float, float]:  # noqa: ANN001
        """(longest gap between beats ms, seconds the work took) while ``run()``'s work goes on."""
        beats.clear()
        timer.start()
        t0 = time.perf_counter()
        run()
        quiet_since: float | None = None
        while True:
            app.processEvents()
            now = time.perf_counter()
            if until_idle and now - t0 > 0.05:
                quiet_since = (quiet_since or now) if drawn() else None
                if quiet_since is not None and now - quiet_since > 0.4:  # the surface debounce is 0.3 s
                    break
            if not until_idle and time.perf_counter() - t0 > seconds:
                break
            time.sleep(0.001)
        took = time.perf_counter() - t0
        timer.stop()
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        if gaps and os.environ.get("MEDFUSION_BENCH_DEBUG"):
            i = max(range(len(gaps)), key=gaps.__getitem__)
            print(f"longest gap at {beats[i] - t0:.2f} s of {took:.2f} s", file=sys.stderr)
        return (max(gaps) * 1000 if gaps else took * 1000), took

    idle_gap, _ = longest_gap(lambda: None, until_idle=False)
    seg = viewer.segmentation.controller
    nz = window.document.volume.shape[0]
    z = max(0, nz // 2 - 6)
    window.document.set_slice(2, z)
    settle = time.perf_counter()
    while time.perf_counter() - settle < 2.0:  # the throttled 3-D re-render after the cursor move
        app.processEvents()
        time.sleep(0.005)
    view_3d = window.grid.view_3d
    view_3d.backdrop.invalidate()  # the reference: the volume ray cast again, as every 3-D render did before
    t3 = time.perf_counter()
    view_3d.grab_array()  # one 3-D render on the UI thread (software GL under xvfb)
    render_3d_ms = (time.perf_counter() - t3) * 1000
    t3 = time.perf_counter()
    view_3d.grab_array()  # the same view again: the volume's kept picture, overlays drawn anew
    backdrop_3d_ms = (time.perf_counter() - t3) * 1000
    t2 = time.perf_counter()
    window.views["axial"].grab_array()
    render_2d_ms = (time.perf_counter() - t2) * 1000
    seg.neighbours = 2
    embed_gap, embed_s = longest_gap(lambda: seg.precompute(z))
    vol = window.document.volume
    box = (vol.shape[2] * 0.3, vol.shape[1] * 0.3, vol.shape[2] * 0.6, vol.shape[1] * 0.6)
    if os.environ.get("MEDFUSION_BENCH_DEBUG"):
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            prompt_gap, prompt_s = longest_gap(lambda: seg.add_box(z, box))
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(12)
    else:
        prompt_gap, prompt_s = longest_gap(lambda: seg.add_box(z, box))
    window.grid.toggle_maximized("axial")  # the axial view alone: no 3-D render after the gesture
    window.document.set_slice(2, z + 1)  # a neighbour: its embedding is cached, as for z
    app.processEvents()
    t2 = time.perf_counter()
    window.views["axial"].grab_array()  # the reference for this layout: one render of the maximised view
    render_2d_max_ms = (time.perf_counter() - t2) * 1000
    if os.environ.get("MEDFUSION_BENCH_DEBUG"):
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            prompt_axial_gap, _ = longest_gap(lambda: seg.add_box(z + 1, box))
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    else:
        prompt_axial_gap, _ = longest_gap(lambda: seg.add_box(z + 1, box))
    window.grid.toggle_maximized("axial")
    settle = time.perf_counter()
    while time.perf_counter() - settle < 3.0:  # the 3-D view, shown again, renders once (not part of the next measure)
        app.processEvents()
        time.sleep(0.005)
    shown = window.document.volume
    if os.environ.get("MEDFUSION_BENCH_DEBUG"):
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            window.open_path(DEMO_CT)
            first_slice = first_render(shown)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        window.open_path(DEMO_CT)
        first_slice = first_render(shown)
    wait_idle(window, 600)
    loaded = seg.backend.get()
    runtime = str(getattr(getattr(loaded, "model", None), "encoder_runtime", "")
                  or ("onnx, without PyTorch" if type(loaded).__name__ == "CpuLiteMedSAMBackend" else "?"))
    print(json.dumps({
        "cold_start_s": cold_start, "first_slice_s": first_slice, "idle_gap_ms": idle_gap,
        "embed_gap_ms": embed_gap, "embed_s": embed_s, "embed_slices": 1 + 2 * seg.neighbours,
        "prompt_gap_ms": prompt_gap, "prompt_axial_gap_ms": prompt_axial_gap, "render_3d_ms": render_3d_ms,
        "backdrop_3d_ms": backdrop_3d_ms, "render_2d_max_ms": render_2d_max_ms, "render_2d_ms": render_2d_ms, "prompt_s": prompt_s,
        "encoder_runtime": runtime,
    }), flush=True)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
