"""PDF report: rendered with pdftoppm (not blank, overlay colours visible) and read back with pdftotext."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.errors import MedFusionError
from inference.export.report import (
    AuditSummary,
    ClinicalValueRow,
    KeyImage,
    ModelSummary,
    PredictionRow,
    ReportContent,
    StructureMeasurement,
    render_overlay,
    write_report,
)
from inference.io.loader import open_image
from inference.io.volume import StudyInfo

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                                   reason="poppler-utils (pdftoppm/pdftotext) not installed")


@pytest.fixture(scope="module")
def ct_slice(ct_series_dir: Path) -> np.ndarray:
    return open_image(ct_series_dir).array[10]


def test_render_overlay_colours_mask_and_keeps_background(ct_slice: np.ndarray) -> None:
    mask = np.zeros(ct_slice.shape, np.uint8)
    mask[200:260, 200:300] = 1
    heat = np.zeros(ct_slice.shape, np.float32)
    heat[50:100, 50:100] = 1.0
    rgb = render_overlay(ct_slice, (40, 400), mask, heat, colours={1: (255, 0, 0)})
    assert rgb.shape == (*ct_slice.shape, 3) and rgb.dtype == np.uint8
    plain = render_overlay(ct_slice, (40, 400))
    untouched = (mask == 0) & (heat == 0)
    np.testing.assert_array_equal(rgb[untouched], plain[untouched])
    assert np.all(plain[..., 0] == plain[..., 1])  # grey without overlays
    assert tuple(rgb[200, 250]) == (255, 0, 0)  # outline in the label colour
    inside = rgb[230, 250].astype(int)
    assert inside[0] > inside[1] + 40  # filled region tinted red
    hot = rgb[75, 75].astype(int)
    assert not (hot[0] == hot[1] == hot[2])  # heatmap tints
    with pytest.raises(MedFusionError):
        render_overlay(ct_slice, None, mask[:10])


def test_render_overlay_signed_map_red_towards_blue_away_grey_when_greyed(ct_slice: np.ndarray) -> None:
    signed = np.zeros(ct_slice.shape, np.float32)
    signed[50:100, 50:100] = 1.0  # towards the outcome
    signed[150:200, 150:200] = -1.0  # away from it
    plain = render_overlay(ct_slice, (40, 400))
    rgb = render_overlay(ct_slice, (40, 400), signed_heatmap=signed).astype(int)
    np.testing.assert_array_equal(rgb[signed == 0], plain[signed == 0])  # 0 (outside the lungs): untouched
    red, blue = rgb[75, 75], rgb[175, 175]
    assert red[0] > red[2] + 60 and blue[2] > blue[0] + 60
    grey = render_overlay(ct_slice, (40, 400), signed_heatmap=signed, greyed=True).astype(int)
    assert grey[75, 75, 0] - grey[75, 75, 2] < 0.5 * (red[0] - red[2])  # colour drained, hue kept
    assert grey[75, 75, 0] > grey[75, 75, 2]
    with pytest.raises(MedFusionError):
        render_overlay(ct_slice, None, signed_heatmap=signed[:10])


def _content(ct_slice: np.ndarray, deidentified: bool) -> ReportContent:
    mask = np.zeros(ct_slice.shape, np.uint8)
    mask[150:330, 120:380] = 1
    key = render_overlay(ct_slice, (40, 400), mask, colours={1: (255, 0, 0)})
    study = StudyInfo(patient_name="DOE^JANE", patient_id="PID-4711", study_date="20221208", modality="CT",
                      study_description="Abdomen CT", series_description="CT Body 3.0")
    return ReportContent(
        study=study, deidentified=deidentified, author="Dr Test",
        key_images=[KeyImage(key, "Slice 10: liver (AI-corrected)"), KeyImage(key[::2, ::2].copy(), "Thumbnail")],
        measurements=[StructureMeasurement("Liver", 1432.25, None, "AI-corrected"),
                      StructureMeasurement("Lung opacity", None, 812.5, "MANUAL")],
        predictions=[PredictionRow("went_icu", 0.42, ["Y", "N"], alpha=0.1),
                     PredictionRow("length_of_stay_days", 7.3, interval=(3.1, 12.4), alpha=0.2)],
        model=ModelSummary("FusionNet", "2.3.1", "Image+EHR late fusion, calibrated", "Research", {"AUROC": 0.781}),
        audit=AuditSummary(ai_changes=4, human_changes=9, dice_ai_vs_final={"Liver": 0.913}, log_verified=True))


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@needs_poppler
def test_report_pages_render_with_text_and_images(ct_slice: np.ndarray, tmp_path: Path) -> None:
    pdf = write_report(_content(ct_slice, deidentified=False), tmp_path / "report.pdf")
    text = _text(pdf)
    for expected in ("Research use only", "not for diagnostic use", "DOE JANE", "PID-4711", "2022-12-08",
                     "went_icu", "42 %", "90 % set {Y, N}", "80 % interval 3.1\u201312.4", "FusionNet", "2.3.1",
                     "1,432.25 ml", "812.5 mm\u00b2", "AI outputs", "0.913", "verified", "Slice 10: liver"):
        assert expected in text, expected
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages
    first = np.asarray(Image.open(pages[0]).convert("RGB")).astype(int)
    assert first.std() > 20  # not a blank page
    red = (first[..., 0] > 180) & (first[..., 1] < 80) & (first[..., 2] < 80)
    assert red.sum() > 50  # the red notice band and the mask outline are drawn
    greyish = (np.abs(first[..., 0] - first[..., 1]) < 8) & (first[..., 0] > 30) & (first[..., 0] < 220)
    assert greyish.sum() > 500  # the CT key image is on the page


@needs_poppler
def test_deidentified_report_hides_identity(ct_slice: np.ndarray, tmp_path: Path) -> None:
    text = _text(write_report(_content(ct_slice, deidentified=True), tmp_path / "anon.pdf"))
    assert "DOE" not in text and "PID-4711" not in text and "20221208" not in text
    assert "ANONYMOUS" in text and "De-identified" in text and "not for diagnostic use" in text


def test_bad_key_image_is_a_clear_error(ct_slice: np.ndarray, tmp_path: Path) -> None:
    content = _content(ct_slice, False)
    content.key_images = [KeyImage(np.zeros((10, 10), np.float32))]
    with pytest.raises(MedFusionError, match="RGB uint8"):
        write_report(content, tmp_path / "bad.pdf")
    assert not (tmp_path / "bad.pdf").exists()


def _clinical_content(ct_slice: np.ndarray) -> ReportContent:
    long_name = "Lung involvement score (geographic extent, 0\u20138), day 12, " + "x" * 60 + "_image_0001.jpg"
    key = render_overlay(ct_slice, (40, 400))
    return ReportContent(
        study=StudyInfo(patient_name="DOE^JANE", study_date="20221208", modality="DX"), key_images=[KeyImage(key)],
        measurements=[StructureMeasurement("Brush region on the X-ray", source="MANUAL", area_pixels=5592)],
        clinical_values=[ClinicalValueRow("SpO\u2082", "99 %", "95\u2013100 %", "what-if (recorded 85 %)", True),
                         ClinicalValueRow("Lymphocytes", "0.4 \u00d710\u2079/L", "1\u20134.8 \u00d710\u2079/L",
                                          "\u203c critical low: below the critical limit 0.5 \u00d710\u2079/L")],
        what_if=["SpO\u2082 edited 85 \u2192 99 % by dr.k (what-if)"],
        predictions=[PredictionRow("ICU admission", 0.41, ["yes"], alpha=0.1, answer="Yes", base_rate="59 %",
                                   note="'Yes' although the probability is 41 %: in the calibration cohort, patients "
                                        "without ICU admission rarely scored this high, so 'no' is ruled out."),
                     PredictionRow("Supplemental O\u2082", 0.72, ["yes", "no"], alpha=0.1,
                                   answer="The model cannot decide", base_rate="unknown"),
                     PredictionRow(long_name, 4.2, None, (0.2, 8.0), 0.1, value_text="4.2 of 8",
                                   answer="between 0.2 and 8.0"),
                     PredictionRow("Day 3 X-ray", 5.9, None, (2.0, 8.0), 0.1, value_text="5.9 of 8",
                                   answer="between 2.0 and 8.0", group="Lung involvement score per X-ray")],
        model=ModelSummary("MedFusion-Mamba outcome predictor", "medfusion-cxr-v1", "A small model.", "Research."))


@needs_poppler
def test_clinical_report_states_edits_fits_the_page_and_says_pixels(ct_slice: np.ndarray, tmp_path: Path) -> None:
    """Issue 15 defect 3: what-if edits stated, clinical names, tables within the text width, pixels."""
    from reportlab.platypus import Table

    from inference.export.report_layout import TEXT_WIDTH, ReportLayout, build_story

    content = _clinical_content(ct_slice)
    for flowable in build_story(content, ReportLayout()):
        if isinstance(flowable, Table):
            width, _ = flowable.wrap(TEXT_WIDTH, 10_000)
            assert width <= TEXT_WIDTH + 0.5
    pdf = write_report(content, tmp_path / "clinical.pdf")
    flat = " ".join(_text(pdf).split())
    for expected in ("SpO\u2082 edited 85 \u2192 99 % by dr.k (what-if)", "not the patient's record",
                     "what-if (recorded 85 %)", "Cohort base rate", "59 %", "The model cannot decide",
                     "rarely scored this high", "5,592 pixels", "no pixel spacing", "\u00d710\u2079/L",
                     "\u203c critical low", "4.2 of 8", "2022-12-08", "Lung involvement score per X-ray",
                     "Day 3 X-ray 5.9 of 8 between 2.0 and 8.0"):
        assert expected in flat, expected
    assert "mm\u00b2" not in flat.replace("not mm\u00b2", "")  # an uncalibrated image never gets mm²
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True)
    for page in sorted(tmp_path.glob("page*.png")):
        pixels = np.asarray(Image.open(page).convert("L")).astype(int)
        margin = int(round(1.2 / 2.54 * 50))  # the outer 1.2 cm on the right, above the footer
        right = pixels[: -2 * margin, -margin:]
        assert (right < 200).sum() == 0, f"{page.name}: something runs into the right margin"
