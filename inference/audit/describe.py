"""Audit entries in words: date and time, who, what (label), on what, and what changed — for people.

Why: the log itself stays machine-checkable JSON (hash chain), but a clinician reviewing a case reads
"SpO₂ 85 → 99 % (what-if)", not ``{"after": 99.0, "before": 85.0, "what_if": true}``. The raw entry
is kept alongside (:attr:`AuditRow.raw`) for the detail pane and exports. With the viewer's
de-identified display on, :func:`describe_entry` (``hide_patient=True``) shows "this patient" instead of
the patient ID and hides the case folder's name, in the words and in the raw entry shown; the log file
itself is never changed (its hash chain covers the real values).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inference.clinical.formatting import field_value, format_percent
from inference.clinical.terms import (
    FIELD_LABELS,
    OUTCOME_LABELS,
    action_label,
    actor_label,
    field_label,
    method_label,
    outcome_label,
)

NEUTRAL_PATIENT = "this patient"  # shown for "patient <ID>" when the display is de-identified
HIDDEN = "(hidden)"


@dataclass(frozen=True)
class AuditRow:
    seq: int
    time: str  # "2026-12-01 09:48:52" (UTC)
    who: str
    action: str
    target: str
    summary: str
    raw: str  # the entry as indented JSON


def format_timestamp(stamp: str) -> str:
    """ISO timestamp with offset → 'YYYY-MM-DD HH:MM:SS' in UTC (as stored); unparsable text unchanged."""
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _pixels(details: Mapping[str, Any]) -> str:
    n = details.get("pixels")
    return f"{int(n):,} pixels" if isinstance(n, int | float) else ""


def _case_open(d: Mapping[str, Any]) -> str:
    images = d.get("images") or []
    folder = d.get("folder")
    text = f"{len(images)} image{'s' if len(images) != 1 else ''}"
    return text + (f" from folder '{folder}'" if folder and folder != HIDDEN else "")


def _reference_mask(d: Mapping[str, Any]) -> str:
    source = d.get("source")
    return f"{_pixels(d)}" + (f" (file {source})" if source else "")


def _mask_edit(d: Mapping[str, Any]) -> str:
    score = d.get("dice_ai_vs_final")
    agreement = (f"agreement with the AI mask: Dice {float(score):.2f}" if isinstance(score, int | float)
                 else "no AI mask to compare")
    return f"{agreement}; corrected mask {_pixels(d)}".rstrip("; ")


def _ehr_edit(d: Mapping[str, Any], target: str) -> str:
    before, after = d.get("before"), d.get("after")
    unitless = field_value(target, before, with_unit=False) if before is not None else "missing"
    text = f"{field_label(target)} {unitless} \u2192 {field_value(target, after)}"
    return text + (" (what-if; the record is unchanged)" if d.get("what_if") else "")


def _outcomes(after: Mapping[str, Any], before: Mapping[str, Any] | None) -> str:
    parts = []
    for name, p in after.items():
        if not isinstance(p, int | float):
            continue
        text = f"{outcome_label(name)} {format_percent(p)}"
        old = (before or {}).get(name)
        if isinstance(old, int | float) and format_percent(old) != format_percent(p):
            text += f" (was {format_percent(old)})"
        parts.append(text)
    return ", ".join(parts)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _prediction(d: Mapping[str, Any]) -> str:
    after = _mapping(d.get("after"))
    before = d.get("before") if isinstance(d.get("before"), dict) else None
    order = [k for k in OUTCOME_LABELS if k in after] + [k for k in after if k not in OUTCOME_LABELS]
    text = _outcomes({k: after[k] for k in order}, before)
    sets = _mapping(d.get("sets"))
    undecided = [outcome_label(k) for k in order if sorted(sets.get(k) or []) == [0, 1]]
    if undecided:
        alpha = d.get("alpha")
        level = f" at {round(100 * (1 - float(alpha)))} %" if isinstance(alpha, int | float) else ""
        text += f". Cannot decide{level}: {', '.join(undecided)}"
    edits = _mapping(d.get("ehr_edits"))
    if edits:
        text += ". Used what-if values: " + ", ".join(f"{field_label(k)} {field_value(k, v)}"
                                                       for k, v in edits.items())
    masks = d.get("edited_masks") or []
    if masks:
        text += ". Corrected masks: " + ", ".join(str(m) for m in masks)
    if d.get("tent"):
        text += ". Adapted to this case (TENT)"
    return text


def _explanation(d: Mapping[str, Any]) -> str:
    text = method_label(str(d.get("method", "")))
    top = d.get("top_ehr") or []
    names = [field_label(str(item[0])) for item in top if isinstance(item, list | tuple) and item]
    if names:
        text += "; strongest clinical values: " + ", ".join(names)
    gate = d.get("gate_image")
    if isinstance(gate, int | float):
        text += f"; image share {format_percent(gate)}"
    return text


def _generic(d: Mapping[str, Any]) -> str:
    def word(key: str) -> str:
        return FIELD_LABELS[key][0] if key in FIELD_LABELS else key.replace("_", " ")

    return "; ".join(f"{word(k)}: {v}" for k, v in d.items() if not isinstance(v, dict | list))


SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "case_open": _case_open,
    "reference_mask": _reference_mask,
    "ai_mask": _pixels,
    "mask_edit": _mask_edit,
    "set_alpha": lambda d: (f"conformal sets at {round(100 * (1 - float(d['alpha'])))} % confidence"
                            if isinstance(d.get("alpha"), int | float) else ""),
    "tent": lambda d: "turned on" if d.get("enabled") else "turned off",
    "prediction": _prediction,
    "explanation": _explanation,
    "reset": lambda d: "edits, masks and predictions dropped; back to the recorded values",
    "recover_partial_entry": lambda d: (f"dropped the incomplete entry {d.get('dropped_seq')} "
                                        f"({d.get('dropped_bytes')} bytes) left by a crash"),
}


def _is_patient_target(target: str) -> bool:
    return target == "patient" or target.startswith("patient ")


def hide_identity(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``entry`` for display with the patient ID and case folder name replaced (they identify)."""
    shown = dict(entry)
    if _is_patient_target(str(shown.get("target", ""))):
        shown["target"] = NEUTRAL_PATIENT
    details = shown.get("details")
    if isinstance(details, dict) and "folder" in details:
        shown["details"] = {**details, "folder": HIDDEN}
    return shown


def _target(action: str, target: str) -> str:
    if action == "ehr_edit":
        return field_label(target)
    if action == "explanation":
        return outcome_label(target)
    return {"conformal": "Conformal sets", "predictor": "Predictor"}.get(target, target)


def describe_entry(entry: Mapping[str, Any], *, hide_patient: bool = False) -> AuditRow:
    """One log entry → a row of words (never raises on odd details: falls back to key: value); with
    ``hide_patient`` no patient ID or folder name is shown (see :func:`hide_identity`)."""
    if hide_patient:
        entry = hide_identity(entry)
    action = str(entry.get("action", ""))
    target = str(entry.get("target", ""))
    raw_details = entry.get("details")
    details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    try:
        summary = _ehr_edit(details, target) if action == "ehr_edit" else SUMMARIES.get(action, _generic)(details)
    except (TypeError, ValueError, KeyError):
        summary = _generic(details)
    raw = json.dumps(dict(entry), indent=2, ensure_ascii=False, default=str)
    return AuditRow(int(entry.get("seq", 0) or 0), format_timestamp(str(entry.get("timestamp", ""))),
                    actor_label(str(entry.get("actor", ""))), action_label(action), _target(action, target),
                    summary, raw)
