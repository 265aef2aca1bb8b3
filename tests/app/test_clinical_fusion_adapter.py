"""The viewer's adapter around the shipped outcome model (all model work in ``inference.fusion.service``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.controllers.clinical_predictor import FusionCaseAdapter
from app.model.clinical import ClinicalModel, load_case
from inference.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo" / "cxr"
MODEL = ROOT / "resources" / "models" / "fusion"


@pytest.mark.slow
def test_adapter_predicts_and_explains_demo_case(tmp_path: Path) -> None:
    adapter = FusionCaseAdapter.load(MODEL, Settings(cache_dir=str(tmp_path / "cache")))
    assert set(adapter.base_rates) == {"went_icu", "intubated", "death", "needed_supplemental_O2"}
    case = load_case(DEMO)
    model = ClinicalModel()
    model.set_case(case)
    from inference.io.loader import open_image

    masks = {im.filename: (open_image(im.mask_path).array[0] > 127).astype(np.uint8) for im in case.images}
    state = adapter.predict(case, model.ehr_inputs(), masks, 0.1, False, lambda *_: None, None)
    assert set(state.outcomes) == set(adapter.base_rates)
    assert all(0 <= o.probability <= 1 and set(o.sets) == {0.2, 0.1, 0.05} for o in state.outcomes.values())
    assert state.used_images == [im.filename for im in case.images] and 0 <= state.gate <= 1
    assert sum(state.time_weights.values()) == pytest.approx(1.0, abs=1e-6)
    calls = adapter.service.builder.encoder_calls
    edited = dict(masks)
    edited[case.images[0].filename] = masks[case.images[0].filename][::-1].copy()
    adapter.predict(case, model.ehr_inputs(), edited, 0.1, False, lambda *_: None, None)
    assert adapter.service.builder.encoder_calls == calls  # a mask edit re-pools; the embedding is kept
    ex = adapter.explain(case, model.ehr_inputs(), masks, "went_icu", "ig", lambda *_: None, None)
    assert ex.method == "occlusion"
    for name, heat in ex.heatmaps.items():
        lungs = masks[name] > 0
        assert heat.shape == lungs.shape and heat[~lungs].max() == 0 and heat[lungs].max() == pytest.approx(1.0)
        assert ex.signed_heatmaps[name].min() >= -1.0
        assert np.array_equal(ex.lungs[name], lungs) and ex.mask_sources[name] == "supplied"  # the overlay's outline
    assert dict(ex.ehr)["leukocyte_count"] == 0.0  # missing: no attribution


def test_shipped_model_shows_a_reliability_diagram_per_outcome(qtbot) -> None:  # noqa: ANN001
    from app.controllers.clinical import ClinicalController
    from app.widgets.prediction_panel import PredictionPanel

    adapter = FusionCaseAdapter.load(MODEL, Settings())
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
