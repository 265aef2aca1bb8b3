"""The one name table: model / file names → the words a clinician reads (outcomes, EHR fields, actions).

Why one table: the prediction panel, the PDF report and the audit view each used to print their own
spelling (``went_icu`` in the report, "ICU admission" in the panel). Everything that shows an outcome,
a clinical variable or an audit action looks it up here.
"""

from __future__ import annotations

OUTCOME_LABELS: dict[str, str] = {
    "went_icu": "ICU admission",
    "intubated": "Intubation",
    "death": "Death",
    "needed_supplemental_O2": "Supplemental O\u2082",
}

#: EHR column → (label, unit); ranges live in :mod:`inference.clinical.ranges`.
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "age": ("Age", "years"),
    "sex": ("Sex", ""),
    "temperature": ("Temperature", "\u00b0C"),
    "pO2_saturation": ("SpO\u2082", "%"),
    "leukocyte_count": ("Leukocytes", "\u00d710\u2079/L"),
    "neutrophil_count": ("Neutrophils", "\u00d710\u2079/L"),
    "lymphocyte_count": ("Lymphocytes", "\u00d710\u2079/L"),
    "view": ("View", ""),
}

#: audit ``action`` → label shown in the audit view and the report.
ACTION_LABELS: dict[str, str] = {
    "case_open": "Case opened",
    "reference_mask": "Reference lung mask loaded",
    "ai_mask": "AI segmentation",
    "mask_edit": "Mask corrected",
    "ehr_edit": "What-if edit",
    "set_alpha": "Confidence level changed",
    "tent": "Test-time adaptation",
    "prediction": "Prediction",
    "explanation": "Explanation",
    "reset": "Case reset",
    "recover_partial_entry": "Log repaired after a crash",
}

#: explanation method keys (controller) → names.
METHOD_LABELS: dict[str, str] = {
    "ig": "Integrated Gradients",
    "occlusion": "Occlusion",
    "gradshap": "GradientSHAP",
}


def _humanise(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else name


def outcome_label(name: str) -> str:
    """'went_icu' → 'ICU admission'; an unknown outcome is de-underscored rather than shown raw."""
    return OUTCOME_LABELS.get(name) or _humanise(name)


def field_label(name: str) -> str:
    """'pO2_saturation' → 'SpO₂'."""
    return FIELD_LABELS[name][0] if name in FIELD_LABELS else _humanise(name)


def field_unit(name: str) -> str:
    return FIELD_LABELS[name][1] if name in FIELD_LABELS else ""


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action) or _humanise(action)


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def actor_label(actor: str) -> str:
    """Audit actor → who: 'AI:medfusion-cxr-v1' → 'AI model medfusion-cxr-v1', 'user:dr.k' → 'dr.k'."""
    kind, _, name = str(actor).partition(":")
    if kind == "AI":
        return f"AI model {name}" if name else "AI model"
    if kind == "user":
        return name or "user"
    if kind == "system":
        return {"viewer": "Viewer", "bundled-annotation": "Bundled annotation",
                "audit": "Audit log"}.get(name, _humanise(name) if name else "System")
    return str(actor)
