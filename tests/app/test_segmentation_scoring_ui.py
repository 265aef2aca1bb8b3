"""A box's mask is drawn before its confidence is scored, and the strip and message fill in right after
(issue 17: the jittered decodes behind the confidence no longer delay the mask)."""

from __future__ import annotations

import math

import numpy as np

from app.launch import DEMO_CT
from app.main_window import MainWindow
from app.segmentation_install import SegmentationWorkspace


def test_the_mask_comes_first_and_the_confidence_right_after(
    qtbot, seg: MainWindow, workspace: SegmentationWorkspace, load  # noqa: ANN001
) -> None:
    window, labels, panel = seg, seg.context.labels, workspace.panel
    load(window, DEMO_CT)
    vol = window.document.volume
    assert vol is not None and vol.shape[0] > 1
    z = vol.shape[0] // 2
    window.document.set_slice(2, z)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=120000)
    at_draw: list[tuple[str, float | None]] = []

    def drawn(_kind: str, _label: str, _z_range: object) -> None:  # the moment the mask is handed to the views
        panel.strip.refresh()
        at_draw.append(panel.strip.cells()[z])

    labels.gesture_applied.connect(drawn)
    ny, nx = vol.shape[1:]
    workspace.controller.add_box(z, (nx * 0.3, ny * 0.3, nx * 0.6, ny * 0.6))
    qtbot.waitUntil(lambda: bool(at_draw), timeout=60000)
    kind, confidence = at_draw[0]
    assert kind == "model" and confidence is not None and math.isnan(confidence)  # drawn, not yet scored
    assert "scoring its confidence" in panel.message.text()
    assert (labels.mask_for("Label 1")[z] > 0).any()

    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.wait(20)
    kind, confidence = panel.strip.cells()[z]
    assert kind == "model" and confidence is not None and 0.0 <= confidence <= 1.0
    assert f"confidence {confidence:.2f}" in panel.message.text()
    session = labels.session
    assert session is not None and not session.unscored()
    np.testing.assert_array_equal(sorted(session.confidence("Label 1")), [z])
