"""``python main.py demo [--headless --out DIR]``: the bundled demo case, interactive or as screenshots.

Headless mode renders the demo CT in the real main window and writes PNGs of each view and of the whole
window; then it runs the clinical pipeline on the demo X-ray case (bundled lung masks, or LiteMedSAM
from boxes with ``--segment``; predict; explain) and writes a PNG of every clinical panel. Without a display it tries Qt's offscreen platform with VTK
offscreen (EGL) rendering; if that yields no image it says to run under ``xvfb-run -a``.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # Qt loads only when a window is made
    from PySide6.QtWidgets import QDockWidget, QWidget

    from app.launch import Viewer
    from app.main_window import MainWindow

XVFB_HINT = "Offscreen rendering is not available here; run the command under `xvfb-run -a python main.py demo --headless --out DIR`."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--headless", action="store_true", help="render to PNG files instead of opening a window"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo_screenshots"), help="output folder for --headless"
    )
    parser.add_argument(
        "--size", default="1400x900", help="window size WxH for --headless (default 1400x900)"
    )
    parser.add_argument(
        "--segment", action="store_true", help="segment the demo lungs with LiteMedSAM from boxes (slower)"
    )


def _panel(dock: QDockWidget) -> QWidget:
    """The panel in a dock, the whole of it even where the dock scrolls it (a short window)."""
    from PySide6.QtWidgets import QScrollArea

    widget = dock.widget()
    inner = widget.widget() if isinstance(widget, QScrollArea) else None
    return inner or widget


def _blank(pixels: np.ndarray) -> bool:
    return pixels.size == 0 or float(pixels.std()) < 1.0


def run(args: argparse.Namespace) -> int:
    from app.application import headless_environment

    offscreen = headless_environment()
    if not args.headless:
        if offscreen:
            print("No display found: use --headless --out DIR, or run under `xvfb-run -a`.", file=sys.stderr)
            return 2
        from app.launch import run_viewer

        return run_viewer(None, demo=True)
    if offscreen:
        from app.application import offscreen_rendering_works

        if not offscreen_rendering_works():
            print(XVFB_HINT, file=sys.stderr)
            return 2
    return _render(args, offscreen)


def _render(args: argparse.Namespace, offscreen: bool) -> int:
    from app.launch import DEMO_CT, DEMO_CXR, build_viewer, wait_idle
    from app.screenshot import save_array, save_window
    from inference.settings import Settings

    width, height = (int(v) for v in str(args.size).lower().split("x"))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(deidentify_display=True)  # screenshots never show identifiers
    viewer = build_viewer(settings)
    app, window = viewer.app, viewer.window
    window.context.loader.remember_recent = False
    window.error_sink = lambda message: print(f"error: {message}", file=sys.stderr)
    window.resize(width, height)
    window.show()
    app.processEvents()
    window.open_path(DEMO_CT)
    if not wait_idle(window) or window.document.volume is None:
        print("error: the demo CT could not be loaded", file=sys.stderr)
        return 1
    app.processEvents()
    window.reset_views()
    written: list[Path] = []
    shots = {name: view.grab_array() for name, view in window.views.items()}
    shots["3d"] = window.grid.view_3d.grab_array()
    if all(_blank(p) for p in shots.values()):
        print(XVFB_HINT if offscreen else "error: rendering produced blank images", file=sys.stderr)
        return 1
    for name, pixels in shots.items():
        save_array(pixels, out / f"demo_{name}.png")
        written.append(out / f"demo_{name}.png")
    save_window(window, out / "demo_window.png")
    written.append(out / "demo_window.png")
    if DEMO_CXR.is_file():
        window.open_path(DEMO_CXR)
        if wait_idle(window) and window.document.volume is not None and window.document.volume.is_2d:
            app.processEvents()
            save_window(window, out / "demo_xray_window.png")
            written.append(out / "demo_xray_window.png")
    written += render_clinical(viewer, out, getattr(args, "segment", False))
    _report_pdf(viewer, out, written)
    written += render_what_if(viewer, out)
    window.close()
    for path in written:
        print(path)
    return 0


def _wait(window: MainWindow, seconds: float = 600.0) -> bool:
    from app.launch import wait_idle

    return wait_idle(window, seconds)


def render_clinical(viewer: Viewer, out: Path, segment: bool = False) -> list[Path]:
    """Open the demo X-ray case, (segment,) predict and explain, then save every clinical panel."""
    from PySide6.QtWidgets import QApplication

    from app.clinical_install import DEMO_CASE
    from app.screenshot import save_array, save_window

    window, ws = viewer.window, viewer.clinical
    if not DEMO_CASE.is_dir():
        return []
    window.open_path(DEMO_CASE)
    _wait(window)
    if ws.model.case is None:
        print("error: the demo case could not be opened", file=sys.stderr)
        return []
    if segment:
        _segment_lungs(viewer)
    if ws.controller.predictor_available():
        ws.controller.predict()
        _wait(window)
        _wait(window)  # explanation follows the prediction
    QApplication.processEvents()
    written: list[Path] = _show_weighted_x_rays(viewer, out)
    for name in ("prediction", "explanation", "ehr", "timeline", "audit"):
        dock = window.panels[name]
        dock.show()
        dock.raise_()
        QApplication.processEvents()
        if name == "audit":
            ws.audit.verify()
        path = out / f"clinical_{name}.png"
        _panel(dock).grab().save(str(path))
        written.append(path)
    window.views["axial"].refresh()
    save_array(window.views["axial"].grab_array(), out / "clinical_overlay.png")
    written.append(out / "clinical_overlay.png")
    window.panels["prediction"].raise_()
    QApplication.processEvents()
    save_window(window, out / "clinical_window.png")
    written.append(out / "clinical_window.png")
    ws.tour.start()
    ws.tour.next()
    ws.tour.next()
    QApplication.processEvents()
    save_window(window, out / "clinical_tour.png")
    written.append(out / "clinical_tour.png")
    ws.tour.close_tour()
    return written


def _show_weighted_x_rays(viewer: Viewer, out: Path) -> list[Path]:
    """The X-ray that counts least, when its heat-map is greyed (``clinical_overlay_greyed.png``), then the
    one that counts most stays on screen for the other screenshots."""
    from PySide6.QtWidgets import QApplication

    from app.screenshot import save_array

    window, ws = viewer.window, viewer.clinical
    weights = ws.model.explanation.time_weights if ws.model.explanation is not None else {}
    if len(weights) < 2:
        return []
    least, most = min(weights, key=lambda k: weights[k]), max(weights, key=lambda k: weights[k])
    written = []
    ws.controller.show_image(least)
    _wait(window)
    QApplication.processEvents()
    if ws.overlay.grey:
        window.views["axial"].refresh()
        save_array(window.views["axial"].grab_array(), out / "clinical_overlay_greyed.png")
        written.append(out / "clinical_overlay_greyed.png")
    ws.controller.show_image(most)
    _wait(window)
    QApplication.processEvents()
    return written


def _segment_lungs(viewer: Viewer) -> None:
    """One box per lung (boxes taken from the bundled masks), as a clinician would draw them, through the
    viewer's own segmentation session (its model and embedding cache), shown as two labels."""
    ws, labels = viewer.clinical, viewer.window.context.labels
    session = viewer.segmentation.controller.session
    image = ws.model.selected
    ref = ws.model.masks.get(image.filename) if image is not None else None
    if ref is None or image is None or session is None or session.volume is None:
        return
    ys, xs = np.nonzero(ref)
    mid = (xs.min() + xs.max()) / 2
    for label, side in (("right lung", xs < mid), ("left lung", xs >= mid)):
        box = [xs[side].min(), ys[side].min(), xs[side].max(), ys[side].max()]
        name = labels.add_label(label)
        labels.run_gesture("box", name, partial(session.add_box, 0, box, name), session)
    labels.changed.emit()  # drawn on the image; the case gets the union of both lungs as one AI mask below
    mask = session.mask_for("right lung")[0] | session.mask_for("left lung")[0]
    ws.controller.set_ai_mask(image.filename, mask)


def render_what_if(viewer: Viewer, out: Path) -> list[Path]:
    """A clinician's what-if (SpO₂ 85 → 99 %): the panels mark it, the audit logs it, the report states it."""
    from PySide6.QtWidgets import QApplication

    window, ws = viewer.window, viewer.clinical
    name = "pO2_saturation"
    if ws.model.case is None or ws.model.prediction is None or ws.model.ehr[name].missing:
        return []
    ws.controller.edit_ehr(name, 99.0)
    ws.controller.predict()
    _wait(window)
    _wait(window)  # the explanation of the what-if prediction follows
    written: list[Path] = []
    for panel, filename in (("prediction", "clinical_whatif_prediction"), ("ehr", "clinical_whatif_ehr"),
                            ("audit", "clinical_audit")):
        dock = window.panels[panel]
        dock.show()
        dock.raise_()
        QApplication.processEvents()
        if panel == "audit":
            ws.audit.verify()
        path = out / f"{filename}.png"
        _panel(dock).grab().save(str(path))
        written.append(path)
    _report_pdf(viewer, out, written, "demo_report_whatif.pdf")
    window.panels["prediction"].raise_()
    return written


def _report_pdf(viewer: Viewer, out: Path, written: list[Path], name: str = "demo_report.pdf") -> None:
    """The PDF report of the demo case (key image with heat-map, predictions, audit summary)."""
    try:
        from app.controllers.report_builder import ReportInputs, build_report
        from inference.export import report as rp
    except ImportError:
        return
    window, ws = viewer.window, viewer.clinical
    vol = window.document.volume
    if ws.model.case is None or vol is None or not vol.is_2d:
        return
    content = build_report(ReportInputs(
        volume=vol, study=window.document.study_info(), deidentified=True, clinical_model=ws.model,
        audit=ws.controller.audit, title="MedFusion Viewer — demo case report",
        notes="Demo case: the patient is part of the model's development data (in-sample prediction).",
    ))
    try:
        path = rp.write_report(content, out / name)
    except Exception as exc:  # noqa: BLE001 - the screenshots still count
        print(f"warning: no PDF report ({exc})", file=sys.stderr)
        return
    written.append(Path(path))
