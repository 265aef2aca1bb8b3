"""numpy pre/post-processing around LiteMedSAM gives torch's results (real CT and X-ray slices, odd shapes).

Reference: torch's ``F.interpolate`` (``area`` for downscaling, ``bilinear`` with ``align_corners=False``)
and the torch ``preprocess_slice`` as it was before it shared the numpy code (``_torch_preprocess`` below).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inference.io.loader import open_image
from inference.models.interpolation import area_resize, bilinear_resize
from inference.models.preprocess import (
    LUNG_LESION_WINDOW,
    MODEL_SIDE,
    PreprocessInfo,
    preprocess_slice,
    preprocess_slice_array,
    resized_size,
    to_uint8_range,
)
from inference.segmentation.postprocess import low_res_to_logits

REPO = Path(__file__).resolve().parents[2]


def _torch_preprocess(slice2d: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """The torch implementation of ``preprocess_slice`` (upstream's steps with F.interpolate)."""
    img = to_uint8_range(slice2d, window)
    h0, w0 = img.shape
    new_h, new_w = resized_size(h0, w0)
    t = torch.from_numpy(np.ascontiguousarray(img))[None, None]
    mode = "area" if new_h <= h0 else "bilinear"
    t = F.interpolate(t, size=(new_h, new_w), mode=mode) if (new_h, new_w) != (h0, w0) else t
    lo, hi = t.min(), t.max()
    t = (t - lo) / torch.clamp(hi - lo, min=1e-8)
    t = F.pad(t, (0, MODEL_SIDE - new_w, 0, MODEL_SIDE - new_h))
    return t.expand(1, 3, MODEL_SIDE, MODEL_SIDE).numpy()


def _torch_resize(x: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=size, mode=mode, **kwargs)[0, 0].numpy()


@pytest.fixture(scope="module")
def slices(lung1_dir: Path, cxr_dir: Path) -> dict[str, tuple[np.ndarray, tuple[float, float] | None]]:
    """Real slices: a 512² CT, a 729 × 951 X-ray, a 2:1 large X-ray, a small crop that upsamples, odd sizes."""
    ct = open_image(lung1_dir / "image.nrrd").array[33]
    cxr = open_image(cxr_dir / "images" / "1-s2.0-S0196070920301691-gr3_lrg.jpg").array[0]
    wide = np.concatenate([cxr, cxr[:, ::-1], cxr], axis=1)[:, :1900][:950]  # 950 × 1900, 2:1
    with_nans = ct.astype(np.float32).copy()
    with_nans[100:140, 200:260] = np.nan
    return {
        "ct 512²": (ct, LUNG_LESION_WINDOW),
        "cxr 729×951": (cxr, None),
        "cxr 2:1 950×1900": (wide, None),
        "ct crop 100×80 (upsampled)": (ct[200:300, 180:260], LUNG_LESION_WINDOW),
        "ct crop 301×157 (odd)": (ct[100:401, 3:160], LUNG_LESION_WINDOW),
        "cxr crop 37×255 (odd, tiny)": (cxr[300:337, 200:455], None),
        "constant": (np.full((300, 200), 7.0, np.float32), None),
        "ct with NaNs": (with_nans, LUNG_LESION_WINDOW),
    }


def test_preprocess_array_equals_torch_on_real_slices(slices: dict) -> None:
    for name, (plane, window) in slices.items():
        got, info = preprocess_slice_array(plane, window)
        want = _torch_preprocess(plane, window)
        assert got.shape == (1, 3, 256, 256) and got.dtype == np.float32, name
        assert info.new_size == resized_size(*plane.shape), name
        assert np.isfinite(got).all(), name
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=name)
        tensor, info_t = preprocess_slice(plane, window)  # the torch entry point wraps the same array
        assert info_t == info and np.array_equal(tensor.numpy(), got), name
    constant, _ = preprocess_slice_array(*slices["constant"])
    assert not constant.any()


def test_area_downscaling_is_torchs_to_the_bit_on_integer_images() -> None:
    rng = np.random.default_rng(3)
    for shape, size in [((512, 512), (256, 256)), ((951, 729), (256, 196)), ((2000, 1000), (256, 128)),
                        ((301, 57), (256, 48)), ((257, 256), (256, 255))]:
        x = np.floor(rng.random(shape) * 256).astype(np.float32)
        assert np.array_equal(area_resize(x, size), _torch_resize(x, size, "area")), shape
    smooth = rng.standard_normal((333, 517)).astype(np.float32)  # non-integer values: float rounding
    np.testing.assert_allclose(area_resize(smooth, (101, 256)), _torch_resize(smooth, (101, 256), "area"),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,size", [((100, 80), (256, 205)), ((256, 256), (512, 512)),
                                        ((128, 256), (950, 1900)), ((256, 205), (100, 80)), ((37, 41), (300, 7))])
def test_bilinear_equals_torch_to_float_rounding(shape: tuple[int, int], size: tuple[int, int]) -> None:
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32) * 10
    got, want = bilinear_resize(x, size), _torch_resize(x, size, "bilinear")
    assert got.shape == size
    assert float(np.abs(got - want).max()) <= 1e-5 * float(np.abs(want).max())


def test_logits_to_original_and_mask_to_model_equal_torch(slices: dict) -> None:
    """Crop + bilinear back to the slice, and a mask into the model frame, on each slice's geometry."""
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    logits = 12.0 - np.hypot(yy - 100.3, xx - 90.7) / 4.0  # a smooth blob crossing zero
    for name, (plane, window) in slices.items():
        _, info = preprocess_slice_array(plane, window)
        h, w = info.new_size
        want = F.interpolate(torch.from_numpy(logits)[None, None, :h, :w], size=info.original_size,
                             mode="bilinear", align_corners=False)[0, 0].numpy()
        got = info.logits_to_original_array(logits)
        assert float(np.abs(got - want).max()) <= 1e-5 * float(np.abs(want).max()), name
        mask_got, mask_want = got > 0, want > 0
        assert (mask_got != mask_want).sum() <= 1e-4 * mask_want.size, name
        full = low_res_to_logits(logits, info)
        assert full is not None and np.array_equal(full, got), name  # the session's path is the same numpy code
        torch_path = info.logits_to_original(torch.from_numpy(logits)[None, None])[0, 0].numpy()
        assert np.array_equal(torch_path, got), name  # CPU tensors go through it too: identical masks
        mask = mask_got
        t = torch.from_numpy(mask.astype(np.float32))[None, None]
        want_model = F.pad(F.interpolate(t, size=info.new_size, mode="bilinear", align_corners=False),
                           (0, 256 - w, 0, 256 - h))[0, 0].numpy()
        np.testing.assert_allclose(info.mask_to_model(mask), want_model, rtol=0, atol=1e-5, err_msg=name)


def test_batched_logits_keep_their_leading_axes() -> None:
    info = PreprocessInfo((300, 200), resized_size(300, 200))
    logits = np.random.default_rng(5).standard_normal((2, 3, 256, 256)).astype(np.float32)
    out = info.logits_to_original_array(logits)
    assert out.shape == (2, 3, 300, 200)
    assert np.array_equal(out[1, 2], info.logits_to_original_array(logits[1, 2]))


def test_numpy_paths_do_not_import_torch() -> None:
    """The torch-free backend's modules (pre/post-processing, the decoder) load without torch."""
    code = (
        "import sys\n"
        "import inference.models.numpy_decoder, inference.models.preprocess, inference.segmentation.postprocess\n"
        "import numpy as np\n"
        "from inference.models.preprocess import preprocess_slice_array\n"
        "from inference.segmentation.postprocess import low_res_to_logits\n"
        "a, info = preprocess_slice_array(np.random.rand(300, 200).astype(np.float32), None)\n"
        "low_res_to_logits(np.zeros((256, 256), np.float32), info)\n"
        "info.mask_to_model(np.ones((300, 200), bool))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
