"""Measurements on images: physical lengths, angles, long/short axes and ROI statistics (pure numpy).

Why here and not in the viewer: the same numbers go into the PDF report, the CLI and tests that compare
them with SimpleITK, none of which may need Qt. Every position is a continuous voxel index ``(x, y, z)``
of a :class:`~inference.io.volume.Volume`; lengths go through ``Volume.index_to_physical`` (spacing and
direction), so they are right on anisotropic and oblique grids.
"""

from __future__ import annotations

from inference.measure.geometry import (
    angle_deg,
    distance_mm,
    from_plane_coords,
    in_plane_axes,
    initial_short_axis,
    move_long_end,
    move_short_end,
    pixel_area_mm2,
    plane_coords,
    short_axis_from_params,
    short_axis_params,
)
from inference.measure.roi import RoiStatistics, ellipse_mask, ellipse_statistics, roi_statistics

__all__ = [
    "RoiStatistics",
    "angle_deg",
    "distance_mm",
    "ellipse_mask",
    "ellipse_statistics",
    "from_plane_coords",
    "in_plane_axes",
    "initial_short_axis",
    "move_long_end",
    "move_short_end",
    "pixel_area_mm2",
    "plane_coords",
    "roi_statistics",
    "short_axis_from_params",
    "short_axis_params",
]
