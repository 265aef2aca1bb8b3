"""The shipped outcome model is verified against sha256 values in the package code, not only against
the manifest next to it: an edited model with a regenerated manifest is refused (issue 14, item 8)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import inference.fusion.shipped as shipped
from inference.errors import ModelLoadError
from inference.fusion.outcome_model import OutcomePredictor
from inference.fusion.predictor import FusionPredictor


def test_shipped_files_match_the_hashes_in_the_code() -> None:
    """Fails after a retrain until SHIPPED_SHA256 is updated (python -m inference.fusion.shipped)."""
    assert shipped.directory_hashes(shipped.SHIPPED_MODEL_DIR, shipped.SHIPPED_FILES) == shipped.SHIPPED_SHA256
    OutcomePredictor.load(shipped.SHIPPED_MODEL_DIR)


def _tampered_copy(tmp_path: Path) -> Path:
    """The shipped model with one coefficient changed and manifest.json regenerated to match."""
    copy = tmp_path / "fusion"
    shutil.copytree(shipped.SHIPPED_MODEL_DIR, copy)
    raw = json.loads((copy / "model.json").read_text())
    head = next(iter(next(iter(raw["heads"].values())).values()))
    head["temperature"] = float(head["temperature"]) * 1.5  # a plausible edit: every check but the hash passes
    (copy / "model.json").write_text(json.dumps(raw, separators=(",", ":")))
    (copy / "manifest.json").write_text(json.dumps(shipped.directory_hashes(copy), indent=2))
    return copy


def test_edited_shipped_model_with_regenerated_manifest_is_refused(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _tampered_copy(tmp_path)
    monkeypatch.setattr(shipped, "SHIPPED_MODEL_DIR", copy)  # the installed location, as the attacker left it
    with pytest.raises(ModelLoadError) as err:
        OutcomePredictor.load(copy)
    message = str(err.value)
    assert "model.json" in message and "built into this program" in message and "shipped.py" in message
    assert shipped.SHIPPED_SHA256["model.json"][:12] in message


def test_models_trained_elsewhere_are_checked_against_their_manifest(tmp_path: Path) -> None:
    copy = _tampered_copy(tmp_path)  # consistent manifest: a model someone trained themselves
    OutcomePredictor.load(copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    with pytest.raises(ModelLoadError, match=r"config.json .*against its manifest.json"):
        OutcomePredictor.load(copy)
    (copy / "manifest.json").write_text("[" * 100_000)
    with pytest.raises(ModelLoadError, match="no readable manifest"):
        OutcomePredictor.load(copy)


def test_the_mamba_loader_does_not_accept_the_shipped_folder() -> None:
    """The shipped folder holds the JSON outcome model; the torch loader refuses it with one sentence."""
    with pytest.raises(ModelLoadError, match="model.pt is missing"):
        FusionPredictor.load(shipped.SHIPPED_MODEL_DIR)


def test_update_helper_prints_the_dict_to_paste(capsys: pytest.CaptureFixture) -> None:
    assert shipped.main([]) == 0
    namespace: dict = {}
    exec(capsys.readouterr().out, namespace)  # the printed text is valid Python for the module
    assert namespace["SHIPPED_SHA256"] == shipped.SHIPPED_SHA256
    assert shipped.main([str(Path("/nonexistent/model"))]) == 2
