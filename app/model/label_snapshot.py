"""Copy the labels model into a label map + label table (for export, sessions, reports) and back.

The table rows are :class:`~inference.export.labels.SegmentLabel`: the label's origin (AI / MANUAL /
AI_CORRECTED) becomes the DICOM SEG algorithm type, named after the segmentation backend that made it.
"""

from __future__ import annotations

import numpy as np

from app.model.label_stats import present_values
from app.model.labels import LabelsModel
from inference.errors import MedFusionError
from inference.export.labels import SegmentLabel
from inference.export.mask_files import ALGORITHM_TO_ORIGIN, ORIGIN_TO_ALGORITHM, LabelSnapshot
from inference.segmentation.factory import backend_spec


def snapshot_labels(labels_model: LabelsModel, backend: str = "litemedsam") -> LabelSnapshot | None:
    """Copy the labels model into a label map + label table; None when no image is bound to it."""
    try:
        label_map = labels_model.label_map()
    except MedFusionError:  # no image bound to the labels model yet
        return None
    values = labels_model.values()
    spec = backend_spec(backend)
    algo_name, algo_version = (spec.display_name, spec.version) if spec is not None else (backend, "")
    table = []
    for name in labels_model.names():
        origin = str(labels_model.origin(name) or "MANUAL")
        algorithm = ORIGIN_TO_ALGORITHM.get(origin, "MANUAL")
        colour = tuple(int(c) for c in tuple(labels_model.colour(name))[:3])
        table.append(SegmentLabel(
            value=int(values[name]), name=str(name), colour=colour,  # type: ignore[arg-type]
            algorithm_type=algorithm, algorithm_name=algo_name if algorithm != "MANUAL" else "",
            algorithm_version=algo_version if algorithm != "MANUAL" else ""))
    return LabelSnapshot(np.asarray(label_map, dtype=np.uint8), table)  # label_map() is already a copy


def restore_labels(labels_model: LabelsModel, labelmap: np.ndarray, labels: list[SegmentLabel]) -> None:
    """Put a label map + table back into the labels model (values without a row get a red "Label N")."""
    present = present_values(labelmap)
    table = [(lab.name, lab.value, tuple(lab.colour)) for lab in labels]
    known = {lab.value for lab in labels}
    table += [(f"Label {v}", v, (255, 0, 0)) for v in sorted(present - known)]
    origins = {lab.name: ALGORITHM_TO_ORIGIN.get(lab.algorithm_type, "MANUAL") for lab in labels}
    labels_model.set_masks(np.asarray(labelmap, dtype=np.uint8), table, origins)
