"""``python main.py demo [--headless --out DIR]``: the bundled demo case, interactive or as screenshots.

Headless mode renders the demo CT (and the demo chest X-ray) in the real main window and writes PNGs
of each view and of the whole window. Without a display it tries Qt's offscreen platform with VTK
offscreen (EGL) rendering; if that yields no image it says to run under ``xvfb-run -a``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

XVFB_HINT = "Offscreen rendering is not available here; run the command under `xvfb-run -a python main.py demo --headless --out DIR`."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--headless", action="store_true", help="render to PNG files instead of opening a window"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo_screenshots"), help="output folder for --headless"
    )
    parser.add_argument(
        "--size", default="1400x900", help="window size WxH for --headless (default 1400x900)"
    )


def _blank(pixels: np.ndarray) -> bool:
    return pixels.size == 0 or float(pixels.std()) < 1.0


def run(args: argparse.Namespace) -> int:
    from app.application import headless_environment

    offscreen = headless_environment()
    if not args.headless:
        if offscreen:
            print("No display found: use --headless --out DIR, or run under `xvfb-run -a`.", file=sys.stderr)
            return 2
        from app.launch import run_viewer

        return run_viewer(None)
    if offscreen:
        from app.application import offscreen_rendering_works

        if not offscreen_rendering_works():
            print(XVFB_HINT, file=sys.stderr)
            return 2
    return _render(args, offscreen)


def _render(args: argparse.Namespace, offscreen: bool) -> int:
    from app.launch import DEMO_CT, DEMO_CXR, build_window, wait_idle
    from app.screenshot import save_array, save_window
    from inference.settings import Settings

    width, height = (int(v) for v in str(args.size).lower().split("x"))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(deidentify_display=True)  # screenshots never show identifiers
    app, window = build_window(settings)
    window.loader.remember_recent = False
    window.error_sink = lambda message: print(f"error: {message}", file=sys.stderr)
    window.resize(width, height)
    window.show()
    app.processEvents()
    window.open_path(DEMO_CT)
    if not wait_idle(window) or window.document.volume is None:
        print("error: the demo CT could not be loaded", file=sys.stderr)
        return 1
    app.processEvents()
    window.reset_views()
    written: list[Path] = []
    shots = {name: view.grab_array() for name, view in window.views.items()}
    shots["3d"] = window.grid.view_3d.grab_array()
    if all(_blank(p) for p in shots.values()):
        print(XVFB_HINT if offscreen else "error: rendering produced blank images", file=sys.stderr)
        return 1
    for name, pixels in shots.items():
        save_array(pixels, out / f"demo_{name}.png")
        written.append(out / f"demo_{name}.png")
    save_window(window, out / "demo_window.png")
    written.append(out / "demo_window.png")
    if DEMO_CXR.is_file():
        window.open_path(DEMO_CXR)
        if wait_idle(window) and window.document.volume is not None and window.document.volume.is_2d:
            app.processEvents()
            save_window(window, out / "demo_xray_window.png")
            written.append(out / "demo_xray_window.png")
    window.close()
    for path in written:
        print(path)
    return 0
