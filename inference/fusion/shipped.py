"""The expected sha256 of every file of the shipped fusion model, kept in the package code.

Why here and not only in ``manifest.json``: a manifest next to the files it protects is rewritten as
easily as the files themselves (edit ``model.pt``, regenerate the manifest, and it loads silently).
The hashes below travel with the code, so a changed shipped model is refused and the error names
what was checked. ``manifest.json`` still guards models a user trains into other folders (against
corruption, not against someone who can write that folder).

After retraining the shipped model, update the dict with the output of::

    python -m inference.fusion.shipped            # prints SHIPPED_SHA256 for resources/models/fusion
    python -m inference.fusion.shipped OTHER_DIR  # the same for another model folder

``tests/inference/test_security_fusion_model.py`` fails until the dict matches the shipped files.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

__all__ = ["MODEL_FILES", "SHIPPED_MODEL_DIR", "SHIPPED_SHA256", "directory_hashes", "is_shipped", "main"]

MODEL_FILES = ("model.pt", "config.json", "calibration.json")
SHIPPED_MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / "fusion"
SHIPPED_SHA256: dict[str, str] = {
    "model.pt": "1bd0572bc8df98e85ae5d0283133f7fa6970bb17c16520c709cc947ab8d4ec64",
    "config.json": "186cc363328ecbc8599a88fb32ec80a1dbaf113919a3b6629d25f08247958b67",
    "calibration.json": "b711594069a90d7563c28348237f9cd9008c0816515246f746b8e1e81f99fb46",
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def directory_hashes(directory: Path) -> dict[str, str]:
    """sha256 of each model file in ``directory`` (what :data:`SHIPPED_SHA256` must hold for it)."""
    return {name: sha256_of(Path(directory) / name) for name in MODEL_FILES}


def is_shipped(directory: Path) -> bool:
    """True for the folder the program ships its model in (compared after resolving links)."""
    try:
        return Path(directory).resolve() == SHIPPED_MODEL_DIR.resolve()
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Print the ``SHIPPED_SHA256`` dict for a model folder, ready to paste into this module."""
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else SHIPPED_MODEL_DIR
    try:
        hashes = directory_hashes(directory)
    except OSError as exc:
        print(f"error: cannot read the model files in {directory} ({exc.strerror or exc})", file=sys.stderr)
        return 2
    print("SHIPPED_SHA256: dict[str, str] = {")
    for name, value in hashes.items():
        print(f'    "{name}": "{value}",')
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
