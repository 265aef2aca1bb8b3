"""Exports: DICOM SEG (seg), de-identification (deid), PDF reports (report), the label table (labels)."""

from __future__ import annotations
