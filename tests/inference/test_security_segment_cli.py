"""``python main.py segment`` refuses crafted numbers and oversize images with one line, and says when a
4-D file was reduced to its first volume (issue 14, item 9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

import main as entry
from inference.settings import Settings


def _one_line_error(capsys: pytest.CaptureFixture, rc: int, needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert needle in err, err


@pytest.fixture()
def small_png(tmp_path: Path) -> Path:
    path = tmp_path / "img.png"
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))).save(path)
    return path


@pytest.mark.parametrize(
    ("prompt", "needle"),
    [
        (["--box", "nan", "0", "10", "10"], "finite"),
        (["--box", "0", "0", "inf", "10"], "finite"),
        (["--box", "0", "0", "1e999", "nan"], "finite"),
        (["--point", "nan", "5", "1"], "finite"),
        (["--box", "0", "0", "10", "10", "--window", "nan", "400"], "--window"),
        (["--box", "0", "0", "10", "10", "--window", "40", "0"], "--window"),
    ],
)
def test_non_finite_prompts_are_refused_in_one_line(small_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    prompt: list[str], needle: str) -> None:
    rc = entry.main(["segment", str(small_png), *prompt, "--out", str(tmp_path / "m.png")])
    _one_line_error(capsys, rc, needle)


def test_four_d_nifti_says_only_the_first_volume_is_used(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    array = np.zeros((3, 4, 32, 32), np.float32)  # (t, z, y, x): three volumes
    array[:, :, 8:24, 8:24] = 100.0
    image = sitk.GetImageFromArray(array, isVector=False)
    path = tmp_path / "fmri.nii.gz"
    sitk.WriteImage(image, str(path))
    rc = entry.main(["segment", str(path), "--slice", "1", "--box", "6", "6", "26", "26",
                     "--out", str(tmp_path / "m.nii.gz")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "warning: 4-D image with 3 volumes: only the first is shown" in err


def test_decoded_size_counts_against_the_budget_before_decoding(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4000² RGB PNG is 61 MB as float32 but needs ~300 MB while it is decoded: over a 128 MB budget."""
    n = 4000
    ramp = np.linspace(0, 255, n).astype(np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (n, 1))] * 3, axis=-1)).save(tmp_path / "big.png", compress_level=1)
    monkeypatch.setattr(Settings, "load", classmethod(lambda cls, *a, **k: cls(memory_budget_mb=128)))

    def must_not_decode(*_a: object, **_k: object) -> None:
        raise AssertionError("the image was decoded although it does not fit the budget")

    monkeypatch.setattr("inference.io.raster.read_raster", must_not_decode)
    monkeypatch.setattr("inference.io.loader.read_raster", must_not_decode)
    rc = entry.main(["segment", str(tmp_path / "big.png"), "--box", "10", "10", "100", "100",
                     "--out", str(tmp_path / "m.png")])
    _one_line_error(capsys, rc, "decoded whole")


def test_session_prompt_checks_refuse_non_finite_numbers_too() -> None:
    """The viewer's tools reach the same checks (not only the CLI)."""
    from inference.errors import InvalidPromptError
    from inference.segmentation.prompts import check_box, check_point

    with pytest.raises(InvalidPromptError, match="finite"):
        check_box((10, 10), (float("nan"), 0, 5, 5))
    with pytest.raises(InvalidPromptError, match="finite"):
        check_point((10, 10), 2.0, float("inf"))
