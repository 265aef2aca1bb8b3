"""LiteMedSAM loading (sha256, strict architecture), device choice and the MedSAM preprocessing geometry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from inference.errors import ModelLoadError
from inference.models.device import select_device
from inference.models.litemedsam import LiteMedSAM, decode, encode, load_litemedsam
from inference.models.preprocess import PreprocessInfo, preprocess_slice, resized_size, to_uint8_range
from inference.models.registry import file_sha256, litemedsam_file, verify_checkpoint


@pytest.fixture(scope="module")
def model() -> LiteMedSAM:
    return load_litemedsam("cpu")


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelLoadError):
        select_device("tpu")


def test_registry_points_at_the_packaged_checkpoint() -> None:
    mf = litemedsam_file()
    assert mf.path.is_file() and mf.path.name == "lite_medsam.pth"
    assert verify_checkpoint(mf.path, mf.sha256, mf.size) == mf.path


def test_sha256_mismatch_and_missing_file_raise(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "lite_medsam.pth"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="integrity"):
        verify_checkpoint(fake, litemedsam_file().sha256)
    with pytest.raises(ModelLoadError, match="bytes"):
        verify_checkpoint(fake, litemedsam_file().sha256, size=litemedsam_file().size)
    with pytest.raises(ModelLoadError, match="not found"):
        verify_checkpoint(tmp_path / "absent.pth", "0" * 64)
    with pytest.raises(ModelLoadError):
        load_litemedsam("cpu", replace(litemedsam_file(), path=fake))


def test_wrong_architecture_checkpoint_is_rejected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = torch.load(litemedsam_file().path, map_location="cpu", weights_only=True)
    state.pop("mask_decoder.iou_prediction_head.layers.0.weight")
    state["image_encoder.neck.0.weight"] = torch.zeros(8, 8, 1, 1)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    mf = replace(litemedsam_file(), path=bad, sha256=file_sha256(bad), size=None)
    with pytest.raises(ModelLoadError, match="architecture"):
        load_litemedsam("cpu", mf)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x04garbage")
    with pytest.raises(ModelLoadError):
        load_litemedsam("cpu", replace(mf, path=garbage, sha256=file_sha256(garbage)))


def test_window_scaling_and_percentiles() -> None:
    hu = np.array([[-2000.0, -160.0], [40.0, 3000.0]], dtype=np.float32)
    out = to_uint8_range(hu, (40.0, 400.0))
    assert out.tolist() == [[0.0, 0.0], [127.0, 255.0]]
    ramp = np.arange(1000, dtype=np.float32).reshape(20, 50)
    scaled = to_uint8_range(ramp, None)
    assert scaled.min() == 0 and scaled.max() == 255


def test_preprocess_geometry_non_square() -> None:
    img = np.zeros((300, 600), dtype=np.float32)
    img[100:200, 200:400] = 1.0
    tensor, info = preprocess_slice(img, None)
    assert tensor.shape == (1, 3, 256, 256)
    assert info.new_size == resized_size(300, 600) == (128, 256)
    assert float(tensor[0, 0, 128:].abs().max()) == 0.0  # padding at the bottom
    # the bright rectangle lands where the box mapping says it does
    box = info.box_to_model(np.array([200, 100, 400, 200], dtype=np.float32))
    np.testing.assert_allclose(box, [200 * 256 / 600, 100 * 128 / 300, 400 * 256 / 600, 200 * 128 / 300])
    rows = np.flatnonzero(tensor[0, 0].numpy().max(axis=1) > 0.5)
    assert abs(rows[0] - box[1]) <= 1 and abs(rows[-1] + 1 - box[3]) <= 1


def test_pad_crop_round_trip() -> None:
    info = PreprocessInfo((300, 600), resized_size(300, 600))
    mask = np.zeros((300, 600), dtype=bool)
    mask[90:210, 150:420] = True
    logits = torch.from_numpy(info.mask_to_model(mask) * 2 - 1)[None, None]
    back = info.logits_to_original(logits)[0, 0].numpy() > 0
    assert back.shape == (300, 600)
    assert (back ^ mask).sum() / mask.sum() < 0.03


def test_decode_matches_reference_forward(model: LiteMedSAM) -> None:
    """Cached-embedding path equals the reference encoder+decoder forward (what the benchmark compares)."""
    rng = np.random.default_rng(0)
    img = rng.normal(0, 1, (128, 160)).astype(np.float32)
    img[40:90, 50:110] += 4.0
    tensor, info = preprocess_slice(img, None)
    emb = encode(model, tensor)
    assert emb.shape == (1, 256, 64, 64)
    box = info.box_to_model(np.array([45, 35, 115, 95], dtype=np.float32))
    logits, iou = decode(model, emb, box)
    with torch.inference_mode():
        ref_logits, ref_iou = model(tensor, torch.from_numpy(box))
    torch.testing.assert_close(logits, ref_logits[0], atol=1e-4, rtol=1e-4)
    mask = info.logits_to_original(logits[None])[0, 0].numpy() > 0
    inside = mask[40:90, 50:110].mean()
    assert inside > 0.8 and mask.sum() < 1.5 * 50 * 60
