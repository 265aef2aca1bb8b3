"""Series thumbnails: the middle slice in patient order, windowed, shrunk with the aspect kept; broken series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.errors import Cancelled, ImageReadError
from inference.io.loader import list_series
from inference.io.thumbnails import image_thumbnail, series_thumbnail, shrink, to_uint8
from inference.progress import CancelToken
from tests import synthetic_dicom as sd


def test_shrink_averages_blocks_and_keeps_the_physical_aspect() -> None:
    plane = np.arange(16, dtype=np.float32).reshape(4, 4)
    small = shrink(plane, (1.0, 1.0), size=2)
    np.testing.assert_allclose(small, [[(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4],
                                       [(8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]])
    # 100 rows of 2 mm × 100 columns of 1 mm: twice as tall as wide on screen
    assert shrink(np.zeros((100, 100), np.float32), (1.0, 2.0), size=64).shape == (64, 32)
    np.testing.assert_array_equal(to_uint8(np.array([[-200.0, 40.0, 500.0]]), -160.0, 240.0), [[0, 128, 255]])


def test_series_thumbnail_is_the_middle_slice_in_patient_order(tmp_path: Path) -> None:
    # file names are shuffled and InstanceNumber runs backwards: only the positions give the middle slice
    truth = sd.write_volume_series(tmp_path / "ct", n=5, rows=12, cols=10)
    thumb = series_thumbnail(list(reversed(sorted(truth.folder.iterdir()))), size=24)
    middle = truth.values[2].astype(np.float32)
    expected = to_uint8(shrink(middle, truth.spacing[:2], 24), 40.0 - 200.0, 40.0 + 200.0)  # CT soft tissue
    np.testing.assert_array_equal(thumb.pixels, expected)
    assert (thumb.modality, thumb.n_images, thumb.date, thumb.frame_of_reference) == ("CT", 5, "20240102", "1.2.3.4.5")
    other = [to_uint8(shrink(truth.values[z].astype(np.float32), truth.spacing[:2], 24), -160.0, 240.0)
             for z in (0, 1, 3, 4)]
    assert not any(np.array_equal(thumb.pixels, o) for o in other)


def test_a_corrupt_middle_slice_falls_back_to_a_neighbour_and_all_corrupt_is_one_sentence(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path / "ct", n=5, rows=12, cols=10)
    sd.truncate(truth.files_in_z_order[2], drop_bytes=100)  # pixels cut short: the header still reads
    thumb = series_thumbnail(truth.files_in_z_order, size=24)
    neighbour = to_uint8(shrink(truth.values[1].astype(np.float32), truth.spacing[:2], 24), -160.0, 240.0)
    np.testing.assert_array_equal(thumb.pixels, neighbour)  # the nearest readable slice below the middle
    for path in truth.files_in_z_order:
        path.write_bytes(b"not dicom at all")
    with pytest.raises(ImageReadError, match="None of the 5 file"):
        series_thumbnail(truth.files_in_z_order)


def test_cancel_stops_a_thumbnail(tmp_path: Path) -> None:
    truth = sd.write_volume_series(tmp_path / "ct", n=3)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        series_thumbnail(truth.files_in_z_order, cancel=token)


def test_image_thumbnail_of_a_jpeg_keeps_its_aspect(tmp_path: Path) -> None:
    pixels = np.tile(np.linspace(0, 255, 200, dtype=np.uint8), (100, 1))  # 200 wide, 100 tall, dark → bright
    Image.fromarray(pixels).save(tmp_path / "xray.png")
    thumb = image_thumbnail(tmp_path / "xray.png", size=64)
    assert thumb.pixels.shape == (32, 64)
    assert thumb.pixels[:, 0].mean() < 10 and thumb.pixels[:, -1].mean() > 245  # full range, left to right


def test_folder_scan_lists_patient_and_study_for_the_browser(tmp_path: Path) -> None:
    sd.write_study(tmp_path / "study", date="20230110", patient_id="P7", series=(("Lung", 3), ("Soft", 4)))
    infos = list_series(tmp_path)
    assert sorted((i.description, i.patient_id, i.study_date, i.study_description) for i in infos) == [
        ("Lung", "P7", "20230110", "CT chest"), ("Soft", "P7", "20230110", "CT chest")]
