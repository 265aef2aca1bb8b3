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
    from app.launch import DEMO_CXR, build_viewer, wait_idle
    from app.model.measurements import Measurement
    from app.screenshot import save_array, save_window
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

    add("bidimensional", "axial", 2, 33, [(206.5, 352.0, 33), (229.0, 364.5, 33), (0, 0, 33), (0, 0, 33)])
    m = model.items()[-1]
    axes = viewer.measurements.tools["measure_axes"]
    from app.measure_tools import AxesTool  # noqa: PLC0415 - only for this picture
    assert isinstance(axes, AxesTool)
    from inference.measure import from_plane_coords, initial_short_axis, plane_coords  # noqa: PLC0415
    a, b = plane_coords(doc.volume, 2, m.points[:2])
    s0, s1 = initial_short_axis(a, b, 0.78)
    model.update(m.with_points(from_plane_coords(doc.volume, 2, 33, [a, b, s0, s1])))
    add("ellipse", "axial", 2, 33, [(300, 300, 33), (330, 322, 33)])  # descending aorta region
    add("ruler", "axial", 2, 33, [(120, 250, 33), (120, 392, 33)])
    add("arrow", "axial", 2, 33, [(206, 362, 33), (150, 410, 33)], "RLL nodule")
    add("ruler", "coronal", 1, 357, [(217, 357, 20), (217, 357, 44)])
    add("angle", "sagittal", 0, 217, [(217, 250, 40), (217, 330, 28), (217, 420, 38)])
    model.select(model.items()[0].id)
    wait_idle(window)
    out.mkdir(parents=True, exist_ok=True)
    save_window(window, out / "measurements_ct.png")
    window.grid.toggle_maximized("axial")
    wait_idle(window)
    save_array(window.views["axial"].grab_array(), out / "measurements_ct_axial.png")
    window.grid.toggle_maximized("axial")

    window.open_path(DEMO_CXR)
    wait_idle(window)
    add("ruler", "image", 2, 0, [(300, 260, 0), (700, 260, 0)])
    add("ellipse", "image", 2, 0, [(250, 350, 0), (380, 470, 0)])
    add("arrow", "image", 2, 0, [(560, 640, 0), (640, 760, 0)], "left costophrenic angle")
    wait_idle(window)
    save_window(window, out / "measurements_xray.png")
    print("\n".join(str(p) for p in sorted(out.glob("measurements_*.png"))))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"))
