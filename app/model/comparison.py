"""Side-by-side comparison with a prior study (Qt-free): the prior's own document, labels, and the sync rule.

The *current* side is the window's :class:`Document` itself, so its window/level, cursor and labels are the
primary study's (segmentation stays bound to it). The *prior* is a second :class:`Document` that nothing
else listens to: view only, with its own window/level. With sync on, scrolling one side moves the other:

- by **physical position** when both share a frame of reference, or both have real patient positions
  (3-D volumes): the slice nearest the same patient coordinate along the view's normal;
- else by **relative index** (the same fraction of the way through the stack).

Zoom and pan follow the same rule in the comparison view (same millimetres per screen pixel for physical
geometry, else the same magnification relative to each image's fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal

from app.model.document import Document
from app.model.series_browser import interval_text
from inference.io.volume import Volume

ORIENTATIONS = ("axial", "coronal", "sagittal")
_PATIENT_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}  # LPS axis normal to the view


def normal_axis(volume: Volume, orientation: str) -> int:
    """The index axis (0 x, 1 y, 2 z) normal to ``orientation`` (nearest patient axis; 2-D images: z)."""
    if volume.is_2d or orientation not in _PATIENT_AXIS:
        return 2
    d = np.asarray(volume.direction, float).reshape(3, 3)
    axes = [int(np.argmax(np.abs(d[:, j]))) for j in range(3)]
    if sorted(axes) != [0, 1, 2]:
        axes = [0, 1, 2]
    return axes.index(_PATIENT_AXIS[orientation])


def has_physical_positions(volume: Volume) -> bool:
    """3-D with real slice positions (not a 2-D image, not frames without positions)."""
    warnings = volume.meta.get("warnings") or [] if isinstance(volume.meta, dict) else []
    return (not volume.is_2d and volume.meta.get("spacing_known", True) is not False
            and not any("without per-frame positions" in str(w) for w in warnings))


def sync_mode(a: Volume, b: Volume) -> str:
    """'physical' (same frame of reference, or both with patient positions) or 'index'."""
    fa, fb = a.info.frame_of_reference_uid, b.info.frame_of_reference_uid
    if fa and fa == fb and not (a.is_2d or b.is_2d):
        return "physical"
    return "physical" if has_physical_positions(a) and has_physical_positions(b) else "index"


def matching_slice(src: Volume, cursor: tuple[int, int, int], src_axis: int, dst: Volume, dst_axis: int,
                   mode: str) -> tuple[int, bool]:
    """(slice of ``dst`` along ``dst_axis`` matching ``src``'s slice at ``cursor``, whether it lies inside)."""
    z, y, x = dst.shape
    n_dst = (x, y, z)[dst_axis]
    if mode == "physical":
        point = src.index_to_physical(np.asarray(cursor, float))
        position = float(dst.physical_to_index(point)[dst_axis])
    else:
        sz, sy, sx = src.shape
        n_src = (sx, sy, sz)[src_axis]
        position = cursor[src_axis] / (n_src - 1) * (n_dst - 1) if n_src > 1 else (n_dst - 1) / 2
    inside = -0.5 <= position <= n_dst - 0.5
    return int(np.clip(round(position), 0, n_dst - 1)), inside


@dataclass(frozen=True)
class SideInfo:
    """What a side's caption says: its role, when it was taken, what it is."""

    role: str  # "current" | "prior"
    when: float | None = None  # date ordinal or case day, for the interval between the sides
    when_text: str = ""  # "2024-03-01", "day 3", "date hidden"
    description: str = ""
    patient_id: str = ""


class ComparisonModel:
    """Prior document, captions, sync toggle, orientation; scroll sync between the two documents."""

    active_changed = Signal(bool)
    prior_changed = Signal(object)  # Volume | None
    captions_changed = Signal()
    sync_changed = Signal(bool)
    orientation_changed = Signal(str)
    outside_changed = Signal(bool)  # the prior has no slice at the current position (physical sync)

    def __init__(self, current: Document) -> None:
        self.current = current
        self.prior = Document(deidentify=current.deidentify)
        self.active = False
        self.sync = True
        self.orientation = "axial"
        self.current_info: SideInfo | None = None
        self.prior_info: SideInfo | None = None
        self.prior_outside = False
        self._following = False
        current.cursor_changed.connect(lambda _c: self._follow(self.current, self.prior))
        self.prior.cursor_changed.connect(lambda _c: self._follow(self.prior, self.current))
        current.deidentify_changed.connect(self.prior.set_deidentify)

    # ---- state -------------------------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        if on != self.active:
            self.active = on
            self.active_changed.emit(on)
            if on:
                self.align()

    def set_prior(self, volume: Volume | None, info: SideInfo | None = None) -> None:
        self.prior.set_volume(volume)
        self.prior_info = info if volume is not None else None
        self.prior_changed.emit(volume)
        self.captions_changed.emit()
        self.align()

    def set_current_info(self, info: SideInfo | None) -> None:
        self.current_info = info
        self.captions_changed.emit()

    def set_sync(self, on: bool) -> None:
        if on != self.sync:
            self.sync = on
            self.sync_changed.emit(on)
            self.align()

    def set_orientation(self, name: str) -> None:
        if name in ORIENTATIONS and name != self.orientation:
            self.orientation = name
            self.orientation_changed.emit(name)
            self.align()

    @property
    def mode(self) -> str:
        a, b = self.current.volume, self.prior.volume
        return sync_mode(a, b) if a is not None and b is not None else "index"

    @property
    def patients_differ(self) -> bool:
        a, b = self.current_info, self.prior_info
        return bool(a and b and a.patient_id and b.patient_id and a.patient_id != b.patient_id)

    def interval(self) -> str:
        a, b = self.current_info, self.prior_info
        return interval_text(a.when, b.when, days_only=a.when_text.startswith("day")) if a and b else ""

    # ---- sync --------------------------------------------------------------------------------
    def align(self) -> None:
        """Put the prior on the slice matching the current one (when sync is on and both are open)."""
        self._follow(self.current, self.prior)

    def _follow(self, source: Document, target: Document) -> None:
        if not (self.active and self.sync) or self._following:
            return
        src, dst = source.volume, target.volume
        if src is None or dst is None:
            return
        src_axis, dst_axis = normal_axis(src, self.orientation), normal_axis(dst, self.orientation)
        index, inside = matching_slice(src, source.cursor, src_axis, dst, dst_axis, self.mode)
        self._following = True
        try:
            target.set_slice(dst_axis, index)
        finally:
            self._following = False
        outside = not inside if target is self.prior else False  # scrolling the prior: its slice exists
        if outside != self.prior_outside:
            self.prior_outside = outside
            self.outside_changed.emit(outside)
