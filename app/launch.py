"""Start the viewer, and wait for background loads (used by the CLI and the headless demo)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from app.application import create_application, install_excepthook
from app.main_window import MainWindow
from inference.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CT = REPO_ROOT / "resources" / "demo" / "ct"
DEMO_CXR = REPO_ROOT / "resources" / "demo" / "cxr" / "images" / "16660_1_1.jpg"


def build_window(settings: Settings | None = None) -> tuple[QApplication, MainWindow]:
    app = create_application()
    install_excepthook()
    window = MainWindow(settings if settings is not None else Settings.load())
    from app.clinical_install import install_clinical  # clinician workspace (panels, case opening)
    from app.segmentation_install import install_segmentation  # box/point/brush tools, labels panel

    install_segmentation(window)
    install_clinical(window)
    from app.export_install import install_export  # export, PACS, sessions, crash recovery

    install_export(window)
    return app, window


def wait_idle(window: MainWindow, timeout_s: float = 120.0) -> bool:
    """Pump the event loop until no background task is running (True) or the timeout passes."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if not window.runner.busy:
            app.processEvents()
            return True
        time.sleep(0.01)
    return False


def run_viewer(path: Path | None, demo: bool = False) -> int:
    """Interactive viewer on ``path``; no path: the demo X-ray case with the tour on the first run
    (or with ``demo``), else the demo CT. Returns the Qt exit code."""
    from inference.settings import default_config_dir

    first_run = not (default_config_dir() / "settings.json").exists()
    app, window = build_window()
    start_viewer(window, path, demo=demo, first_run=first_run)
    return int(app.exec())


def start_viewer(window: MainWindow, path: Path | None, *, demo: bool = False, first_run: bool = False) -> None:
    """Everything :func:`run_viewer` does before the event loop (tests call it without ``app.exec()``).

    The demo case (``demo`` or the first run) is shown de-identified for this session only: the user's
    ``deidentify_display`` setting is neither read nor written for it.
    """
    window.show()
    if window.export.session.offer_restore():  # the last run did not exit cleanly: its work is reopened
        return
    if path is None and (demo or first_run):
        from app.clinical_install import DEMO_CASE

        window.deidentify_for_session()
        window.open_path(DEMO_CASE)
        window.clinical.tour.start()
    else:
        window.open_path(path if path is not None else DEMO_CT)


if __name__ == "__main__":  # pragma: no cover - convenience
    sys.exit(run_viewer(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
