"""The one case builder: supplied masks win, the automatic segmenter fills in, no mask means missing lung
features; one disk cache; a mask edit re-pools without re-encoding; a broken segmenter costs only the mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inference.errors import ImageReadError
from inference.fusion.case import CaseBuilder, ImageInput


class _FakeEncoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(3, 256, 1))


class _Segmenter:
    def __init__(self, result: object) -> None:
        self.result, self.calls = result, 0

    def segment(self, image2d: np.ndarray) -> np.ndarray:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[return-value]


def _xray() -> tuple[np.ndarray, np.ndarray]:
    img = np.full((90, 120), 200.0, np.float32)
    lungs = np.zeros((90, 120), np.uint8)
    lungs[10:80, 10:55] = lungs[10:80, 65:110] = 1
    img[lungs > 0] = 60.0
    return img, lungs


def test_mask_sources_cache_and_reuse(tmp_path: Path) -> None:
    img, lungs = _xray()
    auto = lungs.copy()
    auto[10:40] = 0  # the segmenter finds only the lower lungs
    segmenter = _Segmenter(auto)
    builder = CaseBuilder(tmp_path, encoder_loader=_FakeEncoder, segmenter_loader=lambda: segmenter)
    supplied = builder.image_features(img, lungs)
    made = builder.image_features(img, None)
    assert supplied.mask_source == "supplied" and made.mask_source == "auto"
    assert builder.encoder_calls == 1 and segmenter.calls == 1  # one embedding, pooled twice
    assert made.scalar("lung_area") < supplied.scalar("lung_area")
    again = CaseBuilder(tmp_path, encoder_loader=lambda: (_ for _ in ()).throw(AssertionError("re-encoded")),
                        segmenter_loader=lambda: segmenter)
    np.testing.assert_array_equal(again.image_features(img, lungs).scalars, supplied.scalars)  # from the disk cache
    record = builder.build("p", {"age": 50.0}, [ImageInput("b.png", 3.0, img, lungs), ImageInput("a.png", 1.0, img)])
    assert record.filenames == ["a.png", "b.png"] and [im.mask_source for im in record.images] == ["auto", "supplied"]


def test_without_a_usable_automatic_mask_lung_features_are_missing(tmp_path: Path) -> None:
    img, _ = _xray()
    for segmenter in (None, _Segmenter(np.ones((5, 5), np.uint8)), _Segmenter(ImageReadError("too small"))):
        builder = CaseBuilder(tmp_path / str(id(segmenter)), encoder_loader=_FakeEncoder,
                              segmenter_loader=lambda s=segmenter: s)
        features = builder.image_features(img, None)
        assert features.mask_source == "none" and np.isnan(features.scalars).all()
        assert np.isfinite(features.emb_inside).all()  # the embedding is pooled over the whole image instead


def test_automatic_masks_are_kept_on_disk_per_segmenter(tmp_path: Path) -> None:
    """A rerun (predict again, the viewer re-opening a case) neither re-segments nor re-encodes; another
    segmenter (new id) segments again; a corrupt cache entry is replaced, not trusted."""
    img, lungs = _xray()
    first = _Segmenter(lungs)
    CaseBuilder(tmp_path, encoder_loader=_FakeEncoder, segmenter_loader=lambda: first).image_features(img, None)
    refusing = _Segmenter(AssertionError("segmented again"))
    again = CaseBuilder(tmp_path, encoder_loader=lambda: (_ for _ in ()).throw(AssertionError("re-encoded")),
                        segmenter_loader=lambda: refusing)
    mask, source = again.lung_mask(img)
    assert source == "auto" and np.array_equal(mask, lungs > 0) and refusing.calls == 0
    other = _Segmenter(lungs[::-1].copy())
    other.model_id = "another-lung-model"  # type: ignore[attr-defined]
    mask, _ = CaseBuilder(tmp_path, encoder_loader=_FakeEncoder, segmenter_loader=lambda: other).lung_mask(img)
    assert other.calls == 1 and np.array_equal(mask, lungs[::-1] > 0)
    for entry in tmp_path.glob("lungs-*.npz"):
        entry.write_bytes(b"not an npz")
    fresh = _Segmenter(lungs)
    mask, _ = CaseBuilder(tmp_path, encoder_loader=_FakeEncoder, segmenter_loader=lambda: fresh).lung_mask(img)
    assert fresh.calls == 1 and np.array_equal(mask, lungs > 0)


class _EmbeddingSegmenter:
    """Reads an embedding like ``cxr_lungs.LungSegmenter``; ``segment`` (its own encoder pass) must not run."""

    model_id = "fake-lungs"

    def __init__(self, lungs: np.ndarray) -> None:
        self.lungs, self.seen = lungs, []

    def segment(self, image2d: np.ndarray) -> np.ndarray:
        raise AssertionError("encoded a second time")

    def labels(self, embedding: object) -> np.ndarray:
        self.seen.append(embedding)
        return self.lungs


def test_segmenter_reads_the_builders_embedding(tmp_path: Path) -> None:
    img, lungs = _xray()
    segmenter = _EmbeddingSegmenter(lungs * 2)  # side labels 1/2: any non-zero is lung
    builder = CaseBuilder(tmp_path, encoder_loader=_FakeEncoder, segmenter_loader=lambda: segmenter)
    features = builder.image_features(img, None)
    assert features.mask_source == "auto" and builder.encoder_calls == 1
    (embedding,) = segmenter.seen
    assert tuple(embedding.features.shape) == (1, 256, 64, 64)  # type: ignore[attr-defined]
    assert tuple(embedding.info.original_size) == img.shape  # type: ignore[attr-defined]
    too_small = np.zeros((40, 40), np.float32)
    too_small[10:30] = 1.0
    assert builder.lung_mask(too_small) == (None, "none")  # the segmenter's own input checks still apply


def test_the_real_segmenter_gives_the_same_mask_through_the_builder(cxr_dir: Path, tmp_path: Path) -> None:
    """What training, ``predict`` and the viewer compute without a mask is exactly ``cxr_lungs.segment``."""
    from inference.io.loader import open_image

    image = open_image(next(p for p in sorted((cxr_dir / "images").iterdir()) if p.suffix == ".png")).array[0]
    builder = CaseBuilder(tmp_path)
    mask, source = builder.lung_mask(image)
    assert source == "auto" and builder.encoder_calls == 1
    assert np.array_equal(mask, np.asarray(builder.segmenter.segment(image)) > 0)  # type: ignore[union-attr]
