"""The ONNX encoder that runs is the one that was exported and checked (issue 14, item 2).

Before: ``cache/encoder/tinyvit_*.onnx`` was loaded as is; 64 flipped bytes gave empty masks with exit 0.
Now the export is checked against PyTorch once, its sha256 is recorded next to it and verified before
every load, and a mismatch re-exports. What this does and does not protect: ``inference/models/onnx_encoder.py``.
"""

from __future__ import annotations

import json
import logging
import shutil
import stat
from pathlib import Path

import pytest
import torch
from torch import nn

from inference.errors import ModelLoadError
from inference.models import onnx_encoder
from inference.models.litemedsam import LiteMedSAM, encode, load_litemedsam
from inference.models.onnx_encoder import (
    ExportMismatch,
    check_input,
    export_verified,
    load_or_export,
    read_sidecar,
    relative_error,
    sidecar_path,
)

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def reference() -> LiteMedSAM:
    return load_litemedsam("cpu", runtime="fused")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one verified export of the shipped encoder (as after a first start)."""
    folder = tmp_path_factory.mktemp("export")
    load_litemedsam("cpu", runtime="onnx", cache_dir=folder)
    return folder


def _copy(folder: Path, tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "encoder"
    shutil.copytree(folder, target)
    return target, next(target.glob("tinyvit_*.onnx"))


def test_flipped_bytes_are_detected_and_the_encoder_is_exported_again(
    exported: Path, reference: LiteMedSAM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, onnx = _copy(exported, tmp_path)
    data = bytearray(onnx.read_bytes())
    middle = len(data) // 2  # inside the weights: the graph still parses, the numbers are wrong
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    onnx.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="inference.models.onnx_encoder"):
        model = load_litemedsam("cpu", runtime="onnx", cache_dir=folder)
    assert any("sha256" in r.getMessage() for r in caplog.records)  # said, not silent
    x = check_input()
    assert relative_error(encode(model, x), encode(reference, x)) < 1e-4  # the real encoder runs again
    assert read_sidecar(onnx) is not None and onnx.read_bytes() != bytes(data)  # re-exported, re-recorded


def test_missing_or_forged_records_mean_a_new_checked_export(exported: Path, tmp_path: Path) -> None:
    folder, onnx = _copy(exported, tmp_path)
    side = sidecar_path(onnx)
    good = json.loads(side.read_text())
    assert onnx_encoder._verified_bytes(onnx) is not None  # the intact pair verifies
    malformed: list[object] = [
        "not json {", "[" * 100_000, [], {"format": 1}, {**good, "sha256": "0" * 63}, {**good, "size": True},
        {**good, "size": -1}, {**good, "file": "other.onnx"}, {**good, "format": 99}, "x" * 70_000,
    ]
    for bad in malformed:
        side.write_text(bad if isinstance(bad, str) else json.dumps(bad))
        assert read_sidecar(onnx) is None and onnx_encoder._verified_bytes(onnx) is None
    side.write_text(json.dumps({**good, "sha256": "0" * 64}))  # well-formed, but not this file's hash
    assert read_sidecar(onnx) is not None and onnx_encoder._verified_bytes(onnx) is None
    side.unlink()
    assert onnx_encoder._verified_bytes(onnx) is None  # unrecorded: never loaded as is


class _Toy(nn.Module):
    """A small encoder-shaped module: exporting it takes a second, not a minute."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_an_export_that_differs_from_pytorch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toy = _Toy().eval()
    verified = export_verified(toy, tmp_path / "toy.onnx")  # a faithful export passes and is recorded
    assert verified.exported_now and read_sidecar(tmp_path / "toy.onnx") is not None
    real_export = onnx_encoder.export_onnx

    def wrong_export(encoder: nn.Module, path: Path) -> Path:
        other = _Toy().eval()  # different weights: what a broken exporter or runtime would produce
        return real_export(other, path)

    monkeypatch.setattr(onnx_encoder, "export_onnx", wrong_export)
    with pytest.raises(ExportMismatch, match="differs from PyTorch"):
        export_verified(toy, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists() and not list(tmp_path.glob("*.tmp"))


def test_a_refused_export_falls_back_or_fails_clearly(
    reference: LiteMedSAM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(encoder: nn.Module, path: Path) -> None:
        raise ExportMismatch("The ONNX export of the image encoder differs from PyTorch.")

    monkeypatch.setattr("inference.models.encoder_runtime.load_or_export", refuse)
    with pytest.raises(ModelLoadError, match="ONNX image encoder could not be prepared"):
        load_litemedsam("cpu", runtime="onnx", cache_dir=tmp_path)
    auto = load_litemedsam("cpu", runtime="auto", cache_dir=tmp_path)
    assert auto.encoder_runtime == "fused"  # exact PyTorch engine instead of an unchecked graph


def test_the_cache_folder_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "fresh" / "encoder"
    load_or_export(_Toy().eval(), folder / "toy.onnx")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_the_export_encodes_a_batch_like_single_slices(exported: Path) -> None:
    """Version 1 exports had the batch size baked into one reshape: any batch of 2+ failed in ONNX Runtime."""
    model = load_litemedsam("cpu", runtime="onnx", cache_dir=exported)
    assert next(exported.glob("tinyvit_*.onnx")).name.endswith(f"_v{onnx_encoder.EXPORT_VERSION}.onnx")
    images = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(3))
    batch = encode(model, images)
    single = torch.cat([encode(model, images[i : i + 1]) for i in range(3)])
    assert batch.shape == (3, 256, 64, 64)
    assert float((batch - single).abs().max()) <= 1e-5 * float(single.abs().max())


def test_a_new_export_removes_older_versions_of_the_same_weights_only(exported: Path, tmp_path: Path) -> None:
    """An upgrade re-exports once; the dead copies of earlier export versions go, nothing else does."""
    folder, onnx = _copy(exported, tmp_path)
    digest = onnx.name.split("_")[1]
    planted = [folder / f"tinyvit_{digest}.onnx", sidecar_path(folder / f"tinyvit_{digest}.onnx")]
    kept = [folder / "tinyvit_0123456789abcdef.onnx", folder / "engine_choice.json", folder / f"tinyvit_{digest}.txt"]
    for p in planted + kept:
        p.write_bytes(b"old")
    onnx.unlink()  # the current version is missing: this start exports it
    load_or_export(load_litemedsam("cpu", runtime="fused").image_encoder, onnx)
    assert onnx.exists() and read_sidecar(onnx) is not None
    assert not any(p.exists() for p in planted)
    assert all(p.read_bytes() == b"old" for p in kept)
    assert onnx_encoder.remove_superseded_exports(folder / "unrelated.onnx") == []
