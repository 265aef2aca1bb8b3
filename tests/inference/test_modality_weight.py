"""The X-rays' weight in a prediction (``image_share``) against a *typical* patient: strictly between 0 and 1
on the shipped model for the demo case, lower when the X-ray features are ordinary, and the typical image
block recovered exactly from the shipped block means."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inference.fusion.design import ImageEncoder, PatientRecord
from inference.fusion.lung_features import EMBED_DIM, SCALAR_NAMES, ZONES, ImageFeatures
from inference.fusion.modality_weight import TypicalImageEncoder, image_share, with_typical_ehr
from inference.fusion.outcome_model import OutcomePredictor

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "resources" / "models" / "fusion"
DEMO = ROOT / "resources" / "demo" / "cxr"


def _features(rng: np.random.Generator, scale: float = 1.0) -> ImageFeatures:
    return ImageFeatures((rng.normal(size=len(SCALAR_NAMES)) * scale).astype(np.float32),
                         rng.normal(size=EMBED_DIM).astype(np.float32), rng.normal(size=EMBED_DIM).astype(np.float32),
                         rng.normal(size=(len(ZONES), EMBED_DIM)).astype(np.float32),
                         rng.normal(size=2 * EMBED_DIM + 1).astype(np.float32), "supplied")


def test_typical_row_is_the_mean_over_patients_with_x_rays() -> None:
    rng = np.random.default_rng(1)
    records = [PatientRecord(f"p{i}", {}, [_features(rng) for _ in range(1 + i % 3)]) for i in range(30)]
    records += [PatientRecord(f"q{i}", {}) for i in range(7)]  # no X-ray: zeros + 'no image' = 1 in the block means
    enc = ImageEncoder.fit(records, {}, "zones", n_components=4)
    with_images = enc._raw_block([r for r in records if r.images])
    typical = TypicalImageEncoder.of(enc)
    np.testing.assert_allclose(typical.typical_row(), with_images.mean(0), atol=1e-9)
    block = typical.transform([records[0], records[-1]])
    np.testing.assert_allclose(block[0], (with_images.mean(0) - enc.out_means) / enc.out_stds, atol=1e-9)
    np.testing.assert_allclose(block[1], enc.transform([records[-1]])[0])  # no X-ray stays 'no X-ray'


def test_typical_ehr_replaces_measured_values_only() -> None:
    record = PatientRecord("p", {"age": 90.0, "pO2_saturation": None, "sex": "F"})
    typical = with_typical_ehr(record, [float(i) for i in range(6)])
    assert typical.ehr["age"] == 0.0 and typical.ehr["pO2_saturation"] is None and typical.ehr["sex"] == "F"
    assert "temperature" not in typical.ehr


@pytest.fixture(scope="module")
def demo() -> tuple[OutcomePredictor, PatientRecord, str]:
    """The shipped model and the demo case through the real case builder (LiteMedSAM encoder, bundled masks)."""
    if not (DEMO / "metadata.csv").is_file():
        pytest.skip("demo case not bundled")
    from inference.fusion.case import CaseBuilder, ImageInput, read_mask_file
    from inference.fusion.cohort import read_cohort
    from inference.io.loader import open_image

    patient = read_cohort(DEMO / "metadata.csv")[0]
    images = []
    for rec in patient.images:
        pixels = open_image(DEMO / "images" / rec.filename).array[0]
        mask = read_mask_file(DEMO / "lung_masks" / f"{Path(rec.filename).stem}.png", pixels.shape)
        images.append(ImageInput(rec.filename, rec.offset, pixels, mask))
    predictor = OutcomePredictor.load(MODEL)
    record = CaseBuilder(None, segmenter_loader=lambda: None).build(patient.patient_id, patient.ehr, images)
    seen, head = predictor.effective(record, "both")
    return predictor, seen, head


def test_demo_case_weight_is_strictly_between_0_and_1(demo) -> None:  # noqa: ANN001
    predictor, record, head = demo
    shares = {o: predictor.image_share(record, o, head) for o in predictor.outcomes}
    assert all(0.0 < s < 1.0 for s in shares.values()), shares
    assert predictor.predict(record).image_share == pytest.approx(shares)


def test_weight_drops_when_the_x_ray_features_are_typical(demo) -> None:  # noqa: ANN001
    """Each X-ray's lung statistics and embedding set to the cohort's (medians, PCA centre): the X-rays say
    less that is unusual, so their weight falls, for every outcome."""
    predictor, record, head = demo
    enc = next(iter(predictor.encoders_for(head).images.values()))
    ordinary = [replace(im, scalars=np.asarray(enc.medians, np.float32),
                        emb_inside=np.asarray(enc.pca_mean[:EMBED_DIM], np.float32)) for im in record.images]
    typical = PatientRecord(record.patient_id, record.ehr, ordinary, record.filenames, record.offsets)
    for outcome in predictor.outcomes:
        before = predictor.image_share(record, outcome, head)
        after = predictor.image_share(typical, outcome, head)
        assert after < before, (outcome, before, after)
    # the block itself at the typical row: the X-rays carry no weight at all
    model, encoders = predictor.head(predictor.outcomes[0], head).model, predictor.encoders_for(head)
    typical_encoders = replace(encoders, images={k: TypicalImageEncoder.of(v) for k, v in encoders.images.items()})
    assert image_share(model, typical_encoders, record) == pytest.approx(0.0, abs=1e-9)
