"""Child process of ``benchmarks/view_modes.py`` (under ``xvfb-run``): UI stalls while scrolling with a slab.

Prints one JSON line. The real main window with the view modes installed (no model features: nothing else
runs), the lung CT; a 5 ms ``QTimer`` heartbeat on the UI thread; for each case, the longest gap between
beats while the wheel scrolls 16 slices of one view (one step per event-loop turn, as fast as the user's
wheel can go), and the median time per step. Reference, same run: the same scroll with no slab. The view is
shown alone (1×1: the slab's own cost), and once in 1+3, where the software-GL 3-D view re-renders too.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path


def main() -> int:
    from PySide6.QtCore import QTimer

    from app.application import create_application
    from app.launch import wait_idle
    from app.main_window import MainWindow
    from app.view_modes_install import install_view_modes
    from inference.settings import Settings

    path = Path(sys.argv[1])
    app = create_application()
    window = MainWindow(Settings())
    window.loader.remember_recent = False
    modes = install_view_modes(window).modes
    window.resize(1400, 900)
    window.show()
    window.open_path(path)
    wait_idle(window, 300)
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))

    def settle(seconds: float = 0.5) -> None:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            app.processEvents()
            time.sleep(0.002)

    def scroll(view: str, steps: int = 16) -> tuple[float, float]:
        """(longest heartbeat gap ms, median ms per wheel step) while ``view`` scrolls ``steps`` slices."""
        axis = window.views[view].mapping.normal_axis
        n = window.document.shape_xyz[axis]
        window.document.set_slice(axis, n // 2 - steps // 2)
        settle()
        beats.clear()
        timer.start()
        per_step = []
        for _ in range(steps):
            t0 = time.perf_counter()
            window.document.step_slice(axis, 1)
            app.processEvents()  # the coalesced render of the changed views
            per_step.append((time.perf_counter() - t0) * 1000)
        settle(0.05)
        timer.stop()
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        return (max(gaps) * 1000 if gaps else 0.0), statistics.median(per_step)

    results: dict[str, object] = {"shape": list(window.document.volume.shape)}  # type: ignore[union-attr]
    for layout, view, mode, mm in (
            ("1x1", "axial", "off", 0.0), ("1x1", "axial", "max", 20.0), ("1x1", "coronal", "off", 0.0),
            ("1x1", "coronal", "max", 10.0), ("1x1", "coronal", "min", 10.0), ("1x1", "sagittal", "off", 0.0),
            ("1x1", "sagittal", "max", 10.0), ("1+3", "axial", "off", 0.0), ("1+3", "axial", "max", 20.0)):
        modes.set_active(view)
        window.grid.set_layout(layout, view)
        modes.set_slab(mode=mode, thickness_mm=mm or None, view=view)
        settle()
        gap, step = scroll(view)
        results[f"{layout}_{view}_{mode}"] = {"gap_ms": gap, "step_ms": step, "mm": mm}
        modes.set_slab(mode="off", view=view)
    print(json.dumps(results), flush=True)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
