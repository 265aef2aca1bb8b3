"""GPU out-of-memory → CPU fallback where the GPU work happens: LiteMedSAM encode/decode, fusion predict.

There is no GPU here, so the model call raises the real ``torch.cuda.OutOfMemoryError`` on its first
call (what a full GPU does) and works afterwards; the tests check that the retry's result equals a normal
CPU run, that the model ends up on the CPU and that the user-facing message is produced (callback and the
``medfusion.gpu`` log the viewer shows in its status bar).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from inference.fusion.predictor import FusionPredictor, PatientInput
from inference.gpu_fallback import GPU_FALLBACK_MESSAGE
from inference.models.litemedsam import fast_decoder
from inference.segmentation.backend import Decoded, Embedding
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend

REPO = Path(__file__).resolve().parents[2]


def _oom_once(fn: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    """``fn`` that fails like a full GPU on its first call only."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return fn(*args, **kwargs)

    return wrapped


class _OOMOnceEncoder(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module, calls: list[int]) -> None:
        super().__init__()
        self.inner = inner
        self._call = _oom_once(inner, calls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._call(x)


@pytest.fixture(scope="module")
def backend() -> LiteMedSAMBackend:
    return LiteMedSAMBackend.load("cpu", encoder_runtime="eager", decoder_bf16=False)


BOX = (18.0, 26.0, 62.0, 70.0)


def _slice() -> np.ndarray:
    yy, xx = np.mgrid[:96, :96]
    return np.where((yy - 48) ** 2 + (xx - 40) ** 2 < 20**2, 80.0, -900.0).astype(np.float32)


@pytest.fixture(scope="module")
def reference(backend: LiteMedSAMBackend) -> tuple[Embedding, Decoded]:
    """A normal CPU run (no fault) to compare the fallback's results with."""
    embedding = backend.embed(_slice(), None)
    return embedding, backend.decode(embedding, BOX)


def test_litemedsam_encode_and_decode_fall_back_to_cpu(backend: LiteMedSAMBackend, reference: tuple[Embedding, Decoded],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    image, box = _slice(), BOX
    reference_embedding, reference_decoded = reference
    messages: list[str] = []
    backend.on_message = messages.append
    encoder, decoder = backend.model.image_encoder, fast_decoder(backend.model)
    enc_calls: list[int] = []
    dec_calls: list[int] = []
    backend.model.image_encoder = _OOMOnceEncoder(encoder, enc_calls)
    decoder.run = _oom_once(decoder.run, dec_calls)  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.WARNING, logger="medfusion.gpu"):
            embedding = backend.embed(image, None)
            decoded = backend.decode(embedding, box)
    finally:
        backend.model.image_encoder = encoder
        del decoder.run
        backend.on_message = None
    assert len(enc_calls) == 2 and len(dec_calls) == 2  # failed once, retried once
    assert torch.equal(embedding.features, reference_embedding.features)
    assert np.array_equal(decoded.mask, reference_decoded.mask) and decoded.mask.any()
    assert decoded.iou == pytest.approx(reference_decoded.iou)
    assert next(backend.model.parameters()).device.type == "cpu"
    assert messages == [GPU_FALLBACK_MESSAGE, GPU_FALLBACK_MESSAGE]
    assert [r.getMessage() for r in caplog.records if r.name == "medfusion.gpu"] == messages


def test_other_model_errors_are_not_swallowed(backend: LiteMedSAMBackend, reference: tuple[Embedding, Decoded]) -> None:
    decoder = fast_decoder(backend.model)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("shape mismatch in the decoder")

    backend.on_message = lambda m: pytest.fail("no fallback expected")
    decoder.run = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="shape mismatch"):
            backend.decode(reference[0], BOX)
    finally:
        del decoder.run
        backend.on_message = None


def test_fusion_predict_falls_back_to_cpu(caplog: pytest.LogCaptureFixture) -> None:
    """The MedFusion-Mamba predictor (a nested-CV candidate; the shipped outcome models are numpy-only)."""
    from inference.fusion.dataset import EHRNormaliser
    from inference.fusion.model import FusionConfig, MedFusionModel
    from inference.uncertainty.calibration import TemperatureScaler
    from inference.uncertainty.conformal import MondrianConformal

    torch.manual_seed(0)
    conformal = MondrianConformal(0.1).fit(np.linspace(0, 1, 40), np.arange(40) % 2)
    predictor = FusionPredictor(MedFusionModel(FusionConfig()), EHRNormaliser([60, 37.5, 93, 8, 6, 1.2], [15, 1, 5, 4, 4, 1]),
                                [TemperatureScaler() for _ in range(4)], [conformal] * 4, [None, None], "untrained")
    rng = np.random.default_rng(7)
    dim = predictor.model.config.feature_dim
    patient = PatientInput("p1", {"age": 64.0, "sex": "M", "temperature": 38.4},
                           [(f"img{i}.jpg", float(i), rng.normal(size=dim).astype(np.float32)) for i in range(2)])
    reference = predictor.predict(patient)
    messages: list[str] = []
    predictor.on_message = messages.append
    calls: list[int] = []
    predictor.model.forward = _oom_once(predictor.model.forward, calls)  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="medfusion.gpu"):
        result = predictor.predict(patient)
    assert len(calls) == 2
    assert [o.probability for o in result.outcomes] == pytest.approx([o.probability for o in reference.outcomes])
    assert [o.prediction_set for o in result.outcomes] == [o.prediction_set for o in reference.outcomes]
    assert result.gate == pytest.approx(reference.gate)
    assert messages == [GPU_FALLBACK_MESSAGE]
    assert any(r.name == "medfusion.gpu" and r.getMessage() == GPU_FALLBACK_MESSAGE for r in caplog.records)


def test_outcome_case_builder_encoding_falls_back_to_cpu(backend: LiteMedSAMBackend, tmp_path: Path) -> None:
    """The outcome predictor's image encoding (``CaseBuilder.embedding``) retries on the CPU after an OOM."""
    from inference.fusion.case import CaseBuilder

    model = backend.model
    reference = CaseBuilder(None, encoder_loader=lambda: model, segmenter_loader=lambda: None).embedding(_slice())
    calls: list[int] = []
    original = model.image_encoder
    model.image_encoder = _OOMOnceEncoder(original, calls)
    try:
        builder = CaseBuilder(tmp_path, encoder_loader=lambda: model, segmenter_loader=lambda: None)
        messages: list[str] = []
        builder.on_message = messages.append
        result = builder.embedding(_slice())
    finally:
        model.image_encoder = original
    assert len(calls) == 2 and messages == [GPU_FALLBACK_MESSAGE]
    np.testing.assert_allclose(result, reference, atol=1e-5)
