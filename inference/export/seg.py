"""Label maps ↔ DICOM Segmentation objects (SEG), so masks travel to PACS and other viewers.

Choices (documented in docs/dev/export_pacs.md):
- ``BINARY`` segmentation, one segment per label; only frames (slices) that contain a segment are
  stored (highdicom's ``omit_empty_frames``) — a 3-slice lesion on a 300-slice CT stays small.
- Segment numbers are 1..n in label-table order; our own label value is kept in the segment's
  Tracking ID (``medfusion-label-<value>``) so a round trip restores the original values.
- Algorithm type: ``AI`` → AUTOMATIC, ``AI-corrected`` → SEMIAUTOMATIC (both with an
  AlgorithmIdentificationSequence, family "Artificial Intelligence"), ``MANUAL`` → MANUAL.
- Source series whose UIDs were blanked by an earlier anonymiser (like the shared demo CT) get UIDs
  derived deterministically (:func:`repair_uids`), so export and re-import agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from inference.errors import ImageReadError, MedFusionError
from inference.export.deid import Deidentifier
from inference.export.labels import SegmentLabel
from inference.io.volume import Volume
from inference.progress import CancelToken, ProgressCallback, no_progress

__all__ = ["ALGORITHM_TYPES", "SegmentLabel", "load_source_datasets", "read_seg", "repair_uids", "write_seg",
           "write_series_copy"]

ALGORITHM_TYPES = {"AI": "AUTOMATIC", "AI-corrected": "SEMIAUTOMATIC", "MANUAL": "MANUAL"}
_FROM_DICOM = {v: k for k, v in ALGORITHM_TYPES.items()}
_TRACKING = re.compile(r"^medfusion-label-(\d+)$")
_ORGANS = {"lung", "liver", "kidney", "spleen", "heart", "pancreas", "stomach", "brain", "bladder", "prostate"}
_ABNORMAL = {"lesion": "Lesion", "tumor": "Neoplasm", "tumour": "Neoplasm", "nodule": "Nodule",
             "mass": "Mass", "neoplasm": "Neoplasm"}


def _default_codes(name: str) -> tuple[Code, Code]:
    """SNOMED CT category/type for common names; 'Tissue'/'Tissue' when we do not know better."""
    key = name.strip().lower()
    for word, attr in _ABNORMAL.items():
        if word in key:
            return codes.SCT.MorphologicallyAbnormalStructure, getattr(codes.SCT, attr)
    for organ in _ORGANS:
        if organ in key:
            return codes.SCT.Organ, getattr(codes.SCT, organ.capitalize())
    return codes.SCT.Tissue, codes.SCT.Tissue


def _code(triple: tuple[str, str, str]) -> Code:
    return Code(value=triple[0], scheme_designator=triple[1], meaning=triple[2])


def _derived_uid(*parts: str) -> str:
    return generate_uid(entropy_srcs=["medfusion", *parts])


def repair_uids(datasets: Sequence[Dataset], files: Sequence[Path] | None = None) -> list[Dataset]:
    """Fill blank SOP/series/study/frame-of-reference UIDs deterministically (same input → same UIDs)."""
    for i, ds in enumerate(datasets):
        meta = getattr(ds, "file_meta", None)
        if not ds.get("SOPClassUID") and meta is not None and meta.get("MediaStorageSOPClassUID"):
            ds.SOPClassUID = meta.MediaStorageSOPClassUID
        if not ds.get("SOPInstanceUID"):
            if meta is not None and meta.get("MediaStorageSOPInstanceUID"):
                ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            else:
                seed = files[i].name if files else str(i)
                ds.SOPInstanceUID = _derived_uid("sop", seed, str(ds.get("ImagePositionPatient", "")))
    sops = sorted(str(ds.SOPInstanceUID) for ds in datasets)
    series_uid = _derived_uid("series", *sops)
    for ds in datasets:
        if not ds.get("SeriesInstanceUID"):
            ds.SeriesInstanceUID = series_uid
        if not ds.get("StudyInstanceUID"):
            ds.StudyInstanceUID = _derived_uid("study", str(ds.get("FrameOfReferenceUID", "")),
                                               str(ds.get("StudyDate", "")), str(ds.get("PatientID", "")))
        if not ds.get("FrameOfReferenceUID"):
            ds.FrameOfReferenceUID = _derived_uid("for", str(ds.SeriesInstanceUID))
    return list(datasets)


def load_source_datasets(reference: Volume) -> list[Dataset]:
    """Headers of the reference's DICOM files (z order), with UIDs repaired."""
    if not reference.source_files:
        raise MedFusionError("DICOM SEG export needs an image opened from DICOM files.")
    try:
        datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in reference.source_files]
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise ImageReadError(f"The source DICOM files could not be read again ({exc}).") from exc
    if len(datasets) != reference.shape[0]:
        raise MedFusionError("The source DICOM files do not match the image's slices.")
    return repair_uids(datasets, list(reference.source_files))


def write_series_copy(reference: Volume, dest_dir: Path, *, deidentifier: Deidentifier | None = None,
                      progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> list[Path]:
    """Copy the reference's DICOM files to ``dest_dir`` with repaired UIDs, de-identified when asked.

    Use the same :class:`Deidentifier` for this and :func:`write_seg` so the SEG references the copy.
    """
    if not reference.source_files:
        raise MedFusionError("Only images opened from DICOM files can be exported as DICOM.")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    files = list(reference.source_files)
    written: list[Path] = []
    for i, ds in enumerate(repair_uids([pydicom.dcmread(f) for f in files], files)):
        if cancel:
            cancel.raise_if_cancelled()
        if deidentifier is not None:
            deidentifier.apply(ds)
        path = dest_dir / f"{i + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
        progress((i + 1) / len(files), f"Wrote {i + 1} of {len(files)} images")
    return written


def _description(number: int, label: SegmentLabel) -> hd.seg.SegmentDescription:
    if label.algorithm_type not in ALGORITHM_TYPES:
        raise MedFusionError(f"Unknown algorithm type '{label.algorithm_type}' for label '{label.name}'.")
    category, prop = _default_codes(label.name)
    if label.category:
        category = _code(label.category)
    if label.property_type:
        prop = _code(label.property_type)
    dicom_type = ALGORITHM_TYPES[label.algorithm_type]
    algorithm = None
    if dicom_type != "MANUAL":
        algorithm = hd.AlgorithmIdentificationSequence(
            name=label.algorithm_name or "MedFusion", family=codes.DCM.ArtificialIntelligence,
            version=label.algorithm_version or "unknown")
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label.name[:64], segmented_property_category=category,
        segmented_property_type=prop, algorithm_type=dicom_type, algorithm_identification=algorithm,
        tracking_id=f"medfusion-label-{label.value}", tracking_uid=generate_uid(),
        display_color=hd.color.CIELabColor.from_rgb(*(int(c) for c in label.colour)))


def write_seg(labelmap: np.ndarray, labels: list[SegmentLabel], reference: Volume, path: Path, *,
              deidentifier: Deidentifier | None = None, series_description: str = "MedFusion segmentation",
              creator: str = "", software_version: str = "0.1.0",
              progress: ProgressCallback = no_progress, cancel: CancelToken | None = None) -> Path:
    """Write ``labelmap`` (uint8 [z,y,x] on ``reference``'s grid) as a BINARY DICOM SEG at ``path``.

    With ``deidentifier`` the source headers are de-identified first (patient module replaced, UIDs
    mapped), so the SEG references the de-identified copy of the series written with the same
    :class:`Deidentifier`.
    """
    labelmap = np.asarray(labelmap)
    if labelmap.shape != reference.shape:
        raise MedFusionError(f"The mask shape {labelmap.shape} does not match the image {reference.shape}.")
    present = {int(v) for v in np.unique(labelmap)} - {0}
    by_value = {lab.value: lab for lab in labels}
    unknown = present - set(by_value)
    if unknown:
        raise MedFusionError(f"The mask holds label values without a name: {sorted(unknown)}.")
    if not present:
        raise MedFusionError("The mask is empty: there is nothing to export.")
    used = [lab for lab in labels if lab.value in present]
    progress(0.05, "Reading source headers")
    sources = load_source_datasets(reference)
    if cancel:
        cancel.raise_if_cancelled()
    if deidentifier is not None:
        sources = [deidentifier.apply(ds) for ds in sources]
    lut = np.zeros(256, dtype=np.uint8)
    for number, lab in enumerate(used, start=1):
        lut[lab.value] = number
    progress(0.3, "Encoding segments")
    try:
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=lut[labelmap.astype(np.uint8)],
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[_description(n, lab) for n, lab in enumerate(used, start=1)],
            series_instance_uid=generate_uid(), series_number=900, sop_instance_uid=generate_uid(),
            instance_number=1, manufacturer="MedFusion", manufacturer_model_name="MedFusion Viewer",
            software_versions=software_version, device_serial_number="0", content_label="MEDFUSION_SEG",
            content_description=series_description[:64], content_creator_name=creator or None,
            omit_empty_frames=True)
    except (ValueError, TypeError, AttributeError) as exc:
        raise MedFusionError(f"The segmentation could not be encoded as DICOM SEG ({exc}).") from exc
    seg.SeriesDescription = series_description[:64]
    if deidentifier is not None:
        seg.PatientIdentityRemoved = "YES"
        seg.DeidentificationMethod = "DICOM PS3.15 Basic Application Level Confidentiality Profile"
    if cancel:
        cancel.raise_if_cancelled()
    progress(0.8, "Writing file")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    progress(1.0, "Done")
    return path


def _first(item: Dataset, keyword: str) -> Dataset | None:
    seq = item.get(keyword)
    return seq[0] if seq else None


def _frame_info(ds: Dataset, index: int) -> tuple[int, str, tuple[float, ...] | None]:
    """(segment number, referenced SOP instance UID or '', image position or None) of one frame."""
    per = ds.PerFrameFunctionalGroupsSequence[index]
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else Dataset()
    ident = _first(per, "SegmentIdentificationSequence") or _first(shared, "SegmentIdentificationSequence")
    number = int(ident.ReferencedSegmentNumber) if ident is not None else 1
    uid = ""
    for group in (per, shared):
        derivation = _first(group, "DerivationImageSequence")
        source = _first(derivation, "SourceImageSequence") if derivation is not None else None
        if source is not None:
            uid = str(source.ReferencedSOPInstanceUID)
            break
    position = None
    plane = _first(per, "PlanePositionSequence") or _first(shared, "PlanePositionSequence")
    if plane is not None:
        position = tuple(float(v) for v in plane.ImagePositionPatient)
    return number, uid, position


def _reference_uids(reference: Volume) -> dict[str, int]:
    if not reference.source_files:
        return {}
    try:
        return {str(ds.SOPInstanceUID): z for z, ds in enumerate(load_source_datasets(reference))}
    except MedFusionError:
        return {}


def _slice_of(reference: Volume, position: tuple[float, ...] | None) -> int | None:
    if position is None:
        return None
    idx = reference.physical_to_index(np.asarray(position))
    z = int(round(idx[2]))
    if abs(idx[0]) > 0.5 or abs(idx[1]) > 0.5 or abs(idx[2] - z) > 0.25 or not 0 <= z < reference.shape[0]:
        return None
    return z


def read_seg(path: Path, reference: Volume) -> tuple[np.ndarray, list[SegmentLabel]]:
    """Re-open a DICOM SEG onto ``reference``'s grid: frames map to slices by referenced SOP instance
    UID, else by plane position. Overlapping segments: the higher segment number wins."""
    try:
        ds = pydicom.dcmread(path)
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise ImageReadError(f"'{Path(path).name}' could not be read as DICOM ({exc}).") from exc
    if ds.get("Modality") != "SEG" or "SegmentSequence" not in ds:
        raise ImageReadError(f"'{Path(path).name}' is not a DICOM Segmentation.")
    if (int(ds.Rows), int(ds.Columns)) != reference.shape[1:]:
        raise MedFusionError("The segmentation's frame size does not match the image it should overlay.")
    labels: list[SegmentLabel] = []
    value_of: dict[int, int] = {}
    for item in ds.SegmentSequence:
        number = int(item.SegmentNumber)
        match = _TRACKING.match(str(item.get("TrackingID", "")))
        value = int(match.group(1)) if match else number
        value_of[number] = value
        colour: tuple[int, int, int] = (255, 0, 0)
        if "RecommendedDisplayCIELabValue" in item:
            r, g, b = hd.color.CIELabColor.from_dicom_value(list(item.RecommendedDisplayCIELabValue)).to_rgb(
                clip=True)
            colour = (int(r), int(g), int(b))
        algo = _first(item, "SegmentationAlgorithmIdentificationSequence")
        prop_cat = _first(item, "SegmentedPropertyCategoryCodeSequence")
        prop_type = _first(item, "SegmentedPropertyTypeCodeSequence")
        labels.append(SegmentLabel(
            value=value, name=str(item.get("SegmentLabel", f"Segment {number}")), colour=colour,
            algorithm_type=_FROM_DICOM.get(str(item.get("SegmentAlgorithmType", "MANUAL")), "MANUAL"),
            algorithm_name=str(item.get("SegmentAlgorithmName", "")),
            algorithm_version=str(algo.AlgorithmVersion) if algo is not None and "AlgorithmVersion" in algo else "",
            category=(str(prop_cat.CodeValue), str(prop_cat.CodingSchemeDesignator), str(prop_cat.CodeMeaning))
            if prop_cat is not None else None,
            property_type=(str(prop_type.CodeValue), str(prop_type.CodingSchemeDesignator),
                           str(prop_type.CodeMeaning)) if prop_type is not None else None))
    frames = ds.pixel_array.reshape(int(getattr(ds, "NumberOfFrames", 1)), int(ds.Rows), int(ds.Columns))
    if str(ds.get("SegmentationType", "BINARY")) == "FRACTIONAL":
        frames = frames >= float(ds.get("MaximumFractionalValue", 255)) / 2.0
    uids = _reference_uids(reference)
    labelmap = np.zeros(reference.shape, dtype=np.uint8)
    order = sorted(range(frames.shape[0]), key=lambda i: _frame_info(ds, i)[0])
    for i in order:
        number, uid, position = _frame_info(ds, i)
        z = uids.get(uid) if uid else None
        if z is None:
            z = _slice_of(reference, position)
        if z is None:
            raise MedFusionError("The segmentation does not lie on the grid of the image it should overlay.")
        labelmap[z][frames[i] > 0] = value_of.get(number, number)
    return labelmap, labels

