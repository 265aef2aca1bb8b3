"""MedSAM2 backend end-to-end on a tiny randomly initialised SAM2 (real code path, no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inference.errors import ModelLoadError
from inference.io.volume import Volume
from inference.segmentation.factory import create_backend
from inference.segmentation.session import SegmentationSession, SessionOptions
from inference.settings import Settings

sam2 = pytest.importorskip("sam2", reason="the optional 'sam2' package is not installed")


def _tiny_config(path: Path) -> Path:
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(sam2.__file__).parent / "configs" / "sam2.1" / "sam2.1_hiera_t.yaml")
    m = cfg.model
    m.image_size = 128
    m.image_encoder.trunk.embed_dim = 16
    m.image_encoder.trunk.stages = [1, 1, 2, 1]
    m.image_encoder.trunk.global_att_blocks = [3]  # not a q-pool block
    m.image_encoder.neck.backbone_channel_list = [128, 64, 32, 16]
    m.memory_attention.num_layers = 1
    m.memory_attention.layer.dim_feedforward = 256
    for attn in (m.memory_attention.layer.self_attention, m.memory_attention.layer.cross_attention):
        attn.feat_sizes = [8, 8]
    m.num_maskmem = 3
    OmegaConf.save(cfg, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from inference.segmentation.medsam2_backend import build_sam2_model

    folder = tmp_path_factory.mktemp("medsam2")
    config = _tiny_config(folder / "tiny.yaml")
    torch.manual_seed(0)
    model = build_sam2_model(config, None)
    torch.save({"model": model.state_dict()}, folder / "tiny.pt")
    return Settings(
        segmentation_backend="medsam2",
        device="cpu",
        medsam2_checkpoint=str(folder / "tiny.pt"),
        medsam2_config=str(config),
    )


def test_missing_checkpoint_says_where_to_put_one() -> None:
    with pytest.raises(ModelLoadError, match="Settings"):
        create_backend(Settings(segmentation_backend="medsam2", device="cpu"))


def test_wrong_architecture_checkpoint_is_rejected(tiny: Settings, tmp_path: Path) -> None:
    state = torch.load(tiny.medsam2_checkpoint, weights_only=True)["model"]
    state.pop(next(iter(state)))
    bad = tmp_path / "bad.pt"
    torch.save({"model": state}, bad)
    settings = Settings(**{**tiny.__dict__, "medsam2_checkpoint": str(bad)})
    with pytest.raises(ModelLoadError, match="architecture"):
        create_backend(settings)


def test_prompt_cache_and_memory_propagation_end_to_end(tiny: Settings) -> None:
    backend = create_backend(tiny)
    zz, yy, xx = np.mgrid[:5, :48, :64]
    array = (((yy - 24) ** 2 + (xx - 30) ** 2) < 100).astype(np.float32) * 100.0
    session = SegmentationSession(
        backend, options=SessionOptions(min_area_px=0, min_confidence=0.0, max_growth=1e9)
    )
    session.set_image(Volume(array))
    session.apply_brush(2, array[2] > 0, "obj")  # a known seed mask: random weights give arbitrary masks
    first = session.add_box(1, (18, 12, 42, 36), "other")
    assert session.label_map.shape == (5, 48, 64) and 0.0 <= first.stability <= 1.0
    session.add_point(1, 30, 24, True, "other")
    assert backend.encoder_calls == 1  # cached embedding reused by the click
    result = session.propagate("obj", (0, 4))
    assert result.seed_z == 2 and set(result.stop_reason) == {"up", "down"}
    assert set(result.slices) == {0, 1, 2, 3, 4}  # thresholds off: every slice of the range is visited
    assert session.undo()
