"""Shared steps of the browser / comparison window tests: install the features, wait, click, screenshot."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QTreeWidgetItem

from app.browser_install import BrowserWorkspace, install_browser
from app.clinical_install import ClinicalWorkspace, install_clinical
from app.comparison_install import ComparisonWorkspace, install_comparison
from app.main_window import MainWindow
from app.screenshot import save_window
from tests.app.clinical_fakes import TinyCasePredictor


@dataclass
class Installed:
    window: MainWindow
    clinical: ClinicalWorkspace
    browser: BrowserWorkspace
    comparison: ComparisonWorkspace


def install(window: MainWindow, tmp_path: Path) -> Installed:
    """The features these tests drive, installed in the order ``build_viewer`` uses."""
    clinical = install_clinical(window, predictor_loader=TinyCasePredictor, audit_root=tmp_path / "audit")
    return Installed(window, clinical, install_browser(window), install_comparison(window))


def wait_idle(qtbot, window: MainWindow, timeout: int = 60000) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=timeout)
    qtbot.wait(30)


def double_click_item(tree, item: QTreeWidgetItem) -> None:  # noqa: ANN001 - QTreeWidget
    tree.scrollToItem(item)
    _double_click(tree.viewport(), tree.visualItemRect(item).center())


def double_click_row(table, row: int) -> None:  # noqa: ANN001 - QTableView
    index = table.model().index(row, 0)
    table.scrollTo(index)
    _double_click(table.viewport(), table.visualRect(index).center())


def _double_click(widget, pos: QPoint) -> None:  # noqa: ANN001 - QWidget
    """What a user's double-click sends: press + release, then the double-click (item views need the first press)."""
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    QTest.mouseDClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)


def click_header(table, column: int) -> None:  # noqa: ANN001 - QTableView
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(x, header.height() // 2))


def screenshot(window: MainWindow, name: str, tmp_path: Path) -> Path:
    """The whole window (VTK views included) as ``name.png``; copied to ``$MEDFUSION_SCREENSHOTS`` when set."""
    path = tmp_path / f"{name}.png"
    save_window(window, path)
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    assert pixels.std() > 3.0, f"{name} is blank"
    target = os.environ.get("MEDFUSION_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path
