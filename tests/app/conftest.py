"""Fixtures for the viewer tests: a shown main window and a helper that waits for loads.

Every test starts from the same state whatever ran before it (test order differs between machines and
runs): its own ``$MEDFUSION_HOME`` and, for Qt tests, the application's theme already applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtWidgets import QMessageBox

from app.application import create_application
from app.main_window import MainWindow
from inference.settings import Settings

if TYPE_CHECKING:
    from app.segmentation_install import SegmentationWorkspace
    from inference.segmentation.cache import SingleFlightCache


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh ``$MEDFUSION_HOME`` per test. The session-wide one (tests/conftest.py) let a test's settings
    file, recovery file or audit log reach later tests: ``build_viewer`` reads the settings and offers to
    restore any recovery file it finds there, so the outcome depended on which tests ran before."""
    monkeypatch.setenv("MEDFUSION_HOME", str(tmp_path_factory.mktemp("medfusion_home")))


@pytest.fixture(autouse=True)
def _viewer_theme(request: pytest.FixtureRequest) -> None:
    """Qt tests run with the viewer's style and palette (``create_application``), not only those that
    happen to run after the first ``window`` fixture; model-only tests create no QApplication."""
    if "qtbot" in request.fixturenames or "qapp" in request.fixturenames:
        request.getfixturevalue("qapp")
        create_application()


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Captures QMessageBox warnings/criticals instead of blocking on a modal dialog."""
    captured: list[str] = []

    def fake(
        _parent: object, _title: str, text: str, *args: object, **kwargs: object
    ) -> QMessageBox.StandardButton:
        captured.append(text)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", fake)
    monkeypatch.setattr(QMessageBox, "critical", fake)
    return captured


@pytest.fixture
def window(qtbot, tmp_path: Path, messages: list[str]) -> Iterator[MainWindow]:  # noqa: ANN001 - qtbot
    create_application()
    win = MainWindow(Settings(), settings_path=tmp_path / "settings.json")
    qtbot.addWidget(win)
    win.resize(1000, 760)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.runner.cancel()
    win.runner.wait(10000)


@pytest.fixture
def load(qtbot) -> Callable[..., None]:  # noqa: ANN001 - qtbot
    """``load(window, path)``: open through the real loader on the worker thread and wait."""

    def _load(win: MainWindow, path: Path, series_uid: str | None = None) -> None:
        win.open_path(path, series_uid)
        qtbot.waitUntil(lambda: not win.runner.busy, timeout=60000)
        qtbot.wait(20)

    return _load


@pytest.fixture(scope="module")
def backend():  # noqa: ANN201 - LiteMedSAMBackend
    """The real LiteMedSAM backend (segmentation tests), once per test module; skipped without weights."""
    from inference.errors import ModelLoadError
    from inference.segmentation.factory import create_backend

    try:
        return create_backend(Settings(device="cpu"), "litemedsam")
    except ModelLoadError as err:
        pytest.skip(f"LiteMedSAM weights not available: {err}")


@pytest.fixture(scope="module")
def cache() -> SingleFlightCache:
    """Embeddings shared by a module's segmentation tests (the demo CT's slices are encoded once)."""
    from inference.segmentation.cache import SingleFlightCache

    return SingleFlightCache(512 * 1024 * 1024)


@pytest.fixture
def workspace(window: MainWindow, backend, cache: SingleFlightCache) -> SegmentationWorkspace:  # noqa: ANN001
    from app.segmentation_install import install_segmentation

    ws = install_segmentation(window, backend=backend, cache=cache)
    ws.controller.neighbours = 1
    return ws


@pytest.fixture
def seg(window: MainWindow, workspace: SegmentationWorkspace) -> MainWindow:
    """The window with the real segmentation feature installed."""
    return window
