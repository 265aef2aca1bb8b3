"""The normal-lung reference explainer: an opaque zone is credited, clear zones are ~0, the reference file
is validated, and the shipped reference loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference.errors import ModelLoadError
from inference.explain.anatomy import (
    cells_by_attribution,
    deletion_curve,
    reference_occlusion,
    restrict_to_lungs,
)
from inference.fusion.lung_features import SCALAR_NAMES, lung_zones, to_grid
from inference.fusion.normal_lung import (
    MAX_REFERENCE_BYTES,
    REFERENCE_FILE,
    NormalisableImage,
    NormalLungReference,
    build_reference,
    find_reference,
    position_bins,
    select_normal_images,
)

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "models" / "fusion"
SIDE = 192
CELL = 32  # few cells: every one costs a feature computation on a (256, 64, 64) embedding


def _lungs() -> np.ndarray:
    lungs = np.zeros((SIDE, SIDE), bool)
    lungs[24:168, 20:88] = True
    lungs[24:168, 104:172] = True
    return lungs


def _normal_xray(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Soft tissue 0.8, lungs ~0.35 with texture; embedding: channel 0 = 1 inside the lungs, smooth noise."""
    lungs = _lungs()
    frame = np.full((SIDE, SIDE), 0.8, np.float32)
    frame[lungs] = np.clip(0.35 + rng.normal(0, 0.05, lungs.sum()), 0, 1)
    emb = rng.normal(0, 0.01, (256, 64, 64)).astype(np.float32)
    emb[0, :48, :48] += 1.0
    return frame, emb


@pytest.fixture(scope="module")
def reference() -> NormalLungReference:
    rng = np.random.default_rng(0)
    return build_reference([(*_normal_xray(rng), _lungs()) for _ in range(6)], {"test": True})


def test_an_opaque_zone_is_red_and_clear_zones_are_near_zero(reference: NormalLungReference) -> None:
    """The acceptance case of the brief: one lung zone made opaque (pixels and encoder features) gets a
    positive attribution, the clear zones ~0, whatever part of the features the model reads."""
    lungs = _lungs()
    frame, emb = _normal_xray(np.random.default_rng(7))
    opaque = lung_zones(lungs)["left_lower"]
    frame[opaque] = np.clip(0.72 + np.random.default_rng(8).normal(0, 0.03, opaque.sum()), 0, 1)
    grid_opaque = opaque.reshape(48, 4, 48, 4).mean(axis=(1, 3)) > 0.5  # 4 frame px a grid cell
    emb[1, :48, :48][grid_opaque] += 2.0  # the encoder sees the opacity too
    image = NormalisableImage(reference, frame, emb, lungs, "supplied")  # the shipped kind: pixels made normal
    spliced = NormalisableImage(reference, frame, emb, lungs, "supplied", replace_embedding=True)
    lung_to_soft = SCALAR_NAMES.index("lung_to_soft")

    def pixel_logit(replace: np.ndarray) -> float:  # risk = how bright the lungs are against soft tissue
        return float(10 * image.features(replace).scalars[lung_to_soft])

    def embedding_logit(replace: np.ndarray) -> float:  # risk = the encoder's "opacity" channel in the lungs
        return float(10 * spliced.features(replace).emb_inside[1])

    for logit in (pixel_logit, embedding_logit):
        attr = reference_occlusion(logit, lungs, cell=CELL)
        assert np.all(attr[~lungs] == 0)
        peak = attr[opaque].max()
        assert peak > 0 and np.median(attr[opaque]) > 0.5 * peak
        clear = lungs & ~opaque
        clear_cells = clear.copy()
        clear_cells[96:, 96:] = False  # cells that straddle the opaque zone's edge hold some opacity
        assert np.abs(attr[clear_cells]).max() < 0.1 * peak
        shown = restrict_to_lungs(attr, lungs, cell=CELL, smooth_cells=0.0)
        assert shown.values[150, 150] == pytest.approx(1.0, abs=0.2) and abs(shown.values[40, 40]) < 0.1
    # the shipped kind keeps the encoder vectors: a model that reads only them gets no map (a stated limit)
    assert not reference_occlusion(lambda r: float(image.features(r).emb_inside[1]), lungs, cell=CELL).any()


def test_replacing_keeps_the_mask_and_leaves_unchosen_pixels(reference: NormalLungReference) -> None:
    lungs = _lungs()
    frame, emb = _normal_xray(np.random.default_rng(3))
    image = NormalisableImage(reference, frame, emb, lungs, "auto", replace_embedding=True)
    as_is = image.features(np.zeros_like(lungs))
    nothing = image.features(~lungs)  # outside the lungs nothing is replaced
    assert np.array_equal(as_is.scalars, nothing.scalars, equal_nan=True)
    some = image.features(lungs & (np.arange(SIDE)[:, None] < 60))
    area = SCALAR_NAMES.index("lung_area")
    assert some.scalars[area] == as_is.scalars[area]  # the lung mask is never changed
    assert not np.array_equal(some.emb_inside, as_is.emb_inside)


def test_position_bins_cover_the_lungs_once() -> None:
    bins = position_bins(_lungs())
    assert bins.min() == -1 and bins.max() < 36
    assert np.array_equal(bins >= 0, to_grid(_lungs().astype(np.float32)) > 0)  # every lung grid cell, only those
    assert set(np.unique(bins[bins >= 0])) == set(range(36))
    assert np.all(position_bins(np.zeros((SIDE, SIDE), bool)) == -1)


def test_deletion_curve_of_a_faithful_map_falls_faster_than_random(reference: NormalLungReference) -> None:
    lungs = _lungs()
    frame, emb = _normal_xray(np.random.default_rng(5))
    frame[lungs & (np.arange(SIDE)[None, :] < 60)] = 0.75  # image-left half of the right lung opaque
    image = NormalisableImage(reference, frame, emb, lungs, "supplied")
    index = SCALAR_NAMES.index("lung_to_soft")

    def logit(replace: np.ndarray) -> float:
        return float(10 * image.features(replace).scalars[index])

    attr = reference_occlusion(logit, lungs, cell=CELL)
    top = deletion_curve(logit, lungs, cells_by_attribution(attr, lungs, CELL), CELL, steps=5)
    order = cells_by_attribution(attr, lungs, CELL)
    rand = deletion_curve(logit, lungs, [order[i] for i in np.random.default_rng(0).permutation(len(order))], CELL, 5)
    assert len(top) == 6 and top[0] == pytest.approx(rand[0]) and top[-1] == pytest.approx(rand[-1], abs=1e-6)
    assert (top[1:] - top[0]).mean() < (rand[1:] - rand[0]).mean()


def test_reference_file_is_validated(tmp_path: Path, reference: NormalLungReference) -> None:
    path = tmp_path / REFERENCE_FILE
    reference.save(path)
    again = NormalLungReference.load(path)
    np.testing.assert_allclose(again.pixel_quantiles, reference.pixel_quantiles, atol=1e-5)
    data = json.loads(path.read_text())
    data["pixel_quantiles"][0] = data["pixel_quantiles"][0][::-1]  # not increasing
    path.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="does not match"):
        NormalLungReference.load(path)
    path.write_text("{not json")
    with pytest.raises(ModelLoadError):
        NormalLungReference.load(path)
    with pytest.raises(ModelLoadError, match="Cannot read"):
        NormalLungReference.load(tmp_path / "missing.json")


def test_an_edited_shipped_reference_is_refused_and_a_huge_file_is_not_read(
    tmp_path: Path, reference: NormalLungReference, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped reference is pinned by the sha256 in inference/fusion/shipped.py, like the model: a valid
    but edited file (maps that would show other regions) is refused, the error says what was checked."""
    from inference.fusion import shipped

    copy = tmp_path / "fusion"
    shutil.copytree(SHIPPED, copy)
    data = json.loads((copy / REFERENCE_FILE).read_text())
    data["pixel_quantiles"] = (np.asarray(data["pixel_quantiles"]) * 0.9).tolist()  # still passes every check
    (copy / REFERENCE_FILE).write_text(json.dumps(data))
    NormalLungReference.from_dict(data)
    monkeypatch.setattr(shipped, "SHIPPED_MODEL_DIR", copy)  # the installed location, as the attacker left it
    with pytest.raises(ModelLoadError, match=r"normal_lung.json .*built into this program"):
        NormalLungReference.load(copy / REFERENCE_FILE)

    huge = tmp_path / "other" / REFERENCE_FILE  # a user's model folder: checked as data, size first
    huge.parent.mkdir()
    huge.write_text(" " * (MAX_REFERENCE_BYTES + 1))
    with pytest.raises(ModelLoadError, match="too large"):
        NormalLungReference.load(huge)


def test_shipped_reference_loads_with_its_provenance() -> None:
    assert find_reference(Path("/nonexistent"), SHIPPED) == SHIPPED / REFERENCE_FILE
    ref = NormalLungReference.load(SHIPPED / REFERENCE_FILE)
    assert ref.provenance["images_used"] >= 20 and "dev" in ref.provenance["data"]
    assert 0.3 < float(np.median(ref.pixel_quantiles[:, 10])) < 0.9  # clear lung is darker than soft tissue


def test_normal_images_are_no_finding_or_low_extent() -> None:
    rows = [{"filename": "a.jpg", "finding": "No Finding"}, {"filename": "b.jpg", "finding": "COVID-19"},
            {"filename": "c.jpg", "finding": "COVID-19"}, {"filename": "d.jpg", "finding": "COVID-19"}]
    assert select_normal_images(rows, {"b.jpg": (0.7, 0.5), "c.jpg": (4.0, 3.0)}) == ["a.jpg", "b.jpg"]


def test_the_service_explains_against_the_shipped_reference(tmp_path: Path) -> None:
    from inference.fusion.service import EXPLANATION_METHOD, MASK_METHOD, OutcomeService
    from inference.settings import Settings

    service = OutcomeService.load(SHIPPED, Settings(cache_dir=str(tmp_path)), lung_segmenter=None)
    assert service.reference is not None and not service.replace_embedding  # pixels made normal, vectors kept
    assert service.explanation_method == EXPLANATION_METHOD != MASK_METHOD
    assert OutcomeService(service.predictor, service.builder).explanation_method == MASK_METHOD
