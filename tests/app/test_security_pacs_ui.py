"""Settings > PACS warns before a password would go over plain http:// (issue 14, item 7), and the
clinical audit log of a case is named without the patient ID."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from app.widgets.settings_dialog import PacsSettingsDialog
from inference.settings import PacsSettings


def _dialog(qtbot, url: str) -> PacsSettingsDialog:  # noqa: ANN001
    dialog = PacsSettingsDialog(PacsSettings(dicomweb_url=url, username="alice", password="s3cret"))
    qtbot.addWidget(dialog)
    return dialog


@pytest.mark.parametrize("answer", [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
def test_saving_an_http_address_with_a_password_asks_first(qtbot, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
                                                            answer: QMessageBox.StandardButton) -> None:
    asked: list[str] = []

    def warning(_parent: object, _title: str, text: str, *_a: object, **_k: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "warning", warning)
    dialog = _dialog(qtbot, "http://pacs.example.org/dicom-web")
    dialog.accept()
    assert len(asked) == 1 and "not encrypted" in asked[0]
    accepted = dialog.result() == PacsSettingsDialog.DialogCode.Accepted
    assert accepted == (answer == QMessageBox.StandardButton.Yes)
    assert dialog.values().allow_insecure_http == accepted


def test_https_and_loopback_are_saved_without_a_question(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    def never(*_a: object, **_k: object) -> QMessageBox.StandardButton:
        raise AssertionError("no warning expected")

    monkeypatch.setattr(QMessageBox, "warning", never)
    for url in ("https://pacs.example.org/dicom-web", "http://127.0.0.1:8042/dicom-web"):
        dialog = _dialog(qtbot, url)
        dialog.ca_bundle.setText("/etc/ssl/certs/hospital-ca.pem")
        dialog.dimse_tls.setChecked(True)
        dialog.accept()
        values = dialog.values()
        assert dialog.result() == PacsSettingsDialog.DialogCode.Accepted and not values.allow_insecure_http
        assert values.ca_bundle == "/etc/ssl/certs/hospital-ca.pem" and values.dimse_tls


def test_clinical_audit_log_name_has_no_patient_id(tmp_path: Path) -> None:
    from app.controllers.clinical import audit_path_for
    from app.model.clinical import ClinicalCase

    case = ClinicalCase(folder=tmp_path, patient_id="PID-4711", images=[], presentation={}, visits={})
    assert "4711" not in audit_path_for(case, tmp_path / "audit").name
