"""Series choice, PET overlay resampling, stale worker results, excepthook and the headless demo."""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PySide6.QtGui import QImage

from app.application import install_excepthook
from app.main_window import MainWindow
from app.workers import TaskRunner


def _two_series_folder(ct_series_dir: Path, dest: Path) -> str:
    """Four CT slices plus a copy of them as a second series; returns the second series' UID."""
    dest.mkdir()
    files = sorted(p for p in ct_series_dir.iterdir() if p.is_file())[:4]
    second_uid = pydicom.uid.generate_uid()
    for i, path in enumerate(files):
        shutil.copy(path, dest / f"a{i}.dcm")
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = second_uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.SeriesDescription = "Second series"
        ds.SeriesNumber = 99
        ds.save_as(dest / f"b{i}.dcm")
    return second_uid


def test_folder_with_two_series_asks_which(
    window: MainWindow, load, qtbot, ct_series_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    folder = tmp_path / "two"
    second = _two_series_folder(ct_series_dir, folder)
    offered: list[list] = []

    def choose(series: list, path: Path) -> tuple[str, None]:
        offered.append(series)
        return second, None

    monkeypatch.setattr(window, "choose_series", choose)
    load(window, folder)
    wait_idle(qtbot, window)
    assert len(offered) == 1 and len(offered[0]) == 2
    vol = window.document.volume
    assert vol is not None and vol.shape[0] == 4 and vol.info.series_description == "Second series"


def test_cancelled_series_choice_loads_nothing(
    window: MainWindow,
    load,
    ct_series_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    messages: list[str],
) -> None:
    folder = tmp_path / "two"
    _two_series_folder(ct_series_dir, folder)
    monkeypatch.setattr(window, "choose_series", lambda series, path: None)
    load(window, folder)
    assert window.document.volume is None and not messages


def wait_idle(qtbot, window: MainWindow) -> None:  # noqa: ANN001 - qtbot
    """Until the runner is idle, or fail: the loop this replaces gave up silently after ~20 s (a slow,
    busy machine) and the test then failed on a missing overlay instead of on the wait."""
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)


def test_pet_overlay_is_resampled_and_drawn_in_colour(
    window: MainWindow, load, qtbot, ct_series_dir: Path, tmp_path: Path  # noqa: ANN001
) -> None:
    load(window, ct_series_dir)
    ct = window.document.volume
    assert ct is not None
    # Synthetic "PET" on a coarser 4 mm grid in the CT's frame, with one hot blob at the CT centre.
    shape = (12, 128, 128)  # z, y, x at 4 mm covers the CT field of view
    zz, yy, xx = np.indices(shape)
    centre_mm = ct.index_to_physical(np.array([256.0, 256.0, 10.0]))
    origin = np.asarray(ct.origin, float)
    pts = np.stack([xx, yy, zz], -1) * 4.0 + origin
    pet = (0.3 + 8.0 * np.exp(-((np.linalg.norm(pts - centre_mm, axis=-1) / 20.0) ** 2))).astype(np.float32)
    image = sitk.GetImageFromArray(pet)
    image.SetSpacing((4.0, 4.0, 4.0))
    image.SetOrigin(tuple(origin))
    path = tmp_path / "pet.nii.gz"
    sitk.WriteImage(image, str(path))

    axial = window.views["axial"]
    plain = axial.grab_array().astype(int)
    window.loader.add_overlay(path)
    wait_idle(qtbot, window)
    overlay = window.document.overlay
    assert overlay is not None and overlay.shape == ct.shape
    assert overlay.array[10, 256, 256] > 5 and overlay.array[10, 20, 20] < 1
    coloured = axial.grab_array().astype(int)
    # Pixels that turned red/orange (hot colour map) where the blob is.
    warm = (np.abs(coloured - plain).sum(-1) > 30) & (coloured[..., 0] > coloured[..., 2] + 40)
    assert warm.sum() > 500
    rows, cols = np.nonzero(warm)
    assert abs(rows.mean() - plain.shape[0] / 2) < plain.shape[0] / 8  # drawn around the image centre
    window.display_panel.opacity.setValue(0)
    assert window.document.overlay_opacity == 0.0
    assert np.abs(axial.grab_array().astype(int) - plain).mean() < 0.5
    assert "overlay" in window.document.voxel_readout((256, 256, 10))


def test_runner_drops_stale_results(qtbot) -> None:  # noqa: ANN001 - qtbot
    runner = TaskRunner()
    release = threading.Event()
    results: list[str] = []

    def slow(progress, cancel) -> str:  # noqa: ANN001
        release.wait(10)
        return "old"

    runner.submit("load", slow, results.append)
    runner.submit("load", lambda p, c: "new", results.append)
    qtbot.waitUntil(lambda: results == ["new"], timeout=5000)
    release.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == ["new"]


def test_deferred_task_is_busy_at_once_and_starts_after_the_turns_timers(qtbot) -> None:  # noqa: ANN001
    """``defer``: a new image's background work starts after the renders that image already asked for (zero-delay
    timers started before it), and counts as running from the moment it is submitted (``wait_idle`` waits)."""
    from PySide6.QtCore import QCoreApplication, QTimer

    runner = TaskRunner()
    order: list[str] = []
    started = threading.Event()

    def work(progress, cancel) -> str:  # noqa: ANN001
        started.set()
        return "done"

    QTimer.singleShot(0, lambda: order.append("render" if not started.is_set() else "render after the work"))
    runner.submit("seg_embed", work, order.append, defer=True)
    assert runner.busy and not started.is_set()
    started.wait(0.3)
    assert not started.is_set()  # nothing runs before the event loop turns
    QCoreApplication.processEvents()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert order == ["render", "done"]

    cancelled: list[str] = []
    runner.submit("seg_embed", lambda p, c: c.raise_if_cancelled() or "late", cancelled.append, defer=True)
    runner.cancel("seg_embed")  # before it started: its result never arrives, the runner becomes idle
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert cancelled == []


def test_progress_bar_shows_the_latest_report_at_most_every_interval(qtbot) -> None:  # noqa: ANN001
    """A series load reports every header and slice; each ``QProgressBar.setValue`` repaints synchronously, so
    the widget shows only the newest report per interval (it delayed the first image at start-up)."""
    from app.widgets.progress_widget import ProgressWidget

    runner = TaskRunner()
    widget = ProgressWidget(runner)
    qtbot.addWidget(widget)
    values: list[int] = []
    widget.bar.valueChanged.connect(values.append)
    release = threading.Event()

    def work(progress, cancel) -> None:  # noqa: ANN001
        for i in range(1, 41):
            progress(i / 40, f"Reading slice {i}/40")
        release.wait(10)

    runner.submit("load", work, lambda _r: None)
    qtbot.waitUntil(lambda: widget.label.text() == "Reading slice 40/40", timeout=5000)
    assert widget.bar.value() == 1000
    assert len([v for v in values if v > 0]) < 10  # 40 reports, a few repaints
    release.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert widget.label.text() == "" and not widget.isVisible()


def test_excepthook_shows_short_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    shown: list[str] = []
    install_excepthook(shown.append)
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError as err:
        sys.excepthook(type(err), err, err.__traceback__)
    assert len(shown) == 1 and "ZeroDivisionError" in shown[0] and "Traceback" not in shown[0]


def test_headless_demo_writes_non_blank_pngs(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from cli import demo

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    out = tmp_path / "shots"
    rc = demo.run(argparse.Namespace(headless=True, out=out, size="900x640"))
    assert rc == 0
    names = {p.name for p in out.glob("*.png")}
    assert {
        "demo_axial.png",
        "demo_coronal.png",
        "demo_sagittal.png",
        "demo_3d.png",
        "demo_window.png",
    } <= names
    for name in names:
        image = QImage(str(out / name))
        assert not image.isNull() and image.width() > 100
        pixels = np.array(
            [
                [image.pixelColor(x, y).value() for x in range(0, image.width(), 7)]
                for y in range(0, image.height(), 7)
            ]
        )
        assert pixels.std() > 10, f"{name} looks blank"


def test_series_dialog_offers_pet_as_overlay_for_ct(qtbot) -> None:  # noqa: ANN001
    from app.widgets.series_dialog import SeriesDialog
    from inference.io.dicom_scan import SeriesInfo

    series = [
        SeriesInfo("1.2.pt", "PT", "PET WB", 200, []),
        SeriesInfo("1.2.ct", "CT", "CT WB", 300, []),
        SeriesInfo("1.2.sc", "OT", "Screen", 1, []),
    ]
    dialog = SeriesDialog(series, "study")
    qtbot.addWidget(dialog)
    choice = dialog.choice()
    assert choice is not None and choice.primary_uid == "1.2.ct" and choice.overlay_uid == "1.2.pt"
    dialog.list.setCurrentRow(0)  # PET as the primary image: no overlay offered
    choice = dialog.choice()
    assert choice is not None and choice.primary_uid == "1.2.pt" and choice.overlay_uid is None


def test_petct_folder_opens_ct_with_suv_overlay(
    window: MainWindow, load, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    from app.widgets.series_dialog import SeriesDialog
    from tests.synthetic_dicom import add_pet_tags, write_volume_series

    folder = tmp_path / "petct"
    study = pydicom.uid.generate_uid()
    ct = write_volume_series(
        folder,
        modality="CT",
        n=8,
        rows=32,
        cols=32,
        pixel_spacing=(2.0, 2.0),
        z_spacing=2.0,
        study_uid=study,
        prefix="CT",
    )
    pet = write_volume_series(
        folder,
        modality="PT",
        n=4,
        rows=16,
        cols=16,
        pixel_spacing=(4.0, 4.0),
        z_spacing=4.0,
        intercept=0.0,
        study_uid=study,
        prefix="PT",
    )
    add_pet_tags(pet)

    def choose(series: list, path: Path) -> tuple[str, str | None]:
        choice = SeriesDialog(series, path.name).choice()  # the dialog's defaults: CT + PET overlay
        assert choice is not None
        return choice.primary_uid, choice.overlay_uid

    monkeypatch.setattr(window, "choose_series", choose)
    load(window, folder)
    wait_idle(qtbot, window)
    doc = window.document
    assert doc.volume is not None and doc.volume.modality == "CT" and doc.volume.shape == (8, 32, 32)
    assert doc.overlay is not None and doc.overlay.shape == doc.volume.shape
    assert doc.overlay.units.upper().startswith("SUV") and doc.overlay_range == (0.0, 5.0)
    assert ct.series_uid != pet.series_uid and "SUV" in doc.voxel_readout((16, 16, 4))
