"""Settings > PACS: server address, ports, AE titles and credentials (stored in the user's settings file).

Why a dialog and not code or environment variables: the issue requires that addresses and credentials
live in settings only; the dialog edits a copy and writes it back atomically through ``Settings.save``.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inference.pacs.transport import insecure_password_warning
from inference.settings import PacsSettings


class PacsSettingsDialog(QDialog):
    """Edits a :class:`PacsSettings`; :meth:`values` returns the edited copy."""

    def __init__(self, pacs: PacsSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pacs_settings_dialog")
        self.setWindowTitle("PACS settings")
        self.url = QLineEdit(pacs.dicomweb_url, self)
        self.url.setPlaceholderText("https://pacs.example.org/dicom-web")
        self.username = QLineEdit(pacs.username, self)
        self.password = QLineEdit(pacs.password, self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.host = QLineEdit(pacs.dimse_host, self)
        self.host.setPlaceholderText("pacs.example.org (empty: no DIMSE)")
        self.port = QSpinBox(self)
        self.port.setRange(1, 65535)
        self.port.setValue(int(pacs.dimse_port))
        self.called = QLineEdit(pacs.dimse_called_aet, self)
        self.calling = QLineEdit(pacs.dimse_calling_aet, self)
        for edit in (self.called, self.calling):
            edit.setMaxLength(16)
        self.ca_bundle = QLineEdit(pacs.ca_bundle, self)
        self.ca_bundle.setPlaceholderText("PEM file of the CA that issued the PACS certificate (empty: system CAs)")
        self.dimse_tls = QCheckBox("Use DICOM TLS (certificate verified like HTTPS)", self)
        self.dimse_tls.setChecked(bool(pacs.dimse_tls))

        web = QGroupBox("DICOMweb (search, retrieve, store)", self)
        web_form = QFormLayout(web)
        web_form.addRow("Server URL", self.url)
        web_form.addRow("User name", self.username)
        web_form.addRow("Password", self.password)
        web_form.addRow("CA bundle (TLS)", self.ca_bundle)
        dimse = QGroupBox("DICOM network (C-ECHO, C-FIND, C-STORE)", self)
        dimse_form = QFormLayout(dimse)
        dimse_form.addRow("Host", self.host)
        dimse_form.addRow("Port", self.port)
        dimse_form.addRow("Called AE title (PACS)", self.called)
        dimse_form.addRow("Calling AE title (this viewer)", self.calling)
        dimse_form.addRow("", self.dimse_tls)
        note = QLabel("Stored in your settings file on this computer; the password goes to the system keyring "
                      "when there is one, otherwise into that file (readable only by you).", self)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
                                   self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(web)
        layout.addWidget(dimse)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self._original = pacs
        self._allow_insecure = pacs.allow_insecure_http

    def values(self) -> PacsSettings:
        return replace(
            self._original, dicomweb_url=self.url.text().strip(), username=self.username.text().strip(),
            password=self.password.text(), dimse_host=self.host.text().strip(), dimse_port=int(self.port.value()),
            dimse_called_aet=self.called.text().strip() or "ORTHANC",
            dimse_calling_aet=self.calling.text().strip() or "MEDFUSION", ca_bundle=self.ca_bundle.text().strip(),
            dimse_tls=self.dimse_tls.isChecked(), allow_insecure_http=self._allow_insecure)

    def accept(self) -> None:
        """Warn before a password would be sent over plain http:// to another computer (asked per address)."""
        values = replace(self.values(), allow_insecure_http=False)
        warning = insecure_password_warning(values)
        agreed_before = self._original.allow_insecure_http and values.dicomweb_url == self._original.dicomweb_url
        self._allow_insecure = bool(warning) and agreed_before
        if warning and not agreed_before:
            answer = QMessageBox.warning(
                self, "Password sent unencrypted", f"{warning}\n\nSend the password over http:// anyway?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                self.url.setFocus()
                return
            self._allow_insecure = True
        super().accept()
