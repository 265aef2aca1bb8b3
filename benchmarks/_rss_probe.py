"""Child process of ``benchmarks/memory.py`` (under ``xvfb-run``): resident memory of a big CT session.

``python -m benchmarks._rss_probe VOLUME.nrrd`` runs a session in the real main window, one stage at a
time, and prints one JSON line. For every stage: RSS after it and the peak *during* it (the kernel's
high-water mark ``VmHWM`` is reset before each stage through ``/proc/self/clear_refs``), so transient
copies are attributed to the stage that made them:

1. the window with nothing open; 2. LiteMedSAM loaded (encoder engine ready); 3. two slices embedded, each prompted twice
(the inference runtime's working memory, independent of the volume);
4. ``open_image`` (the reader alone: its buffers and the float32 volume);
5. the volume shown (``document.set_volume``: slice views, 3-D view, background embeddings);
6. a box prompt, a 7-slice propagation and an autosave (label-map snapshot, image hash).

Also the sizes of what the app keeps (volume, 3-D view image, label map, embedding cache, undo history,
model weights), read from the objects themselves.
"""

from __future__ import annotations

import gc
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


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Stages:
    """RSS after each stage and the peak reached while it ran."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.per_stage_peaks = reset_peak()

    def begin(self) -> None:
        gc.collect()
        self.per_stage_peaks = reset_peak() and self.per_stage_peaks
        self._before = rss_mib()[0]

    def end(self, name: str) -> None:
        gc.collect()
        rss, peak = rss_mib()
        self.rows.append({"stage": name, "rss_mib": rss, "peak_mib": peak, "before_mib": self._before})


def _pump(app, seconds: float) -> None:  # noqa: ANN001
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def kept_sizes(viewer, vol) -> dict:  # noqa: ANN001
    """Bytes the app holds, read from the objects (MiB)."""
    from inference.segmentation.label_pages import slices_in_use

    session = viewer.segmentation.controller.session
    image_3d = viewer.window.grid.view_3d._mapper.GetInput()
    sizes = {
        "volume (float32)": vol.array.nbytes / 2**20,
        "3-D view image (VTK)": (image_3d.GetActualMemorySize() / 1024) if image_3d is not None else 0.0,
        "label map (uint8, zero pages until drawn on)": session.label_map.nbytes / 2**20,
        "label map: slices drawn on (resident)": len(slices_in_use(session.label_map))
        * session.label_map[0].nbytes / 2**20,
        "embedding cache": session.cache.nbytes / 2**20,
        "undo history": session.history.nbytes / 2**20,
    }
    model = getattr(viewer.segmentation.controller.backend.get(), "model", None)
    if hasattr(model, "parameters"):
        sizes["LiteMedSAM weights (PyTorch)"] = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    elif hasattr(getattr(model, "decoder", None), "nbytes"):
        sizes["LiteMedSAM decoder arrays (numpy; the encoder's are inside ONNX Runtime)"] = model.decoder.nbytes / 2**20
    return sizes


def main(path: str) -> int:
    from app.launch import build_viewer, wait_idle
    from inference.io.loader import open_image
    from inference.settings import Settings

    home = Path(os.environ["MEDFUSION_HOME"])
    viewer = build_viewer(Settings(cache_dir=str(home / "cache"), embedding_cache_mb=256))
    app, window = viewer.app, viewer.window
    window.loader.remember_recent = False
    window.resize(1400, 900)
    window.show()
    stages = Stages()
    stages.begin()
    _pump(app, 0.5)
    stages.end("window shown, nothing open")
    backend = viewer.segmentation.controller.backend
    if hasattr(backend, "get"):  # the app loads LiteMedSAM lazily on the first volume; load it first here
        stages.begin()
        model = backend.get()
        stages.end("LiteMedSAM loaded (encoder engine ready)")
        import numpy as np

        stages.begin()
        embedded = []  # kept to the end of the stage like the session's cache keeps its slices
        for seed in (0, 1):  # the runtime's buffers reach their steady size on the second call
            image = np.random.default_rng(seed).normal(0, 300, (512, 512)).astype(np.float32)
            embedded.append(model.embed(image, (40.0, 400.0)))
            for _ in range(2):  # a box and a re-prompt: the decoder's per-embedding context and buffers
                model.decode(embedded[-1], (150.0, 150.0, 350.0, 350.0))
        del embedded
        stages.end("two 512² slices embedded and prompted twice each (inference working memory)")
    stages.begin()
    vol = open_image(Path(path))
    stages.end("open_image (reader)")
    stages.begin()
    window.document.set_volume(vol)
    wait_idle(window, 900)
    window.grid.view_3d.grab_array()  # the 3-D view's first render uploads the volume texture
    _pump(app, 0.5)
    wait_idle(window, 900)
    stages.end("volume shown: slice views + 3-D view + 5 slices embedded")
    stages.begin()
    seg = viewer.segmentation.controller
    z = vol.shape[0] // 2
    box = (vol.shape[2] * 0.25, vol.shape[1] * 0.3, vol.shape[2] * 0.45, vol.shape[1] * 0.7)
    seg.add_box(z, box)
    wait_idle(window, 900)
    seg.propagate((z - 3, z + 3))
    wait_idle(window, 900)
    viewer.export.session.autosave_now(wait=True)  # label-map snapshot + image hash, as after every gesture
    _pump(app, 0.5)
    stages.end("box prompt, propagation over 7 slices, autosave")
    session = seg.session
    print(json.dumps({
        "stages": stages.rows, "per_stage_peaks": stages.per_stage_peaks,
        "peak_mib": max(r["peak_mib"] for r in stages.rows), "shape": list(vol.shape),
        "volume_mib": vol.array.nbytes / 2**20, "kept_mib": kept_sizes(viewer, vol),
        "cache_items": len(session.cache),
        "shares_buffer": bool(session.volume is not None and session.volume.array is vol.array),
        "torch_imported": "torch" in sys.modules,
        "engine": str(getattr(seg.backend.get(), "encoder_engine", getattr(seg.backend.get().model, "encoder_engine", "?"))),
    }), flush=True)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
