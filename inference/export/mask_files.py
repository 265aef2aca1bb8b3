"""Mask files in and out: NRRD / NIfTI / PNG label maps with a ``.labels.json`` sidecar, and DICOM SEG.

One place for the formats, so the segmentation panel's Save/Open, File > Export/Open segmentation and
the PACS store read and write the same files. NRRD/NIfTI/PNG cannot hold label names, colours or origins:
the sidecar next to the mask does (``mask.nrrd`` → ``mask.nrrd.labels.json``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import MedFusionError
from inference.export.labels import SegmentLabel
from inference.io.volume import Volume

log = logging.getLogger("medfusion.export")

# labels-model origin <-> SegmentLabel / DICOM SEG algorithm type
ORIGIN_TO_ALGORITHM = {"AI": "AI", "MANUAL": "MANUAL", "AI_CORRECTED": "AI-corrected"}
ALGORITHM_TO_ORIGIN = {v: k for k, v in ORIGIN_TO_ALGORITHM.items()}
SEG_SUFFIXES = (".dcm", ".dicom", ".seg")
VOLUME_SUFFIXES = (".nrrd", ".nii", ".nii.gz")


def mask_suffix(path: Path) -> str:
    """``.nii.gz`` as one suffix, everything else lower-case."""
    return ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix.lower()


def sidecar_path(path: Path) -> Path:
    """``mask.nrrd`` → ``mask.nrrd.labels.json`` (label names, colours, origins)."""
    return path.with_name(path.name + ".labels.json")


@dataclass
class LabelSnapshot:
    """A copy of the labels at one moment (safe to hand to a worker thread)."""

    labelmap: np.ndarray  # uint8 [z, y, x]
    labels: list[SegmentLabel]

    @property
    def empty(self) -> bool:
        return not self.labels or not bool(self.labelmap.any())


def read_label_table(path: Path, data: np.ndarray) -> tuple[list[tuple[str, int, Any]], dict[str, str]]:
    """Rows ``(name, value, colour)`` and origins for a mask file: from its sidecar, else one per value."""
    present = [int(v) for v in np.unique(data) if v != 0]
    side = sidecar_path(path)
    rows: list[tuple[str, int, Any]] = []
    origins: dict[str, str] = {}
    if side.is_file():
        try:
            for entry in json.loads(side.read_text()).get("labels", []):
                rows.append((str(entry["name"]), int(entry["value"]), tuple(entry.get("colour") or ()) or None))
                origins[str(entry["name"])] = str(entry.get("origin", "MANUAL"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable label table %s: %s", side, exc)
            rows, origins = [], {}
    known = {v for _, v, _ in rows}
    rows += [(f"Label {v}", v, None) for v in present if v not in known]
    return rows, origins


def write_mask_file(snapshot: LabelSnapshot, reference: Volume, path: Path) -> Path:
    """NRRD / NIfTI / PNG mask in the image geometry plus the label-table sidecar JSON."""
    from inference.io.writers import save_mask

    suffix = mask_suffix(path)
    if suffix == ".png" and not reference.is_2d:
        raise MedFusionError("PNG masks are for 2-D images; save a 3-D segmentation as NRRD or NIfTI.")
    if suffix not in (*VOLUME_SUFFIXES, ".png"):
        raise MedFusionError(f"Segmentations can be saved as DICOM SEG, NRRD, NIfTI or PNG, not '{path.name}'.")
    try:
        save_mask(snapshot.labelmap, reference, path)
    except ValueError as exc:
        raise MedFusionError(f"The mask could not be saved ({exc}).") from exc
    table = [{"name": lab.name, "value": lab.value, "colour": list(lab.colour),
              "origin": ALGORITHM_TO_ORIGIN.get(lab.algorithm_type, "MANUAL"), "algorithm_name": lab.algorithm_name,
              "algorithm_version": lab.algorithm_version} for lab in snapshot.labels]
    sidecar_path(path).write_text(json.dumps({"labels": table}, indent=1))
    return path


def read_mask_file(path: Path, reference: Volume) -> tuple[np.ndarray, list[SegmentLabel]]:
    """A DICOM SEG (ours or another tool's) or a NRRD/NIfTI/PNG mask (+ sidecar table if present)."""
    from inference.io.loader import has_dicom_preamble  # the readers load when a mask is read, not at start

    path = Path(path)
    suffix = mask_suffix(path)
    if suffix in SEG_SUFFIXES or has_dicom_preamble(path):
        from inference.export.seg import read_seg

        return read_seg(path, reference)
    from inference.io.writers import load_mask

    labelmap = load_mask(path, reference)
    if labelmap.shape != reference.shape:
        raise MedFusionError("The mask does not have the size of the open image.")
    if reference.is_2d and suffix == ".png" and labelmap.max(initial=0) == 255 and set(np.unique(labelmap)) <= {0, 255}:
        labelmap = (labelmap > 0).astype(np.uint8)  # a binary PNG mask saved as 0/255
    rows, origins = read_label_table(path, labelmap)
    labels = [SegmentLabel(value=int(value), name=str(name), colour=tuple(colour) if colour else (255, 0, 0),  # type: ignore[arg-type]
                           algorithm_type=ORIGIN_TO_ALGORITHM.get(origins.get(str(name), "MANUAL"), "MANUAL"))
              for name, value, colour in rows]
    return labelmap.astype(np.uint8), labels
