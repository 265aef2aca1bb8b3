"""A matplotlib figure that is created the first time something is drawn on it.

Importing matplotlib's Qt backend costs about a third of the viewer's start-up imports; the clinical
panels only chart once a case is open, so the figure (and the import) wait until then.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyFigure(QWidget):
    """Placeholder widget; :attr:`figure` / :attr:`canvas` create the matplotlib figure on first use."""

    def __init__(self, *, figsize: tuple[float, float], dpi: int, facecolor: str, min_height: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._figsize, self._dpi, self._facecolor = figsize, dpi, facecolor
        self._figure: Any = None
        self._canvas: Any = None
        self.setMinimumHeight(min_height)
        self.setStyleSheet(f"background-color: {facecolor};")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    @property
    def created(self) -> bool:
        return self._figure is not None

    def _create(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self._figure = Figure(figsize=self._figsize, dpi=self._dpi, facecolor=self._facecolor)
        self._canvas = FigureCanvasQTAgg(self._figure)
        self._layout.addWidget(self._canvas)

    @property
    def figure(self) -> Any:  # matplotlib.figure.Figure
        if self._figure is None:
            self._create()
        return self._figure

    @property
    def canvas(self) -> Any:  # FigureCanvasQTAgg
        if self._canvas is None:
            self._create()
        return self._canvas
