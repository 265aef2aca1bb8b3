"""Puts the grid's views where an :class:`~app.model.layouts.Arrangement` says (Qt side of the layouts).

The rules (which view goes where for 1×1, 1×2, 2×2, 1+3) are the Qt-free :func:`app.model.layouts.arrangement`;
this only moves widgets: hidden views keep their state (camera, slice, layers), so switching layouts is
instant and returns each view as it was.
"""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from app.model.layouts import Arrangement

_MAX_CELLS = 4


def arrange(grid: QGridLayout, widgets: dict[str, QWidget], arrangement: Arrangement) -> None:
    """Re-place ``widgets`` (by name) in ``grid``: shown at their cells, the others hidden."""
    for widget in widgets.values():
        grid.removeWidget(widget)
    for i in range(_MAX_CELLS):
        grid.setColumnStretch(i, arrangement.column_stretch[i] if i < len(arrangement.column_stretch) else 0)
        grid.setRowStretch(i, arrangement.row_stretch[i] if i < len(arrangement.row_stretch) else 0)
    for name, widget in widgets.items():
        cell = arrangement.cells.get(name)
        if cell is None:
            widget.setVisible(False)
            continue
        grid.addWidget(widget, *cell)
        widget.setVisible(True)
    grid.activate()  # geometry now, not at the next layout pass: the views refit their cameras at once
