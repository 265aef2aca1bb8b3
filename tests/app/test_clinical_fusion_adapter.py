"""The viewer's adapter around the real FusionPredictor (an untrained model of the shipped architecture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.controllers.fusion_adapter import FusionCaseAdapter, pool_torch
from app.model.clinical import ClinicalModel, load_case
from inference.fusion.dataset import EHRNormaliser
from inference.fusion.features import embedding_roi_weights, pool_embedding
from inference.fusion.model import FusionConfig, MedFusionModel
from inference.fusion.predictor import FusionPredictor
from inference.settings import Settings
from inference.uncertainty.calibration import TemperatureScaler
from inference.uncertainty.conformal import MondrianConformal

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "cxr"


def test_differentiable_pool_matches_feature_pool() -> None:
    emb = torch.randn(1, 256, 64, 64)
    mask = np.zeros((300, 400), np.uint8)
    mask[50:200, 30:180] = 1
    w = embedding_roi_weights(mask, (300, 400), (192, 256))
    ref = pool_embedding(emb, w)
    ins = torch.from_numpy(w) > 0.5
    area = torch.tensor([[float(w.sum()) / 64**2]])
    ours = pool_torch(emb[None], ins[None], area)[0, 0].numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_adapter_predicts_and_explains_demo_case(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200)
    cp = MondrianConformal(alpha=0.1).fit(p, (rng.uniform(size=200) < p).astype(float))
    FusionPredictor(MedFusionModel(FusionConfig()), EHRNormaliser([60, 37.5, 93, 8, 6, 1.2], [15, 1, 5, 4, 4, 0.8]),
                    [TemperatureScaler() for _ in range(4)], [cp] * 4, [None, None], "untrained").save(tmp_path / "m")
    adapter = FusionCaseAdapter.load(tmp_path / "m", Settings(cache_dir=str(tmp_path / "cache")))
    case = load_case(DEMO)
    model = ClinicalModel()
    model.set_case(case)
    from inference.io.loader import open_image

    masks = {im.filename: (open_image(im.mask_path).array[0] > 127).astype(np.uint8) for im in case.images}
    state = adapter.predict(case, model.ehr_inputs(), masks, 0.1, False, lambda *_: None, None)
    assert set(state.outcomes) == {"went_icu", "intubated", "death", "needed_supplemental_O2"}
    assert all(0 <= o.probability <= 1 for o in state.outcomes.values())
    assert state.used_images == [im.filename for im in case.images] and 0 <= state.gate <= 1
    assert sum(state.time_weights.values()) == pytest.approx(1.0, abs=1e-3)
    calls = adapter.extractor.encoder_calls
    edited = dict(masks)
    edited[case.images[0].filename] = masks[case.images[0].filename][::-1].copy()
    adapter.predict(case, model.ehr_inputs(), edited, 0.1, False, lambda *_: None, None)
    assert adapter.extractor.encoder_calls == calls + 1  # only the changed image is re-encoded
    ex = adapter.explain(case, model.ehr_inputs(), masks, "went_icu", "ig", lambda *_: None, None)
    heat = ex.heatmaps[case.images[0].filename]
    assert heat.shape == masks[case.images[0].filename].shape and heat.max() > 0.5
    assert dict(ex.ehr)["leukocyte_count"] == 0.0  # missing: no attribution


def test_shipped_model_shows_a_reliability_diagram_per_outcome(qtbot) -> None:  # noqa: ANN001
    from app.controllers.clinical import ClinicalController
    from app.widgets.prediction_panel import PredictionPanel

    root = Path(__file__).resolve().parents[2]
    adapter = FusionCaseAdapter.load(root / "resources" / "models" / "fusion", Settings())
    assert set(adapter.reliability_pngs) == {"went_icu", "intubated", "death", "needed_supplemental_O2"}

    class _Host:  # the panel only reads settings through the controller here
        settings = Settings()
        runner = None

    controller = ClinicalController(_Host(), ClinicalModel(), lambda: adapter)  # type: ignore[arg-type]
    panel = PredictionPanel(ClinicalModel(), controller)
    qtbot.addWidget(panel)
    panel._show_model_files()
    assert panel.reliability_choice.count() == 4 and panel.reliability_choice.currentData() == "went_icu"
    first = panel.reliability.pixmap().toImage()
    panel.reliability_choice.setCurrentIndex(panel.reliability_choice.findData("death"))
    assert not first.isNull() and panel.reliability.pixmap().toImage() != first
