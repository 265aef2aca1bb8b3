"""The open study as an observable, Qt-free model.

Views, panels and tools never talk to each other: they change the :class:`Document` and react to its
psygnal signals. Everything positional is in the primary volume's *index space* ``(x, y, z)``; the
three slice views show the planes through :attr:`Document.cursor` (the crosshair), so scrolling a
view is just moving one component of the cursor.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from inference.clinical.formatting import format_pixel_value
from inference.io.volume import StudyInfo, Volume


def _default_window(volume: Volume) -> tuple[float, float]:
    """(window, level) from the file, a CT soft-tissue default, SUV 0–5, or robust percentiles."""
    win = volume.meta.get("window") if isinstance(volume.meta, dict) else None
    if win and len(win) == 2 and float(win[1]) > 0:
        return float(win[1]), float(win[0])
    if volume.units == "HU" or volume.modality == "CT":
        return 400.0, 40.0
    if volume.units.upper().startswith("SUV"):
        return 5.0, 2.5
    sample = volume.array[:: max(1, volume.shape[0] // 16), ::4, ::4]
    # Radiographs are meant to be read over their full stored range; MR etc. over robust percentiles.
    limits = [0.0, 100.0] if volume.is_2d else [0.5, 99.5]
    lo, hi = np.percentile(sample, limits) if sample.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return float(hi - lo), float((hi + lo) / 2)


class Document:
    """Primary volume, optional overlay (already on the primary grid), display state and cursor.

    Signals (all emitted on the thread that calls the setter, i.e. the UI thread):

    - ``volume_changed(volume | None)``: a new primary image; cursor, W/L and overlay were reset.
    - ``overlay_changed(volume | None)``: PET (or other) overlay resampled to the primary grid.
    - ``window_level_changed(window, level)``: display window of the primary image.
    - ``overlay_range_changed(lower, upper)`` and ``overlay_opacity_changed(opacity)``.
    - ``cursor_changed(index_xyz)``: crosshair position (ints ``(x, y, z)``); slices follow it.
    - ``deidentify_changed(bool)``: hide identifying header fields.
    """

    volume_changed = Signal(object)
    overlay_changed = Signal(object)
    window_level_changed = Signal(float, float)
    overlay_range_changed = Signal(float, float)
    overlay_opacity_changed = Signal(float)
    cursor_changed = Signal(tuple)
    deidentify_changed = Signal(bool)

    def __init__(self, *, deidentify: bool = False) -> None:
        self.volume: Volume | None = None
        self.overlay: Volume | None = None
        self.window: float = 400.0
        self.level: float = 40.0
        self.overlay_range: tuple[float, float] = (0.0, 5.0)
        self.overlay_opacity: float = 0.5
        self.cursor: tuple[int, int, int] = (0, 0, 0)
        self.deidentify: bool = deidentify

    # --- primary image -------------------------------------------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """Show ``volume``: centre the cursor, take its default window, drop any overlay."""
        self.volume = volume
        self.overlay = None
        if volume is not None:
            z, y, x = volume.shape
            self.cursor = (x // 2, y // 2, z // 2)
            self.window, self.level = _default_window(volume)
        self.volume_changed.emit(volume)
        self.overlay_changed.emit(None)
        self.window_level_changed.emit(self.window, self.level)
        self.cursor_changed.emit(self.cursor)

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        if self.volume is None:
            return (0, 0, 0)
        z, y, x = self.volume.shape
        return (x, y, z)

    def set_window_level(self, window: float, level: float) -> None:
        window = max(float(window), 1e-3)
        if (window, float(level)) == (self.window, self.level):
            return
        self.window, self.level = window, float(level)
        self.window_level_changed.emit(self.window, self.level)

    # --- overlay -------------------------------------------------------------------------------
    def set_overlay(self, overlay: Volume | None) -> None:
        """Overlay on the primary grid (same shape); SUV overlays default to 0–5."""
        if overlay is not None:
            if self.volume is None or overlay.shape != self.volume.shape:
                raise ValueError("overlay must be resampled to the primary volume's grid first")
            if overlay.units.upper().startswith("SUV"):
                self.overlay_range = (0.0, 5.0)
            else:
                # Scale to the hottest voxel (like SUVmax scaling); background percentile as floor.
                lo = float(np.percentile(overlay.array[::2, ::4, ::4], 1.0))
                hi = float(overlay.array.max())
                self.overlay_range = (lo, max(hi, lo + 1e-3))
        self.overlay = overlay
        self.overlay_changed.emit(overlay)
        self.overlay_range_changed.emit(*self.overlay_range)

    def set_overlay_range(self, lower: float, upper: float) -> None:
        self.overlay_range = (float(lower), float(max(upper, lower + 1e-3)))
        self.overlay_range_changed.emit(*self.overlay_range)

    def set_overlay_opacity(self, opacity: float) -> None:
        opacity = min(max(float(opacity), 0.0), 1.0)
        if opacity != self.overlay_opacity:
            self.overlay_opacity = opacity
            self.overlay_opacity_changed.emit(opacity)

    # --- cursor / slices -----------------------------------------------------------------------
    def set_cursor(self, index_xyz: tuple[float, float, float] | np.ndarray) -> None:
        """Move the crosshair (clamped to the volume, rounded to the nearest voxel)."""
        if self.volume is None:
            return
        dims = self.shape_xyz
        new = tuple(int(min(max(round(float(v)), 0), n - 1)) for v, n in zip(index_xyz, dims, strict=True))
        if new != self.cursor:
            self.cursor = new  # type: ignore[assignment]
            self.cursor_changed.emit(self.cursor)

    def set_slice(self, axis: int, index: int) -> None:
        """Show slice ``index`` along index axis ``axis`` (0=x, 1=y, 2=z)."""
        cursor = list(self.cursor)
        cursor[axis] = index
        self.set_cursor((cursor[0], cursor[1], cursor[2]))

    def step_slice(self, axis: int, delta: int) -> None:
        self.set_slice(axis, self.cursor[axis] + delta)

    # --- header / readout ----------------------------------------------------------------------
    def set_deidentify(self, on: bool) -> None:
        if bool(on) != self.deidentify:
            self.deidentify = bool(on)
            self.deidentify_changed.emit(self.deidentify)

    def study_info(self) -> StudyInfo:
        """Header as it may be displayed (de-identified when the toggle is on)."""
        if self.volume is None:
            return StudyInfo()
        return self.volume.info.deidentified() if self.deidentify else self.volume.info

    def voxel_readout(self, index_xyz: tuple[float, float, float] | np.ndarray) -> str:
        """One line for the status bar: voxel, mm (LPS), value with units, overlay value.

        Voxel numbers count from 1, like the slice numbers in the views ("Axial 34/48" is voxel z 34):
        one numbering wherever a person reads it. Code, files and the CLI use 0-based array indices.
        """
        vol = self.volume
        if vol is None:
            return ""
        dims = self.shape_xyz
        ijk = [int(round(float(v))) for v in index_xyz]
        if any(not 0 <= i < n for i, n in zip(ijk, dims, strict=True)):
            return ""
        x, y, z = ijk
        value = float(vol.array[z, y, x])
        parts = [f"pixel ({x + 1}, {y + 1})" if vol.is_2d else f"voxel ({x + 1}, {y + 1}, {z + 1})"]
        if not vol.is_2d:
            mm = vol.index_to_physical(np.array(ijk, dtype=float))
            parts.append(f"LPS ({mm[0]:.1f}, {mm[1]:.1f}, {mm[2]:.1f}) mm")
        parts.append(format_pixel_value(value, vol.units, vol.modality) if vol.units or vol.modality == "CT"
                     else f"{format_pixel_value(value)} intensity")
        if self.overlay is not None:
            ov = float(self.overlay.array[z, y, x])
            parts.append(f"overlay {format_pixel_value(ov, self.overlay.units, self.overlay.modality)}")
        return "   ".join(parts)
