"""Acceptance: the doctor-in-the-loop cycle on the bundled demo case, through the real main window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.clinical_install import DEMO_CASE, install_clinical
from app.widgets.ehr_panel import FLAG_COLUMN
from inference.audit.log import AuditLog
from tests.app.clinical_fakes import TinyCasePredictor

pytestmark = pytest.mark.skipif(not DEMO_CASE.is_dir(), reason="demo case not bundled")


@pytest.fixture(scope="module")
def seg_backend():  # noqa: ANN201 - LiteMedSAM backend, loaded once
    from inference.segmentation.litemedsam_backend import LiteMedSAMBackend

    return LiteMedSAMBackend.load("cpu")


@pytest.fixture
def workspace(window, tmp_path: Path):  # noqa: ANN001, ANN201
    ws = install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    return ws


def _wait(qtbot, window) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.wait(30)


def test_whole_loop_on_demo_case(window, workspace, qtbot, seg_backend) -> None:  # noqa: ANN001
    from inference.segmentation.session import SegmentationSession

    model, ctl = workspace.model, workspace.controller
    window.open_path(DEMO_CASE)
    _wait(qtbot, window)
    assert model.case is not None and model.case.patient_id == "178"
    assert [im.offset for im in model.case.images] == sorted(im.offset for im in model.case.images)
    assert window.document.volume is not None and window.document.volume.is_2d
    assert model.ehr["pO2_saturation"].flag == "low" and model.ehr["lymphocyte_count"].missing
    first = model.case.images[0]

    # segment (box) with the real LiteMedSAM session, around the right lung of the bundled reference mask
    session = SegmentationSession(seg_backend)
    session.set_image(window.document.volume)
    ref = model.masks[first.filename]
    ys, xs = np.nonzero(ref)
    left = xs < (xs.min() + xs.max()) / 2
    session.add_box(0, [xs[left].min(), ys[left].min(), xs[left].max(), ys[left].max()], "lung")
    ai_mask = session.mask_for("lung")[0]
    assert ai_mask.sum() > 1000
    ctl.set_ai_mask(first.filename, ai_mask)

    # predict (+ explanation) on the worker
    ctl.predict()
    _wait(qtbot, window)
    _wait(qtbot, window)  # the explanation follows the prediction
    pred = model.prediction
    assert pred is not None and not pred.stale and set(pred.outcomes) >= {"went_icu", "death"}
    panel_text = workspace.prediction.text()
    assert "set {" not in panel_text and ("confidence" in panel_text or "unusual case" in panel_text)
    assert model.explanation is not None and first.filename in model.explanation.heatmaps
    assert workspace.overlay.actor.GetVisibility()
    workspace.explanation.show_box.setChecked(False)
    plain = window.views["axial"].grab_array()
    workspace.explanation.show_box.setChecked(True)
    shown = window.views["axial"].grab_array()
    assert shown.shape == plain.shape and np.abs(shown.astype(int) - plain.astype(int)).max() > 30

    # a human edits the mask: prediction stale, Dice AI vs final logged
    edited = ai_mask.copy()
    edited[: edited.shape[0] // 2] = 0
    before = pred.summary()
    score = ctl.edit_mask(first.filename, edited)
    assert 0.0 < score < 1.0
    assert model.prediction.stale and workspace.prediction.stale_label.isVisibleTo(workspace.prediction)

    # re-predict: fresh, and the log holds both outputs and the edit, with an intact chain
    ctl.predict()
    _wait(qtbot, window)
    _wait(qtbot, window)
    assert not model.prediction.stale
    entries = AuditLog(ctl.audit.path).entries()
    actions = [e["action"] for e in entries]
    assert actions.count("prediction") == 2 and "mask_edit" in actions and "ai_mask" in actions
    edit = next(e for e in entries if e["action"] == "mask_edit")
    assert edit["details"]["dice_ai_vs_final"] == pytest.approx(score)
    last = [e for e in entries if e["action"] == "prediction"][-1]
    assert last["details"]["before"] == before
    assert last["details"]["edited_masks"] == [first.filename]
    assert ctl.audit.verify() == (True, None)
    assert workspace.audit.verify()
    workspace.audit.refresh()
    assert workspace.audit.table.rowCount() == len(entries)


def test_ehr_what_if_reset_and_tour(window, workspace, qtbot, monkeypatch) -> None:  # noqa: ANN001
    from PySide6.QtCore import Qt

    model, ctl = workspace.model, workspace.controller
    window.open_path(DEMO_CASE)
    _wait(qtbot, window)
    ctl.predict(explain=False)
    _wait(qtbot, window)
    p0 = model.prediction.summary()
    # what-if through the table: typing a value marks it edited and the prediction stale
    row = list(model.ehr).index("pO2_saturation")
    workspace.ehr.table.item(row, 0).setText("97")
    assert model.ehr["pO2_saturation"].edited and model.ehr["pO2_saturation"].flag == ""
    assert "what-if (recorded 85 %)" in workspace.ehr.table.item(row, FLAG_COLUMN).text()
    assert model.prediction.stale
    ctl.predict(explain=False)
    _wait(qtbot, window)
    assert model.prediction.summary() != p0  # the model saw the new value
    # auto re-predict (Settings.auto_repredict): an edit starts a fresh prediction by itself
    window.settings.auto_repredict = True
    calls = ctl.predictor.calls
    ctl.edit_ehr("temperature", 36.8)
    _wait(qtbot, window)
    assert ctl.predictor.calls == calls + 1 and not model.prediction.stale
    # TENT asks first, then shows both results
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    workspace.prediction.tent_box.setChecked(True)
    _wait(qtbot, window)
    assert model.prediction.tent and model.prediction.without_tent is not None
    assert "without adaptation" in workspace.prediction.text()
    assert [e["action"] for e in ctl.audit.entries()].count("tent") == 1
    # reset restores the initial state
    ctl.reset()
    _wait(qtbot, window)
    assert model.prediction is None and not any(v.edited for v in model.ehr.values())
    assert not ctl.tent and not workspace.prediction.tent_box.isChecked()
    # the timeline strip: click a day to view it
    last = model.case.images[-1]
    workspace.timeline.buttons[last.filename].click()
    _wait(qtbot, window)
    assert model.selected == last and Path(window.document.volume.source).name == last.filename
    # the tour never traps: Esc closes it
    workspace.tour.start()
    assert workspace.tour.isVisible()
    workspace.tour.next()
    qtbot.keyClick(workspace.tour, Qt.Key.Key_Escape)
    assert not workspace.tour.isVisible()
    assert {"predict", "reset_case", "full_screen", "tour"} <= set(window.actions)
