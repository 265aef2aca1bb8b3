"""Measurements in saved sessions (and the recovery file), in older session files, and in the PDF report."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.export_install import ExportWorkspace, install_export
from app.main_window import MainWindow
from app.measurements_install import MeasurementsWorkspace, install_measurements
from inference.persistence import load_session
from inference.settings import Settings
from tests.app.mouse import drag
from tests.app.test_export_ui import wait_for_autosave

Z = 33


def _wait(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.wait(30)


def _setup(qtbot, window: MainWindow, tmp_path: Path, image: Path) -> tuple[ExportWorkspace, MeasurementsWorkspace]:  # noqa: ANN001
    export = install_export(window, recovery_dir=tmp_path / f"recovery-{id(window)}")
    measure = install_measurements(window)
    window.open_path(image)
    _wait(qtbot, window)
    window.document.set_cursor((256, 300, Z))
    return export, measure


def _draw(window: MainWindow) -> None:
    axial = window.views["axial"]
    window.activate_tool("measure_ruler")
    drag(axial, (150.0, 200.0, Z), (330.0, 280.0, Z))
    window.activate_tool("measure_ellipse")
    drag(axial, (203.4, 344.6, Z), (232.1, 371.3, Z))


def _rewrite(src: Path, dst: Path, edit) -> Path:  # noqa: ANN001
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "state.json":
                header = json.loads(data)
                edit(header)
                data = json.dumps(header).encode()
            zout.writestr(info.filename, data)
    return dst


def test_measurements_survive_save_restore_and_old_files_still_open(
        qtbot, window: MainWindow, tmp_path: Path, lung1_dir: Path, messages: list[str]) -> None:  # noqa: ANN001
    image = lung1_dir / "image.nrrd"
    export, measure = _setup(qtbot, window, tmp_path, image)
    _draw(window)
    saved = [(m.kind, m.points) for m in measure.model.items()]
    values = [measure.controller.value(m).summary for m in measure.model.items()]  # type: ignore[union-attr]
    assert [k for k, _ in saved] == ["ruler", "ellipse"]

    # the recovery file followed the two gestures (written on a later event-loop turn)
    def both_measurements(state) -> None:  # noqa: ANN001 - SessionState
        assert len(state.sections["measurements"]["items"]) == 2

    wait_for_autosave(qtbot, export, both_measurements)

    path = export.session.save_session(tmp_path / "case.mfsession")
    assert path is not None
    assert [r["kind"] for r in load_session(path).sections["measurements"]["items"]] == ["ruler", "ellipse"]

    second = MainWindow(Settings(), settings_path=tmp_path / "settings2.json")
    qtbot.addWidget(second)
    second.show()
    export2 = install_export(second, recovery_dir=tmp_path / "recovery2")
    measure2 = install_measurements(second)
    assert export2.session.open_session(path)
    _wait(qtbot, second)
    qtbot.waitUntil(lambda: len(measure2.model) == 2, timeout=10000)
    assert [(m.kind, m.points) for m in measure2.model.items()] == saved
    assert [measure2.controller.value(m).summary for m in measure2.model.items()] == values  # type: ignore[union-attr]
    second.document.set_cursor((256, 300, Z))
    assert len(measure2.overlays["axial"].shown_ids) == 2

    # a session written before measurements existed (no "sections") opens and leaves them alone
    old = _rewrite(path, tmp_path / "old.mfsession", lambda h: h.pop("sections"))
    assert "sections" not in json.loads(zipfile.ZipFile(old).read("state.json"))
    assert export2.session.open_session(old)
    _wait(qtbot, second)
    assert not second.errors and len(measure2.model) == 2

    # a damaged measurement is left out, the others come back
    def damage(header: dict) -> None:
        header["sections"]["measurements"]["items"][0]["points"] = [[1, 2], "x"]

    bad = _rewrite(path, tmp_path / "bad.mfsession", damage)
    measure2.model.clear()
    assert export2.session.open_session(bad)
    _wait(qtbot, second)
    assert [m.kind for m in measure2.model.items()] == ["ellipse"] and not second.errors
    second.close()


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
def test_pdf_report_lists_the_measurements(qtbot, window: MainWindow, tmp_path: Path, lung1_dir: Path) -> None:  # noqa: ANN001
    export, measure = _setup(qtbot, window, tmp_path, lung1_dir / "image.nrrd")
    _draw(window)
    written: list[Path] = []
    export.controller.export_report(tmp_path / "report.pdf", on_done=written.append)
    _wait(qtbot, window)
    assert written, window.errors
    text = subprocess.run(["pdftotext", "-layout", str(written[0]), "-"], capture_output=True, text=True,
                          check=True).stdout
    ruler, ellipse = measure.model.items()
    length = measure.controller.value(ruler).numbers["length"]  # type: ignore[union-attr]
    roi = measure.controller.value(ellipse).numbers  # type: ignore[union-attr]
    assert "Measurements and annotations" in text
    assert f"{length:.1f} mm" in text and "Axial 34/48" in text
    assert f"mean {roi['mean']:.0f} HU" in " ".join(text.split())
    assert np.isfinite(roi["sd"])
