"""The CPU encoder engine kept behind ``Settings.encoder_runtime`` gives the same masks as the fp32 reference.

Real model, real slices (lung1 CT nodule, two CXR lungs), boxes from the reference masks as a user draws
them; the reference is the upstream fp32 NCHW encoder. Speed is measured in ``benchmarks/encoder_variants``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.errors import ModelLoadError
from inference.io.loader import open_image
from inference.models import engine_choice
from inference.models.encoder_runtime import (
    apply_encoder_runtime,
    fold_conv_bn,
    onnxruntime_available,
    resolve_runtime,
    settle,
)
from inference.models.litemedsam import LiteMedSAM, decode, encode, load_litemedsam
from inference.models.preprocess import LUNG_LESION_WINDOW, preprocess_slice
from inference.segmentation.evaluation import component_boxes, padded_box
from inference.settings import Settings


@pytest.fixture(scope="module")
def reference_model() -> LiteMedSAM:
    return load_litemedsam("cpu", runtime="eager")


@pytest.fixture(scope="module")
def slices(lung1_dir: Path, cxr_dir: Path) -> list[tuple[np.ndarray, tuple[float, float] | None, tuple]]:
    ct = open_image(lung1_dir / "image.nrrd").array
    label = open_image(lung1_dir / "label.nrrd").array > 0
    cases: list[tuple[np.ndarray, tuple[float, float] | None, tuple]] = [
        (ct[33], LUNG_LESION_WINDOW, padded_box(label[33], 5))
    ]
    for stem in ("00870a9c", "08d780ae"):
        mask = np.asarray(Image.open(cxr_dir / "lung_masks" / f"{stem}.png").convert("L")) > 127
        cases.append((open_image(cxr_dir / "images" / f"{stem}.jpg").array[0], None, component_boxes(mask)[0]))
    return cases


def _masks(decoder: LiteMedSAM, encoder: LiteMedSAM, slices: list, reference: bool = False) -> list[np.ndarray]:
    out = []
    for plane, window, box in slices:
        tensor, info = preprocess_slice(plane, window)
        if reference:  # upstream: fp32, contiguous NCHW, no_grad
            with torch.no_grad():
                emb = encoder.image_encoder(tensor)
        else:
            emb = encode(encoder, tensor)
        logits, _ = decode(decoder, emb, info.box_to_model(np.asarray(box, dtype=np.float32)))
        out.append((info.logits_to_original(logits[None])[0, 0] > 0).numpy())
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


@pytest.fixture(scope="module")
def reference_masks(reference_model: LiteMedSAM, slices: list) -> list[np.ndarray]:
    ref = copy.deepcopy(reference_model)
    ref.image_encoder.to(memory_format=torch.contiguous_format)
    masks = _masks(reference_model, ref, slices, reference=True)
    assert all(m.sum() > 50 for m in masks)  # real objects, not empty masks that trivially agree
    return masks


@pytest.fixture(scope="module")
def encoder_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export + engine measurement for the module (what a first start leaves in the cache folder)."""
    return tmp_path_factory.mktemp("encoder_cache")


def test_default_engine_matches_the_fp32_reference(
    reference_model: LiteMedSAM, slices: list, reference_masks: list[np.ndarray], encoder_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``auto``: the first encodes are spread over the exact engines and timed (same masks whichever ran),
    the fastest is kept and stored; the next start reads the decision instead of measuring."""
    assert resolve_runtime(Settings().encoder_runtime) == "auto"
    monkeypatch.setattr(engine_choice, "PROBE_ROUNDS", 1)  # warm-up + 1 timed call per engine: a cheap test
    kept = load_litemedsam("cpu", runtime=Settings().encoder_runtime, cache_dir=encoder_cache)
    assert kept.model_id == reference_model.model_id  # exact engines share the embedding caches
    for got, want in zip(_masks(reference_model, kept, slices), reference_masks, strict=True):
        assert _dice(got, want) >= 0.995  # also while measuring: every candidate is exact
    assert settle(kept)
    assert kept.encoder_runtime in ("fused", "onnx") and "measured now" in kept.encoder_engine  # type: ignore[operator]
    for got, want in zip(_masks(reference_model, kept, slices[:1]), reference_masks[:1], strict=True):
        assert _dice(got, want) >= 0.995
    if onnxruntime_available():
        assert (encoder_cache / "engine_choice.json").is_file()

        def no_measuring(*args: object, **kwargs: object) -> None:
            raise AssertionError("measured again")

        monkeypatch.setattr(engine_choice.MeasuringEncoder, "__init__", no_measuring)
        again = load_litemedsam("cpu", runtime="auto", cache_dir=encoder_cache)
        assert again.encoder_runtime == kept.encoder_runtime and "cached" in again.encoder_engine  # type: ignore[operator]


@pytest.mark.parametrize("runtime", ["fused", "onnx"])
def test_exact_engines_match_the_reference(
    runtime: str, reference_model: LiteMedSAM, slices: list, reference_masks: list[np.ndarray], encoder_cache: Path
) -> None:
    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
    model = apply_encoder_runtime(copy.deepcopy(reference_model), runtime, cache_dir=encoder_cache)
    assert model.encoder_runtime == runtime
    for got, want in zip(_masks(reference_model, model, slices[:2]), reference_masks[:2], strict=True):
        assert _dice(got, want) >= 0.995


def test_folding_batchnorm_keeps_the_encoder_output(reference_model: LiteMedSAM) -> None:
    encoder = copy.deepcopy(reference_model.image_encoder)
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        before = encoder(x)
        assert fold_conv_bn(encoder) == 29 - 2  # every Conv2d_BN (the neck's two plain convs have no BN)
        after = encoder(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.modules())
    assert float((after - before).abs().max()) < 1e-4 * float(before.abs().max())


def test_int8_gets_its_own_model_id(reference_model: LiteMedSAM) -> None:
    model = apply_encoder_runtime(copy.deepcopy(reference_model), "int8")
    assert model.encoder_runtime == "int8" and model.model_id != reference_model.model_id


def test_unknown_engine_is_a_clear_error(reference_model: LiteMedSAM) -> None:
    with pytest.raises(ModelLoadError, match="Unknown encoder runtime"):
        apply_encoder_runtime(copy.deepcopy(reference_model), "tensorrt")


def test_setting_reaches_the_segmentation_backend(tmp_path: Path) -> None:
    from inference.segmentation.factory import create_backend

    backend = create_backend(Settings(device="cpu", encoder_runtime="fused", cache_dir=str(tmp_path)))
    assert backend.model.encoder_runtime == "fused"  # type: ignore[attr-defined]


@pytest.mark.gpu
def test_cuda_autocast_encoder_matches_the_cpu_reference(
    reference_model: LiteMedSAM, slices: list, reference_masks: list[np.ndarray]
) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    gpu = load_litemedsam("cuda")  # encode() autocasts to bf16/fp16 on CUDA
    assert gpu.encoder_runtime == "eager"
    masks = []
    for plane, window, box in slices:
        tensor, info = preprocess_slice(plane, window)
        emb = encode(gpu, tensor).cpu()
        logits, _ = decode(reference_model, emb, info.box_to_model(np.asarray(box, dtype=np.float32)))
        masks.append((info.logits_to_original(logits[None])[0, 0] > 0).numpy())
    for got, want in zip(masks, reference_masks, strict=True):
        assert _dice(got, want) >= 0.995


def test_batched_prefetch_fills_the_session_cache(lung1_dir: Path) -> None:
    """Propagation's batched prefetch (the GPU speed path, also valid on CPU) gives the per-slice embeddings."""
    from inference.segmentation.cache import EmbeddingCache
    from inference.segmentation.litemedsam_backend import LiteMedSAMBackend, prefetch_embeddings
    from inference.segmentation.session import SegmentationSession

    backend = LiteMedSAMBackend.load("cpu", encoder_runtime="fused")
    volume = open_image(lung1_dir / "image.nrrd")
    session = SegmentationSession(backend, EmbeddingCache.from_megabytes(64), window=LUNG_LESION_WINDOW)
    session.set_image(volume)
    assert prefetch_embeddings(session, [32, 33, 34], batch=2) == 3
    assert backend.encoder_calls == 3
    assert prefetch_embeddings(session, [33], batch=2) == 0  # already cached
    cached = session.embedding(33).features
    assert backend.encoder_calls == 3  # the session found it in the cache
    single = backend.embed(volume.array[33], LUNG_LESION_WINDOW).features
    assert float((cached - single).abs().max()) <= 1e-4 * float(single.abs().max())
