"""Sessions and crash recovery in the viewer: autosave after every gesture, restore offer, clean exit.

A crash is what the recovery file looks like when the process dies: the file the first window wrote,
left where a fresh window finds it (the process-kill case itself is tested in
tests/inference/test_persistence.py with SIGKILL). The second window restores from it for real.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from app.export_install import install_export
from app.main_window import MainWindow
from inference.persistence import load_session, save_session
from inference.settings import Settings
from tests.app.test_export_ui import attach_labels, paint, wait_for_autosave


def _wait(qtbot, window) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.wait(20)


def _second_window(qtbot, tmp_path: Path, recovery: Path):  # noqa: ANN001, ANN202
    win = MainWindow(Settings(), settings_path=tmp_path / "settings2.json")
    qtbot.addWidget(win)
    win.show()
    labels = attach_labels(win)
    ws = install_export(win, recovery_dir=recovery)
    return win, labels, ws


@pytest.fixture
def viewer(window, tmp_path: Path):  # noqa: ANN001, ANN201
    labels = attach_labels(window)
    ws = install_export(window, recovery_dir=tmp_path / "recovery")
    return window, labels, ws


def _holds(expected: np.ndarray):  # noqa: ANN202 - the check wait_for_autosave takes
    """Check: the recovery file's label map is ``expected``."""
    return lambda state: np.testing.assert_array_equal(state.labelmap, expected)


def _stroke(shape: tuple[int, int], y: int, x: int, size: int = 12) -> np.ndarray:
    stroke = np.zeros(shape, bool)
    stroke[y:y + size, x:x + size] = True
    return stroke


def test_autosave_after_every_gesture(viewer, qtbot, load, ct_series_dir: Path) -> None:  # noqa: ANN001
    window, labels, ws = viewer
    load(window, ct_series_dir)
    recovery = ws.session.autosaver.path
    assert not recovery.exists()  # opening an image is not a gesture
    labels.add_label("Nodule")
    shape = window.document.volume.shape[1:]
    for k, z in enumerate((3, 4, 5)):
        paint(labels, "Nodule", z, _stroke(shape, 100 + 10 * k, 120))
        # the coalescing timer fires on a later event-loop turn and the autosave thread writes this very gesture
        state = wait_for_autosave(qtbot, ws, _holds(labels.label_map()))
        assert recovery.is_file()
    assert [lab.name for lab in state.labels] == ["Nodule"] and state.labels[0].algorithm_type == "MANUAL"
    assert state.image_source == str(window.document.volume.source)
    assert state.image_signature == window.document.volume.signature()
    assert state.gesture >= 3


def test_crash_restore_offer_yes_and_no(viewer, qtbot, load, ct_series_dir: Path, tmp_path: Path,  # noqa: ANN001
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    window, labels, ws = viewer
    load(window, ct_series_dir)
    labels.set_masks(np.zeros(window.document.volume.shape, np.uint8), [("Liver", 1, (200, 100, 50))],
                     {"Liver": "AI"})
    shape = window.document.volume.shape[1:]
    paint(labels, "Liver", 6, _stroke(shape, 200, 200, 40))  # AI label corrected by hand
    expected = labels.label_map()
    wait_for_autosave(qtbot, ws, _holds(expected))
    # the crash: the process dies, its recovery file stays behind for the next start
    crashed = tmp_path / "after_crash"
    crashed.mkdir()
    shutil.copy(ws.session.autosaver.path, crashed / ws.session.autosaver.path.name)

    asked: list[str] = []

    def answer(button: QMessageBox.StandardButton):  # noqa: ANN202
        def fake(_parent: object, _title: str, text: str, *_a: object, **_k: object) -> QMessageBox.StandardButton:
            asked.append(text)
            return button
        return fake

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    win2, labels2, ws2 = _second_window(qtbot, tmp_path, crashed)
    assert ws2.session.offer_restore()
    qtbot.waitUntil(lambda: win2.document.volume is not None and bool(labels2.names()), timeout=60000)
    _wait(qtbot, win2)
    assert asked and "did not close normally" in asked[0]
    np.testing.assert_array_equal(labels2.label_map(), expected)
    assert labels2.origin("Liver") == "AI_CORRECTED"

    # decline: nothing is restored, the work is archived (not deleted) and not offered again
    declined = tmp_path / "declined"
    declined.mkdir()
    assert not (crashed / ws.session.autosaver.path.name).exists()  # restored: moved to sessions/, not offered again
    assert len(list(ws2.session.archive_dir.glob("recovered-*.mfsession"))) == 1
    shutil.copy(ws.session.autosaver.path, declined / ws.session.autosaver.path.name)
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    win3, labels3, ws3 = _second_window(qtbot, tmp_path, declined)
    assert not ws3.session.offer_restore()
    assert win3.document.volume is None and ws3.session.recovery_file() is None
    archived = list(ws3.session.archive_dir.glob("declined-*.mfsession"))
    assert len(archived) == 1
    np.testing.assert_array_equal(load_session(archived[0]).labelmap, expected)
    n_asked = len(asked)
    assert not ws3.session.offer_restore() and len(asked) == n_asked


def test_clean_exit_archives_recovery_file(viewer, qtbot, load, ct_series_dir: Path,  # noqa: ANN001
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    window, labels, ws = viewer
    load(window, ct_series_dir)
    labels.add_label("Lesion")
    paint(labels, "Lesion", 2, _stroke(window.document.volume.shape[1:], 50, 50))
    qtbot.waitUntil(lambda: ws.session.autosaver.path.is_file(), timeout=5000)
    window.close()
    assert ws.session.recovery_file() is None
    kept = list(ws.session.archive_dir.glob("last-session-*.mfsession"))
    assert len(kept) == 1 and load_session(kept[0]).labels[0].name == "Lesion"

    def never(*_a: object, **_k: object) -> QMessageBox.StandardButton:
        raise AssertionError("no restore offer after a clean exit")

    monkeypatch.setattr(QMessageBox, "question", never)
    assert not ws.session.offer_restore()


def test_save_and_open_session_with_clinical_case(window, qtbot, tmp_path: Path,  # noqa: ANN001
                                                  messages: list[str]) -> None:
    from app.clinical_install import DEMO_CASE, install_clinical
    from tests.app.clinical_fakes import TinyCasePredictor

    labels = attach_labels(window)
    clin = install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    ws = install_export(window, recovery_dir=tmp_path / "recovery")
    window.open_path(DEMO_CASE)
    _wait(qtbot, window)
    name = next(k for k, v in clin.model.ehr.items() if v.field.numeric)
    clin.controller.edit_ehr(name, 42.0)
    clin.controller.predict(explain=False)
    qtbot.waitUntil(lambda: clin.model.prediction is not None, timeout=120000)
    _wait(qtbot, window)
    labels.add_label("Right lung")
    h, w = window.document.volume.shape[1:]
    paint(labels, "Right lung", 0, _stroke((h, w), h // 3, w // 4, 30))
    _wait(qtbot, window)
    mask = labels.label_map()
    probabilities = {k: v.probability for k, v in clin.model.prediction.outcomes.items()}
    path = ws.session.save_session(tmp_path / "work")
    assert path is not None and path.suffix == ".mfsession" and messages == []
    saved = load_session(path)
    assert saved.ehr_edits["values"] == {name: 42.0}
    assert saved.audit_log_path and Path(saved.audit_log_path).is_file()
    assert {p["outcome"] for p in saved.predictions} == set(probabilities)

    clin.controller.reset()  # drops edits, masks and prediction
    _wait(qtbot, window)
    assert clin.model.prediction is None and not clin.model.ehr[name].edited
    assert ws.session.open_session(path)
    qtbot.waitUntil(lambda: clin.model.prediction is not None and bool(labels.names()), timeout=60000)
    _wait(qtbot, window)
    assert clin.model.ehr[name].value == 42.0 and clin.model.ehr[name].edited
    np.testing.assert_array_equal(labels.label_map(), mask)
    assert {k: v.probability for k, v in clin.model.prediction.outcomes.items()} == pytest.approx(probabilities)
    assert messages == []


def test_session_of_a_changed_image_is_refused(viewer, qtbot, load, ct_series_dir: Path, tmp_path: Path,  # noqa: ANN001
                                               messages: list[str]) -> None:
    window, labels, ws = viewer
    load(window, ct_series_dir)
    labels.add_label("Lesion")
    paint(labels, "Lesion", 2, _stroke(window.document.volume.shape[1:], 50, 50))
    state = ws.session.build_state()
    state.image_signature = "0" * 40  # the file on disk changed since the session was saved
    path = save_session(state, tmp_path / "stale.mfsession")
    labels.clear_all()
    ws.session.open_session(path)
    qtbot.waitUntil(lambda: bool(messages), timeout=10000)
    assert "changed since it was saved" in messages[-1]
    assert not labels.label_map().any()
    ws.session.open_session(tmp_path / "missing.mfsession")
    assert "does not exist" in messages[-1]
