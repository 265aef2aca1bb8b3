"""Test helpers for export/PACS tests: an identified copy of the shared CT, and a real Orthanc.

Orthanc runs inside a private network namespace (``unshare -n`` with only ``lo`` up), so nothing it
does can leave the machine. The test process itself stays in the normal namespace; code that talks to
Orthanc runs in a child ``python`` started with ``nsenter -t <orthanc pid> -n`` (see
:func:`OrthancServer.run_client`). Credentials and ports are chosen by the test, never by the app.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom

REPO = Path(__file__).resolve().parents[1]
DICOMWEB_PLUGIN_CANDIDATES = (
    Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
    Path("/usr/lib/orthanc/libOrthancDicomWeb.so"),
)


def copy_series_with_identity(src: Path, dst: Path, patient_name: str, patient_id: str,
                              birth_date: str = "19700101") -> Path:
    """Copy the shared CT (whose UIDs and identity were blanked) with repaired UIDs and a fake identity,
    so it looks like a series from a scanner: something to de-identify and something PACS accepts."""
    from inference.export.seg import repair_uids

    files = sorted(p for p in Path(src).iterdir() if p.is_file())
    datasets = repair_uids([pydicom.dcmread(f) for f in files], files)
    dst.mkdir(parents=True, exist_ok=True)
    for f, ds in zip(files, datasets, strict=True):
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = patient_name, patient_id, birth_date
        ds.AccessionNumber = "ACC123"
        ds.InstitutionName = "Test Hospital"
        ds.StudyDescription = "ABDOMEN CT"
        ds.save_as(dst / f"{f.name}.dcm", enforce_file_format=True)
    return dst


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc")


def dicomweb_plugin() -> Path | None:
    return next((p for p in DICOMWEB_PLUGIN_CANDIDATES if p.exists()), None)


def namespaces_available() -> bool:
    """Can this process make a private network namespace (Orthanc must never bind a real interface)?"""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def orthanc_skip_marks() -> list:
    """``pytestmark`` for modules that need a real Orthanc in a private netns."""
    import pytest

    return [
        pytest.mark.skipif(orthanc_binary() is None or dicomweb_plugin() is None,
                           reason="Orthanc + orthanc-dicomweb not installed (scripts/setup.sh installs them)"),
        pytest.mark.skipif(not namespaces_available(),
                           reason="cannot create a private network namespace (unshare -n needs root/CAP_SYS_ADMIN)"),
    ]


_SEED = """
import base64, json, sys, urllib.request
from pathlib import Path
url, auth = sys.argv[1], base64.b64encode(sys.argv[2].encode()).decode()
n = 0
for f in sorted(Path(sys.argv[3]).iterdir()):
    req = urllib.request.Request(url + '/instances', data=f.read_bytes(), method='POST',
                                 headers={'Authorization': 'Basic ' + auth, 'Content-Type': 'application/dicom'})
    n += json.loads(urllib.request.urlopen(req).read())['Status'] in ('Success', 'AlreadyStored')
print(n)
"""


@dataclass
class OrthancServer:
    """A running Orthanc in its own network namespace."""

    process: subprocess.Popen
    http_port: int
    dicom_port: int
    username: str
    password: str
    aet: str = "ORTHANC"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def run_client(self, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``python -c script args...`` inside Orthanc's namespace (the only place it is reachable)."""
        cmd = ["nsenter", "-t", str(self.pid), "-n", sys.executable, "-c", script, *args]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)

    def seed(self, series_dir: Path, username: str, password: str) -> subprocess.CompletedProcess:
        """POST every file of ``series_dir`` over REST; stdout is the number Orthanc accepted."""
        return self.run_client(_SEED, self.url, f"{username}:{password}", str(series_dir))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


_WAIT_SCRIPT = """
import sys, time, urllib.request, base64
url, auth = sys.argv[1], base64.b64encode(sys.argv[2].encode()).decode()
deadline = time.time() + float(sys.argv[3])
while time.time() < deadline:
    try:
        req = urllib.request.Request(url + '/system', headers={'Authorization': 'Basic ' + auth})
        urllib.request.urlopen(req, timeout=1).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
"""


def start_orthanc(workdir: Path, username: str, password: str, http_port: int = 8042,
                  dicom_port: int = 4242, startup_timeout: float = 30.0,
                  extra_config: dict | None = None) -> OrthancServer:
    """Start Orthanc with storage in ``workdir``, listening on the namespace's loopback only.

    ``extra_config`` is merged into the configuration (e.g. DICOM TLS). Debian 12's Orthanc 1.10.1
    crashes (SIGSEGV) on its first HTTPS request, so HTTPS tests put a TLS proxy in front of it.
    """
    binary, plugin = orthanc_binary(), dicomweb_plugin()
    if binary is None or plugin is None:
        raise RuntimeError("Orthanc or its DICOMweb plugin is not installed")
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "MedFusionTest",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,  # HTTP only from 127.0.0.1
        "AuthenticationEnabled": True,
        "RegisteredUsers": {username: password},
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {"medfusion": ["MEDFUSION", "127.0.0.1", 11112]},
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "StudiesMetadata": "Full",
                     "SeriesMetadata": "Full"},
        "StorageCompression": False,
        "HttpTimeout": 30,
        "ConcurrentJobs": 1,
        "SaveJobs": False,
        **(extra_config or {}),
    }
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=1))
    log = (workdir / "orthanc.log").open("w")
    process = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$1"', binary, str(config_path)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = OrthancServer(process, http_port, dicom_port, username, password)
    time.sleep(0.05)
    probe = server.run_client(_WAIT_SCRIPT, server.url, f"{username}:{password}", str(startup_timeout),
                              timeout=startup_timeout + 10)
    if probe.returncode != 0:
        server.stop()
        raise RuntimeError(f"Orthanc did not start: {(workdir / 'orthanc.log').read_text()[-2000:]}")
    return server


__all__ = ["OrthancServer", "copy_series_with_identity", "dicomweb_plugin", "orthanc_binary", "start_orthanc"]
