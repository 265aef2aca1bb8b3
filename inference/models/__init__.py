"""Model files, devices and network builders (LiteMedSAM); pure torch, no UI imports."""

from __future__ import annotations
