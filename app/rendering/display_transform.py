"""A view's plane mapping after the user's flip/rotation (:class:`~app.model.display_transform.DisplayTransform`).

Why a mapping and not a camera roll: every consumer of a view (tools through ``display_to_index``,
label layers through ``mapping.slice_2d``, the crosshair, the orientation letters) already goes through
the view's mapping, so composing the user's flip/rotation into it keeps all of them right at once, and
the voxel under the mouse (the HU/SUV readout) stays correct by construction. The data is never touched.
"""

from __future__ import annotations

from dataclasses import replace

from app.model.display_transform import DisplayTransform
from app.rendering.planes import PlaneMapping


def transformed(mapping: PlaneMapping, transform: DisplayTransform) -> PlaneMapping:
    """``mapping`` as displayed after ``transform`` (same plane, new screen axes and edge letters)."""
    if transform.is_identity:
        return mapping
    a, b, c, d = transform.matrix
    # Canonical screen direction now drawn to the right: M^T e_x = (a, b); drawn up: M^T e_y = (c, d).
    canonical = {(1, 0): (mapping.h_axis, mapping.h_flip), (0, 1): (mapping.v_axis, mapping.v_flip)}

    def axis_along(vx: int, vy: int) -> tuple[int, bool]:
        axis, flip = canonical[(abs(vx), abs(vy))]
        return axis, flip if vx + vy > 0 else not flip

    h_axis, h_flip = axis_along(a, b)
    v_axis, v_flip = axis_along(c, d)
    left, right, bottom, top = mapping.edge_letters
    letter = {(1, 0): right, (-1, 0): left, (0, 1): top, (0, -1): bottom}
    letters = (letter[(-a, -b)], letter[(a, b)], letter[(-c, -d)], letter[(c, d)])
    return replace(mapping, h_axis=h_axis, h_flip=h_flip, v_axis=v_axis, v_flip=v_flip, edge_letters=letters)
