"""The torch-free CPU path's record is untrusted input: every field is validated, and settings that need
PyTorch (another engine, a GPU) keep the PyTorch path. Headless, no model needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.models import cpu_runtime
from inference.models.cpu_runtime import (
    MANIFEST_FILE,
    CpuRuntimeManifest,
    parse_manifest,
    read_manifest,
    torch_free_reason,
)

SHA = "ab" * 32


def _manifest(**changes: object) -> dict[str, object]:
    good = CpuRuntimeManifest(
        model_id="litemedsam-abc", checkpoint_sha256=SHA, encoder_file="tinyvit_1d663a684141936f.onnx",
        encoder_sha256=SHA, threads=2, graph_opt="all", decoder_file="litemedsam_decoder_0123456789abcdef.npz",
        decoder_sha256=SHA, upsample_file="litemedsam_upsample_0123456789abcdef.onnx", upsample_sha256=SHA,
        machine={"cpu": "x"}, engine="onnx",
    )
    record = json.loads(good.to_json())
    record.update(changes)
    return record


def test_a_well_formed_record_round_trips() -> None:
    record = _manifest()
    parsed = parse_manifest(json.dumps(record))
    assert parsed.threads == 2 and parsed.decoder_file.endswith(".npz") and parsed.machine == {"cpu": "x"}
    assert json.loads(parsed.to_json()) == record


@pytest.mark.parametrize("changes, why", [
    ({"format": 1}, "unknown format"),
    ({"format": 2}, "unknown format"),  # made from an export before version 3: written again
    ({"upsample_file": "../x.onnx"}, "bad upsampling file"),
    ({"encoder_file": "../../etc/passwd"}, "bad encoder file"),
    ({"decoder_file": "/tmp/x.npz"}, "bad decoder file"),
    ({"decoder_file": ".hidden.npz"}, "bad decoder file"),
    ({"encoder_sha256": "AB" * 32}, "bad encoder sha256"),
    ({"checkpoint_sha256": "ab"}, "bad checkpoint sha256"),
    ({"threads": 0}, "bad thread count"),
    ({"threads": True}, "bad thread count"),
    ({"graph_opt": "none"}, "bad graph level"),
    ({"machine": "x"}, "bad machine record"),
    ({"model_id": ""}, "bad model id"),
])
def test_every_bad_field_is_refused_by_name(changes: dict[str, object], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_manifest(json.dumps(_manifest(**changes)))


def test_an_unusable_record_means_the_torch_path(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None  # none yet: first start
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(_manifest()) + " " * 70_000)
    assert read_manifest(tmp_path) is None  # over the size cap: not even parsed
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(_manifest()))
    assert read_manifest(tmp_path) is not None


def test_a_record_for_another_checkpoint_or_machine_is_not_used(tmp_path: Path) -> None:
    record = _manifest(machine=cpu_runtime.machine_key())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(record))
    assert cpu_runtime.load_cpu_runtime(tmp_path, "cd" * 32) is None  # another checkpoint
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**record, "machine": {**record["machine"], "cores": 999}}))
    assert cpu_runtime.load_cpu_runtime(tmp_path, SHA) is None  # measured elsewhere
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(record))
    assert cpu_runtime.load_cpu_runtime(tmp_path, SHA) is None  # right record, but its files are missing


def test_settings_that_need_pytorch_keep_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_runtime, "gpu_may_be_present", lambda: False)
    assert torch_free_reason("auto", "auto") is None
    assert torch_free_reason("cpu", "onnx") is None
    assert "PyTorch engine" in str(torch_free_reason("cpu", "fused"))
    assert "device 'cuda'" == torch_free_reason("cuda", "auto")
    monkeypatch.setattr(cpu_runtime, "gpu_may_be_present", lambda: True)
    assert "GPU" in str(torch_free_reason("auto", "auto"))
    assert torch_free_reason("cpu", "auto") is None  # the user chose the CPU: no GPU question
