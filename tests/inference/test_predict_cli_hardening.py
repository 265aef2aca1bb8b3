"""``main.py predict`` against an attacker's and an unlucky user's cohort (issue 14, item 6).

Image names that are absolute, climb with ``..`` or follow a link out of ``--images`` are refused; one
bad image costs only its patient (error column, exit 1, summary); implausible EHR values are warned per
field; rows stream out with progress and memory does not grow with the table. Never a traceback, never
exit 0 on refused input.
"""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import main as entry

FIELDS = ["patientid", "offset", "sex", "age", "temperature", "pO2_saturation", "view", "filename", "clinical_notes"]


def _cohort(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in FIELDS})
    return path


def _read(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {r["patientid"]: r for r in csv.DictReader(handle)}


def _chest_png(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = np.full((96, 96), 180, np.uint8)
    img[15:85, 10:42] = 40
    img[15:85, 54:86] = 45
    Image.fromarray(np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)).save(path)


def _predict(tmp: Path, cohort: Path, images: Path, *extra: str) -> int:
    return entry.main(["predict", "--cohort", str(cohort), "--images", str(images), "--cache", str(tmp / "cache"),
                       "--out", str(tmp / "pred.csv"), *extra])


def test_refused_names_and_bad_images_cost_only_their_patient(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    images = tmp_path / "images"
    images.mkdir()
    _chest_png(images / "good.png", 0)
    _chest_png(tmp_path / "secret.png", 1)  # a readable image just outside --images
    (images / "link.png").symlink_to(tmp_path / "secret.png")
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 20)
    cohort = _cohort(tmp_path / "c.csv", [
        {"patientid": "abs", "age": "50", "filename": str(tmp_path / "secret.png")},
        {"patientid": "up", "age": "50", "filename": "../secret.png"},
        {"patientid": "link", "age": "50", "filename": "link.png"},
        {"patientid": "corrupt", "age": "50", "filename": "corrupt.jpg"},
        {"patientid": "gone", "age": "50", "filename": "missing.png"},
        {"patientid": "ok", "age": "61", "sex": "F", "view": "PA", "filename": "good.png"},
    ])
    assert _predict(tmp_path, cohort, images) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    rows = _read(tmp_path / "pred.csv")
    assert list(rows) == ["abs", "up", "link", "corrupt", "gone", "ok"]
    for pid in ("abs", "up", "link"):
        assert "refused" in rows[pid]["error"] and rows[pid]["p_went_icu"] == ""
    assert rows["corrupt"]["error"] and rows["gone"]["error"] and rows["corrupt"]["p_went_icu"] == ""
    assert rows["ok"]["error"] == "" and 0.0 <= float(rows["ok"]["p_went_icu"]) <= 1.0
    assert "5 of 6 patients could not be predicted" in out.err


def test_implausible_values_are_warned_per_field(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cohort = _cohort(tmp_path / "c.csv", [
        {"patientid": "p1", "age": "-5", "temperature": "inf", "pO2_saturation": "1e308", "filename": "x.png"},
        {"patientid": "p2", "age": "70", "temperature": "38.5", "pO2_saturation": "88", "filename": "y.png"},
    ])
    assert _predict(tmp_path, cohort, tmp_path, "--modalities", "ehr") == 0
    err = capsys.readouterr().err
    for field in ("age", "temperature", "pO2_saturation"):
        assert f"patient p1: {field}:" in err
    assert "patient p2" not in err
    assert set(_read(tmp_path / "pred.csv")) == {"p1", "p2"}


def _peak_bytes(tmp: Path, n: int) -> int:
    notes = "x" * 8000  # a fat free-text column: holding the table would show
    rows = [{"patientid": str(i), "age": str(30 + i % 50), "pO2_saturation": str(85 + i % 15), "sex": "MF"[i % 2],
             "view": "PA", "filename": f"{i}.png", "clinical_notes": notes} for i in range(n)]
    cohort = _cohort(tmp / f"c{n}.csv", rows)
    tracemalloc.start()
    try:
        assert _predict(tmp, cohort, tmp, "--modalities", "ehr") == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_rows_stream_with_progress_and_memory_does_not_grow_with_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    small = _peak_bytes(tmp_path, 100)
    large = _peak_bytes(tmp_path, 800)  # +5.6 MB of notes alone if the table were held
    err = capsys.readouterr().err
    assert "patient 800/800" in err and "patient 400/800" in err
    assert len(_read(tmp_path / "pred.csv")) == 800
    assert large - small < 1_500_000, f"peak grew by {(large - small) / 1e6:.1f} MB"


def test_each_row_is_on_disk_before_the_next_patient_is_predicted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """Streaming, not collect-then-write: while patient k is predicted, rows 1..k-1 are already in the file."""
    from inference.fusion.outcome_model import OutcomePredictor

    cohort = _cohort(tmp_path / "c.csv", [{"patientid": f"p{i}", "age": str(40 + i), "filename": f"{i}.png"}
                                          for i in range(4)])
    seen: list[list[str]] = []
    original = OutcomePredictor.predict

    def spying(self, record, **kwargs):  # noqa: ANN001, ANN003, ANN202 - same signature as the real one
        text = (tmp_path / "pred.csv").read_text() if (tmp_path / "pred.csv").exists() else ""
        seen.append([line.split(",")[0] for line in text.splitlines()[1:]])
        return original(self, record, **kwargs)

    monkeypatch.setattr(OutcomePredictor, "predict", spying)
    assert _predict(tmp_path, cohort, tmp_path, "--modalities", "ehr") == 0
    assert seen == [[], ["p0"], ["p0", "p1"], ["p0", "p1", "p2"]]
    assert "patient 2/4" in capsys.readouterr().err
