"""``python main.py segment``: a real prompt on a shared chest X-ray, and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import main as entry
from inference.segmentation.evaluation import component_boxes
from inference.segmentation.postprocess import dice

CXR_STEM = "08d780ae"


def test_segment_png_writes_a_mask_in_image_geometry(cxr_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ref = np.asarray(Image.open(cxr_dir / "lung_masks" / f"{CXR_STEM}.png")) > 127
    left = component_boxes(ref)[0]
    out = tmp_path / "mask.png"
    box = [str(int(v)) for v in left]
    rc = entry.main(
        ["segment", str(cxr_dir / "images" / f"{CXR_STEM}.jpg"), "--box", *box, "--out", str(out)]
    )
    assert rc == 0, capsys.readouterr().err
    mask = np.asarray(Image.open(out))
    assert mask.shape == ref.shape and set(np.unique(mask)) <= {0, 255}
    x0, y0, x1, y1 = (int(v) for v in left)
    truth = np.zeros_like(ref)
    truth[y0 : y1 + 1, x0 : x1 + 1] = ref[y0 : y1 + 1, x0 : x1 + 1]
    assert dice(mask > 0, truth) > 0.8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["segment", "{missing}", "--box", "1", "1", "5", "5", "--out", "{out}.png"], "missing"),
        (["segment", "{lung1}", "--box", "1", "1", "5", "5", "--out", "{out}.txt"], ".txt"),
        (["segment", "{lung1}", "--out", "{out}.nrrd"], "prompt"),
        (["segment", "{lung1}", "--box", "1", "1", "5", "5", "--out", "{out}.nrrd"], "--slice"),
        (
            ["segment", "{lung1}", "--box", "1", "1", "5", "5", "--slice", "99", "--out", "{out}.nrrd"],
            "outside",
        ),
        (["segment", "{lung1}", "--point", "3", "3", "2", "--slice", "3", "--out", "{out}.nrrd"], "include"),
    ],
)
def test_bad_input_exits_2_with_one_line(lung1_dir: Path, tmp_path: Path, capsys, args, message) -> None:  # type: ignore[no-untyped-def]
    values = {
        "missing": str(tmp_path / "missing.nrrd"),
        "lung1": str(lung1_dir / "image.nrrd"),
        "out": str(tmp_path / "m"),
    }
    rc = entry.main([a.format(**values) for a in args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    assert message in err
