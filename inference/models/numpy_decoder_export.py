"""The torch side of the torch-free decoder: a loaded LiteMedSAM → the named float32 arrays it is built from.

Kept apart from :mod:`inference.models.numpy_decoder` because it imports torch; run once where the
checkpoint is loaded (e.g. when the arrays are written to the user's cache), never on the viewer's
segmentation path.
"""

from __future__ import annotations

import numpy as np
import torch

from inference.models.litemedsam import LiteMedSAM
from inference.models.numpy_weights import DENSE_PE, array_shapes


def decoder_arrays(model: LiteMedSAM) -> dict[str, np.ndarray]:
    """``prompt_encoder.*`` and ``mask_decoder.*`` weights plus ``dense_pe`` (``model.image_pe()``),
    float32 C-contiguous numpy copies; names and shapes as :func:`~inference.models.numpy_weights.array_shapes`."""
    with torch.no_grad():
        tensors = {f"prompt_encoder.{k}": v for k, v in model.prompt_encoder.state_dict().items()}
        tensors.update({f"mask_decoder.{k}": v for k, v in model.mask_decoder.state_dict().items()})
        tensors[DENSE_PE] = model.image_pe()
        arrays = {k: np.ascontiguousarray(v.detach().float().cpu().numpy()) for k, v in tensors.items()}
    expected = array_shapes()
    if set(arrays) != set(expected):  # a decoder other than LiteMedSAM's: fail here, not in the viewer
        odd = sorted(set(arrays) ^ set(expected))
        raise ValueError(f"not LiteMedSAM's decoder: {len(odd)} names differ, e.g. {odd[0]}")
    return arrays
