"""Build a :class:`Volume` from a DICOM series (many files) or a single DICOM file.

Corrupt slices in a series are skipped with a warning in ``meta['warnings']``; the remaining
slices must still form an evenly spaced stack, so a hole in the middle is reported as missing
slices instead of being silently interpolated over.
"""

from __future__ import annotations

import os
import warnings as pywarnings
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from inference.errors import ImageReadError
from inference.io import suv
from inference.io.dicom_geometry import (
    PlaneInfo,
    StackGeometry,
    floats,
    pixel_spacing_of,
    plane_info,
    single_slice_geometry,
    stack_geometry,
)
from inference.io.dicom_native import read_native_slice
from inference.io.dicom_pixels import (
    CorruptPixelDataError,
    MissingDecoderError,
    decode_dataset,
    decode_slice,
    number_of_frames,
    pixel_data_too_short,
    value_float,
)
from inference.io.dicom_scan import display_text, modality_of, touch_elements
from inference.io.limits import check_allocation
from inference.io.volume import StudyInfo, Volume
from inference.progress import CancelToken, ProgressCallback, no_progress

XRAY_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "IO", "PX", "RG"})


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value)


def study_info(ds: Dataset) -> StudyInfo:
    """Header fields for the info panel."""
    return StudyInfo(
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        patient_age=_text(ds, "PatientAge"),
        study_date=_text(ds, "StudyDate"),
        study_description=_text(ds, "StudyDescription"),
        series_description=_text(ds, "SeriesDescription"),
        institution=_text(ds, "InstitutionName"),
        manufacturer=_text(ds, "Manufacturer"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
        modality=_text(ds, "Modality"),
    )


def _windows(ds: Dataset) -> list[tuple[float, float]]:
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers is None or widths is None:
        return []
    cs = list(centers) if isinstance(centers, pydicom.multival.MultiValue) else [centers]
    ws = list(widths) if isinstance(widths, pydicom.multival.MultiValue) else [widths]
    try:
        return [(float(c), float(w)) for c, w in zip(cs, ws, strict=False) if float(w) > 0]
    except (TypeError, ValueError):
        return []


def _base_meta(ds: Dataset, notes: dict) -> dict:
    """meta: windows (adjusted for MONOCHROME1 inversion), rescale, warnings."""
    windows = _windows(ds)
    if notes.get("monochrome1_inverted"):
        lo, hi = notes["value_range"]
        windows = [(lo + hi - c, w) for c, w in windows]
    file_meta = getattr(ds, "file_meta", None)
    syntax = str(file_meta.get("TransferSyntaxUID", "")) if file_meta is not None else ""
    meta: dict = {"warnings": [], "windows": windows, "transfer_syntax": syntax}
    if windows:
        meta["window"] = windows[0]
    for key in ("monochrome1_inverted", "converted_from"):
        if key in notes:
            meta[key] = notes[key]
    return meta


def _units(modality: str) -> str:
    return "HU" if modality == "CT" else ""


def _apply_suv(volume: Volume, headers: list[Dataset]) -> None:
    """Convert a PET volume to SUVbw in place, or keep Bq/ml with a warning naming the problem."""
    try:
        factors = [suv.suv_bw_factor(ds) for ds in headers]
    except suv.SUVUnavailable as exc:
        volume.units = str(headers[0].get("Units", "") or "")
        volume.meta["warnings"].append(f"values shown in {volume.units or 'raw units'}, not SUV: {exc}")
        volume.meta["suv_error"] = str(exc)
        return
    for z, factor in enumerate(factors):
        volume.array[z] *= np.float32(factor)
    volume.units = "SUVbw"
    volume.meta["suv_factor"] = factors[0] if len(set(factors)) == 1 else factors
    volume.meta["suv_details"] = suv.suv_details(headers[0])


def read_series(
    items: list[tuple[Path, Dataset]],
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    use_gdcm: bool = True,
    workers: int | None = None,
) -> Volume:
    """Decode the files of one series (grouped headers) into a sorted, rescaled volume."""
    if len(items) == 1 and number_of_frames(items[0][1], items[0][0].name) > 1:
        return read_file(items[0][0], items[0][1], progress=progress, cancel=cancel)
    first_header = items[0][1]
    what = f"series '{display_text(first_header.get('SeriesDescription')) or display_text(modality_of(first_header))}'"
    # Geometry from headers first: bad stacks fail before any decoding, and slices are decoded
    # straight into their final place (no second full-size copy).
    planes = [plane_info(h, p.name) for p, h in items]
    order = stack_geometry(planes, what).order
    items = [items[i] for i in order]
    n = len(items)
    rows, cols = int(items[0][1].Rows), int(items[0][1].Columns)
    # Before allocating n x Rows x Columns: a header can claim any size, the files cannot hold it.
    short = [z for z in range(n) if pixel_data_too_short(items[z][0], items[z][1])]
    if len(short) == n:
        raise ImageReadError(
            f"The pixel data of the {what} does not match its Rows/Columns ({rows}x{cols}): the files are "
            "truncated or corrupt."
        )
    check_allocation(n * rows * cols * 4, what)
    array = np.empty((n, rows, cols), dtype=np.float32)
    ok = [False] * n
    notes: list[dict] = [{}] * n
    warnings: list[str] = [f"skipped corrupt file '{items[z][0].name}'" for z in short]
    done = len(short)
    n_workers = workers or min(4, (os.cpu_count() or 2) + 1)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:

        def job(z: int) -> dict:
            if cancel is not None and cancel.cancelled:
                return {}
            if read_native_slice(items[z][0], items[z][1], array[z]):
                return {}
            values, note = decode_slice(items[z][0], items[z][1], use_gdcm=use_gdcm)
            array[z] = values
            return note

        futures: dict[Future, int] = {pool.submit(job, z): z for z in range(n) if z not in short}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                if cancel is not None:
                    cancel.raise_if_cancelled()
                for fut in finished:
                    z = futures[fut]
                    try:
                        notes[z] = fut.result()
                        ok[z] = True
                    except MissingDecoderError:
                        raise
                    except CorruptPixelDataError:
                        warnings.append(f"skipped corrupt file '{items[z][0].name}'")
                    done += 1
                    progress(done / n, f"Reading slice {done}/{n}")
                    if cancel is not None:  # slices decode fast: a cancel from the callback must not wait
                        cancel.raise_if_cancelled()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    keep = [z for z in range(n) if ok[z]]
    if not keep:
        raise ImageReadError(f"None of the {n} files of the {what} could be decoded (all corrupt).")
    if len(keep) < n:  # rare: re-check the stack without the corrupt slices
        array = array[keep]
        items = [items[z] for z in keep]
        notes = [notes[z] for z in keep]
        planes = [plane_info(h, p.name) for p, h in items]
    else:
        planes = [planes[i] for i in order]
    geom = stack_geometry(planes, what)
    if len(items) == 1:
        geom = single_slice_geometry(planes[0], _slice_spacing(items[0][1]))
    first = items[0][1]
    meta = _base_meta(first, notes[0])
    meta["warnings"] = warnings + geom.warnings
    meta["spacing_known"] = geom.spacing_known
    modality = _text(first, "Modality")
    volume = Volume(
        array=array, spacing=geom.spacing, origin=geom.origin, direction=geom.direction, modality=modality,
        units=_units(modality), info=study_info(first), source=str(items[0][0].parent),
        source_files=[p for p, _ in items], meta=meta,
    )
    if modality == "PT":
        _apply_suv(volume, [h for _, h in items])
    return volume


def _slice_spacing(ds: Dataset) -> float | None:
    for tag in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            value = float(ds.get(tag) or 0)
        except (TypeError, ValueError):
            continue
        if value > 0:
            return value
    return None


def _frame_planes(ds: Dataset, name: str, frames: int) -> tuple[list[PlaneInfo] | None, list[tuple[float, float]] | None]:
    """Per-frame plane info and rescale of an enhanced multi-frame object (None if absent)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame or len(per_frame) != frames:
        return None, None
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared_item = shared[0] if shared else Dataset()

    def find(item: Dataset, seq: str, tag: str) -> object:
        for source in (item, shared_item):
            s = source.get(seq)
            if s and tag in s[0]:
                return s[0].get(tag)
        return None

    planes: list[PlaneInfo] = []
    rescale: list[tuple[float, float]] = []
    for k, item in enumerate(per_frame):
        ps = floats(find(item, "PixelMeasuresSequence", "PixelSpacing"), 2)
        planes.append(PlaneInfo(
            name=f"{name} frame {k + 1}",
            position=floats(find(item, "PlanePositionSequence", "ImagePositionPatient"), 3),
            orientation=floats(find(item, "PlaneOrientationSequence", "ImageOrientationPatient"), 6),
            pixel_spacing=(float(ps[1]), float(ps[0])) if ps is not None else None,
            rows=int(ds.Rows), cols=int(ds.Columns),
        ))
        slope = find(item, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = find(item, "PixelValueTransformationSequence", "RescaleIntercept")
        rescale.append((value_float(slope if slope is not None else ds.get("RescaleSlope"), "RescaleSlope", 1.0, name),
                        value_float(intercept if intercept is not None else ds.get("RescaleIntercept"),
                                    "RescaleIntercept", 0.0, name)))
    if any(p.position is None for p in planes):
        return None, rescale
    return planes, rescale


def read_file(
    path: Path,
    header: Dataset | None = None,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Volume:
    """A single DICOM file: one slice, an X-ray, or a multi-frame object."""
    progress(0.0, f"Reading {path.name}")
    try:
        ds = pydicom.dcmread(path, force=True)
        with pywarnings.catch_warnings():
            pywarnings.simplefilter("ignore")
            touch_elements(ds)  # lazily converted elements must fail here, not in a later ds.get
    except Exception as exc:
        raise ImageReadError(f"The DICOM file '{path.name}' is truncated or corrupt.") from exc
    if cancel is not None:
        cancel.raise_if_cancelled()
    frames = number_of_frames(ds, path.name)
    planes, rescale = _frame_planes(ds, path.name, frames) if frames > 1 else (None, None)
    values, notes = decode_dataset(ds, path.name, frame_rescale=rescale)
    modality = _text(ds, "Modality")
    warnings: list[str] = []
    geom: StackGeometry
    if planes is not None:
        geom = stack_geometry(planes, f"multi-frame file '{path.name}'")
        values = values[geom.order]
    elif frames > 1:
        plane = plane_info(ds, path.name)
        geom = single_slice_geometry(plane, _slice_spacing(ds))
        geom.order = list(range(frames))
        if _slice_spacing(ds) is None:
            warnings.append("multi-frame file without per-frame positions: frame spacing assumed 1 mm")
    else:
        plane = plane_info(ds, path.name)
        geom = single_slice_geometry(plane, _slice_spacing(ds))
    meta = _base_meta(ds, notes)
    meta["warnings"] = warnings + geom.warnings
    meta["spacing_known"] = geom.spacing_known
    if values.shape[0] == 1:
        _, tag = pixel_spacing_of(ds)
        meta["spacing_source"] = tag or "default"
    if modality in XRAY_MODALITIES:
        meta["is_xray"] = True
    volume = Volume(
        array=values, spacing=geom.spacing, origin=geom.origin, direction=geom.direction, modality=modality or "OT",
        units=_units(modality), info=study_info(ds), source=str(path), source_files=[path], meta=meta,
    )
    if modality == "PT":
        _apply_suv(volume, [ds] * values.shape[0])
    progress(1.0, f"Read {path.name}")
    return volume
