"""The reordered prompt decoder gives upstream's results on real slices (lung1 CT nodule, two CXR lungs, one 4:3).

Reference: segment_anything's prompt encoder + ``get_dense_pe()`` + mask decoder, fp32, as MedSAM's
``medsam_inference`` runs a re-prompt on a cached embedding (``reference_decode``). Speed is measured in
``benchmarks/segmentation.py``, never here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.io.loader import open_image
from inference.models.fast_decoder import PADDING_LOGIT
from inference.models.litemedsam import (
    LiteMedSAM,
    cpu_bf16_supported,
    decode,
    encode,
    fast_decoder,
    load_litemedsam,
    reference_decode,
)
from inference.models.preprocess import LUNG_LESION_WINDOW, PreprocessInfo, preprocess_slice
from inference.segmentation.evaluation import component_boxes, padded_box


@pytest.fixture(scope="module")
def model() -> LiteMedSAM:
    return load_litemedsam("cpu", runtime="fused")


@pytest.fixture(scope="module")
def cases(model: LiteMedSAM, lung1_dir: Path, cxr_dir: Path) -> list[tuple[str, torch.Tensor, PreprocessInfo, np.ndarray]]:
    """(name, embedding, geometry, box in the 256 frame) for one CT nodule and two (non-square) CXR lungs."""
    ct = open_image(lung1_dir / "image.nrrd").array
    label = open_image(lung1_dir / "label.nrrd").array > 0
    planes: list[tuple[str, np.ndarray, tuple[float, float] | None, tuple]] = [
        ("ct z33 nodule", ct[33], LUNG_LESION_WINDOW, padded_box(label[33], 5))
    ]
    for stem in ("00870a9c", "1-s2.0-S0196070920301691-gr3_lrg"):  # square-ish, and 951 × 729
        mask = np.asarray(Image.open(cxr_dir / "lung_masks" / f"{stem}.png").convert("L")) > 127
        planes.append((f"cxr {stem}", open_image(cxr_dir / "images" / f"{stem}.jpg").array[0], None,
                       component_boxes(mask)[0]))
    out = []
    for name, plane, window, box in planes:
        tensor, info = preprocess_slice(plane, window)
        out.append((name, encode(model, tensor), info, info.box_to_model(np.asarray(box, dtype=np.float32))))
    assert any(info.new_size != (256, 256) for _, _, info, _ in out)  # the padding path is exercised
    return out


def _mask(logits: torch.Tensor, info: PreprocessInfo) -> np.ndarray:
    return (info.logits_to_original(logits[None, :1])[0, 0] > 0).numpy()


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def _close(got: torch.Tensor, want: torch.Tensor, info: PreprocessInfo) -> None:
    h, w = info.new_size
    scale = float(want.abs().max())
    assert float((got[..., :h, :w] - want[..., :h, :w]).abs().max()) <= 2e-5 * scale


def test_box_prompt_equals_upstream_on_real_slices(model: LiteMedSAM, cases: list) -> None:
    fast_decoder(model).clear()
    for _name, emb, info, box in cases:
        want, want_iou = reference_decode(model, emb, box, multimask="all")
        assert _mask(want, info).sum() > 50  # a real object, not two empty masks that trivially agree
        for _ in range(3):  # first prompt, second (projects block 0 once), third (reuses it)
            got, iou = decode(model, emb, box, multimask="all")
            _close(got, want, info)
            torch.testing.assert_close(iou, want_iou, atol=1e-5, rtol=1e-5)
            assert np.array_equal(_mask(got, info), _mask(want, info))


def test_points_mask_prompt_and_multimask_equal_upstream(model: LiteMedSAM, cases: list) -> None:
    _name, emb, info, box = cases[0]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    points = np.array([[cx, cy], [box[0] - 6, box[1] - 6]], dtype=np.float32)
    labels = np.array([1, 0])
    low, _ = reference_decode(model, emb, box)
    prompts = [
        dict(box_256=box, points_256=points, point_labels=labels),
        dict(points_256=points[:1], point_labels=labels[:1], multimask=True),
        dict(box_256=box, mask_logits_256=low[0].numpy()),  # the mask prompt changes the image side
    ]
    for kwargs in prompts:
        want, want_iou = reference_decode(model, emb, **kwargs)  # type: ignore[arg-type]
        got, iou = decode(model, emb, **kwargs)  # type: ignore[arg-type]
        _close(got, want, info)
        torch.testing.assert_close(iou, want_iou, atol=1e-5, rtol=1e-5)


def test_best_token_and_padding_skip(model: LiteMedSAM, cases: list) -> None:
    """``best`` returns upstream's highest-IoU mask; ``valid_size`` leaves the padding uncomputed."""
    for _name, emb, info, box in cases:
        want, want_iou = reference_decode(model, emb, box, multimask=True)
        top = int(torch.argmax(want_iou))
        got, iou = decode(model, emb, box, multimask=True, best=True, valid_size=info.new_size)
        assert got.shape == (1, 256, 256)
        assert float(iou[0]) == pytest.approx(float(want_iou[top]), abs=1e-5)
        _close(got, want[top : top + 1], info)
        h, w = info.new_size
        if h < 256:
            assert float(got[0, -1, 0]) == PADDING_LOGIT


def test_context_cache_tracks_the_embedding(model: LiteMedSAM, cases: list) -> None:
    """A new embedding never reuses another one's cached image side, even at the same address."""
    dec = fast_decoder(model)
    dec.clear()
    (_, emb_a, info, box), (_, emb_b, _, _) = cases[0], cases[1]
    decode(model, emb_a, box)
    decode(model, emb_a, box)
    copy_b = emb_b.clone()
    got, _ = decode(model, copy_b, box)
    want, _ = reference_decode(model, copy_b, box)
    _close(got, want, info)
    assert len(dec._contexts) <= 2


def test_weight_edits_reach_the_reordered_decoder(cases: list) -> None:
    """It holds re-laid-out weight copies: an in-place weight change (fine-tuning, reload) rebuilds them."""
    edited = load_litemedsam("cpu", runtime="fused")
    _name, emb, info, box = cases[0]
    decode(edited, emb, box)
    with torch.no_grad():
        edited.mask_decoder.output_upscaling[0].weight.mul_(1.5)
        edited.mask_decoder.transformer.layers[1].cross_attn_image_to_token.q_proj.weight.mul_(0.5)
    got, _ = decode(edited, emb, box)
    want, _ = reference_decode(edited, emb, box)
    _close(got, want, info)


@pytest.mark.skipif(not cpu_bf16_supported(), reason="CPU without native bf16: the backend keeps fp32")
def test_bf16_decoder_keeps_dice(model: LiteMedSAM, cases: list) -> None:
    """Where the backend uses bf16 (CPUs with native bf16), its masks stay within Dice 0.995 of fp32 upstream."""
    for _name, emb, info, box in cases:
        want, _ = reference_decode(model, emb, box)
        got, _ = decode(model, emb, box, cpu_dtype=torch.bfloat16, valid_size=info.new_size)
        assert _dice(_mask(got, info), _mask(want, info)) >= 0.995


@pytest.mark.gpu
def test_cuda_decoder_matches_the_cpu_reference(model: LiteMedSAM, cases: list) -> None:
    """On CUDA (autocast) the reordered decoder's masks stay within Dice 0.995 of upstream fp32 on the CPU."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    gpu = load_litemedsam("cuda")
    for _name, emb, info, box in cases:
        want, _ = reference_decode(model, emb, box)
        got, _ = decode(gpu, emb.cuda(), box, valid_size=info.new_size)
        assert _dice(_mask(got.cpu(), info), _mask(want, info)) >= 0.995
