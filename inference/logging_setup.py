"""Logging to a rotating file in the config dir, with patient identifiers scrubbed.

Logs and crash reports must never contain patient names/IDs: every record passes through
:class:`PHIFilter`, which replaces values registered with :func:`register_phi` (the app registers
the identifiers of each study it opens) and DICOM-style ``PatientName=...`` fragments.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import threading
from pathlib import Path

from inference.settings import default_config_dir

_PHI_PATTERN = re.compile(r"(Patient(?:Name|ID|BirthDate)\s*[=:]\s*)(\S+)", re.IGNORECASE)


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
    """Attach the file handler once; safe to call repeatedly."""
    logger = logging.getLogger("medfusion")
    if any(isinstance(h, logging.handlers.RotatingFileHandler) for h in logger.handlers):
        return
    path = log_file_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_filter)
    logger.addHandler(handler)
    logger.setLevel(level)
