"""User settings, passed explicitly to whoever needs them (no global singleton).

Stored as JSON in the user's config directory; unknown keys are ignored and missing keys take
defaults, so old files keep working. The file is untrusted input: every field is checked against its
type (and a range where one matters) and a bad field falls back to its default with one warning, so
a hand-edited or damaged file never stops the program (see :func:`validated_fields`). Fields with a
fixed set of choices the viewer itself reads (``left_drag``) are checked the same way.
The PACS password goes to the OS keyring when there is one (``inference.credentials``); the
owner-only file holds it only as a fallback.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("medfusion.settings")
MAX_SETTINGS_BYTES = 1 << 20  # a settings file is a few KB; a bigger one is not ours
# What a left-button drag does in the slice views by default: move the crosshair, or window/level.
LEFT_DRAG_CHOICES = ("crosshair", "window_level")


def default_config_dir() -> Path:
    """``$MEDFUSION_HOME`` or ``~/.medfusion`` (tests point it at a temp dir)."""
    return Path(os.environ.get("MEDFUSION_HOME", Path.home() / ".medfusion"))


@dataclass
class PacsSettings:
    dicomweb_url: str = ""
    username: str = ""
    password: str = ""
    dimse_host: str = ""
    dimse_port: int = 104
    dimse_called_aet: str = "ORTHANC"
    dimse_calling_aet: str = "MEDFUSION"
    dimse_tls: bool = False  # DICOM TLS (PS3.15 B.1) to the DIMSE node; verified with ca_bundle or the system CAs
    ca_bundle: str = ""  # PEM file of CA(s) that issued the PACS certificate (empty: the system's trust store)
    client_cert: str = ""  # PEM client certificate (+ key) for servers that require mutual TLS (optional)
    client_key: str = ""
    allow_insecure_http: bool = False  # the user agreed to send the password over plain http:// to a remote host
    retrieve_keep_hours: float = 24.0  # retrieved (identified) series are deleted this long after download


@dataclass
class Settings:
    device: str = "auto"  # auto | cpu | cuda
    segmentation_backend: str = "litemedsam"  # litemedsam | medsam2
    medsam2_checkpoint: str = ""
    medsam2_config: str = ""
    encoder_runtime: str = "auto"  # LiteMedSAM CPU encoder: auto | eager | fused | compile | int8 | onnx
    cache_dir: str = ""  # empty: <config dir>/cache
    embedding_cache_mb: int = 1024
    memory_budget_mb: int = 8192
    conformal_alpha: float = 0.1
    auto_repredict: bool = False
    deidentify_display: bool = False
    autosave: bool = True
    user_name: str = ""
    recent_files: list[str] = field(default_factory=list)
    left_drag: str = "crosshair"  # one of LEFT_DRAG_CHOICES
    pacs: PacsSettings = field(default_factory=PacsSettings)

    def __post_init__(self) -> None:
        if self.left_drag not in LEFT_DRAG_CHOICES:
            raise ValueError(f"left_drag must be one of {LEFT_DRAG_CHOICES}, not {self.left_drag!r}")

    def resolved_cache_dir(self, config_dir: Path | None = None) -> Path:
        return Path(self.cache_dir) if self.cache_dir else (config_dir or default_config_dir()) / "cache"

    def add_recent(self, path: str, keep: int = 10) -> None:
        self.recent_files = [path] + [p for p in self.recent_files if p != path][: keep - 1]

    def save(self, path: Path | None = None) -> None:
        path = path or default_config_dir() / "settings.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = asdict(self)
        from inference.credentials import store_password

        # the password goes to the OS keyring when one works; the file keeps it only as a fallback
        if store_password(self.pacs):
            data["pacs"]["password"], data["pacs"]["password_store"] = "", "keyring"
        # owner-only from the first byte: the file may hold the PACS password (no keyring available)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(data, indent=2))
        os.chmod(tmp, 0o600)  # the mode above applies only when the file is created; a leftover .tmp keeps its own
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path | None = None, *, warn: Callable[[str], None] | None = None) -> Settings:
        """Read the settings file; bad fields fall back to defaults with one warning (never an exception).

        ``warn`` hears that one sentence (default: the log and one ``warning:`` line on stderr).
        """
        path = path or default_config_dir() / "settings.json"
        try:
            if path.stat().st_size > MAX_SETTINGS_BYTES:
                raise ValueError("too large")
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            _warn(warn, f"The settings file {path} could not be read ({type(exc).__name__}); defaults are used.")
            return cls()
        if not isinstance(raw, dict):
            _warn(warn, f"The settings file {path} does not hold a JSON object; defaults are used.")
            return cls()
        values, bad = validated_fields(cls, raw)
        settings = cls(**values)
        if isinstance(raw.get("pacs"), dict):
            from inference.credentials import load_password

            stored = raw["pacs"].get("password_store")
            if stored == "keyring" and not settings.pacs.password:
                settings.pacs.password = load_password(settings.pacs) or ""
        if bad:
            _warn(warn, f"Settings file {path}: invalid value(s) for {', '.join(bad)} ignored; defaults used.")
        return settings


# ---- validation ----------------------------------------------------------------------------------
_RANGES: dict[str, tuple[float, float]] = {  # inclusive bounds of numeric fields
    "embedding_cache_mb": (0, 1 << 20), "memory_budget_mb": (0, 1 << 24), "conformal_alpha": (1e-6, 0.999999),
    "dimse_port": (1, 65535), "retrieve_keep_hours": (0, 24 * 3650),
}
# Choices (device, backend, encoder runtime) are checked where they are used, with a clear error there;
# these are read by the viewer without such a check, so the file's value is checked here.
_CHOICES: dict[str, tuple[str, ...]] = {"left_drag": LEFT_DRAG_CHOICES}
_PATTERNS: dict[str, str] = {"dimse_called_aet": r"[ -\[\]-~]{1,16}", "dimse_calling_aet": r"[ -\[\]-~]{1,16}"}
MAX_STRING = 4096


def _warn(warn: Callable[[str], None] | None, message: str) -> None:
    log.warning(message)
    if warn is not None:
        warn(message)
    else:
        print(f"warning: {message}", file=sys.stderr)


def _check_value(name: str, kind: Any, value: Any) -> Any:
    """``value`` if it has the field's type (and range); raises ``ValueError`` otherwise."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(name)
    elif kind is int or kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(name)
        if kind is int:
            if value != int(value):
                raise ValueError(name)
            value = int(value)
        else:
            value = float(value)
        lo, hi = _RANGES.get(name, (-math.inf, math.inf))
        if not lo <= value <= hi:
            raise ValueError(name)
    elif kind is str:
        if not isinstance(value, str) or len(value) > MAX_STRING or "\x00" in value:
            raise ValueError(name)
        if name in _PATTERNS and not re.fullmatch(_PATTERNS[name], value):
            raise ValueError(name)
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(name)
    elif typing.get_origin(kind) is list:
        if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= MAX_STRING for v in value):
            raise ValueError(name)
        value = list(value[:100])
    else:  # pragma: no cover - a field type this validator does not know yet
        raise ValueError(name)
    return value


def validated_fields(cls: type, raw: Any, prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """Constructor arguments for dataclass ``cls`` from untrusted JSON ``raw``, and the names that were bad.

    Unknown keys are ignored (files from newer versions); missing or invalid ones take their default.
    Nested dataclasses (``pacs``) are validated the same way, field by field.
    """
    if not isinstance(raw, dict):
        return {}, [prefix.rstrip(".") or "the whole file (not a JSON object)"]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    bad: list[str] = []
    for f in fields(cls):
        if f.name not in raw:
            continue
        kind = hints[f.name]
        if is_dataclass(kind) and isinstance(kind, type):
            sub, sub_bad = validated_fields(kind, raw[f.name], f"{prefix}{f.name}.")
            values[f.name] = kind(**sub)
            bad += sub_bad
            continue
        try:
            values[f.name] = _check_value(f.name, kind, raw[f.name])
        except ValueError:
            bad.append(prefix + f.name)
    return values, bad

