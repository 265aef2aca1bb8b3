"""Logging to a rotating file in the config dir, with patient identifiers scrubbed.

Logs and crash reports must never contain patient names/IDs: every record passes through
:class:`PHIFilter`, which replaces values registered with :func:`register_phi` (the app registers
the identifiers of each study it opens) and, for studies not registered yet (a crash while loading),
anything shaped like an identifier: ``PatientName=...`` / ``patient_id='...'`` fragments and the patient,
person-name and accession elements of pydicom header dumps.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import threading
from pathlib import Path

from inference.settings import default_config_dir

# ``PatientName=X``, ``patient_id='X'`` (dataclass reprs such as StudyInfo), ``"patient_name": "X"`` (dicts/JSON).
_QUOTED_OR_WORD = r"('(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|[^\s,;)\]}]+)"
_PHI_PATTERN = re.compile(
    r"(['\"]?\b(?:other_?)?patient(?:'s)?[ _]?(?:name|ids?|birth[ _]?date|address)['\"]?\s*[=:]\s*)" + _QUOTED_OR_WORD,
    re.IGNORECASE,
)
# pydicom header dumps: ``(0010,0010) Patient's Name   PN: 'X'`` — every patient-group (0010,xxxx) element,
# every person name (VR PN: physicians, operators) and the accession number, whatever the study.
_ELEMENT_PATTERN = re.compile(
    r"(\((?:0010,[0-9A-Fa-f]{4}|0008,0050|[0-9A-Fa-f]{4},[0-9A-Fa-f]{4}(?=\)[^\n]*?\sPN:))\)[^\n]*?\s[A-Z]{2}:\s?)([^\n]*)"
)


class PHIFilter(logging.Filter):
    """Redacts registered identifiers from every log record's final message."""

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def register(self, *values: str) -> None:
        with self._lock:
            self._values.update(v for v in values if v and len(v.strip()) >= 2)

    def scrub(self, text: str) -> str:
        text = _ELEMENT_PATTERN.sub(r"\1[REDACTED]", text)
        text = _PHI_PATTERN.sub(r"\1[REDACTED]", text)
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, "[REDACTED]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.scrub(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


_filter = PHIFilter()


def register_phi(*values: str) -> None:
    """Declare identifiers (patient name, ID...) that must never reach a log file."""
    _filter.register(*values)
    # DICOM person names use ^ between parts; also redact the space-separated form.
    _filter.register(*(v.replace("^", " ").strip() for v in values if "^" in v))


def log_file_path() -> Path:
    return default_config_dir() / "logs" / "medfusion.log"


def configure_logging(level: int = logging.INFO) -> None:
    """Attach the file handler; safe to call repeatedly. When ``$MEDFUSION_HOME`` changed since the last call
    the handler moves to the new log file (the log must be where :func:`log_file_path` says it is)."""
    logger = logging.getLogger("medfusion")
    path = log_file_path()
    ours = [h for h in logger.handlers if getattr(h, "_medfusion_log", False)]
    if any(isinstance(h, logging.handlers.RotatingFileHandler) and h.baseFilename == os.path.abspath(path)
           for h in ours):
        return
    for old in ours:
        logger.removeHandler(old)
        old.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_filter)
    handler._medfusion_log = True  # type: ignore[attr-defined]  # ours (others' handlers are left alone)
    logger.addHandler(handler)
    logger.setLevel(level)
