"""Refuse studies that would not fit in memory *before* decoding them (and offer a downsampled load).

Hospitals send 4000-slice CTs and headers that claim 60000×60000 pixels. The loader's
``estimate_bytes`` reads headers only; :func:`check_memory` compares that with
``Settings.memory_budget_mb`` and suggests a downsampling factor, so the UI can ask the user
("load at 1/2 resolution?") instead of the process being killed by the OS mid-load.
(GPU out-of-memory during inference is a different problem: see ``inference.gpu_fallback``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.errors import ImageReadError
from inference.io.volume import Volume
from inference.progress import CancelToken, ProgressCallback, no_progress
from inference.settings import Settings

MAX_FACTOR = 16  # beyond 1/16 resolution a study is not worth showing; refuse instead


class MemoryBudgetExceeded(ImageReadError):
    """The study is larger than the memory budget (``check`` holds the numbers and a factor)."""

    def __init__(self, message: str, check: MemoryCheck) -> None:
        super().__init__(message)
        self.check = check


@dataclass(frozen=True)
class MemoryCheck:
    """Estimated size of a study against the budget, with a suggested downsampling factor."""

    name: str
    needed_bytes: int
    budget_bytes: int
    factor: int | None  # 1 = fits; k>1 = fits when every axis is subsampled by k; None = hopeless
    is_2d: bool = False
    decoded_whole: bool = False  # PNG/JPEG: the reader decodes everything first, so downsampling cannot help

    @property
    def fits(self) -> bool:
        return self.needed_bytes <= self.budget_bytes

    def message(self, *, offer_downsample: bool = True) -> str:
        """One sentence for the user; ``offer_downsample=False`` where nothing can load it downsampled (CLI)."""
        need, budget = _human(self.needed_bytes), _human(self.budget_bytes)
        base = f"'{self.name}' needs about {need} of memory, more than the memory budget of {budget}"
        if self.decoded_whole:
            return f"{base}; it has to be decoded whole, so raise memory_budget_mb in the settings to open it."
        if self.factor is None:
            return f"{base}; it is too large to open, even downsampled (the header may be wrong)."
        if not offer_downsample:
            return f"{base}; raise memory_budget_mb in the settings to open it."
        return (f"{base}; load it downsampled by {self.factor} (1/{self.factor} resolution) "
                "or raise the memory budget in the settings.")

    def question(self) -> str:
        """What the viewer asks before loading an over-budget study downsampled (needs a ``factor``)."""
        k = self.factor
        return (f"This study ('{self.name}') needs about {_human(self.needed_bytes)} of memory; your memory budget "
                f"is {_human(self.budget_bytes)}.\n\nLoad it downsampled ×{k} (1/{k} resolution in every direction, "
                "recommended) or cancel? The budget can be raised in the settings.")


def _human(n: int) -> str:
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def budget_bytes(settings: Settings | int) -> int:
    """Budget in bytes from ``Settings`` (or a number of MB)."""
    mb = settings.memory_budget_mb if isinstance(settings, Settings) else int(settings)
    return max(int(mb), 1) * 2**20


def downsample_factor(needed: int, budget: int, *, is_2d: bool = False) -> int | None:
    """Smallest integer factor ``k`` so that subsampling every axis by ``k`` fits the budget.

    Volumes shrink by ``k³`` (``k²`` for 2-D images); ``None`` beyond :data:`MAX_FACTOR`.
    """
    if needed <= budget:
        return 1
    power = 2 if is_2d else 3
    k = max(2, math.ceil((needed / budget) ** (1.0 / power) - 1e-9))
    while k <= MAX_FACTOR and needed / k**power > budget:
        k += 1
    return k if k <= MAX_FACTOR else None


def check_memory(path: Path, settings: Settings | int, *, series_uid: str | None = None) -> MemoryCheck:
    """Estimate (headers only) the memory a study needs and compare it with the budget."""
    from inference.io.loader import estimate_bytes
    from inference.io.raster import RASTER_SUFFIXES, raster_decode_bytes

    path = Path(path)
    needed = int(estimate_bytes(path, series_uid=series_uid))
    budget = budget_bytes(settings)
    is_2d = _is_2d(path)
    if path.is_file() and path.suffix.lower() in RASTER_SUFFIXES:
        # decoding a PNG/JPEG needs several times its float32 result, all at once (a 13000² RGB PNG: 2.7 GB)
        needed = max(needed, raster_decode_bytes(path) or 0)
        factor = 1 if needed <= budget else None
        return MemoryCheck(path.name, needed, budget, factor, is_2d, decoded_whole=factor is None)
    return MemoryCheck(path.name, needed, budget, downsample_factor(needed, budget, is_2d=is_2d), is_2d)


def _is_2d(path: Path) -> bool:
    """Single-slice inputs shrink by k² (not k³) when downsampled: PNG/JPEG, 2-D NIfTI/NRRD, one-frame DICOM."""
    if not path.is_file():
        return False
    name = path.name.lower()
    if name.endswith((".png", ".jpg", ".jpeg")):
        return True
    try:
        if name.endswith((".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")):
            import SimpleITK as sitk

            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            size = reader.GetSize()
            return len(size) == 2 or (len(size) >= 3 and size[2] == 1)
        from inference.io.dicom_scan import read_header

        header = read_header(path)
        return header is not None and int(header.get("NumberOfFrames", 1) or 1) <= 1
    except Exception:  # noqa: BLE001 - only refines the factor; the estimate itself already succeeded
        return False


def guarded_open(
    path: Path,
    settings: Settings | int,
    *,
    series_uid: str | None = None,
    downsample: int | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Volume:
    """``open_image`` behind the memory check; raises :class:`MemoryBudgetExceeded` before allocating.

    With ``downsample=k`` (what the user accepted) an over-budget DICOM series is read one slice in
    ``k`` and subsampled in-plane, so peak memory stays near ``1/k`` of the full study.
    """
    from inference.io.dicom_scan import reusing_scans
    from inference.io.loader import open_image

    with reusing_scans():  # a DICOM folder's headers are read once, for the estimate and the read
        check = check_memory(path, settings, series_uid=series_uid)
        if not check.fits:
            if downsample is None or check.factor is None or downsample < check.factor:
                raise MemoryBudgetExceeded(check.message(), check)
            return open_downsampled(path, downsample, series_uid=series_uid, progress=progress, cancel=cancel)
        return open_image(path, series_uid=series_uid, progress=progress, cancel=cancel)


def open_downsampled(
    path: Path,
    factor: int,
    *,
    series_uid: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Volume:
    """Every ``factor``-th slice and pixel; geometry (spacing) scaled to match.

    DICOM folders decode only the kept slices. Other formats are read whole then subsampled (their
    readers cannot stream), so for them this only reduces what stays resident afterwards.
    """
    from inference.io.loader import open_image

    path = Path(path)
    if factor < 1:
        raise ValueError("factor must be ≥ 1")
    if path.is_dir() and factor > 1:
        volume = _open_dicom_subset(path, factor, series_uid, progress, cancel)
        step_z = 1  # slices already thinned
    else:
        volume = open_image(path, series_uid=series_uid, progress=progress, cancel=cancel)
        step_z = 1 if volume.is_2d else factor
    if factor == 1:
        return volume
    array = np.ascontiguousarray(volume.array[::step_z, ::factor, ::factor])
    sx, sy, sz = volume.spacing
    volume.array = array
    volume.spacing = (sx * factor, sy * factor, sz * step_z)
    volume.meta.setdefault("warnings", []).append(f"downsampled by {factor} to fit the memory budget")
    volume.meta["downsample_factor"] = factor
    volume.source_files = volume.source_files[::step_z] if step_z > 1 else volume.source_files
    return volume


def _open_dicom_subset(folder: Path, factor: int, series_uid: str | None, progress: ProgressCallback,
                       cancel: CancelToken | None) -> Volume:
    from inference.errors import SeriesSelectionRequired
    from inference.io.dicom_geometry import plane_info, stack_geometry
    from inference.io.dicom_reader import read_series
    from inference.io.dicom_scan import scan_folder, summarize

    scan = scan_folder(folder, cancel=cancel)
    infos = summarize(scan)
    if not infos:
        raise ImageReadError(f"The folder '{folder.name}' contains no DICOM image series.")
    if series_uid is None:
        if len(infos) > 1:
            raise SeriesSelectionRequired(f"The folder '{folder.name}' holds {len(infos)} image series; choose one.",
                                          series=infos)
        series_uid = infos[0].series_uid
    if series_uid not in scan.series:
        raise ImageReadError(f"The folder '{folder.name}' has no image series with UID '{series_uid}'.")
    items = scan.series[series_uid]
    if len(items) > 1:
        order = stack_geometry([plane_info(h, p.name) for p, h in items], f"series in '{folder.name}'").order
        items = [items[i] for i in order][::factor]
    return read_series(items, progress=progress, cancel=cancel)
