"""Screenshots of the view modes for ``docs/screenshots/`` (run under ``xvfb-run -a``; needs the shared data).

``python scripts/viewmodes_screenshots.py [OUT_DIR]`` writes:

- ``viewmodes_lung_mip_1p3.png``: the lung CT in the 1+3 layout, lung window, the large axial view a
  20 mm MIP through the nodule (vessels become branching lines, the nodule stays round), the coronal view a
  10 mm MIP; de-identified display;
- ``viewmodes_xray_inverted.png``: the demo chest X-ray inverted (I);
- ``viewmodes_ct_flipped_rotated.png``: the axial view flipped horizontally and the coronal rotated 90°,
  orientation letters following.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from app.launch import DEMO_CXR, build_viewer, wait_idle
    from app.screenshot import save_window
    from inference.settings import Settings

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    shared = Path(os.environ.get("MEDFUSION_SHARED_DATA", REPO.parent / "shared" / "data"))
    viewer = build_viewer(Settings(deidentify_display=True))
    app, window, modes = viewer.app, viewer.window, viewer.view_modes.modes
    window.loader.remember_recent = False
    window.error_sink = print
    window.resize(1700, 1000)
    window.show()
    for key in ("segmentation", "prediction", "explanation", "ehr", "audit", "timeline"):
        dock = window.panels.get(key)
        if dock is not None:  # the view modes are the subject: give the views the room
            dock.hide()

    def settle(seconds: float = 1.5) -> None:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            app.processEvents()
            time.sleep(0.01)

    window.open_path(shared / "ct" / "lung1" / "image.nrrd")
    wait_idle(window, 300)
    doc = window.document
    doc.set_window_level(1500, -600)
    doc.set_cursor((217, 357, 33))  # the nodule (see docs/segmentation.md)
    modes.set_active("axial")
    modes.set_layout("1+3")
    modes.set_slab(mode="max", thickness_mm=20.0, view="axial")
    modes.set_slab(mode="max", thickness_mm=10.0, view="coronal")
    settle(3.0)
    save_window(window, out / "viewmodes_lung_mip_1p3.png")

    modes.set_slab(mode="off", view="axial")
    modes.set_slab(mode="off", view="coronal")
    modes.set_layout("2x2")
    modes.flip_horizontally("axial")
    modes.rotate(True, "coronal")
    settle(2.0)
    save_window(window, out / "viewmodes_ct_flipped_rotated.png")

    window.open_path(DEMO_CXR)
    wait_idle(window, 120)
    modes.set_inverted(True)
    settle(1.5)
    save_window(window, out / "viewmodes_xray_inverted.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
