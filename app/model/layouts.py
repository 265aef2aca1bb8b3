"""Which view goes where in the central grid, per layout (1×1, 1×2, 2×2, 1+3): a pure function.

Kept Qt-free so the rules are tested without a window: the *primary* view (the active one) fills 1×1,
leads 1×2 and is the large one of 1+3; 2×2 keeps its fixed places (axial, coronal / sagittal, 3-D) so
the eye finds each plane where it always is. A maximised view (double-click) or a 2-D image shows one
view alone whatever the layout.
"""

from __future__ import annotations

from dataclasses import dataclass

GRID_VIEWS = ("axial", "coronal", "sagittal", "3d")
Cell = tuple[int, int, int, int]  # row, column, row span, column span


@dataclass(frozen=True)
class Arrangement:
    """Grid cells of the visible views (the others are hidden) and the grid's stretch factors."""

    cells: dict[str, Cell]
    column_stretch: tuple[int, ...] = (1,)
    row_stretch: tuple[int, ...] = (1,)


def partner(primary: str) -> str:
    """The second view of 1×2: axial beside any other plane, coronal beside axial."""
    return "coronal" if primary == "axial" else "axial"


def arrangement(layout: str, primary: str, maximized: str | None = None, two_d: bool = False) -> Arrangement:
    """Where each visible view goes for ``layout`` with ``primary`` as the active view."""
    if two_d:
        return Arrangement({"axial": (0, 0, 1, 1)})
    if maximized is not None:
        return Arrangement({maximized: (0, 0, 1, 1)})
    if primary not in GRID_VIEWS:
        primary = "axial"
    if layout == "1x1":
        return Arrangement({primary: (0, 0, 1, 1)})
    if layout == "1x2":
        return Arrangement({primary: (0, 0, 1, 1), partner(primary): (0, 1, 1, 1)}, (1, 1))
    if layout == "1+3":
        others = [v for v in GRID_VIEWS if v != primary]
        cells = {primary: (0, 0, 3, 1)} | {v: (i, 1, 1, 1) for i, v in enumerate(others)}
        return Arrangement(cells, (3, 1), (1, 1, 1))
    if layout != "2x2":
        raise ValueError(f"unknown layout {layout!r}")
    return Arrangement({"axial": (0, 0, 1, 1), "coronal": (0, 1, 1, 1), "sagittal": (1, 0, 1, 1),
                        "3d": (1, 1, 1, 1)}, (1, 1), (1, 1))
