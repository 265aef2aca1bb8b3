"""How much the X-rays, rather than the clinical values, moved one patient's prediction (``image_share``).

Why against a *typical* patient and not against a missing modality: the shipped models were trained on
patients who all had X-rays, so "no X-ray at all" is an input far from anything they saw (the demo case:
ICU logit 5.06 with everything, −6.26 without the X-rays, 5.10 without the clinical values) and the old
ratio |Δ without X-rays| / (that + |Δ without EHR|) said ~100 % for nearly everyone, which made the
"greyed under 20 %" rule meaningless. Here each modality is replaced by what an ordinary patient of the
training cohort has — the same reference the clinical-value bars use (the cohort medians) — so the
weight asks how far *this patient's* X-rays, versus *this patient's* values, move the risk from ordinary.

Both references come from numbers the model files already hold (nothing new is shipped):
typical clinical values = each *measured* value set to the EHR encoder's training median, exactly as
the clinical-value bars do (a value that was not measured stays missing: the bars give it no weight
either; sex and view are kept, they describe the patient and the acquisition); typical X-ray
features = the mean of the image block over the training patients who had X-rays, recovered exactly from
the stored block means (patients without X-rays contribute zeros and 'no image' = 1 to those means).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace

import numpy as np

from inference.fusion.candidates import Encoders, OutcomeModel
from inference.fusion.design import NUMERIC, ImageEncoder, PatientRecord

NEUTRAL_SHARE = 0.5  # neither modality moves the logit from typical: nothing tells them apart


class TypicalImageEncoder(ImageEncoder):
    """An image encoder that gives every patient with X-rays the training cohort's typical image block."""

    @classmethod
    def of(cls, encoder: ImageEncoder) -> TypicalImageEncoder:
        return cls(**{f.name: getattr(encoder, f.name) for f in fields(encoder)})

    def typical_row(self) -> np.ndarray:
        """Raw block of a typical patient with X-rays: training block means with the no-X-ray rows taken out."""
        means = np.asarray(self.out_means, np.float64)
        without_images = float(means[-1])  # 'no image' column: the fraction of training patients without X-rays
        row = means / (1.0 - without_images) if without_images < 1.0 - 1e-9 else means.copy()
        row[-1] = 0.0
        return row

    def transform(self, records: Sequence[PatientRecord]) -> np.ndarray:
        typical = (self.typical_row() - np.asarray(self.out_means)) / np.asarray(self.out_stds)
        block = super().transform(records)
        has_images = np.array([bool(r.images) for r in records])
        block[has_images] = typical
        return block


def with_typical_images(encoders: Encoders) -> Encoders:
    """The same encoders, except that the X-rays of any patient read as the cohort's typical ones."""
    return replace(encoders, images={k: TypicalImageEncoder.of(v) for k, v in encoders.images.items()}, memo=None)


def with_typical_ehr(record: PatientRecord, medians: Sequence[float]) -> PatientRecord:
    """The record with every measured numeric clinical value set to the training median (missing stay
    missing; sex and view kept)."""
    typical = {name: float(m) for name, m in zip(NUMERIC, medians, strict=True) if record.ehr.get(name) is not None}
    return PatientRecord(record.patient_id, {**record.ehr, **typical}, record.images, record.filenames,
                         record.offsets, record.finding)


def image_share(model: OutcomeModel, encoders: Encoders, record: PatientRecord) -> float:
    """|Δ logit when the X-ray features become typical| / (that + |Δ when the clinical values become typical|);
    0 = the clinical values decided, 1 = the X-rays decided (see the module docstring for why 'typical')."""
    if not record.images:
        return 0.0
    full = float(model.logits([record], encoders)[0])
    typical_image = float(model.logits([record], with_typical_images(encoders))[0])
    typical_ehr = float(model.logits([with_typical_ehr(record, encoders.ehr.medians)], encoders)[0])
    img, ehr = abs(full - typical_image), abs(full - typical_ehr)
    return float(img / (img + ehr)) if img + ehr > 1e-9 else NEUTRAL_SHARE
