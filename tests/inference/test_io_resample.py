"""resample_to_reference: known answers in physical space."""

from __future__ import annotations

import numpy as np
import pytest

from inference.errors import ImageReadError
from inference.io.resample import resample_to_reference
from inference.io.volume import Volume

COEFF = np.array([0.5, -1.25, 2.0])


def _linear_volume(shape, spacing, origin, direction) -> Volume:
    vol = Volume(np.zeros(shape, np.float32), spacing=spacing, origin=origin, direction=direction, modality="PT",
                 units="SUVbw")
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    pts = vol.index_to_physical(np.stack([x, y, z], axis=-1).reshape(-1, 3))
    vol.array = (pts @ COEFF + 7.0).reshape(shape).astype(np.float32)
    return vol


def test_linear_field_is_reproduced_on_rotated_grid() -> None:
    moving = _linear_volume((20, 30, 30), (2.0, 2.0, 3.0), (-30.0, -30.0, -30.0), np.eye(3))
    c, s = np.cos(0.4), np.sin(0.4)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    reference = _linear_volume((5, 8, 9), (1.5, 1.0, 2.5), (-5.0, -4.0, -10.0), rot)
    out = resample_to_reference(moving, reference, order=1)
    assert out.shape == reference.shape and out.spacing == reference.spacing
    np.testing.assert_allclose(out.direction, rot)
    np.testing.assert_allclose(out.array, reference.array, atol=1e-3)
    assert out.units == "SUVbw" and out.modality == "PT" and out.source_files == []


def test_nearest_neighbour_on_coarser_grid_and_outside_fill() -> None:
    labels = np.arange(4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6)
    moving = Volume(labels, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    reference = Volume(np.zeros((2, 4, 4), np.float32), spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0))
    out = resample_to_reference(moving, reference, order=0)
    np.testing.assert_array_equal(out.array[:, :3, :3], labels[::2, ::2, ::2][:, :3, :3])
    assert out.array[0, 3, 3] == labels.min()  # x = y = 6 mm lies outside the moving grid


def test_no_overlap_is_an_error() -> None:
    moving = Volume(np.ones((2, 3, 3), np.float32) * 5)
    reference = Volume(np.zeros((2, 3, 3), np.float32), origin=(500.0, 0.0, 0.0))
    with pytest.raises(ImageReadError, match="do not overlap"):
        resample_to_reference(moving, reference)
