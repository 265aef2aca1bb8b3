"""Child process of ``benchmarks/memory.py`` (under ``xvfb-run``): resident memory of a big CT session.

``python -m benchmarks._rss_probe VOLUME.nrrd`` opens the volume in the real main window (3 slice views +
3-D view), lets the segmentation controller embed the shown slice and its neighbours, segments a box and
propagates it over a few slices, then prints one JSON line with RSS (MiB) after each stage, the peak
(VmHWM), and the sizes the app keeps (volume, label map, embedding cache, undo history).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def rss_mib() -> tuple[float, float]:
    """(current VmRSS, peak VmHWM) in MiB from /proc/self/status."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def main(path: str) -> int:
    from app.launch import build_viewer, wait_idle
    from inference.settings import Settings

    home = Path(os.environ["MEDFUSION_HOME"])
    viewer = build_viewer(Settings(cache_dir=str(home / "cache"), embedding_cache_mb=256))
    app, window = viewer.app, viewer.window
    window.loader.remember_recent = False
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    stages = {"window shown, nothing open": rss_mib()[0]}
    backend = viewer.segmentation.controller.backend
    if hasattr(backend, "get"):  # the app loads LiteMedSAM lazily on the first volume; load it first here
        backend.get()
        stages["+ LiteMedSAM loaded (encoder engine ready)"] = rss_mib()[0]
    window.open_path(Path(path))
    wait_idle(window, 900)
    vol = window.document.volume
    if vol is None:
        print(json.dumps({"error": "volume did not load"}))
        return 1
    for _ in range(50):
        app.processEvents()
        time.sleep(0.01)
    stages["+ volume opened, views drawn, 5 slices embedded"] = rss_mib()[0]
    seg = viewer.segmentation.controller
    z = vol.shape[0] // 2
    box = (vol.shape[2] * 0.25, vol.shape[1] * 0.3, vol.shape[2] * 0.45, vol.shape[1] * 0.7)
    seg.add_box(z, box)
    wait_idle(window, 900)
    seg.propagate((z - 3, z + 3))
    wait_idle(window, 900)
    stages["+ box prompt and propagation over 7 slices"] = rss_mib()[0]
    session = seg.session
    print(json.dumps({
        "stages": stages, "peak_mib": rss_mib()[1], "shape": list(vol.shape),
        "volume_mib": vol.array.nbytes / 2**20, "label_map_mib": session.label_map.nbytes / 2**20,
        "cache_mib": session.cache.nbytes / 2**20, "cache_items": len(session.cache),
        "undo_mib": session.history.nbytes / 2**20,
        "shares_buffer": bool(session.volume is not None and session.volume.array is vol.array),
    }), flush=True)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
