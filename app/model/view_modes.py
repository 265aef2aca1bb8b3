"""How the image is *displayed* (never what it is): layout, invert, per-view flip/rotate and thick slab, cine.

A Qt-free observable model, like :class:`~app.model.document.Document`, so the menus, the toolbar, the
keyboard and the tests all change the same state and every view follows its signals:

- ``layout_changed(name)`` — one of :data:`LAYOUTS`;
- ``active_changed(view)`` — the slice view that flip/rotate, slab and cine act on (the last one the
  user clicked, scrolled or focused);
- ``inverted_changed(bool)`` — grey scale inverted in every view (one key; X-rays are read this way);
- ``view_changed(view)`` — that view's :class:`ViewDisplay` (flip/rotation, slab) changed;
- ``cine_changed()`` — frames per second or loop/bounce.

Per-view state and invert are reset for every new image (a new patient is never shown flipped or as a
MIP by surprise); the layout and the cine settings stay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from psygnal import Signal

from app.model.display_transform import IDENTITY, DisplayTransform

VIEW_NAMES = ("axial", "coronal", "sagittal")
LAYOUTS = ("1x1", "1x2", "2x2", "1+3")
LAYOUT_LABELS = {"1x1": "1×1", "1x2": "1×2", "2x2": "2×2", "1+3": "1+3"}
CINE_MODES = ("loop", "bounce")
SLAB_MODES = ("off", "mean", "max", "min")  # plain slice, average, MIP, MinIP
SLAB_LABELS = {"off": "Off", "mean": "Average", "max": "MIP", "min": "MinIP"}
SLAB_MAX_MM = 200.0


@dataclass(frozen=True)
class ViewDisplay:
    """One view's display state: flip/rotation and thick slab (mode "off" = the plain slice)."""

    transform: DisplayTransform = IDENTITY
    slab_mode: str = "off"
    slab_mm: float = 10.0

    @property
    def slab_on(self) -> bool:
        return self.slab_mode != "off"


def next_cine_index(index: int, count: int, direction: int, mode: str) -> tuple[int, int]:
    """Next ``(slice, direction)`` of a cine loop over ``count`` slices (``mode``: loop or bounce)."""
    if count <= 1:
        return 0, direction
    step = index + direction
    if 0 <= step < count:
        return step, direction
    if mode == "bounce":
        return index - direction, -direction
    return (0 if direction > 0 else count - 1), direction


class ViewModes:
    """Display state of the slice views (see the module docstring for the signals)."""

    layout_changed = Signal(str)
    active_changed = Signal(str)
    inverted_changed = Signal(bool)
    view_changed = Signal(str)
    cine_changed = Signal()

    def __init__(self) -> None:
        self.layout = "2x2"
        self.active = "axial"
        self.inverted = False
        self.views: dict[str, ViewDisplay] = {name: ViewDisplay() for name in VIEW_NAMES}
        self.cine_fps = 10.0
        self.cine_mode = "loop"

    # ---- global ------------------------------------------------------------------------------
    def set_layout(self, layout: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        if layout != self.layout:
            self.layout = layout
            self.layout_changed.emit(layout)

    def set_active(self, view: str) -> None:
        if view in self.views and view != self.active:
            self.active = view
            self.active_changed.emit(view)

    def set_inverted(self, on: bool) -> None:
        if bool(on) != self.inverted:
            self.inverted = bool(on)
            self.inverted_changed.emit(self.inverted)

    def toggle_inverted(self) -> None:
        self.set_inverted(not self.inverted)

    def set_cine(self, fps: float | None = None, mode: str | None = None) -> None:
        if mode is not None and mode not in CINE_MODES:
            raise ValueError(f"unknown cine mode {mode!r}")
        self.cine_fps = min(max(float(fps), 1.0), 60.0) if fps is not None else self.cine_fps
        self.cine_mode = mode or self.cine_mode
        self.cine_changed.emit()

    # ---- per view ----------------------------------------------------------------------------
    def display(self, view: str | None = None) -> ViewDisplay:
        return self.views[view or self.active]

    def _set(self, view: str, display: ViewDisplay) -> None:
        if self.views[view] != display:
            self.views[view] = display
            self.view_changed.emit(view)

    def flip_horizontally(self, view: str | None = None) -> None:
        name = view or self.active
        self._set(name, replace(self.views[name], transform=self.views[name].transform.flipped_horizontally()))

    def flip_vertically(self, view: str | None = None) -> None:
        name = view or self.active
        self._set(name, replace(self.views[name], transform=self.views[name].transform.flipped_vertically()))

    def rotate(self, clockwise: bool = True, view: str | None = None) -> None:
        name = view or self.active
        self._set(name, replace(self.views[name], transform=self.views[name].transform.rotated(clockwise)))

    def reset_orientation(self, view: str | None = None) -> None:
        name = view or self.active
        self._set(name, replace(self.views[name], transform=IDENTITY))

    def set_slab(self, mode: str | None = None, thickness_mm: float | None = None, view: str | None = None) -> None:
        """Slab ``mode`` (one of :data:`SLAB_MODES`) and/or thickness of one view."""
        name = view or self.active
        current = self.views[name]
        if mode is not None and mode not in SLAB_MODES:
            raise ValueError(f"unknown slab mode {mode!r}")
        mm = current.slab_mm if thickness_mm is None else min(max(float(thickness_mm), 0.1), SLAB_MAX_MM)
        self._set(name, replace(current, slab_mode=mode or current.slab_mode, slab_mm=mm))

    def reset_views(self) -> None:
        """A new image: canonical orientation, no slab, not inverted (layout and cine stay)."""
        for name in VIEW_NAMES:
            self._set(name, ViewDisplay(slab_mm=self.views[name].slab_mm))
        self.set_inverted(False)


def slab_text(display: ViewDisplay, effective_mm: float, slices: int) -> str:
    """Corner text of a slab: "MIP 10 mm (2 slices)"; what is drawn, not only what was asked."""
    if not display.slab_on:
        return ""
    return f"{SLAB_LABELS[display.slab_mode]} {effective_mm:g} mm ({slices} slice{'s' if slices != 1 else ''})"
