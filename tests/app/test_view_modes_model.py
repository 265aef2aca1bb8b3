"""View modes without Qt: slab projections against direct numpy, flip/rotate algebra and mappings, cine
stepping, layout rules, and the left-drag setting's validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.model.display_transform import IDENTITY
from app.model.layouts import arrangement
from app.model.view_modes import ViewModes, next_cine_index
from app.rendering.display_transform import transformed
from app.rendering.planes import plane_mapping
from app.rendering.slab import Slab, SlabCache, oriented, project, slab_range, slab_value
from inference.settings import Settings

RNG = np.random.default_rng(7)
VOLUME = RNG.normal(0, 100, size=(9, 11, 13)).astype(np.float32)  # [z, y, x]: every axis distinct
FLIPPED = np.diag([-1.0, 1.0, -1.0])  # a volume stored right-to-left and feet-first


def _reference(array: np.ndarray, mapping_name: str, direction: np.ndarray, start: int, stop: int,
               reducer: str) -> np.ndarray:
    """Slab by brute force: reduce the view's plain planes (PlaneMapping.slice_2d) slice by slice."""
    m = plane_mapping(mapping_name, direction)
    planes = np.stack([m.slice_2d(array, i) for i in range(start, stop)])
    return getattr(planes.astype(np.float64), reducer)(axis=0)


@pytest.mark.parametrize("name", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("mode", ["mean", "max", "min"])
@pytest.mark.parametrize("direction", [np.eye(3), FLIPPED])
def test_slab_projection_matches_numpy_reference(name: str, mode: str, direction: np.ndarray) -> None:
    m = plane_mapping(name, direction)
    n = VOLUME.transpose(2, 1, 0).shape[m.normal_axis]
    start, stop = slab_range(4, n, thickness_mm=3.0, spacing_mm=1.0)
    assert (start, stop) == (3, 6)
    got = oriented(m, project(VOLUME, m.normal_axis, Slab(mode, start, stop)))
    np.testing.assert_allclose(got, _reference(VOLUME, name, direction, start, stop, mode), rtol=1e-5, atol=1e-3)
    # the value under the mouse is the same projection, read along one line of voxels
    x, y, z = 5, 6, 4
    line = {0: VOLUME[z, y, start:stop], 1: VOLUME[z, start:stop, x], 2: VOLUME[start:stop, y, x]}[m.normal_axis]
    assert slab_value(VOLUME, (x, y, z), m.normal_axis, Slab(mode, start, stop)) == pytest.approx(
        float(getattr(line.astype(np.float64), mode)()), rel=1e-5)


def test_slab_range_is_centred_rounded_and_clipped() -> None:
    assert slab_range(10, 48, 10.0, 5.0) == (10, 12)  # 2 slices: the shown one and the next
    assert slab_range(10, 48, 15.0, 5.0) == (9, 12)  # 3 slices centred
    assert slab_range(10, 48, 1.0, 5.0) == (10, 11)  # thinner than a slice: the slice itself
    assert slab_range(0, 48, 25.0, 5.0) == (0, 3)  # clipped at the first slice
    assert slab_range(47, 48, 25.0, 5.0) == (45, 48)


def test_slab_cache_reuses_and_clears() -> None:
    cache = SlabCache(max_planes=2)
    a = cache.projection(VOLUME, 2, Slab("max", 1, 4))
    assert cache.projection(VOLUME, 2, Slab("max", 1, 4)) is a and (cache.hits, cache.misses) == (1, 1)
    cache.projection(VOLUME, 2, Slab("max", 2, 5))
    cache.projection(VOLUME, 2, Slab("min", 2, 5))  # evicts the oldest
    assert cache.projection(VOLUME, 2, Slab("max", 1, 4)) is not a
    cache.clear()
    assert cache.projection(VOLUME, 2, Slab("max", 2, 5)).shape == (11, 13)  # array order: [y, x]


@pytest.mark.parametrize("name", ["axial", "coronal", "sagittal"])
def test_flips_and_rotations_move_pixels_letters_and_picking_together(name: str) -> None:
    base = plane_mapping(name, FLIPPED)
    shape_xyz = (13, 11, 9)
    plane0 = base.slice_2d(VOLUME, 4)
    t_h = IDENTITY.flipped_horizontally()
    m = transformed(base, t_h)
    np.testing.assert_array_equal(m.slice_2d(VOLUME, 4), plane0[:, ::-1])
    left, r, b, t = base.edge_letters
    assert m.edge_letters == (r, left, b, t)
    m = transformed(base, IDENTITY.flipped_vertically())
    np.testing.assert_array_equal(m.slice_2d(VOLUME, 4), plane0[::-1, :])
    assert m.edge_letters == (left, r, t, b)
    # clockwise quarter turn of the image as seen (top row first = plane[::-1]); the old top edge is on the right
    m = transformed(base, IDENTITY.rotated())
    np.testing.assert_array_equal(m.slice_2d(VOLUME, 4)[::-1], np.rot90(plane0[::-1], k=-1))
    assert m.edge_letters == (b, t, r, left)
    assert transformed(base, IDENTITY.rotated().rotated(False)) == base
    # picking stays right: a display pixel maps to the voxel whose value is drawn there
    for transform in (t_h, IDENTITY.rotated(), IDENTITY.rotated().flipped_vertically()):
        m = transformed(base, transform)
        plane = m.slice_2d(VOLUME, 4)
        for row, col in ((0, 0), (2, 5), (plane.shape[0] - 1, 1)):
            x, y, z = (int(v) for v in m.display_to_index(col, row, 4, shape_xyz))
            assert plane[row, col] == VOLUME[z, y, x]
            assert m.index_to_display(np.array([x, y, z]), shape_xyz) == (col, row)


def test_transform_algebra_and_description() -> None:
    assert IDENTITY.describe() == "" and IDENTITY.flipped_horizontally().flipped_horizontally() == IDENTITY
    assert IDENTITY.rotated().rotated().rotated().rotated() == IDENTITY
    assert IDENTITY.flipped_horizontally().flipped_vertically().describe() == "rotated 180°"
    assert IDENTITY.rotated(False).describe() == "rotated 270°"
    assert IDENTITY.flipped_vertically().describe() == "flipped V"
    # flip then rotate turns the mirrored image as seen: same as rotating the other way, then flipping
    assert IDENTITY.flipped_horizontally().rotated() == IDENTITY.rotated(False).flipped_horizontally()
    assert IDENTITY.rotated().flipped_horizontally().describe() == "rotated 90°, flipped H"
    assert IDENTITY.rotated().swaps_axes and not IDENTITY.flipped_vertically().swaps_axes


def test_cine_loops_and_bounces() -> None:
    assert next_cine_index(3, 5, 1, "loop") == (4, 1)
    assert next_cine_index(4, 5, 1, "loop") == (0, 1)
    assert next_cine_index(0, 5, -1, "loop") == (4, -1)
    assert next_cine_index(4, 5, 1, "bounce") == (3, -1)
    assert next_cine_index(0, 5, -1, "bounce") == (1, 1)
    assert next_cine_index(0, 1, 1, "bounce") == (0, 1)  # one slice: nothing to play
    frames = []
    index, direction = 0, 1
    for _ in range(8):
        index, direction = next_cine_index(index, 3, direction, "bounce")
        frames.append(index)
    assert frames == [1, 2, 1, 0, 1, 2, 1, 0]


def test_layout_arrangements() -> None:
    assert set(arrangement("2x2", "sagittal").cells) == {"axial", "coronal", "sagittal", "3d"}
    assert arrangement("2x2", "sagittal").cells["axial"] == (0, 0, 1, 1)  # 2×2 keeps its places
    assert arrangement("1x1", "coronal").cells == {"coronal": (0, 0, 1, 1)}
    assert arrangement("1x2", "sagittal").cells == {"sagittal": (0, 0, 1, 1), "axial": (0, 1, 1, 1)}
    assert arrangement("1x2", "axial").cells == {"axial": (0, 0, 1, 1), "coronal": (0, 1, 1, 1)}
    one_plus_three = arrangement("1+3", "coronal")
    assert one_plus_three.cells["coronal"] == (0, 0, 3, 1) and len(one_plus_three.cells) == 4
    assert one_plus_three.column_stretch == (3, 1)
    assert arrangement("1+3", "axial", maximized="sagittal").cells == {"sagittal": (0, 0, 1, 1)}
    assert arrangement("1+3", "coronal", two_d=True).cells == {"axial": (0, 0, 1, 1)}
    with pytest.raises(ValueError):
        arrangement("3x3", "axial")


def test_model_validates_and_resets() -> None:
    modes = ViewModes()
    changed: list[str] = []
    modes.view_changed.connect(changed.append)
    modes.set_active("coronal")
    modes.set_slab(mode="max", thickness_mm=500)
    assert modes.display("coronal").slab_mm == 200.0 and changed == ["coronal"]
    modes.flip_horizontally()
    modes.set_inverted(True)
    with pytest.raises(ValueError):
        modes.set_slab(mode="sum")
    with pytest.raises(ValueError):
        modes.set_layout("3x3")
    modes.reset_views()
    assert not modes.display("coronal").slab_on and modes.display("coronal").transform == IDENTITY
    assert modes.display("coronal").slab_mm == 200.0 and not modes.inverted  # the thickness is remembered


def test_left_drag_setting_round_trips_and_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    Settings(left_drag="window_level").save(path)
    assert Settings.load(path).left_drag == "window_level"
    for bad in ("banana", 3, None, ["crosshair"]):
        raw = json.loads(path.read_text())
        raw["left_drag"] = bad
        path.write_text(json.dumps(raw))
        assert Settings.load(path).left_drag == "crosshair"
    path.write_text("[1, 2]")  # not an object at all
    assert Settings.load(path) == Settings()
    with pytest.raises(ValueError, match="left_drag"):
        Settings(left_drag="wl")
