"""Saved sessions and crash recovery (see docs/dev/export_pacs.md)."""

from __future__ import annotations

from inference.persistence.autosave import Autosaver, find_recovery
from inference.persistence.recovery import RecoveryClaim, archive_file, claim_recovery
from inference.persistence.session import SessionError, SessionState, check_image, load_session, save_session

__all__ = ["Autosaver", "RecoveryClaim", "SessionError", "SessionState", "archive_file", "check_image",
           "claim_recovery", "find_recovery", "load_session", "save_session"]
