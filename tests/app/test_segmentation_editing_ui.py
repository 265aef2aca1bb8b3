"""Editing labels with the real LiteMedSAM: brush/eraser and origins, labels that never overwrite each
other, save + re-open, the clinical case's lung mask as an editable label, the labels model's contract and
the bounded undo memory. The model loads once per module (tests/app/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.launch import DEMO_CXR
from app.main_window import MainWindow
from app.segmentation_install import SegmentationWorkspace
from tests.app.segmentation_gestures import (
    LUNG_BOX,
    box_prompt,
    drag,
    open_and_wait,
    wait_idle,
)


def test_brush_eraser_origins_and_labels_never_overwrite_each_other(qtbot, seg: MainWindow, workspace: SegmentationWorkspace) -> None:  # noqa: ANN001
    window, labels, controller = seg, seg.context.labels, workspace.controller
    open_and_wait(qtbot, window, DEMO_CXR)
    view = window.views["axial"]
    controller.brush_radius = 12
    window.activate_tool("seg_brush")
    drag(view, (100.0, 700.0), (400.0, 700.0))  # below the lungs: a hand-drawn label
    a = labels.mask_for("Label 1")[0].astype(bool)
    assert a[700, 100:400].all() and not a[600].any() and labels.origin("Label 1") == "MANUAL"
    assert a.sum() > 300 * 20

    labels.add_label("overlap")
    drag(view, (250.0, 650.0), (250.0, 750.0))  # crosses label 1
    b = labels.mask_for("overlap")[0].astype(bool)
    assert np.array_equal(labels.mask_for("Label 1")[0].astype(bool), a), "the brush overwrote another label"
    assert b[660, 250] and not (a & b).any()

    labels.set_active("Label 1")
    window.activate_tool("seg_eraser")
    drag(view, (150.0, 700.0), (200.0, 700.0))
    erased = labels.mask_for("Label 1")[0].astype(bool)
    assert not erased[700, 160:190].any() and erased[700, 300]
    assert np.array_equal(labels.mask_for("overlap")[0].astype(bool), b), "the eraser touched another label"
    window.actions["seg_undo"].trigger()
    assert np.array_equal(labels.mask_for("Label 1")[0].astype(bool), a)

    # A box for the second label over the first one takes only free pixels; brushing an AI label corrects it.
    labels.set_active("overlap")
    box_prompt(qtbot, window, view, (60.0, 560.0, 420.0, 760.0))
    assert np.array_equal(labels.mask_for("Label 1")[0].astype(bool), a)
    assert labels.origin("overlap") == "AI_CORRECTED"  # brushed first, then a model gesture
    labels.add_label("lung")
    box_prompt(qtbot, window, view, LUNG_BOX)
    assert labels.origin("lung") == "AI"
    window.activate_tool("seg_brush")
    drag(view, (870.0, 300.0), (890.0, 300.0))  # beside the lung: adds pixels
    assert labels.origin("lung") == "AI_CORRECTED"
    window.actions["seg_undo"].trigger()
    assert labels.origin("lung") == "AI"
    lm = labels.label_map()
    assert set(np.unique(lm).tolist()) <= {0, *labels.values().values()}


def test_save_and_reopen_segmentation_as_labels(qtbot, seg: MainWindow, workspace: SegmentationWorkspace, tmp_path: Path) -> None:  # noqa: ANN001
    window, labels, controller = seg, seg.context.labels, workspace.controller
    open_and_wait(qtbot, window, DEMO_CXR)
    view = window.views["axial"]
    box_prompt(qtbot, window, view, LUNG_BOX)
    labels.rename("Label 1", "left lung")
    window.activate_tool("seg_brush")
    labels.add_label("marker", (0, 200, 255))
    drag(view, (100.0, 740.0), (300.0, 740.0))
    saved = labels.label_map()
    path = tmp_path / "masks.png"
    controller.save(path)
    wait_idle(qtbot, window)
    assert path.is_file() and (tmp_path / "masks.png.labels.json").is_file()

    labels.clear_all()
    assert not labels.label_map().any()
    controller.load(path)
    wait_idle(qtbot, window)
    assert np.array_equal(labels.label_map(), saved)
    assert labels.names() == ["left lung", "marker"]
    assert labels.colour("marker") == (0, 200, 255)
    assert labels.origin("left lung") == "AI" and labels.origin("marker") == "MANUAL"
    assert workspace.overlays["axial"].shown

    # A mask of another size is refused with one sentence, the labels stay.
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    controller.load(tmp_path / "small.png")
    wait_idle(qtbot, window)
    assert window.errors and "shape" in window.errors[-1]
    assert np.array_equal(labels.label_map(), saved)


def test_the_case_lung_mask_is_an_editable_label_and_other_labels_never_reach_the_predictor(
    qtbot, seg: MainWindow, tmp_path: Path  # noqa: ANN001
) -> None:
    """Issue 15 defect 2: a brush stroke used to replace the model's lung mask of the X-ray."""
    from app.clinical_install import DEMO_CASE, install_clinical
    from app.controllers.case_mask_link import PREDICTOR_LABEL
    from tests.app.clinical_fakes import TinyCasePredictor

    window, labels = seg, seg.context.labels
    ws = install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    window.open_path(DEMO_CASE)
    wait_idle(qtbot, window)
    image = ws.model.selected
    assert image is not None and window.document.volume is not None
    supplied = ws.model.masks[image.filename] > 0
    assert supplied.sum() > 100_000  # the bundled lung mask
    assert labels.active == PREDICTOR_LABEL, "the predictor's mask is not offered as the label to edit"
    assert np.array_equal(labels.mask_for(PREDICTOR_LABEL)[0] > 0, supplied)
    assert labels.origin(PREDICTOR_LABEL) == "MANUAL"  # supplied with the case = drawn by people
    assert labels.opacity(PREDICTOR_LABEL) < labels.default_opacity  # faint fill: the lungs stay readable
    view = window.views["axial"]

    # A stroke on another label leaves the predictor's mask alone (it used to shrink it to the stroke).
    labels.add_label("nodule")
    window.activate_tool("seg_brush")
    drag(view, (100.0, 700.0), (400.0, 700.0))
    nodule = labels.mask_for("nodule")[0] > 0
    assert nodule.any()
    assert np.array_equal(ws.model.masks[image.filename] > 0, supplied)
    assert np.array_equal(labels.mask_for(PREDICTOR_LABEL)[0] > 0, supplied)

    # A stroke on the predictor's label edits the case's mask; undo gives the supplied mask back.
    labels.set_active(PREDICTOR_LABEL)
    drag(view, (870.0, 300.0), (890.0, 300.0))
    edited = ws.model.masks[image.filename] > 0
    assert edited.sum() > supplied.sum() and (edited & supplied).sum() == supplied.sum()
    assert ws.model.mask_sources[image.filename] == "edited"  # a human edit (audit: Dice vs the AI mask)
    window.actions["seg_undo"].trigger()
    assert np.array_equal(ws.model.masks[image.filename] > 0, supplied)

    # A box on it is a model mask (AI output in the audit), and a mask set from outside (an automatic
    # lung segmentation) fills the label, as one undo step.
    box_prompt(qtbot, window, view, LUNG_BOX)
    assert np.array_equal(ws.model.ai_masks[image.filename] > 0, labels.mask_for(PREDICTOR_LABEL)[0] > 0)
    automatic = np.zeros_like(supplied)
    automatic[100:600, 150:450] = True
    ws.controller.set_ai_mask(image.filename, automatic, actor="AI:test", source="automatic")
    assert np.array_equal(labels.mask_for(PREDICTOR_LABEL)[0] > 0, automatic)
    assert np.array_equal(labels.mask_for("nodule")[0] > 0, nodule & ~automatic), "other labels' pixels taken"
    window.actions["seg_undo"].trigger()
    assert not np.array_equal(ws.model.masks[image.filename] > 0, automatic)


def test_labels_model_contract_set_masks_and_delete(backend) -> None:  # noqa: ANN001
    from app.model.labels import LabelsModel
    from inference.io.volume import Volume
    from inference.segmentation.session import SegmentationSession

    labels = LabelsModel()
    session = SegmentationSession(backend)
    session.set_image(Volume(np.zeros((3, 16, 16), np.float32), spacing=(0.5, 0.5, 2.0)))
    labels.bind(session)
    events: list[tuple[str, str, object]] = []
    changes: list[int] = []
    labels.gesture_applied.connect(lambda k, n, z: events.append((k, n, z)))
    labels.changed.connect(lambda: changes.append(1))

    saved = np.zeros((3, 16, 16), np.uint8)
    saved[1, 2:6, 2:6] = 3
    saved[2, 8:12, 8:12] = 7
    saved[0, 0, 0] = 9  # a value without a label entry is dropped
    labels.set_masks(saved, {"liver": (3, (10, 20, 30)), "lesion": (7, None)}, {"liver": "AI_CORRECTED"})
    assert labels.names() == ["liver", "lesion"] and labels.values() == {"liver": 3, "lesion": 7}
    assert labels.colour("liver") == (10, 20, 30)
    assert labels.origin("liver") == "AI_CORRECTED" and labels.origin("lesion") == "MANUAL"
    assert labels.label_map()[0, 0, 0] == 0 and labels.mask_for("lesion").sum() == 16
    assert labels.volume_ml("liver") == pytest.approx(16 * 0.5 * 0.5 * 2.0 / 1000)
    assert ("load", "liver", None) in events and changes

    labels.set_masks(saved, [("a", 3, (1, 2, 3)), ("b", 7, None)], ["AI", "MANUAL"])  # the list forms
    assert labels.origin("a") == "AI" and labels.origin("b") == "MANUAL"
    labels.remove_label("a")
    assert events[-1] == ("reset", "a", None) and labels.names() == ["b"]
    assert not labels.mask_for("a").any() and not (labels.label_map() == 3).any()
    with pytest.raises(Exception, match="shape"):
        labels.set_masks(np.zeros((2, 16, 16), np.uint8), [("x", 1, None)])


def test_undo_memory_is_bounded_and_keeps_origins(backend) -> None:  # noqa: ANN001
    from app.model.labels import LabelsModel
    from inference.io.volume import Volume
    from inference.segmentation.session import SegmentationSession

    labels = LabelsModel(undo_budget_bytes=4000)
    session = SegmentationSession(backend)
    session.set_image(Volume(np.zeros((1, 64, 64), np.float32)))
    labels.bind(session)
    name = labels.add_label("hand")
    for row in range(40):  # 40 strokes of 64 px: each undo step stores ~64 × 6 bytes
        stroke = np.zeros((64, 64), bool)
        stroke[row] = True
        labels.run_gesture("brush", name, lambda s=stroke: session.apply_brush(0, s, name))
    history = labels.history
    assert history is not None and history.nbytes <= 4000 and 1 <= len(history._undo) < 40
    assert labels.origin(name) == "MANUAL"
    assert session.undo() and labels.mask_for(name)[0, 39].sum() == 0 and labels.mask_for(name)[0, 38].all()

