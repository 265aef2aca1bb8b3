"""File > Export segmentation / Open segmentation / Export PDF report, driven through the real viewer.

Masks live in the real labels model (``app.model.labels.LabelsModel``) bound to the loaded image the
way the segmentation controller binds it (a :class:`SegmentationSession` per image); the tests set
labels with the contract's ``set_masks`` (origins AI / AI_CORRECTED / MANUAL) and paint with a real
brush gesture. Outputs are checked with pydicom, ``pdftotext`` and ``pdftoppm``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from app.export_install import install_export
from app.model.labels import LabelsModel
from inference.export.seg import load_source_datasets
from inference.persistence import SessionState
from inference.segmentation.session import SegmentationSession
from tests.orthanc_fixture import copy_series_with_identity


def attach_labels(window) -> LabelsModel:  # noqa: ANN001 - MainWindow
    """The context's labels model bound per image like ``SegmentationController._on_volume`` (no model
    backend: these tests only paint and load masks)."""
    labels = window.context.labels

    def on_volume(volume: object) -> None:
        session = None
        if volume is not None:
            session = SegmentationSession(backend=None)  # type: ignore[arg-type]
            session.set_image(volume)
        labels.bind(session)

    window.document.volume_changed.connect(on_volume)
    return labels


def paint(labels: LabelsModel, name: str, z: int, stroke: np.ndarray) -> None:
    """One brush stroke as the segmentation controller applies it (origin tracked, gesture announced)."""
    labels.run_gesture("brush", name, lambda: labels.session.apply_brush(z, stroke, name))
    labels.notify("brush", name, (z, z))


@pytest.fixture
def viewer(window, tmp_path: Path):  # noqa: ANN001, ANN201 - MainWindow
    labels = attach_labels(window)
    ws = install_export(window, recovery_dir=tmp_path / "recovery")
    return window, labels, ws


def _wait(qtbot, window) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.wait(10)


def _three_labels(labels: LabelsModel, shape: tuple[int, int, int]) -> np.ndarray:
    lm = np.zeros(shape, np.uint8)
    lm[4:9, 200:260, 180:300] = 1  # liver block (AI)
    lm[6, 210:220, 190:200] = 2  # lesion inside it (AI, then corrected)
    lm[10:12, 100:120, 100:140] = 3  # hand-drawn region
    labels.set_masks(lm, [("Liver", 1, (200, 100, 50)), ("Lesion", 2, (255, 255, 0)), ("Region", 3, (0, 200, 255))],
                     {"Liver": "AI", "Lesion": "AI_CORRECTED", "Region": "MANUAL"})
    return lm


def test_menu_entries_sit_above_quit(viewer) -> None:  # noqa: ANN001
    window, _labels, _ws = viewer
    texts = [a.text() for a in window.menu("File").actions() if a.text()]
    for name in ("Open session…", "Save session…", "Open segmentation…", "Export segmentation…",
                 "Export PDF report…", "PACS…", "PACS settings…"):
        assert name in texts
        assert texts.index(name) < texts.index("Quit")


def test_seg_export_reopen_and_origins(viewer, qtbot, load, ct_series_dir: Path, tmp_path: Path,  # noqa: ANN001
                                       messages: list[str]) -> None:
    window, labels, ws = viewer
    load(window, ct_series_dir)
    vol = window.document.volume
    expected = _three_labels(labels, vol.shape)
    stroke = np.zeros(vol.shape[1:], bool)
    stroke[300:310, 300:310] = True
    paint(labels, "Region", 10, stroke)  # MANUAL stays MANUAL
    expected[10][stroke & (expected[10] == 0)] = 3
    assert ws.controller.default_format() == "seg"
    out = tmp_path / "ct_seg.dcm"
    ws.controller.export_segmentation(out)
    _wait(qtbot, window)
    assert messages == [] and out.is_file()
    ds = pydicom.dcmread(out)
    by_label = {str(s.SegmentLabel): s for s in ds.SegmentSequence}
    assert {k: str(v.SegmentAlgorithmType) for k, v in by_label.items()} == {
        "Liver": "AUTOMATIC", "Lesion": "SEMIAUTOMATIC", "Region": "MANUAL"}
    assert by_label["Liver"].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "LiteMedSAM"
    assert "SegmentationAlgorithmIdentificationSequence" not in by_label["Region"]
    assert by_label["Liver"].SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Organ"
    assert "Abnormal" in by_label["Lesion"].SegmentedPropertyCategoryCodeSequence[0].CodeMeaning
    series_uid = str(load_source_datasets(vol)[0].SeriesInstanceUID)
    assert str(ds.ReferencedSeriesSequence[0].SeriesInstanceUID) == series_uid

    labels.clear_all()
    assert not labels.label_map().any()
    ws.controller.open_segmentation(out)
    _wait(qtbot, window)
    np.testing.assert_array_equal(labels.label_map(), expected)
    assert {n: labels.origin(n) for n in labels.names()} == {
        "Liver": "AI", "Lesion": "AI_CORRECTED", "Region": "MANUAL"}
    assert tuple(labels.colour("Lesion")) != (0, 0, 0)


def test_deidentified_seg_references_deidentified_copy(viewer, qtbot, load, ct_series_dir: Path,  # noqa: ANN001
                                                       tmp_path: Path, messages: list[str]) -> None:
    window, labels, ws = viewer
    src = copy_series_with_identity(ct_series_dir, tmp_path / "identified", "DOE^JANE", "PID-4711")
    load(window, src)
    _three_labels(labels, window.document.volume.shape)
    out = tmp_path / "export" / "anon_seg.dcm"
    ws.controller.export_segmentation(out, deidentify=True)
    _wait(qtbot, window)
    assert messages == []
    seg = pydicom.dcmread(out)
    copies = sorted((tmp_path / "export" / "anon_seg_series").glob("*.dcm"))
    assert len(copies) == window.document.volume.shape[0]
    first = pydicom.dcmread(copies[0])
    assert str(seg.PatientName) == str(first.PatientName) == "ANONYMOUS"
    assert seg.PatientIdentityRemoved == "YES" and first.PatientIdentityRemoved == "YES"
    assert str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) == str(first.SeriesInstanceUID)
    assert str(first.SeriesInstanceUID) != str(pydicom.dcmread(next(src.iterdir())).SeriesInstanceUID)
    for path in [out, *copies]:
        raw = path.read_bytes()
        assert b"DOE^JANE" not in raw and b"PID-4711" not in raw and b"Test Hospital" not in raw


def test_foreign_seg_opens_by_plane_position(viewer, qtbot, load, tmp_path: Path,  # noqa: ANN001
                                            foreign_liver_seg) -> None:  # noqa: ANN001
    import SimpleITK as sitk

    from inference.io.sitk_io import volume_to_sitk

    window, labels, ws = viewer
    path, ds, ref = foreign_liver_seg
    grid = tmp_path / "grid.nrrd"
    sitk.WriteImage(volume_to_sitk(ref, ref.array), str(grid))
    load(window, grid)
    ws.controller.open_segmentation(Path(path))
    _wait(qtbot, window)
    assert labels.names() == ["Liver"] and labels.origin("Liver") == "AI_CORRECTED"
    lm = labels.label_map()
    assert lm[0].sum() == 0 and lm[4].sum() == 0
    for k in range(3):
        np.testing.assert_array_equal(lm[k + 1] > 0, ds.pixel_array[k] > 0)


def test_nrrd_and_png_masks_round_trip(viewer, qtbot, load, ct_series_dir: Path, tmp_path: Path,  # noqa: ANN001
                                       messages: list[str]) -> None:
    from app.clinical_install import DEMO_CASE

    window, labels, ws = viewer
    load(window, ct_series_dir)
    expected = _three_labels(labels, window.document.volume.shape)
    out = tmp_path / "mask.nrrd"
    ws.controller.export_segmentation(out)
    _wait(qtbot, window)
    labels.clear_all()
    ws.controller.open_segmentation(out)
    _wait(qtbot, window)
    np.testing.assert_array_equal(labels.label_map(), expected)
    assert labels.origin("Lesion") == "AI_CORRECTED" and labels.names() == ["Liver", "Lesion", "Region"]
    # PNG is refused for a volume, with one sentence
    ws.controller.export_segmentation(tmp_path / "mask.png")
    _wait(qtbot, window)
    assert messages and "2-D" in messages[-1]

    xray = sorted((DEMO_CASE / "images").iterdir())[0]
    load(window, xray)
    assert window.document.volume.is_2d and ws.controller.default_format() == "png"
    h, w = window.document.volume.shape[1:]
    stroke = np.zeros((h, w), bool)
    stroke[h // 3: h // 2, w // 4: w // 2] = True
    labels.add_label("Right lung")
    paint(labels, "Right lung", 0, stroke)
    png = tmp_path / "xray_mask.png"
    ws.controller.export_segmentation(png)
    _wait(qtbot, window)
    with Image.open(png) as img:
        np.testing.assert_array_equal(np.asarray(img) > 0, stroke)
    labels.clear_all()
    ws.controller.open_segmentation(png)
    _wait(qtbot, window)
    np.testing.assert_array_equal(labels.label_map()[0] > 0, stroke)
    assert labels.names() == ["Right lung"] and labels.origin("Right lung") == "MANUAL"


def _pdf_text_and_pixels(pdf: Path, tmp_path: Path) -> tuple[str, np.ndarray]:
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils (pdftotext/pdftoppm) not installed")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    subprocess.run(["pdftoppm", "-png", "-r", "100", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True)
    page = next(tmp_path.glob("page*.png"))
    return text, np.asarray(Image.open(page).convert("RGB")).astype(int)


def test_pdf_report_of_a_ct_with_masks(viewer, qtbot, load, ct_series_dir: Path, tmp_path: Path,  # noqa: ANN001
                                       messages: list[str]) -> None:
    window, labels, ws = viewer
    load(window, ct_series_dir)
    vol = window.document.volume
    lm = _three_labels(labels, vol.shape)
    window.document.set_cursor((150, 150, 6))  # the key image is the shown slice (liver + lesion)
    ws.controller.export_report(tmp_path / "report")
    _wait(qtbot, window)
    pdf = tmp_path / "report.pdf"
    assert messages == [] and pdf.is_file()
    text, pixels = _pdf_text_and_pixels(pdf, tmp_path)
    assert "not for diagnostic use" in text
    flat = " ".join(text.split())
    assert "Liver" in flat and "Lesion" in flat and "AI-corrected" in flat
    liver_ml = (lm == 1).sum() * float(np.prod(vol.spacing)) / 1000.0
    assert f"{liver_ml:.1f}" in flat or f"{liver_ml:.2f}" in flat
    assert "slice 7 of" in flat
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert ((r > 180) & (g > 180) & (b < 90)).sum() > 5  # the yellow lesion outline on the key image
    assert ((abs(r - g) < 6) & (abs(g - b) < 6) & (r > 40) & (r < 200)).sum() > 500  # grey CT pixels


def test_pdf_report_of_the_clinical_case(window, qtbot, tmp_path: Path, messages: list[str]) -> None:  # noqa: ANN001
    from app.clinical_install import DEMO_CASE, install_clinical
    from tests.app.clinical_fakes import TinyCasePredictor

    ws_clin = install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    ws = install_export(window, recovery_dir=tmp_path / "recovery")
    window.open_path(DEMO_CASE)
    _wait(qtbot, window)
    ws_clin.controller.predict()
    qtbot.waitUntil(lambda: ws_clin.model.explanation is not None, timeout=120000)
    _wait(qtbot, window)
    ws.controller.export_report(tmp_path / "case_report.pdf", deidentified=True)
    _wait(qtbot, window)
    assert messages == []
    text, pixels = _pdf_text_and_pixels(tmp_path / "case_report.pdf", tmp_path)
    flat = " ".join(text.split())
    assert "not for diagnostic use" in flat and "ANONYMOUS" in flat
    from inference.clinical.terms import outcome_label

    for outcome in ws_clin.model.prediction.outcomes:  # clinical names, never the model's keys
        assert outcome_label(outcome) in flat and outcome not in flat
    assert "Outcome predictor" in flat and "Research and teaching" in flat  # model card summary
    assert "resources/models/fusion" not in flat  # the card's title without its file path
    assert "explanation heat-map" in flat
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert ((r > 180) & (g > 110) & (b < 110)).sum() > 30  # orange/yellow of the jet heat-map in the lungs


def test_with_the_segmentation_tools_installed(window, qtbot, tmp_path: Path, messages: list[str]) -> None:  # noqa: ANN001
    """The real chain: LiteMedSAM box on the demo CT (AI), a brush stroke (AI-corrected), export as SEG,
    autosave after each gesture; the tools' Open segmentation entry becomes ours (one entry, reads SEG too)."""
    from app.launch import DEMO_CT
    from app.segmentation_install import install_segmentation
    from inference.errors import ModelLoadError
    from inference.segmentation.factory import create_backend
    from inference.settings import Settings

    try:
        backend = create_backend(Settings(device="cpu"), "litemedsam")
    except ModelLoadError as err:
        pytest.skip(f"LiteMedSAM weights not available: {err}")
    controller = install_segmentation(window, backend=backend).controller
    controller.neighbours = 0
    ws = install_export(window, recovery_dir=tmp_path / "recovery")
    texts = [a.text() for a in window.menu("File").actions()]
    assert texts.count("Open segmentation…") == 1
    window.open_path(DEMO_CT)
    _wait(qtbot, window)
    labels = window.context.labels
    labels.add_label("Aorta")
    controller.add_box(10, (246.0, 283.0, 281.0, 314.0))  # the aorta on slice 10
    _wait(qtbot, window)
    assert labels.origin("Aorta") == "AI" and labels.mask_for("Aorta")[10].sum() > 100
    qtbot.waitUntil(lambda: ws.session.autosaver.path.is_file(), timeout=5000)
    stroke = np.zeros(window.document.volume.shape[1:], bool)
    stroke[315:319, 260:266] = True  # just below the box: new pixels, a real correction
    controller.paint(10, stroke, erase=False)
    qtbot.wait(20)
    assert labels.origin("Aorta") == "AI_CORRECTED"
    state = load_session_now(ws)
    np.testing.assert_array_equal(state.labelmap, labels.label_map())
    assert state.labels[0].algorithm_type == "AI-corrected"
    out = tmp_path / "aorta_seg.dcm"
    ws.controller.export_segmentation(out)
    _wait(qtbot, window)
    assert messages == []
    segment = pydicom.dcmread(out).SegmentSequence[0]
    assert segment.SegmentLabel == "Aorta" and segment.SegmentAlgorithmType == "SEMIAUTOMATIC"
    labels.clear_all()
    ws.controller.open_segmentation(out)
    _wait(qtbot, window)
    assert labels.mask_for("Aorta")[10].sum() > 100 and labels.origin("Aorta") == "AI_CORRECTED"


def load_session_now(ws):  # noqa: ANN001, ANN201
    """The recovery file after the coalesced autosave of the last gesture."""
    from inference.persistence import load_session

    assert ws.session.autosave_now(wait=True)
    return load_session(ws.session.autosaver.path)


def wait_for_autosave(qtbot, ws, check: Callable[[SessionState], None]) -> SessionState:  # noqa: ANN001
    """The recovery file once it holds the last gesture (``check`` raises AssertionError until then).

    A gesture is saved on a later event-loop turn (a zero-delay timer), written by the autosave thread:
    waited for by what the file holds, never by a fixed sleep; a gesture that is never saved times out.
    """
    from inference.persistence import load_session

    seen: list[SessionState] = []

    def holds() -> None:
        assert ws.session.flush() and ws.session.autosaver.path.is_file()
        state = load_session(ws.session.autosaver.path)
        check(state)
        seen.append(state)

    qtbot.waitUntil(holds, timeout=10000)
    return seen[-1]
