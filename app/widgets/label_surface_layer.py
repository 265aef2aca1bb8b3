"""Segmentation labels as surfaces in the 3-D view, in each label's colour, opacity and visibility.

Why (issue 15 defect 5): the 3-D view showed only the volume rendering, never what was segmented. The
surfaces are meshed on the task runner (channel ``seg_surfaces``, :mod:`app.rendering.label_surfaces`)
after a gesture ends — debounced, so a burst of strokes or a propagation gives one update, and never on
each brush dab (the brush preview does not touch the label map). Colour, opacity and visibility changes
in the Segmentation panel only restyle the actors.

The surfaces are drawn in the 3-D view's overlay renderer, on the layer above the volume rendering, sharing its camera:
a segmented structure is made of the very voxels the volume rendering shows, so with one depth buffer
the rendering of those voxels hides the label's surface (an aorta segmented inside the contrast-filled
vessel was invisible). Over the rendering, the label is always seen, with the anatomy around it.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer
from vtkmodules.vtkCommonDataModel import vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from app.model.labels import LabelsModel
from app.widgets.volume_view_3d import VolumeView3D
from app.workers import TaskRunner
from inference.errors import MedFusionError
from inference.progress import CancelToken, ProgressCallback

CHANNEL = "seg_surfaces"
log = logging.getLogger("medfusion.app.surfaces")


class LabelSurfaceLayer(QObject):
    """One actor per label value in ``view``'s renderer, rebuilt ``delay_ms`` after the last gesture."""

    def __init__(self, view: VolumeView3D, labels: LabelsModel, runner: TaskRunner, delay_ms: int = 300,
                 parent: QObject | None = None) -> None:
        super().__init__(parent or view)
        self.view, self.labels, self.runner = view, labels, runner
        self.actors: dict[int, vtkActor] = {}
        self.renderer = view.overlay  # the layer above the volume rendering, same camera
        self._styles: dict[int, tuple] = {}
        self.updates = 0  # surface rebuilds delivered (tests)
        self._dirty: set[int] = set()
        self._running = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._rebuild)
        labels.gesture_applied.connect(self._on_gesture)
        labels.changed.connect(self._restyle)
        labels.session_bound.connect(lambda _s: self._clear())

    @property
    def pending(self) -> bool:
        """A rebuild is scheduled or running."""
        return self._timer.isActive() or self._running or bool(self._dirty)

    def _on_gesture(self, _kind: str, label: str, _z_range: object) -> None:
        value = self.labels.values().get(label)
        if value is not None:
            self._dirty.add(value)
        else:  # a deleted label: its actor goes at the next restyle
            self._restyle()
        self._timer.start()

    def _clear(self) -> None:
        self._timer.stop()
        self._dirty.clear()
        self._running = False
        self.runner.cancel(CHANNEL)
        self._styles.clear()
        for actor in self.actors.values():
            self.renderer.RemoveActor(actor)
        self.actors.clear()
        self.view.request_render()

    def _rebuild(self) -> None:
        session = self.labels.session
        vol = session.volume if session is not None else None
        if session is None or vol is None or vol.is_2d or not self._dirty:
            self._dirty.clear()
            return
        values, self._dirty = sorted(self._dirty), set()
        # The worker reads the live label map without the gesture lock (a stroke must never wait for a
        # surface): a gesture landing meanwhile schedules another rebuild, whose result replaces this one.
        label_map, spacing, origin, direction = session.label_map, vol.spacing, vol.origin, vol.direction

        def work(progress: ProgressCallback, cancel: CancelToken) -> tuple[Any, dict[int, vtkPolyData | None]]:
            from app.rendering.label_surfaces import label_surfaces

            progress(0.1, "Updating 3-D surfaces")
            return session, label_surfaces(label_map, values, spacing, origin, direction, cancel)

        self._running = True
        self.runner.submit(CHANNEL, work, self._show, self._failed, "Updating 3-D surfaces")

    def _failed(self, error: BaseException) -> None:
        self._running = False
        log.warning("3-D label surfaces failed: %s", error, exc_info=not isinstance(error, MedFusionError))

    def _show(self, result: tuple[Any, dict[int, vtkPolyData | None]]) -> None:
        self._running = False
        session, surfaces = result
        if session is not self.labels.session:
            return
        for value, surface in surfaces.items():
            actor = self.actors.get(value)
            if surface is None:
                if actor is not None:
                    self.renderer.RemoveActor(actor)
                    del self.actors[value]
                    self._styles.pop(value, None)
                continue
            if actor is None:
                actor = vtkActor()
                mapper = vtkPolyDataMapper()
                mapper.ScalarVisibilityOff()
                actor.SetMapper(mapper)
                prop = actor.GetProperty()
                prop.SetSpecular(0.25)
                prop.SetSpecularPower(20.0)
                self.renderer.AddActor(actor)
                self.actors[value] = actor
            shown = actor.GetMapper()
            assert isinstance(shown, vtkPolyDataMapper)
            shown.SetInputData(surface)
        self.updates += 1
        self._restyle()
        self.view.request_render()

    def _restyle(self) -> None:
        """Colour, opacity and visibility from the labels model; actors of deleted labels removed."""
        by_value = self.labels.values()
        names = {v: n for n, v in by_value.items()}
        changed = False
        for value in list(self.actors):
            actor = self.actors[value]
            name = names.get(value)
            if name is None:
                self.renderer.RemoveActor(actor)
                del self.actors[value]
                self._styles.pop(value, None)
                changed = True
                continue
            colour = tuple(c / 255.0 for c in self.labels.colour(name))
            # a surface hides what is behind it: shown a little more opaque than the slice fill
            opacity = min(1.0, 0.3 + self.labels.opacity(name) * 1.4)
            visible = self.labels.visible(name)
            prop = actor.GetProperty()
            style = (colour, round(opacity, 3), visible)
            if self._styles.get(value) != style:
                prop.SetColor(*colour)
                prop.SetOpacity(opacity)
                actor.SetVisibility(visible)
                self._styles[value] = style
                changed = True
        if changed:
            self.view.request_render()
