"""Measurements and annotations drawn on the slices: an observable, Qt-free model with undo/redo.

Why a model of its own (not part of the document or the labels): measurements are geometry, not
pixels; they must survive tool switches, be listed, saved with the session and put in the report, and
their undo history is separate from the masks'. Every point is a continuous voxel index ``(x, y, z)``
of the image, and each measurement stays on the slice it was drawn on (``normal_axis``,
``slice_index``), so a view shows it only there.

Signals: ``changed()`` (the list or any geometry, also while a handle is dragged), ``committed()`` (a
finished, undoable gesture: what the session autosaves on), ``selection_changed(id)`` (0 = none),
``draft_changed()`` (the half-drawn measurement a tool shows), ``visible_changed(bool)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from psygnal import Signal

Point = tuple[float, float, float]

# kind -> (number of points, name shown to the user)
KINDS: dict[str, tuple[int, str]] = {
    "ruler": (2, "Length"),
    "angle": (3, "Angle"),
    "ellipse": (2, "Ellipse ROI"),
    "bidimensional": (4, "Long/short axis"),
    "arrow": (2, "Arrow"),
    "text": (1, "Text"),
}
VIEW_NAMES = ("axial", "coronal", "sagittal", "image")
MAX_TEXT = 200
MAX_ITEMS = 1000
HISTORY = 100


@dataclass(frozen=True)
class Measurement:
    """One measurement or annotation on one slice.

    ``points``: ruler (a, b); angle (a, vertex, b); ellipse (two opposite corners of its box, which runs
    along the in-plane index axes); bidimensional (long axis a, b, short axis c, d); arrow (head, tail);
    text (anchor). ``view`` is where it was drawn (for the list); ``id`` is given by the model.
    """

    kind: str
    view: str
    normal_axis: int
    slice_index: int
    points: tuple[Point, ...]
    text: str = ""
    id: int = 0

    @property
    def title(self) -> str:
        return KINDS[self.kind][1]

    def with_points(self, points: Iterable[Iterable[float]]) -> Measurement:
        """The same measurement with new points (kept on its slice)."""
        pts = []
        for p in points:
            x, y, z = (float(c) for c in p)
            q = [x, y, z]
            q[self.normal_axis] = float(self.slice_index)
            pts.append((q[0], q[1], q[2]))
        return replace(self, points=tuple(pts))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "view": self.view, "normal_axis": self.normal_axis,
                "slice": self.slice_index, "points": [list(p) for p in self.points], "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], shape_xyz: tuple[int, int, int]) -> Measurement:
        """Validate one saved measurement (untrusted file) against the image; ``ValueError`` if malformed."""
        kind = data.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown measurement kind {kind!r}")
        axis, index, view = data.get("normal_axis"), data.get("slice"), data.get("view", "axial")
        if type(axis) is not int or axis not in (0, 1, 2):
            raise ValueError("bad normal axis")
        if type(index) is not int or not 0 <= index < shape_xyz[axis]:
            raise ValueError("slice outside the image")
        if view not in VIEW_NAMES:
            raise ValueError("unknown view")
        raw = data.get("points")
        if not isinstance(raw, list) or len(raw) != KINDS[kind][0]:
            raise ValueError("wrong number of points")
        points = []
        for p in raw:
            if not (isinstance(p, list) and len(p) == 3 and all(
                    isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in p)):
                raise ValueError("a point is not three numbers")
            if any(not -0.5 - n <= c <= 2 * n for c, n in zip(p, shape_xyz, strict=True)):
                raise ValueError("a point lies far outside the image")
            points.append(p)
        text = data.get("text", "")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ValueError("bad annotation text")
        ident = data.get("id", 0)
        return cls(kind, view, axis, index, (), text, ident if type(ident) is int and ident > 0 else 0
                   ).with_points(points)


_Snapshot = tuple[tuple[Measurement, ...], int]


class MeasurementsModel:
    """The measurements of the image on screen, the selection, and an undo/redo history.

    Measurements of other images opened in this run are kept aside (:meth:`switch_image`) and come back
    when that image is shown again (e.g. the X-rays of one patient's timeline).
    """

    changed = Signal()
    committed = Signal()
    selection_changed = Signal(int)
    draft_changed = Signal()
    visible_changed = Signal(bool)

    def __init__(self) -> None:
        self._items: dict[int, Measurement] = {}
        self._next_id = 1
        self._undo: list[_Snapshot] = []
        self._redo: list[_Snapshot] = []
        self._edit_start: _Snapshot | None = None
        self._image_key = ""
        self._stash: dict[str, _Snapshot] = {}
        self.selected = 0
        self.draft: Measurement | None = None
        self.visible = True

    # ---- reading -------------------------------------------------------------------------------
    def items(self) -> list[Measurement]:
        return list(self._items.values())

    def get(self, ident: int) -> Measurement | None:
        return self._items.get(ident)

    def on_slice(self, normal_axis: int, slice_index: int) -> list[Measurement]:
        return [m for m in self._items.values() if m.normal_axis == normal_axis and m.slice_index == slice_index]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # ---- editing (each public call is one undo step) --------------------------------------------
    def add(self, measurement: Measurement) -> Measurement:
        """Add ``measurement`` (a new id is given) and select it."""
        if measurement.kind not in KINDS or len(measurement.points) != KINDS[measurement.kind][0]:
            raise ValueError(f"a {measurement.kind} needs {KINDS.get(measurement.kind, (0,))[0]} points")
        self._record()
        added = replace(measurement, id=self._next_id)
        self._next_id += 1
        self._items[added.id] = added
        self.selected = added.id
        self._emit(selection=True)
        return added

    def remove(self, ident: int) -> bool:
        if ident not in self._items:
            return False
        self._record()
        del self._items[ident]
        if self.selected == ident:
            self.selected = 0
        self._emit(selection=True)
        return True

    def clear(self) -> None:
        if not self._items:
            return
        self._record()
        self._items.clear()
        self.selected = 0
        self._emit(selection=True)

    def update(self, measurement: Measurement) -> None:
        """Replace a measurement (same id): one undo step, unless inside :meth:`begin_edit`."""
        if measurement.id not in self._items or self._items[measurement.id] == measurement:
            return
        if self._edit_start is None:
            self._record()
        self._items[measurement.id] = measurement
        self.changed.emit()
        if self._edit_start is None:
            self.committed.emit()

    def begin_edit(self) -> None:
        """A drag starts: the updates until :meth:`end_edit` become one undo step."""
        self._edit_start = self._snapshot()

    def end_edit(self) -> None:
        start, self._edit_start = self._edit_start, None
        if start is not None and start != self._snapshot():
            self._push(start)
            self.committed.emit()

    def undo(self) -> bool:
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        return self._step(self._redo, self._undo)

    # ---- selection, draft, visibility -----------------------------------------------------------
    def select(self, ident: int) -> None:
        ident = ident if ident in self._items else 0
        if ident != self.selected:
            self.selected = ident
            self.selection_changed.emit(ident)

    def set_draft(self, measurement: Measurement | None) -> None:
        self.draft = measurement
        self.draft_changed.emit()

    def set_visible(self, visible: bool) -> None:
        if bool(visible) != self.visible:
            self.visible = bool(visible)
            self.visible_changed.emit(self.visible)

    # ---- images and sessions --------------------------------------------------------------------
    def switch_image(self, key: str) -> None:
        """Another image is on screen: keep this one's measurements aside, show ``key``'s (no history)."""
        if key == self._image_key:
            return
        if self._image_key and self._items:
            self._stash[self._image_key] = self._snapshot()
        self._image_key = key
        items, next_id = self._stash.pop(key, ((), 1))
        self._reset(items, next_id)

    def to_json(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self._items.values()]

    def load_json(self, rows: Any, shape_xyz: tuple[int, int, int]) -> int:
        """Replace the measurements with saved ones (history cleared); returns how many were skipped."""
        if not isinstance(rows, list):
            raise ValueError("the measurements are not a list")
        items: list[Measurement] = []
        skipped = max(len(rows) - MAX_ITEMS, 0)
        for row in rows[:MAX_ITEMS]:
            try:
                if not isinstance(row, dict):
                    raise ValueError("not a record")
                items.append(Measurement.from_dict(row, shape_xyz))
            except ValueError:
                skipped += 1
        final: list[Measurement] = []
        used: set[int] = set()
        next_id = max((m.id for m in items), default=0) + 1
        for m in items:
            if not m.id or m.id in used:  # hand-edited files: ids missing or repeated
                m = replace(m, id=next_id)
                next_id += 1
            used.add(m.id)
            final.append(m)
        self._reset(tuple(final), next_id)
        return skipped

    # ---- internals ------------------------------------------------------------------------------
    def _snapshot(self) -> _Snapshot:
        return tuple(self._items.values()), self._next_id

    def _record(self) -> None:
        self._push(self._snapshot())

    def _push(self, snapshot: _Snapshot) -> None:
        self._undo.append(snapshot)
        del self._undo[:-HISTORY]
        self._redo.clear()

    def _restore(self, snapshot: _Snapshot) -> None:
        items, self._next_id = snapshot
        self._items = {m.id: m for m in items}
        if self.selected not in self._items:
            self.selected = 0

    def _step(self, source: list[_Snapshot], target: list[_Snapshot]) -> bool:
        if not source:
            return False
        target.append(self._snapshot())
        self._restore(source.pop())
        self._emit(selection=True)
        return True

    def _reset(self, items: tuple[Measurement, ...], next_id: int) -> None:
        self._undo.clear()
        self._redo.clear()
        self._edit_start = None
        self.draft = None
        self._restore((items, next_id))
        self.selected = 0
        self.changed.emit()
        self.selection_changed.emit(0)
        self.draft_changed.emit()

    def _emit(self, selection: bool = False) -> None:
        self.changed.emit()
        if selection:
            self.selection_changed.emit(self.selected)
        self.committed.emit()
