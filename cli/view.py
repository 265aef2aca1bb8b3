"""``python main.py [PATH] [--demo]``: open the viewer (no PATH: the demo X-ray case + tour on the first run
or with ``--demo``, otherwise the bundled demo CT)."""

from __future__ import annotations

import argparse
from pathlib import Path

from inference.errors import ImageReadError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", type=Path, help="DICOM folder/file, NIfTI, NRRD, PNG or JPEG")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo X-ray case with the guided tour")


def run(args: argparse.Namespace) -> int:
    if args.path is not None and not args.path.exists():
        raise ImageReadError(f"The path '{args.path}' does not exist.")
    from app.application import headless_environment

    if headless_environment():
        print(
            "No display found: the viewer needs a screen (or run it under `xvfb-run -a`); "
            "for screenshots use `python main.py demo --headless --out DIR`."
        )
        return 2
    from app.launch import run_viewer

    return run_viewer(None if args.demo else args.path, demo=args.demo)
