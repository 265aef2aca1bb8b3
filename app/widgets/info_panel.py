"""Patient/study header panel with the de-identify toggle and the data attribution line."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from app.model.document import Document
from inference.clinical.formatting import iso_date

_FIELDS = (
    ("Patient", "patient_name"),
    ("Patient ID", "patient_id"),
    ("Birth date", "patient_birth_date"),
    ("Sex / age", None),
    ("Study date", "study_date"),
    ("Study", "study_description"),
    ("Series", "series_description"),
    ("Modality", "modality"),
    ("Institution", "institution"),
    ("Manufacturer", "manufacturer"),
)


def attribution_for(source: str) -> str:
    """First paragraph(s) of a LICENSE.md next to the data (bundled demo cases ship one)."""
    if not source:
        return ""
    path = Path(source)
    for folder in (path if path.is_dir() else path.parent, path.parent, path.parent.parent):
        licence = folder / "LICENSE.md"
        if licence.is_file():
            lines = [ln.strip() for ln in licence.read_text(errors="replace").splitlines()]
            text = " ".join(ln for ln in lines if ln and not ln.startswith("#"))
            if len(text) > 420:  # keep whole sentences
                cut = text.rfind(". ", 0, 420)
                text = text[: cut + 1] if cut > 0 else text[:420] + "…"
            return text
    return ""


class InfoPanel(QWidget):
    """Shows :meth:`Document.study_info` (respecting de-identification) and the image geometry."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("info_panel")
        self.document = document
        self.deidentify = QCheckBox("De-identify display", self)
        self.deidentify.setToolTip("Hide patient name, ID, dates and UIDs (for demos and screenshots)")
        self.deidentify.setChecked(document.deidentify)
        self.deidentify.toggled.connect(document.set_deidentify)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.values: dict[str, QLabel] = {}
        for label, _key in (*_FIELDS, ("Size", None), ("Spacing", None)):
            value = QLabel("—", self)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            form.addRow(label + ":", value)
            self.values[label] = value
        self.attribution = QLabel(self)
        self.attribution.setObjectName("attribution")
        self.attribution.setWordWrap(True)
        self.attribution.setStyleSheet("color: #9aa4b2; font-size: 10px;")
        layout = QVBoxLayout(self)
        layout.addWidget(self.deidentify)
        layout.addLayout(form)
        layout.addWidget(self.attribution)
        layout.addStretch(1)
        document.volume_changed.connect(lambda _v: self.update_info())
        document.deidentify_changed.connect(self._on_deidentify)
        self.update_info()

    def _on_deidentify(self, on: bool) -> None:
        self.deidentify.blockSignals(True)
        self.deidentify.setChecked(on)
        self.deidentify.blockSignals(False)
        self.update_info()

    def update_info(self) -> None:
        info = self.document.study_info()
        vol = self.document.volume
        for label, key in _FIELDS:
            text = (
                getattr(info, key)
                if key
                else " / ".join(v for v in (info.patient_sex, info.patient_age) if v)
            )
            if key == "modality" and vol is not None:
                text = text or vol.modality
            if key in ("study_date", "patient_birth_date"):
                text = iso_date(text)
            self.values[label].setText(text or "—")
        if vol is None:
            self.values["Size"].setText("—")
            self.values["Spacing"].setText("—")
            self.attribution.setText("")
            return
        z, y, x = vol.shape
        self.values["Size"].setText(f"{x} × {y}" + (f" × {z}" if z > 1 else ""))
        self.values["Spacing"].setText(
            " × ".join(f"{s:.3g}" for s in vol.spacing[: 2 if vol.is_2d else 3]) + " mm"
            if vol.meta.get("spacing_known", True)
            else "unknown (the file has no pixel spacing; sizes are in pixels)"
        )
        attribution = attribution_for(vol.source)
        self.attribution.setText(f"Data: {attribution}" if attribution else "")
