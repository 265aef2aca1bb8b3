"""Interactive segmentation: backends (LiteMedSAM, MedSAM2), embedding cache and the editing session."""

from __future__ import annotations
