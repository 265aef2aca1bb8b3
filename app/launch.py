"""Start the viewer, and wait for background loads (used by the CLI and the headless demo).

:func:`build_viewer` creates the shell (:class:`MainWindow`, which creates the :class:`AppContext`) and
installs every feature on it. Features only use the shell's registry and the context, and find each
other through the context when they act, so the order below decides only where their menu entries
and panels appear.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication

from app.application import create_application, install_excepthook
from app.main_window import MainWindow
from inference.settings import Settings

if TYPE_CHECKING:
    from app.auto_lungs_install import AutoLungsWorkspace
    from app.browser_install import BrowserWorkspace
    from app.clinical_install import ClinicalWorkspace
    from app.comparison_install import ComparisonWorkspace
    from app.export_install import ExportWorkspace
    from app.measurements_install import MeasurementsWorkspace
    from app.segmentation_install import SegmentationWorkspace
    from app.view_modes_install import ViewModesWorkspace
    from app.widgets.tag_viewer import TagViewer

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CT = REPO_ROOT / "resources" / "demo" / "ct"
DEMO_CXR = REPO_ROOT / "resources" / "demo" / "cxr" / "images" / "16660_1_1.jpg"


@dataclass
class Viewer:
    """The application, its window and the installed features' handles (start-up, demo CLI, tests)."""

    app: QApplication
    window: MainWindow
    segmentation: SegmentationWorkspace
    clinical: ClinicalWorkspace
    export: ExportWorkspace
    view_modes: ViewModesWorkspace
    measurements: MeasurementsWorkspace
    tags: TagViewer
    browser: BrowserWorkspace
    comparison: ComparisonWorkspace
    auto_lungs: AutoLungsWorkspace


def build_viewer(settings: Settings | None = None) -> Viewer:
    """The main window with every feature installed (settings: the user's file unless given)."""
    from app.auto_lungs_install import install_auto_lungs  # Segmentation > Segment lungs (automatic)
    from app.browser_install import install_browser  # series browser, cohort patient list
    from app.clinical_install import install_clinical  # clinician workspace (panels, case opening)
    from app.comparison_install import install_comparison  # current vs prior side by side, synced
    from app.comparison_view_modes import link_comparison_view_modes  # the view modes while comparing
    from app.export_install import install_export  # export, PACS, sessions, crash recovery
    from app.measurements_install import install_measurements  # ruler, angle, ROI, axes, arrows; panel
    from app.segmentation_install import install_segmentation  # box/point/brush tools, labels panel
    from app.tag_viewer_install import install_tag_viewer  # DICOM tags of the slice on screen
    from app.view_modes_install import install_view_modes  # layouts, invert, flip/rotate, slab, cine

    app = create_application()
    install_excepthook()
    window = MainWindow(settings if settings is not None else Settings.load())
    viewer = Viewer(app, window, install_segmentation(window), install_clinical(window), install_export(window),
                    install_view_modes(window), measurements=install_measurements(window),
                    tags=install_tag_viewer(window), browser=install_browser(window),
                    comparison=install_comparison(window),
                    auto_lungs=install_auto_lungs(window))
    link_comparison_view_modes(viewer.view_modes, viewer.comparison)  # invert/presets on both sides
    return viewer


def wait_idle(window: MainWindow, timeout_s: float = 120.0) -> bool:
    """Pump the event loop until no background task is running (True) or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if not window.runner.busy:
            QApplication.processEvents()
            return True
        time.sleep(0.01)
    return False


def run_viewer(path: Path | None, demo: bool = False) -> int:
    """Interactive viewer on ``path``; no path: the demo X-ray case with the tour on the first run
    (or with ``demo``), else the demo CT. Returns the Qt exit code."""
    from inference.settings import default_config_dir

    first_run = not (default_config_dir() / "settings.json").exists()
    viewer = build_viewer()
    start_viewer(viewer, path, demo=demo, first_run=first_run)
    return int(viewer.app.exec())


def start_viewer(viewer: Viewer, path: Path | None, *, demo: bool = False, first_run: bool = False) -> None:
    """Everything :func:`run_viewer` does before the event loop (tests call it without ``app.exec()``).

    The demo case (``demo`` or the first run) is shown de-identified for this session only: the user's
    ``deidentify_display`` setting is neither read nor written for it.
    """
    window = viewer.window
    window.show()
    if viewer.export.session.offer_restore():  # the last run did not exit cleanly: its work is reopened
        return
    if path is None and (demo or first_run):
        from app.clinical_install import DEMO_CASE

        window.deidentify_for_session()
        window.open_path(DEMO_CASE)
        viewer.clinical.tour.start()
    else:
        window.open_path(path if path is not None else DEMO_CT)


if __name__ == "__main__":  # pragma: no cover - convenience
    sys.exit(run_viewer(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
