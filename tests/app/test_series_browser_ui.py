"""Series browser in the real window: a folder's and a DICOMDIR's patients / studies / series with thumbnails
made in the background, a "could not read" tile, double-click and drag to open, stale work dropped, cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.widgets.series_browser import SERIES_MIME, decode_series_mime
from tests.app.browser_data import DEMO_CT, sample_disc, two_studies
from tests.app.browser_helpers import double_click_item, install, screenshot, wait_idle


def _tiles_done(ws) -> bool:  # noqa: ANN001
    model = ws.browser.model
    return bool(model.entries) and len(model.thumbnails) + len(model.errors) == len(model.entries)


def test_folder_of_two_studies_lists_tiles_and_opens_by_double_click(window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    data = two_studies(tmp_path)
    ws = install(window, tmp_path)
    asked: list[int] = []

    def choose(series: list, path: Path) -> tuple[str, None]:
        asked.append(len(series))
        return data.current.series_uid, None

    monkeypatch.setattr(window, "choose_series", choose)
    window.open_path(data.folder)  # several series: the usual picker is asked; the browser lists them all
    qtbot.waitUntil(lambda: _tiles_done(ws), timeout=60000)
    wait_idle(qtbot, window)
    model, panel = ws.browser.model, ws.browser.panel
    assert asked == [4] and window.document.volume.info.series_instance_uid == data.current.series_uid
    assert model.source.kind == "folder" and model.status == "4 series"
    # one patient, two studies (newest first), the series under their study
    tree = panel.tree
    assert tree.topLevelItemCount() == 1
    patient = tree.topLevelItem(0)
    assert "P1" in patient.text(0)
    studies = [patient.child(i) for i in range(patient.childCount())]
    assert [s.text(0).split(" · ")[0] for s in studies] == ["2024-03-01", "2023-01-10"]
    assert sorted(studies[1].child(i).text(0).splitlines()[0] for i in range(studies[1].childCount())) == [
        "CT  #1 Chest", "CT  #2 Soft tissue"]
    # thumbnails for the readable series, a "could not read" tile (reason in the tooltip) for the broken one
    assert set(model.thumbnails) == {data.prior.series_uid, data.prior_soft.series_uid, data.current.series_uid}
    broken = panel.items[data.broken.series_uid]
    assert "could not read" in broken.text(0) and "truncated or corrupt" in broken.toolTip(0)
    assert model.thumbnails[data.prior.series_uid].pixels.shape[0] == 128
    assert "8 images · 2024-03-01" in panel.items[data.current.series_uid].text(0)
    # the series on screen is marked; a double-click opens another one
    assert model.current_key == data.current.series_uid and panel.items[model.current_key].font(0).bold()
    double_click_item(tree, panel.items[data.prior_soft.series_uid])
    wait_idle(qtbot, window)
    assert window.document.volume.info.series_instance_uid == data.prior_soft.series_uid
    assert model.current_key == data.prior_soft.series_uid and asked == [4]  # no picker: the browser chose
    screenshot(window, "series_browser_folder", tmp_path)


def test_a_new_folder_drops_the_old_folders_work_and_thumbnails_are_cached(window, qtbot, tmp_path) -> None:  # noqa: ANN001
    first, second = two_studies(tmp_path / "a"), two_studies(tmp_path / "b")
    ws = install(window, tmp_path)
    controller, model = ws.browser.controller, ws.browser.model
    controller.browse(first.folder)
    qtbot.waitUntil(lambda: bool(model.entries), timeout=30000)
    controller.browse(second.folder)  # while the first folder's thumbnails are on their way
    qtbot.waitUntil(lambda: _tiles_done(ws), timeout=60000)
    wait_idle(qtbot, window)
    keys_b = {second.prior.series_uid, second.prior_soft.series_uid, second.current.series_uid,
              second.broken.series_uid}
    assert model.source.path == second.folder and {e.key for e in model.entries} == keys_b
    assert set(model.thumbnails) | set(model.errors) == keys_b  # nothing of the first folder leaked in
    controller.browse(first.folder)
    qtbot.waitUntil(lambda: _tiles_done(ws), timeout=60000)
    wait_idle(qtbot, window)
    started = controller.jobs_started
    controller.browse(second.folder)  # seen before: tiles come from the cache, no new work
    qtbot.waitUntil(lambda: len(model.thumbnails) == 3, timeout=30000)
    wait_idle(qtbot, window)
    assert controller.jobs_started == started + 1  # only the broken series is tried again (errors are not cached)


@pytest.mark.skipif(not DEMO_CT.is_dir(), reason="demo CT not bundled")
def test_dicomdir_shows_patients_studies_and_series(window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    pytest.importorskip("pydicom.data")
    dicomdir, broken_uid = sample_disc(tmp_path)
    ws = install(window, tmp_path)
    window.resize(1500, 950)
    monkeypatch.setattr(window, "choose_series", lambda series, path: next(
        (s.series_uid, None) for s in series if s.modality == "CT"))
    window.open_path(dicomdir)
    qtbot.waitUntil(lambda: _tiles_done(ws), timeout=120000)
    wait_idle(qtbot, window)
    model, panel = ws.browser.model, ws.browser.panel
    assert model.source.kind == "dicomdir"
    tree = panel.tree
    patients = sorted(tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount()))
    assert len(patients) == 4 and any("DEMO-CT" in p for p in patients)
    assert set(model.errors) == {broken_uid}
    assert {e.modality for e in model.entries if e.key in model.thumbnails} == {"CT", "CR", "MR", "US"}
    ct = next(e for e in model.entries if e.modality == "CT")
    assert ct.n_images == 20 and model.current_key == ct.key and window.document.volume.shape[0] == 20
    # de-identification hides names and dates in the browser too
    window.document.set_deidentify(True)
    assert all(tree.topLevelItem(i).text(0) == "Patient (hidden)" for i in range(tree.topLevelItemCount()))
    assert "2022-12-08" not in panel.items[ct.key].text(0)
    window.document.set_deidentify(False)
    window.panels["series"].raise_()
    window.resizeDocks([window.panels["series"]], [360], Qt.Orientation.Horizontal)
    QApplication.processEvents()
    screenshot(window, "series_browser", tmp_path)


def test_a_tile_dragged_onto_the_views_opens_there(window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    data = two_studies(tmp_path)
    ws = install(window, tmp_path)
    monkeypatch.setattr(window, "choose_series", lambda series, path: (data.current.series_uid, None))
    window.open_path(data.folder)
    qtbot.waitUntil(lambda: _tiles_done(ws), timeout=60000)
    wait_idle(qtbot, window)
    panel = ws.browser.panel
    mime = panel.tree.mimeData([panel.items[data.prior.series_uid]])
    assert mime.hasFormat(SERIES_MIME) and decode_series_mime(mime)["series_uid"] == data.prior.series_uid
    view = window.views["axial"].vtk_widget
    pos = QPointF(view.mapTo(window, QPoint(view.width() // 2, view.height() // 2)))
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    wait_idle(qtbot, window)
    assert window.document.volume.info.series_instance_uid == data.prior.series_uid


@pytest.mark.skipif(not DEMO_CT.is_dir(), reason="demo CT not bundled")
def test_browse_a_disc_folder_lists_its_dicomdir_without_opening(window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QFileDialog

    pytest.importorskip("pydicom.data")
    dicomdir, _broken = sample_disc(tmp_path)
    ws = install(window, tmp_path)
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: asked.append("dir") or str(dicomdir.parent))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: asked.append("file") or ("", ""))
    window.actions["browse_series"].trigger()  # File > Browse series…: the disc's root folder
    qtbot.waitUntil(lambda: _tiles_done(ws), timeout=120000)
    wait_idle(qtbot, window)
    model = ws.browser.model
    assert asked == ["dir"] and model.source.kind == "dicomdir" and model.source.path == dicomdir
    assert len(model.entries) == 5 and window.document.volume is None  # listed, nothing opened
    ws.browser.controller.browse_chosen(tmp_path / "nothing-here")  # a folder that does not exist: one sentence
    wait_idle(qtbot, window)
    assert model.entries == [] and model.status.startswith("'nothing-here' does not exist")


def test_folder_is_listed_once_the_opened_image_is_shown(window, qtbot, tmp_path) -> None:  # noqa: ANN001
    """The browser's header scan and thumbnails wait for the load (they competed with it for the cores and
    delayed the first image at start-up); the folder is still listed, with the open series marked."""
    ws = install(window, tmp_path)
    events: list[str] = []
    submit = window.runner.submit

    def recording(channel, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        events.append(f"submit {channel}")
        return submit(channel, fn, *args, **kwargs)

    window.runner.submit = recording  # type: ignore[method-assign]
    window.document.volume_changed.connect(lambda _v: events.append("image"))
    window.open_path(DEMO_CT)
    qtbot.waitUntil(lambda: _tiles_done(ws), timeout=60000)
    wait_idle(qtbot, window)
    assert events.index("submit load") < events.index("image") < events.index("submit browser_scan")
    assert events.index("submit browser_scan") < events.index("submit thumbnails")
    model = ws.browser.model
    assert model.status == "1 series" and model.current_key == model.entries[0].key  # the open series is marked
