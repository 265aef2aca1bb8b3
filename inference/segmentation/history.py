"""Undo/redo per gesture, storing only the changed voxels of the touched slices (bounded memory).

Each gesture also records how it changed the *origin* of the labels (made by the model, by hand, or
both): DICOM SEG export names AI, manual and AI-corrected segments differently, and undo/redo must put
the origin back together with the pixels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

AI, MANUAL = "ai", "manual"
Origins = dict[int, frozenset[str]]  # label value -> the kinds of gesture that drew it: {AI, MANUAL}


@dataclass
class SliceDiff:
    """Changed pixels of one slice: flat indices with their values before and after."""

    z: int
    index: np.ndarray  # int32 flat indices into the slice
    before: np.ndarray  # uint8
    after: np.ndarray  # uint8

    @classmethod
    def between(cls, z: int, before: np.ndarray, after: np.ndarray) -> SliceDiff | None:
        changed = np.flatnonzero(before.ravel() != after.ravel()).astype(np.int32)
        if changed.size == 0:
            return None
        return cls(z, changed, before.ravel()[changed].copy(), after.ravel()[changed].copy())

    @property
    def nbytes(self) -> int:
        return self.index.nbytes + self.before.nbytes + self.after.nbytes


@dataclass
class Gesture:
    """One user action (box, point, brush stroke, propagation): its slice diffs and prompt-state changes."""

    name: str
    diffs: list[SliceDiff] = field(default_factory=list)
    # key → (state before, state after); None means "absent"
    state: dict[Hashable, tuple[Any, Any]] = field(default_factory=dict)
    origins: tuple[Origins, Origins] | None = None  # label origins before / after (None: unchanged)

    @property
    def nbytes(self) -> int:
        return sum(d.nbytes for d in self.diffs) + 256 * len(self.state)

    @property
    def empty(self) -> bool:
        return not self.diffs and all(a == b for a, b in self.state.values())


class History:
    """Two stacks of gestures; the oldest undo steps are dropped when ``max_bytes`` is exceeded.

    :attr:`origins` is the current origin of every label; :meth:`mark` announces the origin change of
    the next pushed gesture, which then carries it (undo/redo restore it; :attr:`last` is the gesture
    the latest undo/redo applied).
    """

    def __init__(self, max_bytes: int = 256 * 1024 * 1024, max_steps: int = 200) -> None:
        self.max_bytes = max_bytes
        self._undo: deque[Gesture] = deque(maxlen=max_steps)
        self._redo: list[Gesture] = []
        self.origins: Origins = {}
        self.pending_origins: tuple[Origins, Origins] | None = None
        self.last: Gesture | None = None

    def mark(self, value: int, kind: str) -> None:
        """The next gesture pushed draws label ``value`` by ``kind`` (:data:`AI` or :data:`MANUAL`)."""
        before = dict(self.origins)
        after = dict(before)
        after[value] = before.get(value, frozenset()) | {kind}
        self.pending_origins = (before, after)

    def origin(self, value: int) -> str:
        """The label's origin: AI (model gestures only), MANUAL (by hand only, or never drawn) or AI_CORRECTED."""
        kinds = self.origins.get(value, frozenset())
        if AI in kinds:
            return "AI_CORRECTED" if MANUAL in kinds else "AI"
        return "MANUAL"

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def nbytes(self) -> int:
        return sum(g.nbytes for g in self._undo) + sum(g.nbytes for g in self._redo)

    def push(self, gesture: Gesture) -> None:
        pending, self.pending_origins = self.pending_origins, None
        if gesture.empty:
            return
        if pending is not None:
            gesture.origins = pending
            self.origins = dict(pending[1])
        self._undo.append(gesture)
        self._redo.clear()
        while len(self._undo) > 1 and self.nbytes > self.max_bytes:
            self._undo.popleft()

    def amend(self, key: tuple, after: object) -> None:
        """The newest gesture holding state ``key`` set it to ``after`` (a value known only later, e.g. a
        deferred confidence score): redo then restores the known value."""
        for gesture in reversed(self._undo):
            if key in gesture.state:
                gesture.state[key] = (gesture.state[key][0], after)
                return

    def pop_undo(self) -> Gesture | None:
        if not self._undo:
            self.last = None
            return None
        self.last = gesture = self._undo.pop()
        self._redo.append(gesture)
        if gesture.origins is not None:
            self.origins = dict(gesture.origins[0])
        return gesture

    def pop_redo(self) -> Gesture | None:
        if not self._redo:
            self.last = None
            return None
        self.last = gesture = self._redo.pop()
        self._undo.append(gesture)
        if gesture.origins is not None:
            self.origins = dict(gesture.origins[1])
        return gesture

    def clear(self) -> None:
        """Drop the undo/redo steps (the labels' current :attr:`origins` stay)."""
        self._undo.clear()
        self._redo.clear()
        self.last = None


def apply_diffs(label_map: np.ndarray, gesture: Gesture, forward: bool) -> None:
    """Write a gesture's ``after`` (redo) or ``before`` (undo) values back into the label map."""
    for diff in gesture.diffs if forward else reversed(gesture.diffs):
        plane = label_map[diff.z].reshape(-1)
        plane[diff.index] = diff.after if forward else diff.before
