"""Segmentation labels of the open image as an observable, Qt-free model (the viewer's side of the session).

The masks themselves live in one :class:`SegmentationSession` per image (its uint8 label map, label table
and undo history, which also tracks each label's *origin* — AI / MANUAL / AI_CORRECTED, for DICOM SEG
algorithm identification, restored by undo/redo); this model adds what the viewer needs around it: the
active label, visibility and opacity, which gestures count for the origin, and the signals other parts
listen to:

- ``changed()``: anything changed (masks, table, display);
- ``gesture_applied(kind, label, z_range)`` after every gesture: kind in {"box", "point", "propagate"}
  for model output, {"brush", "erase", "undo", "redo", "reset", "load"} for the rest.

Every array is in the document volume's grid, ``[z, y, x]``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from psygnal import Signal

from inference.errors import InvalidPromptError
from inference.segmentation.history import AI, MANUAL, Gesture, History, Origins, SliceDiff
from inference.segmentation.label_pages import slices_in_use, sparse_copy
from inference.segmentation.labels import Label
from inference.segmentation.session import SegmentationSession

MODEL_KINDS = frozenset({"box", "point", "propagate"})
MANUAL_KINDS = frozenset({"brush", "erase"})
_ORIGIN_KINDS = {"AI": frozenset({AI}), "MANUAL": frozenset({MANUAL}), "AI_CORRECTED": frozenset({AI, MANUAL})}


@dataclass(frozen=True)
class BrushPreview:
    """A brush/eraser stroke being drawn: ``stroke`` is the plane normal to index ``axis`` (0 = x,
    1 = y, 2 = z) at ``index``, rows and columns in array order (``plane_edit.plane_of``)."""

    axis: int
    index: int
    stroke: np.ndarray
    value: int
    erase: bool


def touched(gesture: Gesture | None) -> tuple[set[int], tuple[int, int] | None]:
    """Label values and slice range a gesture changed (for ``gesture_applied`` after undo/redo)."""
    if gesture is None or not gesture.diffs:
        return set(), None
    values: set[int] = set()
    for diff in gesture.diffs:
        values.update(np.unique(diff.before).tolist())
        values.update(np.unique(diff.after).tolist())
    zs = [d.z for d in gesture.diffs]
    return values - {0}, (min(zs), max(zs))


class LabelsModel:
    """Labels of the current image; see the module docstring for the signals."""

    changed = Signal()
    gesture_applied = Signal(str, str, object)
    active_changed = Signal(str)
    session_bound = Signal(object)  # the session of a new image (or None), after ``changed``

    def __init__(self, undo_budget_bytes: int = 256 * 1024 * 1024) -> None:
        self.undo_budget_bytes = undo_budget_bytes
        self.session: SegmentationSession | None = None
        self.lock = threading.Lock()  # held while a gesture mutates the session (worker or UI thread)
        self.active: str = ""
        self._visible: dict[int, bool] = {}
        self._opacity: dict[int, float] = {}
        self.preview: BrushPreview | None = None  # brush stroke being drawn
        self.default_opacity = 0.45

    # ---- binding to an image ----------------------------------------------------------------------
    def bind(self, session: SegmentationSession | None) -> None:
        """Start on a new image's session (``None``: no image): all labels and masks are dropped."""
        if session is not None:
            session.history = History(self.undo_budget_bytes)
        self.session = session
        self.active = ""
        self._visible, self._opacity = {}, {}
        self.preview = None
        self.changed.emit()
        self.session_bound.emit(session)

    @property
    def history(self) -> History | None:
        return self.session.history if self.session is not None else None

    def _session(self) -> SegmentationSession:
        if self.session is None or self.session.volume is None:
            raise InvalidPromptError("Open an image before segmenting.")
        return self.session

    # ---- the label table --------------------------------------------------------------------------
    def _labels(self) -> list[Label]:
        return list(self.session.labels) if self.session is not None else []

    def _label(self, name: str) -> Label:
        found = self.session.labels.find(name) if self.session is not None else None
        if found is None:
            raise InvalidPromptError(f"There is no label named '{name}'.")
        return found

    def names(self) -> list[str]:
        return [lab.name for lab in self._labels()]

    def values(self) -> dict[str, int]:
        return {lab.name: lab.value for lab in self._labels()}

    def colour(self, label: str) -> tuple[int, int, int]:
        return self._label(label).colour

    def origin(self, label: str) -> str:
        """AI (model gestures only), MANUAL (drawn by hand only) or AI_CORRECTED (both)."""
        value = self._label(label).value
        return self.session.history.origin(value) if self.session is not None else "MANUAL"

    def visible(self, label: str) -> bool:
        return self._visible.get(self._label(label).value, True)

    def opacity(self, label: str) -> float:
        return self._opacity.get(self._label(label).value, self.default_opacity)

    def add_label(self, name: str | None = None, colour: tuple[int, int, int] | None = None) -> str:
        """A new empty label (named "Label N" by default), made active."""
        session = self._session()
        if name is None:
            n = len(session.labels) + 1
            while session.labels.find(f"Label {n}") is not None:
                n += 1
            name = f"Label {n}"
        name = name.strip()
        if not name:
            raise InvalidPromptError("A label needs a name.")
        session.add_label(name, colour)
        self.set_active(name)
        self.changed.emit()
        return name

    def ensure_active(self) -> str:
        """The label the next gesture paints (one is created if there is none)."""
        if self.active and self.session is not None and self.session.labels.find(self.active) is not None:
            return self.active
        return self.add_label()

    def set_active(self, name: str) -> None:
        if name != self.active:
            self.active = name
            self.active_changed.emit(name)

    def rename(self, old: str, new: str) -> None:
        new = new.strip()
        lab = self._label(old)
        if new == old:
            return
        if not new:
            raise InvalidPromptError("A label needs a name.")
        if self.session is not None and self.session.labels.find(new) is not None:
            raise InvalidPromptError(f"A label named '{new}' already exists.")
        self._replace(lab, Label(new, lab.colour, lab.value))
        if self.active == old:
            self.set_active(new)
        self.changed.emit()

    def set_colour(self, label: str, colour: tuple[int, int, int]) -> None:
        lab = self._label(label)
        self._replace(lab, Label(lab.name, tuple(int(c) for c in colour), lab.value))  # type: ignore[arg-type]
        self.changed.emit()

    def _replace(self, old: Label, new: Label) -> None:
        table = self._session().labels
        table.remove(old)
        table.add(new.name, new.colour, new.value)

    def set_visible(self, label: str, on: bool) -> None:
        self._visible[self._label(label).value] = bool(on)
        self.changed.emit()

    def set_opacity(self, label: str, opacity: float) -> None:
        self._opacity[self._label(label).value] = min(max(float(opacity), 0.0), 1.0)
        self.changed.emit()

    # ---- masks and measurements -------------------------------------------------------------------
    def raw_label_map(self) -> np.ndarray | None:
        """The live label map (no copy; for drawing only)."""
        return self.session.label_map if self.session is not None and self.session.volume is not None else None

    def label_map(self) -> np.ndarray:
        """``uint8[z, y, x]``: 0 background, else the label's value (a copy; only the slices holding labels
        are written, so a snapshot of a mostly empty map — every autosave takes one — stays small)."""
        return sparse_copy(self._session().label_map)

    def mask_for(self, label: str) -> np.ndarray:
        """``uint8[z, y, x]`` 0/1 mask of one label (all zeros for a label that was just deleted)."""
        session = self._session()
        found = session.labels.find(label)
        if found is None:
            return np.zeros(session.label_map.shape, dtype=np.uint8)
        return (session.label_map == found.value).astype(np.uint8)

    def volume_ml(self, label: str) -> float:
        return self._session().volume_ml(self._label(label).value)

    def area_mm2(self, label: str, z: int) -> float:
        return self._session().area_mm2(self._label(label).value, z)

    def confidence(self, label: str) -> dict[int, float]:
        return self._session().confidence(self._label(label).value)

    def slices_with_mask(self, label: str) -> np.ndarray:
        """Per-slice pixel counts of the label (the confidence strip shows which slices hold it)."""
        label_map, value = self._session().label_map, self._label(label).value
        flat = label_map.reshape(label_map.shape[0], -1)
        counts = np.zeros(label_map.shape[0], dtype=np.int64)
        for z in np.flatnonzero(flat.any(axis=1)):  # label maps are mostly empty: compare only slices in use
            counts[z] = np.count_nonzero(flat[z] == value)
        return counts

    # ---- gestures ---------------------------------------------------------------------------------
    def begin_gesture(self, kind: str, label: str, session: SegmentationSession | None = None) -> None:
        """Record how the coming gesture on ``session`` (default: the current one) changes the label's
        origin (call with :attr:`lock` held)."""
        session = session or self.session
        if session is None or kind not in MODEL_KINDS | MANUAL_KINDS:
            return
        found = session.labels.find(label)
        if found is not None:
            session.history.mark(found.value, AI if kind in MODEL_KINDS else MANUAL)

    def run_gesture(
        self, kind: str, label: str, fn: Callable[[], Any], session: SegmentationSession | None = None
    ) -> Any:
        """Run one call on ``session`` (default: the current one) as a gesture with origin tracking
        (thread-safe; blocks on :attr:`lock`)."""
        session = session or self.session
        with self.lock:
            self.begin_gesture(kind, label, session)
            try:
                return fn()
            finally:
                if session is not None:
                    session.history.pending_origins = None

    def notify(self, kind: str, label: str, z_range: object = None) -> None:
        """Announce a finished gesture (UI thread): ``gesture_applied`` then ``changed``."""
        self.gesture_applied.emit(kind, label, z_range)
        self.changed.emit()

    def place_mask(
        self, name: str, mask: np.ndarray, *, origin: str = "AI", colour: tuple[int, int, int] | None = None,
        undoable: bool = True,
    ) -> str:
        """Label ``name`` (created when missing; the active label is not changed) holds ``mask``
        (``[z, y, x]``, or ``[y, x]`` for a 2-D image) of ``origin`` ("AI", "MANUAL", "AI_CORRECTED"); pixels of other
        labels are not taken. The pixels come from elsewhere (e.g. the clinical case's lung mask), not from
        a gesture on this image, so only ``changed`` is emitted. ``undoable``: one undo step; otherwise the
        history is left alone (the label's starting state, as when a file is opened)."""
        session = self._session()
        data = np.asarray(mask) > 0
        if data.ndim == 2:
            data = data[np.newaxis]
        if data.shape != session.label_map.shape:
            raise InvalidPromptError(f"The mask has shape {data.shape} but the image has shape {session.label_map.shape}.")
        with self.lock:
            lab = session.labels.find(name) or session.add_label(name, colour)
            history = session.history
            drawn = dict(history.origins)
            drawn[lab.value] = _ORIGIN_KINDS.get(origin.upper(), frozenset({MANUAL}))
            gesture = Gesture("load")
            for z in range(data.shape[0]):
                before = session.label_map[z]
                after = before.copy()
                after[after == lab.value] = 0
                after[data[z] & (after == 0)] = lab.value
                diff = SliceDiff.between(z, before, after)
                if diff is not None:
                    gesture.diffs.append(diff)
                    session.label_map[z] = after
            if undoable:
                history.pending_origins = (dict(history.origins), drawn)
                history.push(gesture)
            history.origins = drawn
        self.changed.emit()
        return lab.name

    def clear_all(self) -> None:
        """Remove every mask (labels stay; not undoable — the UI asks first)."""
        session = self._session()
        with self.lock:
            session.reset()
            session.history.origins = {}
        for name in self.names():
            self.gesture_applied.emit("reset", name, None)
        self.changed.emit()

    def remove_label(self, label: str) -> None:
        """Delete a label and its pixels (not undoable — the UI asks first)."""
        session = self._session()
        lab = self._label(label)
        with self.lock:
            for z in slices_in_use(session.label_map):  # slice by slice: no whole-map mask
                plane = session.label_map[z]
                plane[plane == lab.value] = 0
            session.labels.remove(lab)
            session.history.clear()  # older steps may still refer to the removed value
            for table in (session.history.origins, self._visible, self._opacity):
                table.pop(lab.value, None)
        if self.active == label:
            self.set_active(self.names()[0] if self.names() else "")
        self.gesture_applied.emit("reset", label, None)
        self.changed.emit()

    def set_masks(
        self,
        label_map: np.ndarray,
        names_values_colours: Iterable[Any] | Mapping[str, Any],
        origins: Mapping[str, str] | Iterable[str] | None = None,
    ) -> None:
        """Replace all labels and masks (a saved session or file); the undo history starts afresh.

        ``names_values_colours``: ``[(name, value, (r, g, b)), ...]`` or ``{name: (value, (r, g, b))}``;
        ``origins``: ``{name: "AI" | "MANUAL" | "AI_CORRECTED"}`` (or a list in the same order).
        """
        session = self._session()
        data = np.asarray(label_map)
        if data.ndim == 2:
            data = data[np.newaxis]
        if data.shape != session.label_map.shape:
            raise InvalidPromptError(
                f"The saved masks have shape {data.shape} but the image has shape {session.label_map.shape}."
            )
        if isinstance(names_values_colours, Mapping):
            rows = [(n, *tuple(vc)) for n, vc in names_values_colours.items()]
        else:
            rows = [tuple(r) for r in names_values_colours]
        names = [str(r[0]) for r in rows]
        if isinstance(origins, Mapping):
            origin_of = {str(k): str(v) for k, v in origins.items()}
        else:
            origin_of = dict(zip(names, [str(o) for o in (origins or [])], strict=False))
        with self.lock:
            session.reset()
            session.labels.clear()
            drawn_by: Origins = {}
            for row in rows:
                name, value = str(row[0]), int(row[1])
                colour = tuple(int(c) for c in row[2]) if len(row) > 2 and row[2] is not None else None
                lab = session.labels.add(name, colour, value)  # type: ignore[arg-type]
                origin = origin_of.get(name, "MANUAL").upper()
                drawn_by[lab.value] = _ORIGIN_KINDS.get(origin, frozenset({MANUAL}))
            values = [lab.value for lab in session.labels]
            for z in slices_in_use(data):  # slice by slice: no whole-map temporaries, empty slices unwritten
                session.label_map[z] = np.where(np.isin(data[z], values), data[z], 0).astype(np.uint8)
            session.history.origins = drawn_by
            self._visible, self._opacity = {}, {}
        self.active = ""
        self.set_active(names[0] if names else "")
        for name in names:
            self.gesture_applied.emit("load", name, None)
        self.changed.emit()
