"""Robustness in the viewer: over-budget studies offer a downsampled load, GPU fallback notices reach the
status bar, and demo mode de-identifies the display without touching the user's settings file."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from app.main_window import MainWindow
from inference.gpu_fallback import GPU_FALLBACK_MESSAGE, run_with_gpu_fallback
from inference.io.loader import list_series, open_image
from inference.io.memory_budget import MemoryCheck


def _status(window: MainWindow) -> str:
    return window.statusBar().currentMessage()


def _ct_shape(ct_series_dir: Path) -> tuple[int, int, int]:
    info = list_series(ct_series_dir)[0]
    return info.n_files, info.rows, info.cols


def test_over_budget_study_is_offered_downsampled_and_loads_so(window: MainWindow, load, ct_series_dir: Path) -> None:
    window.settings.memory_budget_mb = 1  # the 20-slice 512² CT needs ~20 MB
    asked: list[MemoryCheck] = []

    def choose(check: MemoryCheck, path: Path) -> int | None:
        asked.append(check)
        return check.factor

    window.choose_downsample = choose  # type: ignore[method-assign]
    load(window, ct_series_dir)
    assert len(asked) == 1 and not asked[0].fits
    k = asked[0].factor
    assert k is not None and k >= 2 and asked[0].budget_bytes == 2**20
    vol = window.document.volume
    assert vol is not None and vol.meta["downsample_factor"] == k
    n, rows, cols = _ct_shape(ct_series_dir)
    assert vol.shape == (math.ceil(n / k), math.ceil(rows / k), math.ceil(cols / k))
    assert vol.array.nbytes <= 2**20
    full = open_image(ct_series_dir)
    assert np.array_equal(vol.array, full.array[::k, ::k, ::k])  # the same anatomy, every k-th voxel
    assert vol.spacing[0] == pytest.approx(full.spacing[0] * k)
    assert f"downsampled by {k}" in _status(window)
    assert f"downsampled ×{k}" in window.windowTitle()
    assert window.errors == []


def test_declined_downsampling_opens_nothing(window: MainWindow, load, ct_series_dir: Path, messages: list[str]) -> None:
    window.settings.memory_budget_mb = 1
    window.choose_downsample = lambda check, path: None  # type: ignore[method-assign]
    load(window, ct_series_dir)
    assert window.document.volume is None
    assert "cancelled" in _status(window) and "memory budget" in _status(window)
    assert messages == [] and window.errors == []


def test_within_budget_is_not_asked(window: MainWindow, load, ct_series_dir: Path) -> None:
    window.choose_downsample = lambda check, path: pytest.fail("a study within the budget must not ask")  # type: ignore[method-assign]
    load(window, ct_series_dir)
    vol = window.document.volume
    assert vol is not None and vol.shape == _ct_shape(ct_series_dir) and "downsample_factor" not in vol.meta


def test_the_real_question_dialog_loads_downsampled(window: MainWindow, load, qtbot, ct_series_dir: Path) -> None:  # noqa: ANN001
    window.settings.memory_budget_mb = 2
    seen: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append(box.text())
        button = next(b for b in box.findChildren(QPushButton) if b.text().startswith("Load downsampled"))
        button.click()

    QTimer.singleShot(20, answer)
    load(window, ct_series_dir)
    qtbot.waitUntil(lambda: window.document.volume is not None, timeout=60000)
    assert len(seen) == 1 and "recommended" in seen[0] and "2.0 MB" in seen[0]
    assert window.document.volume.meta["downsample_factor"] >= 2  # type: ignore[union-attr]


def test_headless_run_takes_the_recommended_factor(window: MainWindow, load, ct_series_dir: Path) -> None:
    printed: list[str] = []
    window.error_sink = printed.append
    window.settings.memory_budget_mb = 1
    load(window, ct_series_dir)
    vol = window.document.volume
    assert vol is not None and vol.meta.get("downsample_factor", 1) > 1 and printed == []


def test_gpu_fallback_notice_from_a_worker_thread_reaches_the_status_bar(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    def step(device: str = "cuda") -> str:
        if device != "cpu":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        return "done"

    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(run_with_gpu_fallback(step, device="cuda")))
    worker.start()
    worker.join(10)
    assert results == ["done"]
    qtbot.waitUntil(lambda: _status(window) == GPU_FALLBACK_MESSAGE, timeout=5000)


# ------------------------------------------------------------------------------------------------ demo mode


def test_demo_mode_deidentifies_without_saving_it(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from app.launch import build_viewer, start_viewer, wait_idle
    from inference.settings import Settings, default_config_dir

    settings_file = default_config_dir() / "settings.json"
    Settings(deidentify_display=False, user_name="dr-test").save(settings_file)
    viewer = build_viewer()  # loads the user's settings like run_viewer
    window = viewer.window
    qtbot.addWidget(window)
    window.error_sink = lambda message: pytest.fail(message)
    try:
        start_viewer(viewer, None, demo=True)
        assert wait_idle(window, 120)
        assert window.document.volume is not None
        assert window.document.deidentify and window.info_panel.deidentify.isChecked()
        assert window.document.study_info() == window.document.volume.info.deidentified()
        window.close()  # saves the settings (recent files etc.), as quitting does
        saved = json.loads(settings_file.read_text())
        assert saved["deidentify_display"] is False and saved["user_name"] == "dr-test"
        assert window.settings.deidentify_display is False
    finally:
        window.runner.cancel()
        window.runner.wait(10000)
