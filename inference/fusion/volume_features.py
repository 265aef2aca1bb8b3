"""Slice sequences for CT and PET/CT volumes: per-slice ROI features, ready for the sequence model.

Why: for a volume the predictor's "sequence" runs over slices instead of over time. Each slice
inside the region of interest goes through the same :class:`FeatureExtractor` as the X-rays (frozen
LiteMedSAM encoder pooled inside the mask, disk-cached), with a CT or PET intensity window. For PET/CT the PET slice
(already resampled onto the CT grid, in SUVbw) is encoded on its own, so the model can fuse CT and
PET tokens *per slice* before the sequence model (MINT-style intermediate fusion, see
:class:`inference.fusion.model.MedFusionModel`) rather than averaging whole volumes.

Positions are millimetres along the slice axis from the first used slice, the volume analogue of
the X-rays' days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from inference.errors import InvalidPromptError
from inference.fusion.features import FeatureExtractor
from inference.io.volume import Volume
from inference.models.preprocess import LUNG_WINDOW
from inference.progress import CancelToken, ProgressCallback, no_progress

PET_SUV_WINDOW: tuple[float, float] = (2.5, 5.0)  # level, width: SUV 0–5, the viewer's PET preset
MAX_SLICES = 64  # a long ROI is sampled evenly: the encoder costs ~1.3 s per slice on a laptop CPU


@dataclass
class SliceSequence:
    """Per-slice features of one volume (and its PET), in slice order."""

    slices: list[int]  # z indices used
    positions_mm: np.ndarray  # (L,) distance from the first used slice
    ct: np.ndarray  # (L, 513) primary (CT) features
    pet: np.ndarray | None  # (L, 513) PET features on the same slices, None without PET

    def tensors(self) -> dict[str, torch.Tensor]:
        """Batch-of-one tensors for :meth:`MedFusionModel.forward` (``secondary`` only with PET)."""
        length = len(self.slices)
        out = {
            "features": torch.from_numpy(self.ct)[None].float(),
            "times": torch.from_numpy(self.positions_mm.astype(np.float32))[None],
            "image_mask": torch.ones(1, length, dtype=torch.bool),
        }
        if self.pet is not None:
            out["secondary"] = torch.from_numpy(self.pet)[None].float()
            out["secondary_mask"] = torch.ones(1, length, dtype=torch.bool)
        return out


def roi_slices(mask: np.ndarray | None, depth: int, max_slices: int = MAX_SLICES) -> list[int]:
    """Slices holding the ROI (all slices without a mask), evenly thinned to at most ``max_slices``."""
    if mask is None:
        used = list(range(depth))
    else:
        used = [int(z) for z in np.flatnonzero(np.asarray(mask).reshape(depth, -1).any(axis=1))]
    if not used:
        raise InvalidPromptError("The region of interest is empty: draw or load a mask first.")
    if len(used) > max_slices:
        picks = np.linspace(0, len(used) - 1, max_slices).round().astype(int)
        used = [used[i] for i in picks]
    return used


def volume_slice_features(
    extractor: FeatureExtractor,
    ct: Volume,
    mask: np.ndarray | None = None,
    pet: Volume | None = None,
    *,
    ct_window: tuple[float, float] = LUNG_WINDOW,
    pet_window: tuple[float, float] = PET_SUV_WINDOW,
    max_slices: int = MAX_SLICES,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> SliceSequence:
    """Encode the ROI's slices of ``ct`` (and of ``pet``, which must share the CT grid)."""
    if ct.is_2d:
        raise InvalidPromptError("A slice sequence needs a volume; a single image is predicted as an X-ray.")
    if mask is not None and np.asarray(mask).shape != ct.array.shape:
        raise InvalidPromptError(f"The mask has shape {np.asarray(mask).shape}, the CT {ct.array.shape}.")
    if pet is not None and pet.array.shape != ct.array.shape:
        raise InvalidPromptError("The PET is not on the CT grid: resample it onto the CT first.")
    used = roi_slices(mask, ct.array.shape[0], max_slices)
    rows_ct, rows_pet = [], []
    steps = len(used) * (2 if pet is not None else 1)
    done = 0
    for z in used:
        if cancel is not None:
            cancel.raise_if_cancelled()
        m = None if mask is None else np.asarray(mask[z]) > 0
        rows_ct.append(extractor(ct.array[z], m, ct_window))
        done += 1
        progress(done / steps, f"CT slice {z}")
        if pet is not None:
            rows_pet.append(extractor(pet.array[z], m, pet_window))
            done += 1
            progress(done / steps, f"PET slice {z}")
    z_spacing = float(ct.spacing[2])
    positions = (np.asarray(used, dtype=np.float64) - used[0]) * z_spacing
    return SliceSequence(used, positions, np.stack(rows_ct), np.stack(rows_pet) if pet is not None else None)
