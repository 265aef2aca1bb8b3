"""The settings file round-trips, is readable by its owner only (it can hold the PACS password), survives
malformed content field by field, and keeps the password in the OS keyring when one works."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import main as entry
from inference.settings import PacsSettings, Settings


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


# ---- malformed files (issue 14, item 5): field-by-field validation, defaults + one warning ------------


def _load(tmp_path: Path, text: str) -> tuple[Settings, list[str]]:
    path = tmp_path / "settings.json"
    path.write_text(text)
    said: list[str] = []
    return Settings.load(path, warn=said.append), said


@pytest.mark.parametrize("text", ["[]", '"a string"', "null", "42", "{", "[" * 100_000 + "]" * 100_000,
                                  '{"a": ' * 50_000 + "1" + "}" * 50_000])
def test_unusable_file_gives_defaults_and_one_warning(tmp_path: Path, text: str) -> None:
    loaded, said = _load(tmp_path, text)
    assert loaded == Settings()
    assert len(said) == 1 and "settings" in said[0].lower()


def test_bad_fields_fall_back_one_by_one(tmp_path: Path) -> None:
    raw = {"memory_budget_mb": "lots", "conformal_alpha": None, "device": 3, "autosave": "yes",
           "recent_files": [1, 2], "embedding_cache_mb": 1e400, "user_name": "dr who", "deidentify_display": True,
           "pacs": {"dimse_port": "104", "username": "alice", "dimse_tls": 1, "retrieve_keep_hours": -1},
           "unknown_key_from_a_newer_version": {"x": 1}}
    loaded, said = _load(tmp_path, json.dumps(raw).replace("1e400", "Infinity"))
    defaults = Settings()
    assert (loaded.memory_budget_mb, loaded.conformal_alpha, loaded.device, loaded.autosave) == (
        defaults.memory_budget_mb, defaults.conformal_alpha, defaults.device, defaults.autosave)
    assert loaded.recent_files == [] and loaded.embedding_cache_mb == defaults.embedding_cache_mb
    assert loaded.user_name == "dr who" and loaded.deidentify_display is True  # good fields are kept
    assert loaded.pacs.username == "alice" and loaded.pacs.dimse_port == 104 and loaded.pacs.dimse_tls is False
    assert loaded.pacs.retrieve_keep_hours == PacsSettings().retrieve_keep_hours
    assert len(said) == 1
    for name in ("memory_budget_mb", "conformal_alpha", "device", "autosave", "recent_files",
                 "embedding_cache_mb", "pacs.dimse_port", "pacs.dimse_tls", "pacs.retrieve_keep_hours"):
        assert name in said[0]
    assert "user_name" not in said[0]


def test_pacs_not_an_object_keeps_the_rest(tmp_path: Path) -> None:
    loaded, said = _load(tmp_path, json.dumps({"pacs": [], "conformal_alpha": 0.2}))
    assert loaded.pacs == PacsSettings() and loaded.conformal_alpha == 0.2 and len(said) == 1


def test_every_command_survives_a_malformed_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = Path(os.environ["MEDFUSION_HOME"])
    settings_path = home / "settings.json"
    backup = settings_path.read_bytes() if settings_path.exists() else None
    try:
        for text in ("[]", '{"pacs": []}', '{"memory_budget_mb": "x"}', "[" * 100_000):
            settings_path.write_text(text)
            rc = entry.main(["segment", str(tmp_path / "missing.png"), "--box", "1", "1", "5", "5",
                             "--out", str(tmp_path / "m.png")])
            err = capsys.readouterr().err
            assert rc == 2 and "Traceback" not in err, err
            lines = err.strip().splitlines()
            assert len(lines) == 2 and lines[0].startswith("warning:") and "missing" in lines[1], err
    finally:
        if backup is None:
            settings_path.unlink(missing_ok=True)
        else:
            settings_path.write_bytes(backup)


# ---- PACS password in the OS keyring (issue 14, item 7) ------------------------------------------------
class _MemoryKeyring:
    """A working keyring backend held in memory (the test never touches the user's real keyring)."""

    priority = 1

    def __init__(self, forgetful: bool = False) -> None:
        self.store: dict[tuple[str, str], str] = {}
        self.forgetful = forgetful

    def get_password(self, service: str, user: str) -> str | None:
        return self.store.get((service, user))

    def set_password(self, service: str, user: str, password: str) -> None:
        if not self.forgetful:
            self.store[(service, user)] = password

    def delete_password(self, service: str, user: str) -> None:
        self.store.pop((service, user), None)


@pytest.fixture()
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> _MemoryKeyring:
    keyring = pytest.importorskip("keyring")
    backend = _MemoryKeyring()
    monkeypatch.setattr(keyring, "get_password", backend.get_password)
    monkeypatch.setattr(keyring, "set_password", backend.set_password)
    monkeypatch.setattr(keyring, "delete_password", backend.delete_password)
    return backend


def test_password_goes_to_the_keyring_not_the_file(tmp_path: Path, memory_keyring: _MemoryKeyring) -> None:
    settings = Settings()
    settings.pacs.dicomweb_url, settings.pacs.username, settings.pacs.password = "https://pacs", "alice", "s3cret"
    path = tmp_path / "settings.json"
    settings.save(path)
    assert "s3cret" not in path.read_text()
    assert json.loads(path.read_text())["pacs"]["password_store"] == "keyring"
    assert list(memory_keyring.store.values()) == ["s3cret"]
    assert Settings.load(path).pacs.password == "s3cret"
    settings.pacs.password = ""  # cleared by the user: gone from the keyring too
    settings.save(path)
    assert memory_keyring.store == {} and Settings.load(path).pacs.password == ""


def test_forgetful_keyring_falls_back_to_the_file(tmp_path: Path, memory_keyring: _MemoryKeyring) -> None:
    memory_keyring.forgetful = True  # like keyring's "null" backend: accepts and forgets
    settings = Settings()
    settings.pacs.username, settings.pacs.password = "alice", "s3cret"
    path = tmp_path / "settings.json"
    settings.save(path)
    assert json.loads(path.read_text())["pacs"]["password"] == "s3cret"
    assert Settings.load(path).pacs.password == "s3cret"
