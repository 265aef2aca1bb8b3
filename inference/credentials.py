"""The PACS password in the OS keyring (macOS Keychain, Windows Credential Locker, Secret Service).

Why: the settings file is owner-only (0600), but it is still a plain-text file that backups, sync
tools and other programs of the same user read. When a keyring backend works, the password lives
there and the file says ``"password_store": "keyring"``; when none works (a headless server, a
container), the file keeps it as before. Every keyring call is best-effort: a locked or broken
keyring must never stop the viewer, so failures fall back to the file and are logged.
Lives beside ``inference.settings`` (the foundation layer may not import ``inference.pacs``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # settings imports this module (lazily): no import back at run time
    from inference.settings import PacsSettings

log = logging.getLogger("medfusion.pacs")
SERVICE = "MedFusion Viewer PACS"

__all__ = ["SERVICE", "account_of", "load_password", "store_password"]


def account_of(pacs: PacsSettings) -> str:
    """Keyring user name: the PACS user at the server it is for (one entry per server and user)."""
    return f"{pacs.username}@{pacs.dicomweb_url or pacs.dimse_host}"


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:  # optional at run time: without it the file fallback is used
        return None
    return keyring


def store_password(pacs: PacsSettings) -> bool:
    """Put ``pacs.password`` in the keyring; True only when reading it back gives the same password.

    The read-back matters: keyring's "null" backend accepts a password and forgets it.
    """
    keyring = _keyring()
    if keyring is None:
        return False
    account = account_of(pacs)
    if not pacs.password:  # cleared in the settings: do not leave the old one in the keyring
        if pacs.username:
            try:
                keyring.delete_password(SERVICE, account)
            except Exception:  # noqa: BLE001 - nothing stored, or no usable keyring
                pass
        return False
    try:
        if keyring.get_password(SERVICE, account) != pacs.password:
            keyring.set_password(SERVICE, account, pacs.password)
        return bool(keyring.get_password(SERVICE, account) == pacs.password)
    except Exception as exc:  # noqa: BLE001 - backends raise assorted errors (no backend, locked, D-Bus)
        log.info("OS keyring not usable (%s); the PACS password stays in the owner-only settings file",
                 type(exc).__name__)
        return False


def load_password(pacs: PacsSettings) -> str | None:
    """The password stored for this server and user, or None (no keyring, locked, nothing stored)."""
    keyring = _keyring()
    if keyring is None:
        return None
    try:
        value = keyring.get_password(SERVICE, account_of(pacs))
    except Exception as exc:  # noqa: BLE001 - see store_password
        log.warning("the PACS password could not be read from the OS keyring (%s)", type(exc).__name__)
        return None
    return value if isinstance(value, str) else None
