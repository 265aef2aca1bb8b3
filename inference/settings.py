"""User settings, passed explicitly to whoever needs them (no global singleton).

Stored as JSON in the user's config directory; unknown keys are ignored and missing keys take
defaults, so old files keep working. Values with a fixed set of choices (``left_drag``) are checked on
load: a malformed one falls back to its default (logged), never stops the viewer from starting.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

log = logging.getLogger("medfusion.settings")

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
        # owner-only from the first byte: the file may hold the PACS password (no keyring here)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(asdict(self), indent=2))
        os.chmod(tmp, 0o600)  # the mode above applies only when the file is created; a leftover .tmp keeps its own
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or default_config_dir() / "settings.json"
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known and k != "pacs"}
        if "left_drag" in values and values["left_drag"] not in LEFT_DRAG_CHOICES:
            log.warning("settings: left_drag %r is not one of %s; using the default", values["left_drag"],
                        LEFT_DRAG_CHOICES)
            del values["left_drag"]
        pacs_known = {f.name for f in fields(PacsSettings)}
        pacs = PacsSettings(**{k: v for k, v in raw.get("pacs", {}).items() if k in pacs_known})
        return cls(**values, pacs=pacs)
