"""Checks on a session file's contents before anything is built from them.

Why a separate, strict pass: a session (and the crash-recovery file read at every start) is untrusted
input. Files from other versions, hand edits or crafted ZIPs used to surface as ``KeyError`` /
``TypeError`` / ``ValueError`` — and a recovery file that raised those stopped the viewer at every
launch — or as a 1.6 GB allocation from a 2 KB file (a deflated ZIP member holding a zlib stream of
zeros). Here every field is checked for type and size, and the label map's size is checked against the
memory budget *before* it is decompressed; every failure is one :class:`SessionError` sentence.
"""

from __future__ import annotations

import math
import re
from typing import Any

from inference.errors import MedFusionError
from inference.export.labels import SegmentLabel

__all__ = ["MAX_STATE_BYTES", "SessionError", "check_depth", "labelmap_meta", "parse_labels", "checked_fields"]

MAX_STATE_BYTES = 16 << 20  # state.json: labels, prompts, EHR edits; a few KB in practice
MAX_DEPTH = 32
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_ALGORITHM_TYPES = {"AI", "MANUAL", "AI-corrected"}


class SessionError(MedFusionError):
    """A session file is missing, damaged or from an incompatible version."""


def check_depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when JSON ``value`` nests no deeper than ``limit`` (deeper data breaks re-saving it)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def _bad(name: str, what: str) -> SessionError:
    return SessionError(f"The session file '{name}' is damaged or from another version ({what}).")


def _string(header: dict[str, Any], key: str, name: str, limit: int = 4096) -> str:
    value = header.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(name, f"'{key}' is not text")
    return value


def _list_of_dicts(header: dict[str, Any], key: str, name: str) -> list[dict[str, Any]]:
    value = header.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value) or not check_depth(value):
        raise _bad(name, f"'{key}' is not a list of records")
    return value


def parse_labels(raw: Any, name: str) -> list[SegmentLabel]:
    """The label table: values 1–255 (the label map is uint8), colours 0–255, known algorithm types."""
    if not isinstance(raw, list) or len(raw) > 255:
        raise _bad(name, "the label table is not a list of at most 255 labels")
    labels = []
    for item in raw:
        ok = (isinstance(item, dict) and type(item.get("value")) is int and 1 <= item["value"] <= 255
              and isinstance(item.get("name"), str) and len(item["name"]) <= 256
              and item.get("algorithm_type", "MANUAL") in _ALGORITHM_TYPES)
        colour = item.get("colour", [255, 0, 0]) if isinstance(item, dict) else None
        ok = ok and isinstance(colour, list) and len(colour) == 3 and all(
            type(c) is int and 0 <= c <= 255 for c in colour)
        for key in ("category", "property_type"):
            code = item.get(key) if isinstance(item, dict) else None
            ok = ok and (code is None or (isinstance(code, list) and len(code) == 3
                                          and all(isinstance(c, str) and len(c) <= 256 for c in code)))
        for key in ("algorithm_name", "algorithm_version"):
            ok = ok and isinstance(item.get(key, ""), str) and len(item.get(key, "")) <= 256
        if not ok:
            raise _bad(name, "a label is malformed")
        labels.append(SegmentLabel.from_dict(item))
    if len({lab.value for lab in labels}) != len(labels):
        raise _bad(name, "two labels share a value")
    return labels


def _number_in(value: Any, lo: float, hi: float) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            and lo <= value <= hi)


def _predictions(header: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows = _list_of_dicts(header, "predictions", name)
    for row in rows:
        ok = (isinstance(row.get("outcome"), str) and _number_in(row.get("probability"), 0.0, 1.0)
              and _number_in(row.get("alpha", 0.1), 1e-9, 1.0 - 1e-9) and isinstance(row.get("set", []), list)
              and isinstance(row.get("model_version", ""), str) and isinstance(row.get("stale", False), bool))
        if not ok:
            raise _bad(name, "a prediction is malformed")
    return rows


def _ehr_edits(header: dict[str, Any], name: str) -> dict[str, Any]:
    edits = header.get("ehr_edits", {})
    if not isinstance(edits, dict) or not check_depth(edits):
        raise _bad(name, "'ehr_edits' is not a record")
    for key in ("case_folder", "image"):
        if not isinstance(edits.get(key, ""), str):
            raise _bad(name, f"'ehr_edits.{key}' is not text")
    values = edits.get("values", {})
    if not isinstance(values, dict) or not all(
            v is None or isinstance(v, str | int | float | bool) for v in values.values()):
        raise _bad(name, "the edited EHR values are malformed")
    return edits


def _sections(header: dict[str, Any], name: str) -> dict[str, Any]:
    """Features' parts (absent in older files): a record of JSON; each feature validates its own data."""
    sections = header.get("sections", {})
    if (not isinstance(sections, dict) or not all(isinstance(k, str) and len(k) <= 256 for k in sections)
            or not check_depth(sections)):
        raise _bad(name, "its 'sections' are not a record")
    return dict(sections)


def checked_fields(header: Any, name: str) -> dict[str, Any]:
    """Keyword arguments for ``SessionState`` (without the label map) from a ``state.json`` object."""
    if not isinstance(header, dict):
        raise _bad(name, "state.json is not an object")
    gesture = header.get("gesture", 0)
    if type(gesture) is not int or not 0 <= gesture < 2**53:
        raise _bad(name, "'gesture' is not a count")
    return {
        "image_source": _string(header, "image_source", name),
        "image_signature": _string(header, "image_signature", name, 256),
        "labels": parse_labels(header.get("labels", []), name),
        "prompts": list(_list_of_dicts(header, "prompts", name)),
        "ehr_edits": dict(_ehr_edits(header, name)),
        "audit_log_path": _string(header, "audit_log_path", name),
        "predictions": list(_predictions(header, name)),
        "gesture": gesture,
        "saved_at": _string(header, "saved_at", name, 64),
        "sections": _sections(header, name),
    }


def labelmap_meta(meta: Any, name: str, max_bytes: int) -> tuple[tuple[int, int, int], str]:
    """``(shape, sha1)`` of the stored label map, refused when it would not fit ``max_bytes``."""
    if not isinstance(meta, dict) or meta.get("dtype") != "uint8":
        raise _bad(name, "the label map is not uint8")
    shape, sha1 = meta.get("shape"), meta.get("sha1")
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(type(s) is int and 1 <= s <= 1 << 20 for s in shape)):
        raise _bad(name, "the label map has an impossible shape")
    if not isinstance(sha1, str) or not _SHA1.match(sha1):
        raise _bad(name, "the label map has no checksum")
    n = shape[0] * shape[1] * shape[2]
    if n > max_bytes:
        raise SessionError(
            f"The masks in session file '{name}' would need {n / 2**20:.0f} MB, more than the memory budget "
            f"of {max_bytes / 2**20:.0f} MB; raise memory_budget_mb in the settings if this session is genuine.")
    return (shape[0], shape[1], shape[2]), sha1
