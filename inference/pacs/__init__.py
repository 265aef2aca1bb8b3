"""PACS access: DICOMweb (preferred) and classic DIMSE; settings come from ``Settings.pacs``."""

from __future__ import annotations
