"""The expected sha256 of every file of the shipped outcome model, kept in the package code.

Why here and not only in ``manifest.json``: a manifest next to the files it protects is rewritten as
easily as the files themselves (edit ``model.json``, regenerate the manifest, and it loads silently).
The hashes below travel with the code, so a changed shipped model is refused and the error names
what was checked. ``manifest.json`` still guards models a user trains into other folders (against
corruption, not against someone who can write that folder).

After retraining the shipped model (or rebuilding its normal-lung reference), update the dict with the output of::

    python -m inference.fusion.shipped            # prints SHIPPED_SHA256 for resources/models/fusion
    python -m inference.fusion.shipped OTHER_DIR  # the same for another model folder

``tests/inference/test_security_fusion_model.py`` fails until the dict matches the shipped files.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from inference.errors import ModelLoadError

__all__ = ["MODEL_FILES", "SHIPPED_FILES", "SHIPPED_MODEL_DIR", "SHIPPED_SHA256", "directory_hashes", "expected_hashes",
           "is_shipped", "main", "sha256_of", "verify_files"]

# The files of the shipped outcome predictor (``inference.fusion.outcome_model.OutcomePredictor``).
MODEL_FILES = ("config.json", "model.json")
# … and what ships beside them: the normal lung the explanation maps compare against
# (``inference.fusion.normal_lung``; rebuilt by ``scripts/build_normal_lung_reference.py``).
SHIPPED_FILES = (*MODEL_FILES, "normal_lung.json")
SHIPPED_MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / "fusion"
SHIPPED_SHA256: dict[str, str] = {
    "config.json": "821075f603c3b3cdb640b4cc0e8eae3b3ac44dfb844091251751061cf85ae0ab",
    "model.json": "714da23fdc320c5dcde96198471d7945ab387aef4732e66eda2f9d52eae6549e",
    "normal_lung.json": "89ddbc5162c5df0c5a1a6e59e225dd0f8085231484402815f4bcb88ba5accbe9",
}
BUILT_IN = "the sha256 values built into this program (inference/fusion/shipped.py)"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def directory_hashes(directory: Path, files: Sequence[str] = MODEL_FILES) -> dict[str, str]:
    """sha256 of each model file in ``directory`` (what :data:`SHIPPED_SHA256` must hold for it)."""
    return {name: sha256_of(Path(directory) / name) for name in files}


def is_shipped(directory: Path) -> bool:
    """True for the folder the program ships its model in (compared after resolving links)."""
    try:
        return Path(directory).resolve() == SHIPPED_MODEL_DIR.resolve()
    except OSError:
        return False


def expected_hashes(directory: Path, kind: str = "Outcome model") -> tuple[dict[str, str], str]:
    """The sha256 values a model folder must match, and a phrase naming where they come from: the
    values in this module for the shipped folder, the folder's own ``manifest.json`` otherwise."""
    if is_shipped(directory):
        return dict(SHIPPED_SHA256), BUILT_IN
    try:
        manifest = json.loads((Path(directory) / "manifest.json").read_text())
    except (OSError, ValueError, RecursionError) as err:
        raise ModelLoadError(f"{kind} folder {directory} has no readable manifest.json.") from err
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{kind} folder {directory} has no readable manifest.json.")
    return {str(k): str(v) for k, v in manifest.items()}, "its manifest.json (a model trained outside this program)"


def verify_files(directory: Path, files: Sequence[str] = MODEL_FILES, kind: str = "Outcome model") -> None:
    """Refuse a model folder whose files do not match their expected sha256; the error names the file,
    what it was checked against, and both hash prefixes."""
    directory = Path(directory)
    expected, checked = expected_hashes(directory, kind)
    for name in files:
        path = directory / name
        if not path.is_file():
            raise ModelLoadError(f"{kind} file {name} is missing from {directory}.")
        actual = sha256_of(path)
        if actual != expected.get(name):
            want = str(expected.get(name) or "none")[:12]
            raise ModelLoadError(
                f"{kind} file {name} in {directory} failed its integrity check against {checked} "
                f"(sha256 {actual[:12]}…, expected {want}…): it was corrupted or edited; reinstall the model.")


def main(argv: list[str] | None = None) -> int:
    """Print the ``SHIPPED_SHA256`` dict for a model folder, ready to paste into this module."""
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else SHIPPED_MODEL_DIR
    files = [name for name in SHIPPED_FILES if name in MODEL_FILES or (directory / name).is_file()]
    try:
        hashes = directory_hashes(directory, files)
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
