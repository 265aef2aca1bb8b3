"""Undo/redo per gesture, storing only the changed voxels of the touched slices (bounded memory)."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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

    @property
    def nbytes(self) -> int:
        return sum(d.nbytes for d in self.diffs) + 256 * len(self.state)

    @property
    def empty(self) -> bool:
        return not self.diffs and all(a == b for a, b in self.state.values())


class History:
    """Two stacks of gestures; the oldest undo steps are dropped when ``max_bytes`` is exceeded."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024, max_steps: int = 200) -> None:
        self.max_bytes = max_bytes
        self._undo: deque[Gesture] = deque(maxlen=max_steps)
        self._redo: list[Gesture] = []

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
        if gesture.empty:
            return
        self._undo.append(gesture)
        self._redo.clear()
        while len(self._undo) > 1 and self.nbytes > self.max_bytes:
            self._undo.popleft()

    def pop_undo(self) -> Gesture | None:
        if not self._undo:
            return None
        gesture = self._undo.pop()
        self._redo.append(gesture)
        return gesture

    def pop_redo(self) -> Gesture | None:
        if not self._redo:
            return None
        gesture = self._redo.pop()
        self._undo.append(gesture)
        return gesture

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()


def apply_diffs(label_map: np.ndarray, gesture: Gesture, forward: bool) -> None:
    """Write a gesture's ``after`` (redo) or ``before`` (undo) values back into the label map."""
    for diff in gesture.diffs if forward else reversed(gesture.diffs):
        plane = label_map[diff.z].reshape(-1)
        plane[diff.index] = diff.after if forward else diff.before
