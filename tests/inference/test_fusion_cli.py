"""``python main.py predict`` on 3 real cxr patients with the shipped model: documented columns, and
outcome columns in the cohort CSV are never read (scrambled or removed → identical output)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

import main as entry

MODEL = Path(__file__).resolve().parents[2] / "resources" / "models" / "fusion"
OUTCOME_COLUMNS = ("survival", "intubated", "intubation_present", "went_icu", "in_icu", "needed_supplemental_O2",
                   "extubated", "clinical_notes", "other_notes")
PRED_COLUMNS = ["patientid"] + [f"{p}_{o}" for o in ("went_icu", "intubated", "death", "needed_supplemental_O2")
                                for p in ("p", "set")] + ["error"]
SEV_COLUMNS = ["filename", "geographic_extent", "geographic_extent_lo", "geographic_extent_hi", "opacity",
               "opacity_lo", "opacity_hi"]


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def small_cohort(cxr_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[dict[str, str]]]:
    """Three single-image patients, one of them without a lung mask (whole-image ROI)."""
    fields, rows = read(cxr_dir / "metadata.csv")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["patientid"]] = counts.get(r["patientid"], 0) + 1
    single = [r for r in rows if counts[r["patientid"]] == 1]
    chosen = [r for r in single if r["has_lung_mask"] == "1"][:2] + [r for r in single if r["has_lung_mask"] != "1"][:1]
    assert len(chosen) == 3
    return fields, chosen


def write(path: Path, fields: list[str], rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def predict(cohort: Path, cxr_dir: Path, out: Path, cache: Path, *extra: str) -> int:
    return entry.main(["predict", "--cohort", str(cohort), "--images", str(cxr_dir / "images"), "--masks",
                       str(cxr_dir / "lung_masks"), "--cache", str(cache), "--model", str(MODEL), "--out",
                       str(out / "pred.csv"), "--severity-out", str(out / "sev.csv"), *extra])


def test_predict_cli_columns_and_outcomes_never_read(small_cohort, cxr_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fields, rows = small_cohort
    cache = tmp_path / "cache"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    assert predict(write(tmp_path / "a.csv", fields, rows), cxr_dir, tmp_path / "a", cache) == 0
    columns, pred = read(tmp_path / "a" / "pred.csv")
    assert columns == PRED_COLUMNS
    assert [r["patientid"] for r in pred] == [r["patientid"] for r in rows]
    for r in pred:
        assert r["error"] == ""
        for name in PRED_COLUMNS[1:-1:2]:
            assert 0.0 <= float(r[name]) <= 1.0
        for name in PRED_COLUMNS[2:-1:2]:
            assert r[name] in ("", "0", "1", "0|1")
    sev_columns, sev = read(tmp_path / "a" / "sev.csv")
    assert sev_columns == SEV_COLUMNS and [r["filename"] for r in sev] == [r["filename"] for r in rows]
    for r in sev:
        assert float(r["geographic_extent_lo"]) <= float(r["geographic_extent"]) <= float(r["geographic_extent_hi"])
        assert 0.0 <= float(r["opacity_lo"]) <= float(r["opacity"]) <= float(r["opacity_hi"]) <= 6.0

    rng = random.Random(0)
    scrambled = [{**r, **{c: rng.choice(["Y", "N", "", "died"]) for c in OUTCOME_COLUMNS}} for r in rows]
    assert predict(write(tmp_path / "b.csv", fields, scrambled), cxr_dir, tmp_path / "b", cache) == 0
    kept = [f for f in fields if f not in OUTCOME_COLUMNS]
    removed = [{k: r[k] for k in kept} for r in rows]
    assert predict(write(tmp_path / "c.csv", kept, removed), cxr_dir, tmp_path / "c", cache) == 0
    for name in ("pred.csv", "sev.csv"):
        reference = (tmp_path / "a" / name).read_text()
        assert (tmp_path / "b" / name).read_text() == reference
        assert (tmp_path / "c" / name).read_text() == reference


def test_predict_cli_ehr_only_and_bad_input(small_cohort, cxr_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    fields, rows = small_cohort
    cohort = write(tmp_path / "a.csv", fields, rows)
    assert predict(cohort, cxr_dir, tmp_path, tmp_path / "cache", "--modalities", "ehr") == 0
    _, pred = read(tmp_path / "pred.csv")
    assert len(pred) == 3 and all(r["p_death"] for r in pred)
    _, sev = read(tmp_path / "sev.csv")
    assert sev == []  # no image branch → no severity rows
    broken = tmp_path / "broken.csv"
    broken.write_text("id,filename\n1,a.jpg\n")
    assert predict(broken, cxr_dir, tmp_path, tmp_path / "cache") == 2
    assert "patientid" in capsys.readouterr().err


@pytest.mark.parametrize("with_masks", [True, False])
def test_predict_cli_every_modality_with_and_without_masks(small_cohort, cxr_dir: Path, tmp_path_factory,  # type: ignore[no-untyped-def]
                                                            with_masks: bool) -> None:
    """``--modalities both|image|ehr``, with ``--masks`` and without (automatic lung masks, or none)."""
    fields, rows = small_cohort
    tmp = tmp_path_factory.mktemp("modalities")
    cohort = write(tmp / "c.csv", fields, rows[:1])
    cache = tmp_path_factory.getbasetemp() / "modalities-cache"  # shared: each image is encoded once per mask
    results = {}
    for modalities in ("both", "image", "ehr"):
        out = tmp / f"{modalities}.csv"
        args = ["predict", "--cohort", str(cohort), "--images", str(cxr_dir / "images"), "--cache", str(cache),
                "--out", str(out), "--modalities", modalities]
        if with_masks:
            args += ["--masks", str(cxr_dir / "lung_masks")]
        assert entry.main(args) == 0
        _, pred = read(out)
        results[modalities] = [float(pred[0][f"p_{o}"]) for o in ("went_icu", "intubated", "death", "needed_supplemental_O2")]
    assert all(0.0 <= p <= 1.0 for ps in results.values() for p in ps)
    assert results["image"] != results["ehr"]  # two different inputs, two different models
