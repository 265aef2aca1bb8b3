"""Render docs/screenshots/measurements_*.png: the measurement tools on the shared lung CT and the demo X-ray.

Usage: ``xvfb-run -a .venv/bin/python scripts/screenshot_measurements.py [OUT_DIR]`` (needs the shared data
at ``../shared/data`` or ``$MEDFUSION_SHARED_DATA``). Measurements are placed through the model (the tests
drive the same tools with the mouse); the picture is what the window shows, composed with
``app.screenshot.save_window`` (VTK pixels via vtkWindowToImageFilter).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(out: Path) -> int:
    os.environ.setdefault("MEDFUSION_HOME", tempfile.mkdtemp(prefix="medfusion-shots-"))
    import numpy as np

    from app.launch import DEMO_CXR, build_viewer, wait_idle
    from app.model.measurements import Measurement
    from app.screenshot import save_window
    from inference.settings import Settings

    data = Path(os.environ.get("MEDFUSION_SHARED_DATA", REPO.parent / "shared" / "data"))
    viewer = build_viewer(Settings(deidentify_display=True))
    window = viewer.window
    window.resize(1500, 920)
    window.show()
    window.panels["measurements"].show()
    window.panels["measurements"].raise_()
    model = viewer.measurements.model

    window.open_path(data / "ct" / "lung1" / "image.nrrd")
    wait_idle(window)
    doc = window.document
    doc.set_cursor((217, 357, 33))
    doc.set_window_level(1500, -600)  # lung window: the nodule and its margins

    def add(kind: str, view: str, axis: int, index: int, points: list, text: str = "") -> None:
        model.add(Measurement(kind, view, axis, index, (), text).with_points(points))

    # the nodule: long axis, then a short axis widened to its edges (what the L tool + a handle drag give)
    from inference.measure import from_plane_coords, initial_short_axis, plane_coords

    volume = doc.volume
    assert volume is not None
    a, b = plane_coords(volume, 2, [(206.5, 352.0, 33), (229.0, 364.5, 33)])
    s0, s1 = initial_short_axis(a, b, 0.78)
    add("bidimensional", "axial", 2, 33, list(from_plane_coords(volume, 2, 33, np.stack([a, b, s0, s1]))))
    add("ellipse", "axial", 2, 33, [(340, 325, 33), (385, 358, 33)])  # left lung parenchyma density
    add("arrow", "axial", 2, 33, [(207, 366, 33), (165, 405, 33)], "RUL nodule")
    add("ruler", "coronal", 1, 357, [(217, 357, 31.5), (217, 357, 34.5)])  # cranio-caudal extent
    model.select(model.items()[0].id)
    window.grid.toggle_maximized("axial")  # as when double-clicking the view to read the nodule
    axial = window.views["axial"]
    axial.set_crosshair_visible(False)  # the lines would cross the nodule
    camera = axial.renderer.GetActiveCamera()
    fx, fy = axial.index_to_world(np.array([270.0, 352.0, 33.0]))
    camera.SetFocalPoint(fx, fy, 0.0)
    camera.SetPosition(fx, fy, 1000.0)
    axial.zoom(2.0)
    wait_idle(window)
    out.mkdir(parents=True, exist_ok=True)
    save_window(window, out / "measurements_ct.png")

    axial.set_crosshair_visible(True)
    window.grid.toggle_maximized("axial")
    window.open_path(DEMO_CXR)
    wait_idle(window)
    add("ruler", "image", 2, 0, [(45, 493, 0), (862, 493, 0)])  # internal thoracic width
    add("ellipse", "image", 2, 0, [(250, 350, 0), (380, 470, 0)])
    add("arrow", "image", 2, 0, [(274, 300, 0), (120, 170, 0)], "right mid-zone opacity")
    model.select(0)
    wait_idle(window)
    save_window(window, out / "measurements_xray.png")
    print("\n".join(str(p) for p in sorted(out.glob("measurements_*.png"))))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"))
