"""Append-only, hash-chained audit trail of AI outputs and human corrections per study."""

from __future__ import annotations
