"""The settings file round-trips and is readable by its owner only (it can hold the PACS password)."""

from __future__ import annotations

import stat
from pathlib import Path

from inference.settings import Settings


def test_settings_round_trip_and_owner_only_permissions(tmp_path: Path) -> None:
    settings = Settings(conformal_alpha=0.05)
    settings.pacs.password = "s3cret"
    path = tmp_path / "cfg" / "settings.json"
    settings.save(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    loaded = Settings.load(path)
    assert loaded.conformal_alpha == 0.05 and loaded.pacs.password == "s3cret"
    path.chmod(0o644)  # an older file: saving again tightens it
    loaded.save(path)
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
