"""Start-up recovery in the viewer: a second window never takes the first window's live file, and a
crafted recovery file is quarantined instead of stopping start-up (issue 14, items 3 and 4)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PySide6.QtWidgets import QMessageBox

from app.export_install import install_export
from app.main_window import MainWindow
from inference.settings import Settings
from tests.app.test_export_ui import attach_labels, paint, wait_for_autosave


@pytest.fixture
def small_image(tmp_path: Path) -> Path:
    path = tmp_path / "small.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 32, 32), np.int16)), str(path))
    return path


def _window(qtbot, tmp_path: Path, recovery: Path, name: str):  # noqa: ANN001, ANN202
    win = MainWindow(Settings(), settings_path=tmp_path / f"{name}.json")
    qtbot.addWidget(win)
    win.show()
    labels = attach_labels(win)
    ws = install_export(win, recovery_dir=recovery)
    return win, labels, ws


def _never(*_a: object, **_k: object) -> QMessageBox.StandardButton:
    raise AssertionError("no restore offer for a live window's file")


def test_second_window_does_not_claim_the_first_windows_file(window, qtbot, load, tmp_path: Path,  # noqa: ANN001
                                                             small_image: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    recovery = tmp_path / "recovery"
    labels = attach_labels(window)
    ws = install_export(window, recovery_dir=recovery)
    load(window, small_image)
    labels.add_label("Lesion")
    stroke = np.zeros((32, 32), bool)
    stroke[4:10, 4:10] = True
    paint(labels, "Lesion", 1, stroke)
    qtbot.waitUntil(lambda: ws.session.autosaver.path.is_file(), timeout=5000)
    live = ws.session.autosaver.path

    monkeypatch.setattr(QMessageBox, "question", _never)
    win2, _labels2, ws2 = _window(qtbot, tmp_path, recovery, "second")
    assert not ws2.session.offer_restore()
    assert live.is_file() and ws2.session.recovery_file() is None
    stroke2 = np.zeros((32, 32), bool)
    stroke2[20:24, 20:24] = True
    paint(labels, "Lesion", 2, stroke2)  # the first window's later strokes still reach its own file

    def both_strokes(state) -> None:  # noqa: ANN001 - SessionState
        assert int((state.labelmap > 0).sum()) == 36 + 16

    wait_for_autosave(qtbot, ws, both_strokes)
    assert ws.session.autosaver.path == live


def test_crafted_recovery_file_is_quarantined_and_start_up_goes_on(qtbot, tmp_path: Path,  # noqa: ANN001
                                                                   messages: list[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    crafted = recovery / "recovery.mfsession"  # what an older version (or an attacker) left behind
    with zipfile.ZipFile(crafted, "w") as zf:
        zf.writestr("state.json", json.dumps({"format": 1, "labels": "x", "gesture": "many"}))
    monkeypatch.setattr(QMessageBox, "question", _never)
    win, _labels, ws = _window(qtbot, tmp_path, recovery, "start")
    shown: list[str] = []
    monkeypatch.setattr(win, "show_status", shown.append)
    for _ in range(2):  # and at the next start nothing is offered again
        assert not ws.session.offer_restore()
    assert not crafted.exists()
    quarantined = list((ws.session.archive_dir / "quarantine").glob("damaged-*.mfsession"))
    assert len(quarantined) == 1 and len(shown) == 1 and "quarantine" in shown[0]
