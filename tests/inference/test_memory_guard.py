"""Memory guard: studies over the budget are refused from their headers (nothing decoded), can be
loaded downsampled, and CUDA out-of-memory falls back to the CPU with a message."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from inference import gpu_fallback as gf
from inference.io import memory_budget as mg
from inference.io.loader import open_image
from inference.settings import Settings
from tests import synthetic_dicom as b


@pytest.mark.parametrize(
    ("needed", "budget", "is_2d", "factor"),
    [(10, 10, False, 1), (11, 10, False, 2), (80, 10, False, 2), (81, 10, False, 3), (40, 10, True, 2),
     (41, 10, True, 3), (4096 * 10 + 1, 10, False, None), (256 * 10, 10, True, 16), (257 * 10, 10, True, None)],
)
def test_downsample_factor_is_smallest_that_fits(needed: int, budget: int, is_2d: bool, factor: int | None) -> None:
    assert mg.downsample_factor(needed, budget, is_2d=is_2d) == factor
    if factor is not None and factor > 1:
        power = 2 if is_2d else 3
        assert needed / factor**power <= budget < needed / (factor - 1) ** power


def _series(tmp_path: Path, n: int = 3, side: int = 512) -> Path:
    b.write_series(tmp_path / "ct", n=n, rows=side, cols=side, seed=1)
    return tmp_path / "ct"


def test_over_budget_is_refused_before_any_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _series(tmp_path)  # 3 × 512 × 512 float32 = 3 MB
    check = mg.check_memory(folder, Settings(memory_budget_mb=1))
    assert (check.needed_bytes, check.budget_bytes, check.fits, check.factor) == (3 * 512 * 512 * 4, 2**20, False, 2)

    def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("open_image called for an over-budget study")

    monkeypatch.setattr("inference.io.loader.open_image", must_not_load)
    with pytest.raises(mg.MemoryBudgetExceeded, match=r"needs about 3\.0 MB .* memory budget of 1\.0 MB.*downsampled by 2") as err:
        mg.guarded_open(folder, Settings(memory_budget_mb=1))
    assert err.value.check.factor == 2


def test_within_budget_opens_normally(tmp_path: Path) -> None:
    folder = _series(tmp_path, side=16)
    vol = mg.guarded_open(folder, Settings())
    assert vol.shape == (3, 16, 16) and "downsample_factor" not in vol.meta


def test_downsampled_dicom_matches_full_resolution_subsample(tmp_path: Path) -> None:
    folder = _series(tmp_path, n=5, side=64)
    full = open_image(folder)
    small = mg.open_downsampled(folder, 2)
    np.testing.assert_array_equal(small.array, full.array[::2, ::2, ::2])
    assert small.spacing == pytest.approx(tuple(s * 2 for s in full.spacing))
    assert small.origin == pytest.approx(full.origin)
    assert small.meta["downsample_factor"] == 2 and any("downsampled" in w for w in small.meta["warnings"])
    assert small.source_files == full.source_files[::2]


def test_guarded_open_accepts_the_suggested_factor(tmp_path: Path) -> None:
    folder = _series(tmp_path, n=4, side=512)  # 4 MB vs a 1 MB budget → factor 2 (0.5 MB)
    with pytest.raises(mg.MemoryBudgetExceeded):
        mg.guarded_open(folder, 1, downsample=1)  # a factor too small is refused too
    vol = mg.guarded_open(folder, 1, downsample=2)
    assert vol.shape == (2, 256, 256) and vol.array.nbytes <= 2**20


def test_downsampled_nrrd(tmp_path: Path) -> None:
    arr = np.arange(6 * 8 * 10, dtype=np.float32).reshape(6, 8, 10)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.6, 2.0))
    sitk.WriteImage(img, str(tmp_path / "v.nrrd"))
    vol = mg.open_downsampled(tmp_path / "v.nrrd", 3)
    np.testing.assert_array_equal(vol.array, arr[::3, ::3, ::3])
    assert vol.spacing == pytest.approx((1.5, 1.8, 6.0))


def test_gigantic_header_refused_without_allocating(tmp_path: Path) -> None:
    b.write_series(tmp_path / "huge", n=3, mutate=lambda ds, z: (setattr(ds, "Rows", 60000), setattr(ds, "Columns", 60000)))
    tracemalloc.start()
    try:
        with pytest.raises(mg.MemoryBudgetExceeded, match="40.2 GB") as err:
            mg.guarded_open(tmp_path / "huge", Settings())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.check.factor == 2  # 40 GB / 8 = 5 GB fits 8 GB
    assert peak < 50 * 2**20


def test_single_xray_factor_counts_two_axes(tmp_path: Path) -> None:
    path, _ = b.write_single(tmp_path / "cr.dcm", rows=2048, cols=1536, modality="CR")  # 12 MB as float32
    check = mg.check_memory(path, 2)  # ratio 6: a 2-D image needs k = 3 (k² = 9), a volume would need k = 2
    assert check.is_2d and check.factor == 3
    vol = mg.guarded_open(path, 2, downsample=3)
    assert vol.shape == (1, 683, 512) and vol.array.nbytes <= 2 * 2**20


def test_hopeless_size_says_so(tmp_path: Path) -> None:
    check = mg.MemoryCheck("x", needed_bytes=2**50, budget_bytes=2**30, factor=mg.downsample_factor(2**50, 2**30))
    assert check.factor is None and "too large to open" in check.message()


# ---------------------------------------------------------------------------------------------- GPU fallback


def test_gpu_oom_falls_back_to_cpu_with_message() -> None:
    calls: list[str] = []
    messages: list[str] = []
    model = torch.nn.Linear(3, 1)

    def step(x: torch.Tensor, net: torch.nn.Module, device: str = "cuda") -> torch.Tensor:
        calls.append(str(device))
        if str(device).startswith("cuda"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        assert x.device.type == "cpu" and next(net.parameters()).device.type == "cpu"
        return net(x)

    out = gf.run_with_gpu_fallback(step, torch.ones(2, 3), model, device="cuda:0", on_message=messages.append)
    assert out.shape == (2, 1)
    assert calls == ["cuda:0", "cpu"]
    assert messages == [gf.GPU_FALLBACK_MESSAGE]


def test_legacy_oom_text_also_falls_back() -> None:
    seen: list[str] = []

    def step(device: str = "cuda") -> str:
        if device != "cpu":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "ok"

    assert gf.run_with_gpu_fallback(step, device="cuda", on_message=seen.append) == "ok" and seen


def test_other_errors_propagate_unchanged() -> None:
    def step() -> None:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        gf.run_with_gpu_fallback(step, on_message=lambda m: pytest.fail("no fallback expected"))


@pytest.mark.gpu
def test_real_cuda_oom_falls_back() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    messages: list[str] = []

    def step(x: torch.Tensor) -> float:
        if x.is_cuda:
            torch.empty(2**44, dtype=torch.uint8, device=x.device)  # 16 TB
        return float(x.sum())

    assert gf.run_with_gpu_fallback(step, torch.ones(4, device="cuda"), on_message=messages.append) == 4.0
    assert messages == [gf.GPU_FALLBACK_MESSAGE]


def _inputs(tmp_path: Path) -> dict[str, Path]:
    b.write_series(tmp_path / "series", n=4, rows=10, cols=12)
    single, _ = b.write_single(tmp_path / "cr.dcm", rows=20, cols=16, modality="CR")
    arr = np.zeros((5, 6, 7), dtype=np.int16)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "v.nrrd"))
    sitk.WriteImage(sitk.GetImageFromArray(arr.astype(np.float32)), str(tmp_path / "v.nii.gz"))
    from PIL import Image

    Image.fromarray(np.zeros((9, 11, 3), np.uint8), "RGB").save(tmp_path / "c.png")
    return {"series": tmp_path / "series", "cr": single, "nrrd": tmp_path / "v.nrrd", "nifti": tmp_path / "v.nii.gz",
            "png": tmp_path / "c.png"}


def test_estimate_matches_what_open_image_allocates(tmp_path: Path) -> None:
    """The guard's numbers are only as good as the estimate: it must equal the loaded float32 size."""
    from inference.io.loader import estimate_bytes

    for name, path in _inputs(tmp_path).items():
        nbytes = open_image(path).array.nbytes
        assert estimate_bytes(path) == nbytes, name
        needed = mg.check_memory(path, Settings()).needed_bytes  # PNG/JPEG: the decoding peak, several times more
        assert needed == nbytes if name != "png" else needed >= 4 * nbytes, name


def test_question_names_sizes_and_recommended_factor(tmp_path: Path) -> None:
    check = mg.check_memory(_series(tmp_path), 1)  # 3 MB against 1 MB: ×2
    text = check.question()
    assert "3.0 MB" in text and "1.0 MB" in text and "×2" in text and "recommended" in text
    assert "raise memory_budget_mb" in check.message(offer_downsample=False)
    assert "downsampled" not in check.message(offer_downsample=False)


def test_gpu_log_reaches_a_message_handler() -> None:
    seen: list[str] = []
    handler = gf.MessageHandler(seen.append)
    gf.GPU_LOG.addHandler(handler)
    try:
        def step(device: str = "cuda") -> int:
            if device != "cpu":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
            return 1

        assert gf.run_with_gpu_fallback(step, device="cuda") == 1
    finally:
        gf.GPU_LOG.removeHandler(handler)
    assert seen == [gf.GPU_FALLBACK_MESSAGE]


def test_cli_segment_refuses_over_budget_study_in_one_line(tmp_path: Path) -> None:
    """``main.py segment`` goes through the guard: exit 2, one line naming the budget, nothing decoded."""
    import json
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"memory_budget_mb": 1}))
    folder = _series(tmp_path)
    env = dict(os.environ, MEDFUSION_HOME=str(home), PYTHONPATH=str(repo))
    proc = subprocess.run([sys.executable, "main.py", "segment", str(folder), "--slice", "1", "--box", "0", "0", "9", "9",
                           "--out", str(tmp_path / "m.nrrd")], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "memory budget of 1.0 MB" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.nrrd").exists()
