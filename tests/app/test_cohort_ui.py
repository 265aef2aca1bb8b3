"""The shared CXR cohort in the real window: the patient list (outcomes hidden), sort and search, a patient
opened by double-click as the clinical case with its X-rays as browser tiles, and its X-rays compared with
an earlier one (day vs day, zoom/pan linked). A malformed table is one sentence, not a list."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from app.widgets.patient_list import COLUMNS
from tests.app.browser_helpers import (
    click_header,
    double_click_item,
    double_click_row,
    install,
    screenshot,
    wait_idle,
)

# Patient 87: three PA X-rays on days 0, 7 and 35, all redistributable (Radiopaedia, CC BY-NC-SA), so the
# screenshots may be shown in the docs.
PATIENT = "87"
OUTCOME_WORDS = ("icu", "intubat", "surviv", "death", "died", "o2", "finding", "covid", "pneumonia", "notes")


def _wheel(widget: QWidget, steps: int, modifiers: Qt.KeyboardModifier) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def _table_texts(panel) -> list[list[str]]:  # noqa: ANN001 - PatientListPanel
    proxy = panel.proxy
    return [[str(proxy.index(r, c).data() or "") for c in range(proxy.columnCount())] for r in range(proxy.rowCount())]


def test_cohort_lists_patients_and_opens_one_as_the_case(window, qtbot, tmp_path, cxr_dir: Path,  # noqa: ANN001
                                                         messages: list[str]) -> None:
    with open(cxr_dir / "metadata.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    patient_ids = {r["patientid"].strip() for r in rows}
    ws = install(window, tmp_path)
    window.resize(1500, 950)
    window.open_path(cxr_dir)  # used to fail: "metadata.csv holds several patients"
    qtbot.waitUntil(lambda: ws.browser.cohort_model.cohort is not None, timeout=60000)
    wait_idle(qtbot, window)
    panel = ws.browser.patients
    assert messages == [] and window.panels["patients"].isVisible()
    assert window.context.case.case is None  # nothing opened by itself: the user picks a patient
    # every patient once, outcomes hidden: no column, header or cell says anything about them
    texts = _table_texts(panel)
    assert len(texts) == len(patient_ids) == 233 and set(panel.visible_ids()) == patient_ids
    headers = [str(panel.proxy.headerData(c, Qt.Orientation.Horizontal)) for c in range(panel.proxy.columnCount())]
    assert headers == list(COLUMNS)
    shown = " ".join(" ".join(row) for row in texts).lower() + " ".join(headers).lower()
    assert not [w for w in OUTCOME_WORDS if w in shown]
    assert "outcomes" in panel.summary.text().lower() and "233 patients" in panel.summary.text()
    # ids sort as numbers; a click on "Age" sorts by age as a number
    ids = panel.visible_ids()
    numeric = [float(i) for i in ids if i.replace(".", "", 1).isdigit()]
    assert len(numeric) > 100 and [float(i) for i in ids[:len(numeric)]] == sorted(numeric)  # 2 before 10
    click_header(panel.table, COLUMNS.index("Age"))
    ages = [float(row[2]) for row in _table_texts(panel) if row[2] != "—"]
    assert len(ages) > 100 and (ages == sorted(ages) or ages == sorted(ages, reverse=True))
    # search, then double-click the patient
    QTest.keyClicks(panel.search, PATIENT)
    visible = panel.visible_ids()
    assert PATIENT in visible and len(visible) < 233 and f"of {len(patient_ids)} patients" in panel.summary.text()
    row = visible.index(PATIENT)
    double_click_row(panel.table, row)
    wait_idle(qtbot, window)
    case = window.context.case.case
    assert messages == [] and case is not None and case.patient_id == PATIENT and case.cohort
    listed = sorted((float(r["offset"]), r["filename"]) for r in rows if r["patientid"].strip() == PATIENT)
    assert [(im.offset, im.filename) for im in case.images] == listed
    assert Path(str(window.document.volume.source)).name == listed[0][1]  # the first day is shown
    assert f"open: patient {PATIENT}" in panel.summary.text()
    # the series browser lists the patient's X-rays by day, with thumbnails
    browser = ws.browser.model
    qtbot.waitUntil(lambda: len(browser.thumbnails) == len(listed), timeout=60000)
    assert browser.source.kind == "case" and [e.when_text for e in browser.entries] == ["day 0", "day 7", "day 35"]
    tree = ws.browser.panel.tree
    assert PATIENT in tree.topLevelItem(0).text(0)
    window.document.set_deidentify(True)  # de-identified, the case's patient is hidden as in the EHR panel
    assert tree.topLevelItem(0).text(0) == "Patient (hidden)" and PATIENT not in ws.browser.panel.title.text()
    window.document.set_deidentify(False)
    selected = panel.table.selectionModel().selectedRows()
    assert [panel.patient_at(i.row()) for i in selected] == [PATIENT]  # the open patient is highlighted
    window.panels["patients"].raise_()
    panel.search.clear()
    click_header(panel.table, COLUMNS.index("Patient"))
    QApplication.processEvents()
    assert panel.select(PATIENT)
    QApplication.processEvents()
    screenshot(window, "cohort_patient_list", tmp_path)

    # the last X-ray against the one before it: days, not dates; 2-D images: zoom/pan linked to each fit
    double_click_item(ws.browser.panel.tree, ws.browser.panel.items[listed[-1][1]])
    wait_idle(qtbot, window)
    assert Path(str(window.document.volume.source)).name == listed[-1][1]
    window.actions["compare_prior"].trigger()
    wait_idle(qtbot, window)
    view, model = ws.comparison.view(), ws.comparison.model
    assert Path(str(model.prior.volume.source)).name == listed[-2][1]
    assert "day 35" in view.current.caption.text() and "X-ray PA" in view.current.caption.text()
    assert "day 7" in view.prior.caption.text() and "(28 days earlier)" in view.prior.caption.text()
    assert "zoom/pan linked" in view.mode_label.text()
    _wheel(view.current.view.vtk_widget, +2, Qt.KeyboardModifier.ControlModifier)
    qtbot.wait(20)
    relative = [side.view.renderer.GetActiveCamera().GetParallelScale() / view._fit_scale(side.view)
                for side in (view.current, view.prior)]
    assert relative[0] < 0.85 and relative[1] == pytest.approx(relative[0], rel=0.02)
    for side in (view.current, view.prior):
        side.view.reset_camera()
    window.panels["series"].raise_()  # the tiles show which X-ray is current and which is the prior
    window.resizeDocks([window.panels["series"]], [300], Qt.Orientation.Horizontal)  # room for the images
    QApplication.processEvents()
    view.equalise()
    for side in (view.current, view.prior):
        side.view.reset_camera()
    QApplication.processEvents()
    screenshot(window, "prior_comparison_cxr", tmp_path)
    assert messages == []


def test_a_malformed_cohort_table_is_one_sentence(window, qtbot, tmp_path, messages: list[str]) -> None:  # noqa: ANN001
    folder = tmp_path / "cohort"
    (folder / "images").mkdir(parents=True)
    (folder / "metadata.csv").write_text('patientid,filename\n1,a.jpg\n2,"b.jpg"x\n', encoding="utf-8")
    ws = install(window, tmp_path)
    window.open_path(folder)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: bool(messages), timeout=10000)
    assert len(messages) == 1 and "not a valid CSV table" in messages[0] and "Traceback" not in messages[0]
    assert ws.browser.cohort_model.cohort is None and window.context.case.case is None


def test_a_session_of_a_cohort_patient_reopens_that_patient(window, qtbot, tmp_path, cxr_dir: Path,  # noqa: ANN001
                                                            messages: list[str]) -> None:
    from app.export_install import install_export
    from tests.app.test_export_ui import attach_labels

    attach_labels(window)
    ws = install(window, tmp_path)
    export = install_export(window, recovery_dir=tmp_path / "recovery")
    window.open_path(cxr_dir)
    qtbot.waitUntil(lambda: ws.browser.cohort_model.cohort is not None, timeout=60000)
    assert ws.browser.cohort.open_patient(PATIENT)
    wait_idle(qtbot, window)
    clinical = ws.clinical
    clinical.controller.show_image(clinical.model.case.images[1].filename)  # day 7
    wait_idle(qtbot, window)
    name = next(k for k, v in clinical.model.ehr.items() if v.field.numeric)
    clinical.controller.edit_ehr(name, 37.5)
    path = export.session.save_session(tmp_path / "work")
    assert path is not None and messages == []
    assert ws.browser.cohort.open_patient("17")  # another patient of the cohort
    wait_idle(qtbot, window)
    assert window.context.case.case.patient_id == "17"
    assert export.session.open_session(path)  # back to patient 87 (not the cohort's list, not patient 17)
    qtbot.waitUntil(lambda: clinical.model.case.patient_id == PATIENT and clinical.model.ehr[name].edited,
                    timeout=60000)
    wait_idle(qtbot, window)
    assert clinical.model.ehr[name].value == 37.5
    assert Path(str(window.document.volume.source)).name == clinical.model.case.images[1].filename
    assert messages == []
