"""``main.py train`` end to end on a small synthetic cohort folder (fake encoder: the pipeline, not the numbers):
nested CV → per-outcome choice → model folder (with heads for X-rays without masks) → results text."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.fusion.case import CaseBuilder
from inference.fusion.cohort import OUTCOMES
from inference.fusion.outcome_model import AUTO_HEADS, MODALITIES, OutcomePredictor


class _FakeEncoder(torch.nn.Module):
    """(1, 3, 256, 256) → (1, 256, 64, 64): local brightness, a deterministic stand-in for TinyViT."""

    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(3, 256, 1))
        torch.nn.init.normal_(self.image_encoder[1].weight, generator=torch.Generator().manual_seed(0))


def _cohort(root: Path, n: int = 48) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "lung_masks").mkdir()
    rows, scores = [], []
    for i in range(n):
        sick = rng.uniform() < 0.5
        img = np.full((80, 80), 200.0)
        lungs = np.zeros((80, 80), bool)
        lungs[10:70, 8:36] = lungs[10:70, 44:72] = True
        img[lungs] = 60 + (90 if sick else 0) * rng.uniform(0.5, 1.0)
        name = f"p{i}.png"
        Image.fromarray(np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)).save(root / "images" / name)
        if i % 4:  # a quarter of the X-rays without a supplied mask
            Image.fromarray(lungs.astype(np.uint8) * 255).save(root / "lung_masks" / name)
        spo2 = rng.uniform(80, 90) if sick else rng.uniform(90, 99)
        flip = rng.uniform() < 0.15
        yn = "Y" if sick != flip else "N"
        rows.append({"patientid": str(i), "offset": "0", "age": f"{rng.uniform(30, 80):.0f}", "sex": "MF"[i % 2],
                     "pO2_saturation": f"{spo2:.0f}", "view": "PA", "filename": name, "finding": "COVID-19",
                     "went_icu": yn, "intubated": yn if i % 3 else "", "survival": "N" if sick and i % 2 else "Y",
                     "needed_supplemental_O2": yn})
        if i < 20:
            scores.append({"filename": name, "geographic_mean": f"{6 if sick else 1}", "opacity_mean": f"{4 if sick else 1}"})
    for path, items in ((root / "metadata.csv", rows), (root / "severity_scores.csv", scores)):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(items[0]))
            writer.writeheader()
            writer.writerows(items)
    return root


@pytest.mark.slow
def test_train_end_to_end_on_a_synthetic_cohort(tmp_path: Path) -> None:
    from inference.fusion.experiments import run
    from inference.fusion.report import format_results

    data = _cohort(tmp_path / "cxr")
    builder = CaseBuilder(tmp_path / "cache", encoder_loader=_FakeEncoder, segmenter_loader=lambda: None)
    exp = run(data, tmp_path / "model", builder, seeds=(0,), mamba_seeds=(), figures=tmp_path / "fig", log=lambda _m: None)
    predictor = OutcomePredictor.load(tmp_path / "model")
    assert set(predictor.heads["went_icu"]) == set(MODALITIES) | set(AUTO_HEADS)
    assert predictor.auto_encoders is not None
    record = exp.records[0]
    auto = exp.auto_records[0]
    assert record.images[0].mask_source == "supplied" or record.images[0].mask_source == "none"
    assert predictor.effective(auto, "both")[1] == "both/auto"
    assert predictor.predict(auto).modalities == "both/auto"
    text = format_results(exp, predictor, "python main.py train ...", (0,), ())
    for heading in ("## Nested-CV table", "## What ships, per outcome", "## Without supplied lung masks",
                    "## Directionality: SpO₂", "logistic baseline (issue 13 recipe)"):
        assert heading in text
    assert "ICU 0, intubation 0, death 0, O₂ 0" in text  # no risk rises with SpO₂ on the trained model
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == sorted(f"reliability_{o}.png" for o in OUTCOMES)
