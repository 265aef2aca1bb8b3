"""One header pass per open (issue 17): inside ``reusing_scans`` a second scan of an unchanged folder is the
first one; a changed, added or removed file, another thread, or leaving the block scans again."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from inference.io.dicom_scan import reusing_scans, scan_folder
from inference.io.memory_budget import guarded_open

DEMO_CT = Path(__file__).resolve().parents[2] / "resources" / "demo" / "ct"


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    for source in sorted(DEMO_CT.iterdir())[:4]:
        shutil.copy(source, tmp_path / source.name)
    return tmp_path


def test_second_scan_in_the_block_is_the_first(folder: Path) -> None:
    with reusing_scans():
        first = scan_folder(folder)
        assert scan_folder(folder) is first
        with reusing_scans():  # nested blocks share the outer one's scans
            assert scan_folder(folder) is first
    assert scan_folder(folder) is not first  # nothing outlives the block
    assert sum(len(v) for v in first.series.values()) == 4


def test_changed_added_or_removed_files_are_scanned_again(folder: Path) -> None:
    files = sorted(folder.iterdir())
    with reusing_scans():
        first = scan_folder(folder)
        stat = files[0].stat()
        os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        second = scan_folder(folder)
        assert second is not first
        files[1].unlink()
        third = scan_folder(folder)
        assert third is not second and sum(len(v) for v in third.series.values()) == 3
        shutil.copy(files[2], folder / "copy.dcm")
        assert scan_folder(folder) is not third


def test_other_threads_do_not_see_the_blocks_scans(folder: Path) -> None:
    seen: list[object] = []
    with reusing_scans():
        first = scan_folder(folder)
        thread = threading.Thread(target=lambda: seen.append(scan_folder(folder)))
        thread.start()
        thread.join()
    assert seen and seen[0] is not first


def test_guarded_open_reads_the_headers_once(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inference.io.dicom_scan as dicom_scan

    reads: list[Path] = []
    original = dicom_scan.read_header

    def counting(path: Path):  # noqa: ANN202
        reads.append(path)
        return original(path)

    monkeypatch.setattr(dicom_scan, "read_header", counting)
    volume = guarded_open(folder, 4096)
    assert volume.shape[0] == 4
    assert len(reads) == 4  # the memory estimate's scan is the read's scan (two passes before)
