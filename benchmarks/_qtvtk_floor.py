"""Reference process for the cold-start row of ``benchmarks/ui.py``: a bare Qt + VTK start.

Imports PySide6 and VTK's OpenGL rendering, shows one window holding a VTK render widget and renders it
once; prints the seconds from this process's start (kernel start time, so interpreter start counts) to that
first frame. Nothing of the viewer is imported: this is the floor any Qt/VTK viewer pays before its own work.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401 - the OpenGL back end, as the viewer registers it
    from PySide6.QtWidgets import QApplication, QMainWindow
    from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
    from vtkmodules.vtkRenderingCore import vtkRenderer

    from benchmarks._ui_probe import process_age_s

    app = QApplication.instance() or QApplication(sys.argv)
    window = QMainWindow()
    widget = QVTKRenderWindowInteractor(window)
    window.setCentralWidget(widget)
    renderer = vtkRenderer()
    renderer.SetBackground(0.1, 0.1, 0.1)
    widget.GetRenderWindow().AddRenderer(renderer)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    widget.GetRenderWindow().Render()
    print(json.dumps({"first_frame_s": process_age_s()}), flush=True)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
