"""A MedSAM2 config may only build SAM2 model classes: configs that would run other code are refused
before anything is instantiated (issue 14, item 1)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from inference.errors import ModelLoadError

pytest.importorskip("sam2", reason="the optional 'sam2' package is not installed")
from omegaconf import OmegaConf  # noqa: E402 - sam2 brings omegaconf/hydra

from inference.segmentation.medsam2_backend import build_sam2_model  # noqa: E402


class _Payload:
    """Unpickling this creates ``marker`` (a harmless stand-in for an attacker's command)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def _sam2_config() -> dict:
    import sam2

    path = Path(sam2.__file__).parent / "configs" / "sam2.1" / "sam2.1_hiera_t.yaml"
    return OmegaConf.to_container(OmegaConf.load(path))  # type: ignore[return-value]


def _write(tmp_path: Path, cfg: dict, text: str | None = None) -> Path:
    path = tmp_path / "medsam2.yaml"
    if text is not None:
        path.write_text(text)
    else:
        OmegaConf.save(OmegaConf.create(cfg), path)
    return path


def test_numpy_load_with_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "attacker_was_here"
    evil = tmp_path / "weights.npy"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    cfg = _sam2_config()
    cfg["model"]["image_encoder"] = {"_target_": "numpy.load", "file": str(evil), "allow_pickle": True}
    with pytest.raises(ModelLoadError, match=r"refused: '_target_: numpy.load'.*only SAM2 model classes"):
        build_sam2_model(_write(tmp_path, cfg), None)
    assert not marker.exists()


@pytest.mark.parametrize(
    "target",
    [
        "sam2.build_sam.os.system",  # a sam2.* prefix that walks into os
        "sam2.modeling.sam2_base.torch.load",
        "sam2.modeling.sam2_utils.np.load",
        "sam2.modeling.sam2_base.SAM2Base.__init__",
        "sam2.benchmark.run",  # importing that module runs code: it is never imported
        "builtins.eval",
        "sam2.modeling.sam2_utils.get_1d_sine_pe",  # a function, not a model class
        "sam2.modeling",
    ],
)
def test_only_sam2_model_classes_may_be_named(tmp_path: Path, target: str) -> None:
    cfg = _sam2_config()
    cfg["model"]["memory_attention"]["layer"]["self_attention"]["_target_"] = target  # deep inside
    with pytest.raises(ModelLoadError, match=f"refused: '_target_: {re.escape(target)}'"):
        build_sam2_model(_write(tmp_path, cfg), None)


def test_targets_built_by_interpolation_are_checked(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    cfg = _sam2_config()
    cfg["evil"] = "builtins.open"
    cfg["model"]["image_encoder"] = {"_target_": "${evil}", "file": str(marker), "mode": "w"}
    with pytest.raises(ModelLoadError, match="builtins.open"):
        build_sam2_model(_write(tmp_path, cfg), None)
    cfg["model"]["image_encoder"] = {"_target_": "\\${evil}", "file": str(marker), "mode": "w"}  # escaped
    with pytest.raises(ModelLoadError):
        build_sam2_model(_write(tmp_path, cfg), None)
    assert not marker.exists()


def test_targets_in_lists_and_unused_sections_are_checked(tmp_path: Path) -> None:
    cfg = _sam2_config()
    cfg["trainer"] = {"callbacks": [{"nested": {"_target_": "subprocess.run", "args": ["true"]}}]}
    with pytest.raises(ModelLoadError, match="subprocess.run"):
        build_sam2_model(_write(tmp_path, cfg), None)


def test_yaml_alias_bomb_and_garbage_are_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(ModelLoadError, match="aliases"):
        build_sam2_model(_write(tmp_path, {}, "\n".join(lines) + "\nmodel: *a8\n"), None)
    with pytest.raises(ModelLoadError, match="not a readable YAML"):
        build_sam2_model(_write(tmp_path, {}, "model: [unclosed\n"), None)
    with pytest.raises(ModelLoadError, match="could not be read"):
        build_sam2_model(_write(tmp_path, {}, "model:\n  x: ${nowhere.to.be.found}\n"), None)


def test_a_genuine_sam2_config_still_builds(tmp_path: Path) -> None:
    cfg = _sam2_config()
    m = cfg["model"]  # the tiny variant of tests/inference/test_segmentation_medsam2.py (fast on a CPU)
    m["image_size"] = 128
    m["image_encoder"]["trunk"].update(embed_dim=16, stages=[1, 1, 2, 1], global_att_blocks=[3])
    m["image_encoder"]["neck"]["backbone_channel_list"] = [128, 64, 32, 16]
    m["memory_attention"].update(num_layers=1)
    m["memory_attention"]["layer"]["dim_feedforward"] = 256
    for attn in ("self_attention", "cross_attention"):
        m["memory_attention"]["layer"][attn]["feat_sizes"] = [8, 8]
    model = build_sam2_model(_write(tmp_path, cfg), None)
    assert type(model).__name__ == "SAM2VideoPredictor"
