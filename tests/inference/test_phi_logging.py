"""PHI: patient names/IDs never reach the log file or the CLI's error output.

Opens DICOM files carrying a (synthetic) patient name and ID, drives the loader's error paths and
logs the way the app and CLI do, then reads ``$MEDFUSION_HOME/logs/medfusion.log`` back.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from inference.errors import MedFusionError
from inference.io.loader import open_image
from inference.logging_setup import configure_logging, log_file_path, register_phi
from tests import synthetic_dicom as b
from tests.robustness.cases_dicom import patch_bytes

REPO = Path(__file__).resolve().parents[2]
NAME, ID = "Zyxwvut^Quinella", "PHI-5550123"
FORMS = (NAME, NAME.replace("^", " "), ID)


def _with_phi(ds: pydicom.Dataset, z: int) -> None:
    ds.PatientName, ds.PatientID = NAME, ID


def _log_text() -> str:
    for handler in logging.getLogger("medfusion").handlers:
        handler.flush()
    path = log_file_path()
    return path.read_text(errors="replace") if path.exists() else ""


def _assert_clean(text: str, where: str) -> None:
    leaked = [f for f in FORMS if f in text]
    assert not leaked, f"{where} contains PHI {leaked}"


@pytest.fixture
def log() -> logging.Logger:
    configure_logging()
    return logging.getLogger("medfusion.test.phi")


def _broken_inputs(tmp_path: Path) -> list[Path]:
    """Inputs that each fail in a different loader path, all carrying the patient's name/ID."""
    files, _ = b.write_series(tmp_path / "truncated", n=1, mutate=_with_phi)
    files[0].write_bytes(files[0].read_bytes()[:-40])
    b.write_series(tmp_path / "holes", n=5, z_positions=[0, 2, 4, 9, 11], mutate=_with_phi)
    b.write_series(tmp_path / "two" / "a", n=2, series="1", mutate=_with_phi)
    b.write_series(tmp_path / "two" / "b", n=2, series="2", mutate=_with_phi)
    b.write_series(tmp_path / "dupes", n=3, z_positions=[0, 0, 2], mutate=_with_phi)
    return [files[0], tmp_path / "holes", tmp_path / "two", tmp_path / "dupes"]


def test_loader_errors_and_their_logging_never_contain_phi(tmp_path: Path, log: logging.Logger) -> None:
    for path in _broken_inputs(tmp_path):
        with pytest.raises(MedFusionError) as err:
            open_image(path)
        _assert_clean(str(err.value), f"error message for {path.name}")
        log.error("could not open %s: %s", path.name, err.value)
        try:
            raise RuntimeError("wrapped") from err.value
        except RuntimeError:
            log.exception("load failed")  # traceback text goes through the same filter
    _assert_clean(_log_text(), "log file")


def test_registered_identifiers_are_redacted_everywhere(tmp_path: Path, log: logging.Logger) -> None:
    # own identifiers: the filter is process-wide, so registering NAME/ID here would make the test above trivial
    name, pid = "Registered^Ramona", "REG-313131"
    files, _ = b.write_series(tmp_path / "ok", n=2,
                              mutate=lambda ds, z: (setattr(ds, "PatientName", name), setattr(ds, "PatientID", pid)))
    volume = open_image(tmp_path / "ok")
    assert volume.info.patient_name == name  # the reader does read it; only the log must not
    register_phi(volume.info.patient_name, volume.info.patient_id)
    log.info("opened %s for %s (%s)", volume.source, volume.info.patient_name, volume.info.patient_id)
    log.warning("study info: %r", volume.info)
    log.info("header: %s", pydicom.dcmread(files[0], stop_before_pixels=True))
    try:
        raise ValueError(f"bad slice for patient {name.replace('^', ' ')}")
    except ValueError:
        log.exception("segmentation failed")
    text = _log_text()
    assert "[REDACTED]" in text
    leaked = [f for f in (name, name.replace("^", " "), pid) if f in text]
    assert not leaked, f"log file contains PHI {leaked}"


def test_unregistered_header_dump_is_redacted(tmp_path: Path, log: logging.Logger) -> None:
    other = ("Unregistered^Olwen", "UNREG-000777")
    files, _ = b.write_series(tmp_path / "u", n=1,
                              mutate=lambda ds, z: (setattr(ds, "PatientName", other[0]), setattr(ds, "PatientID", other[1])))
    log.error("crash while reading header: %s", pydicom.dcmread(files[0], stop_before_pixels=True))
    info = open_image(files[0]).info
    log.error("crash after reading: %r", info)
    log.error("state: %s", {"patient_name": info.patient_name, "patient_id": info.patient_id})
    text = _log_text()
    assert other[0] not in text and other[1] not in text
    assert other[0].replace("^", " ") not in text
    # only identifiers go: the rest of the header still helps whoever reads the crash log
    assert f"modality='{info.modality}'" in text and "Modality" in text


def _cli(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MEDFUSION_HOME=str(home), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "main.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=180)


def test_cli_errors_do_not_echo_phi(tmp_path: Path) -> None:
    """``main.py segment`` on broken inputs: one line on stderr (exit 2), no name/ID on screen or in the log."""
    home = tmp_path / "home"
    truncated, holes, *_ = _broken_inputs(tmp_path)
    files, _ = b.write_series(tmp_path / "slope", n=1, mutate=lambda ds, z: (_with_phi(ds, z), setattr(ds, "RescaleSlope", "7.7777")))
    patch_bytes(files[0], b"7.7777", b"abc")  # non-numeric RescaleSlope: once a crash, now a clean error
    for path in (truncated, holes, files[0]):
        proc = _cli(["segment", str(path), "--box", "0", "0", "4", "4", "--out", str(tmp_path / "m.nrrd")], home)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        _assert_clean(proc.stdout + proc.stderr, f"CLI output for {path.name}")
    log_path = home / "logs" / "medfusion.log"
    _assert_clean(log_path.read_text() if log_path.exists() else "", "CLI log file")


def test_cli_last_resort_handler_scrubs_phi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unexpected exception whose text carries identifiers: one generic line, traceback in the log, scrubbed."""
    from cli.main import run_guarded
    from inference.io.volume import StudyInfo

    configure_logging()
    name, pid = "Lastresort^Ignatius", "LR-424242"
    register_phi(name, pid)
    unregistered = StudyInfo(patient_name="Neverseen^Philippa", patient_id="NS-909090", modality="CT")

    def crash() -> int:
        raise KeyError(f"no slice for {name.replace('^', ' ')} ({pid}); study {unregistered!r}")

    assert run_guarded(crash) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected KeyError" in err and "Traceback" not in err, err
    text = _log_text()
    assert "Traceback" in text and "KeyError" in text  # the details did reach the log...
    leaked = [f for f in (name, name.replace("^", " "), pid, unregistered.patient_name, unregistered.patient_id)
              if f in err or f in text]
    assert not leaked, f"PHI {leaked} reached the screen or the log"


def test_cli_error_for_corrupt_header_does_not_echo_phi(tmp_path: Path) -> None:
    from tests.robustness.cases_dicom3 import FUZZ_FOUND

    cut, flips = FUZZ_FOUND[0]
    path, _ = b.write_single(tmp_path / "impl.dcm", syntax=b.IMPLICIT)
    data = bytearray(path.read_bytes()[:cut])
    for pos, value in flips:
        data[pos] = value
    path.write_bytes(bytes(data))
    proc = _cli(["segment", str(path), "--box", "0", "0", "4", "4", "--out", str(tmp_path / "m.nrrd")], tmp_path / "home")
    assert proc.returncode == 2
    leaked = [f for f in (b.PATIENT_NAME, b.PATIENT_ID) if f in proc.stderr]
    assert not leaked, proc.stderr


def test_the_log_follows_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured under one ``$MEDFUSION_HOME`` and called again under another, the log moves: one handler,
    writing where ``log_file_path`` says (a second folder used to leave it in the first)."""
    monkeypatch.setenv("MEDFUSION_HOME", str(tmp_path / "first"))
    configure_logging()
    monkeypatch.setenv("MEDFUSION_HOME", str(tmp_path / "second"))
    configure_logging()
    configure_logging()
    logging.getLogger("medfusion.test.phi").warning("written after the move")
    assert "written after the move" in _log_text()
    assert log_file_path().is_relative_to(tmp_path / "second")
    ours = [h for h in logging.getLogger("medfusion").handlers if getattr(h, "_medfusion_log", False)]
    assert len(ours) == 1
