"""Regression guards for the viewer's memory and start-up work (issue 17): no whole-volume copies per
slice, a shared int16 3-D image for CT, heavy modules kept out of the start, Triton loaded before Mesa."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from app.rendering.planes import plane_mapping
from app.rendering.vtk_image import image_3d
from inference.io.volume import Volume

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["axial", "coronal", "sagittal"])
def test_slice_extraction_copies_one_plane_not_the_volume(name: str) -> None:
    volume = np.random.default_rng(0).normal(size=(40, 48, 56)).astype(np.float32)
    mapping = plane_mapping(name, np.eye(3))
    expected = {"axial": volume[7].T.T, "coronal": volume[:, 7, :], "sagittal": volume[:, :, 7]}[name]
    tracemalloc.start()
    plane = mapping.slice_2d(volume, 7)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < volume.nbytes / 4  # one plane (and its flipped copy), never the whole volume
    assert sorted(plane.ravel()) == sorted(expected.ravel())


def test_ct_3d_image_is_int16_and_shares_its_buffer() -> None:
    from vtkmodules.util.numpy_support import vtk_to_numpy

    array = np.random.default_rng(1).uniform(-1024, 3000, size=(6, 20, 24)).astype(np.float32)
    image = image_3d(array, (0.7, 0.7, 2.0), stride=2, integer=True)
    scalars = vtk_to_numpy(image.GetPointData().GetScalars())
    assert scalars.dtype == np.int16
    np.testing.assert_array_equal(scalars.reshape(6, 10, 12), np.rint(array[:, ::2, ::2]).astype(np.int16))
    assert image.GetSpacing() == pytest.approx((1.4, 1.4, 2.0))
    pet = image_3d(array / 1000.0, (1.0, 1.0, 1.0), integer=False)  # fractions kept for non-CT
    assert vtk_to_numpy(pet.GetPointData().GetScalars()).dtype == np.float32
    huge = image_3d(array * 100.0, (1.0, 1.0, 1.0), integer=True)  # beyond int16: stays float32
    assert vtk_to_numpy(huge.GetPointData().GetScalars()).dtype == np.float32


def test_signature_unchanged_and_copy_free() -> None:
    vol = Volume(np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6), spacing=(1.0, 1.0, 2.0))
    digest = hashlib.sha1()
    digest.update(str((vol.array.shape, vol.array.dtype.str, vol.spacing)).encode())
    digest.update(vol.array.tobytes())
    assert vol.signature() == digest.hexdigest()  # caches keyed by the old formula stay valid
    big = Volume(np.zeros((64, 64, 64), np.float32))
    tracemalloc.start()
    big.signature()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < big.array.nbytes / 8


def test_start_keeps_heavy_modules_out_and_triton_before_mesa(tmp_path: Path) -> None:
    """In a fresh process: the window builds without matplotlib/scipy.ndimage/reportlab/torch/ONNX Runtime and
    without the image readers (pydicom, SimpleITK, Pillow: they load on the worker that opens the first image),
    renders (Mesa's LLVM loads), and a later Triton import on a worker thread does not crash."""
    script = textwrap.dedent("""
        import sys, threading
        from app.launch import build_viewer
        from inference.settings import Settings
        viewer = build_viewer(Settings(cache_dir=sys.argv[1]))
        app, window = viewer.app, viewer.window
        window.show()
        app.processEvents()
        window.grid.view_3d.render_window.Render()
        heavy = [m for m in ("matplotlib", "scipy.ndimage", "reportlab", "torch", "onnxruntime", "pydicom",
                             "SimpleITK", "PIL.Image", "requests", "highdicom", "sklearn") if m in sys.modules]
        print("HEAVY", heavy, flush=True)
        def late_import():
            try:
                import triton.language  # noqa: F401
            except ImportError:
                pass
        t = threading.Thread(target=late_import)
        t.start()
        t.join()
        print("TRITON OK", flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MEDFUSION_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cache")], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stdout, done.stdout
    assert "TRITON OK" in done.stdout


def test_label_counts_match_bincount_without_an_int64_copy() -> None:
    from app.model.label_stats import label_counts, present_values

    label_map = np.zeros((60, 64, 64), np.uint8)
    label_map[10, 5:20, 7:9] = 3
    label_map[40:43, :, 30] = 200
    expected = np.bincount(label_map.ravel(), minlength=256)
    tracemalloc.start()
    counts = label_counts(label_map)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(counts, expected)
    assert peak < label_map.nbytes  # bincount alone would allocate 8× the map
    assert present_values(label_map) == {3, 200}
    assert present_values(np.zeros((1, 4, 4), np.uint8)) == set()
