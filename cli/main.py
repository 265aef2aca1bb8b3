"""Dispatch ``python main.py ...`` to a command module.

``python main.py``            viewer on the bundled demo case
``python main.py PATH``       viewer on PATH (DICOM folder/file, NIfTI, NRRD, PNG/JPEG)
``python main.py COMMAND ...`` one of COMMANDS below (``--help`` on each)

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``. Errors the user can
cause (:class:`MedFusionError`) print one line and exit 2; anything unexpected prints one line and
writes the traceback to the log file, never to the user's face.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Callable

from inference.errors import MedFusionError
from inference.logging_setup import configure_logging, log_file_path

COMMANDS: dict[str, tuple[str, str]] = {
    "view": ("cli.view", "open the viewer (default)"),
    "demo": ("cli.demo", "open the bundled demo case (or --headless --out DIR for screenshots)"),
    "segment": ("cli.segment", "segment an image from a box/points prompt, headless"),
    "train": ("cli.train", "train the fusion predictor with cross-validation"),
    "predict": ("cli.predict", "predict outcomes for a cohort CSV, headless"),
}


def build_parser(name: str, module_name: str, help_text: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"main.py {name}", description=help_text)
    module.add_arguments(parser)  # type: ignore[attr-defined]
    return parser, module


def main(argv: list[str]) -> int:
    configure_logging()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:10s} {text}")
        return 0
    if argv and argv[0] in COMMANDS:
        name, rest = argv[0], argv[1:]
    else:
        name, rest = "view", argv
    module_name, help_text = COMMANDS[name]

    def command() -> int:
        parser, module = build_parser(name, module_name, help_text)
        args = parser.parse_args(rest)
        return int(module.run(args) or 0)  # type: ignore[attr-defined]

    return run_guarded(command)


def run_guarded(command: Callable[[], int]) -> int:
    """Exit code of ``command()``; errors become one line on stderr (tracebacks go to the PHI-scrubbed log)."""
    try:
        return command()
    except MedFusionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - last line of defence: one line to the user, details to the log
        logging.getLogger("medfusion").error("unexpected error\n%s", traceback.format_exc())
        print(f"error: unexpected {type(err).__name__}; details in {log_file_path()}", file=sys.stderr)
        return 1
