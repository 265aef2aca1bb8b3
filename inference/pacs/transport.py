"""How we talk to a PACS safely: TLS verification (custom CA bundle), DICOM TLS, and no password in clear.

Why one module: DICOMweb (requests) and DIMSE (pynetdicom) need the same decisions — verify the
server's certificate against the system store or the CA bundle the user chose (never switched off),
present a client certificate when the server asks for mutual TLS, refuse to send a password over
plain ``http://`` to another machine unless the user agreed (``PacsSettings.allow_insecure_http``;
loopback is exempt: nothing leaves the computer), and turn an OpenSSL failure into one sentence that
says the certificate is not trusted and where to fix it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from inference.pacs.common import PacsError
from inference.settings import PacsSettings

__all__ = ["check_password_transport", "client_cert", "insecure_password_warning", "is_loopback",
           "requests_verify", "ssl_context", "tls_failure", "untrusted_message"]

_VERIFY_REASON = re.compile(r"certificate verify failed: ([^(\]']+)")


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8, ::1 (traffic that never leaves this computer)."""
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_password_warning(pacs: PacsSettings) -> str | None:
    """The warning to show before a password would travel unencrypted (None when it would not)."""
    url = urlsplit(pacs.dicomweb_url.strip())
    if url.scheme.lower() != "http" or not pacs.password or is_loopback(url.hostname or ""):
        return None
    return (f"The DICOMweb address {url.scheme}://{url.hostname} is not encrypted (http://): the PACS password "
            "would cross the network readable by anyone on the way. Use https:// if the PACS offers it.")


def check_password_transport(pacs: PacsSettings) -> None:
    """:class:`PacsError` unless the password is sent encrypted, to this computer, or the user agreed."""
    warning = insecure_password_warning(pacs)
    if warning and not pacs.allow_insecure_http:
        raise PacsError(f"{warning} Nothing was sent; to send it anyway, confirm in Settings > PACS.")


def _existing(path_text: str, what: str) -> str:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise PacsError(f"The {what} '{path}' set in Settings > PACS does not exist.")
    return str(path)


def requests_verify(pacs: PacsSettings) -> bool | str:
    """``verify`` for requests: the chosen CA bundle, else True (system store). Never False."""
    return _existing(pacs.ca_bundle, "CA bundle") if pacs.ca_bundle else True


def client_cert(pacs: PacsSettings) -> tuple[str, str] | str | None:
    """Client certificate (and key) for mutual TLS, or None."""
    if not pacs.client_cert:
        return None
    cert = _existing(pacs.client_cert, "client certificate")
    return (cert, _existing(pacs.client_key, "client key")) if pacs.client_key else cert


def ssl_context(pacs: PacsSettings) -> ssl.SSLContext:
    """Verifying TLS context for DICOM TLS: CA bundle (or system store), host name checked, TLS ≥ 1.2."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=_existing(pacs.ca_bundle, "CA bundle") if pacs.ca_bundle else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        cert = client_cert(pacs)
        if cert is not None:
            context.load_cert_chain(*(cert if isinstance(cert, tuple) else (cert,)))
    except ssl.SSLError as exc:
        raise PacsError(f"The TLS certificates set in Settings > PACS could not be read ({exc.reason or exc}).") from exc
    return context


def untrusted_message(where: str, detail: str = "") -> str:
    reason = f" ({detail.strip()})" if detail.strip() else ""
    return (f"The PACS at {where} presented a certificate that is not trusted{reason}; if this is the right "
            "server, add the CA certificate that issued it as the CA bundle in Settings > PACS.")


def tls_failure(exc: BaseException, where: str) -> PacsError:
    """One sentence for a failed TLS handshake (certificate not trusted, or no TLS on that port)."""
    text = str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text \
            or "certificate verify failed" in text:
        detail = getattr(exc, "verify_message", "") or ""
        match = _VERIFY_REASON.search(text)
        return PacsError(untrusted_message(where, detail or (match.group(1) if match else "")))
    return PacsError(f"The secure (TLS) connection to the PACS at {where} failed; check that it offers TLS on "
                     "that port and that the TLS settings match.")


def probe_tls(host: str, port: int, pacs: PacsSettings, timeout: float) -> PacsError | None:
    """Why a TLS connection to ``host:port`` fails (None if the handshake succeeds): for DIMSE, whose
    library reports every failure as 'could not connect'."""
    context = ssl_context(pacs)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return None
    except ssl.SSLError as exc:
        return tls_failure(exc, f"{host}:{port}")
    except OSError:
        return None  # not a TLS problem: the caller's "cannot connect" message stands
