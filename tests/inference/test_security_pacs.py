"""PACS transport and data safety (issue 14, item 7): no password over http:// unasked, verified TLS with a
custom CA bundle for DICOMweb and DICOM TLS (a real Orthanc in a private network namespace, certificates
made by the test), retrieved series in owner-only folders with names the server cannot steer, deleted
by policy, and audit log names without the patient ID."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from inference.audit.naming import audit_path
from inference.pacs.common import PacsError
from inference.pacs.dicomweb import DicomWebClient
from inference.pacs.retrieved import expire_retrieved, marker_for, safe_name, series_folder
from inference.pacs.transport import insecure_password_warning
from inference.settings import PacsSettings
from tests.orthanc_fixture import OrthancServer, orthanc_skip_marks, start_orthanc

USER, PASSWORD = "medfusion-tls", "pw-only-for-this-test"


# ---- password over http:// ------------------------------------------------------------------------------
@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every HTTP request is recorded and refused here: nothing can leave the test."""
    sent: list[str] = []

    def refuse(_adapter: object, request: requests.PreparedRequest, **_k: object) -> None:
        sent.append(f"{request.url} auth={'Authorization' in request.headers}")
        raise requests.exceptions.ConnectionError("blocked by the test")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)
    return sent


def test_password_is_not_sent_over_http_to_another_computer(no_network: list[str]) -> None:
    remote = PacsSettings(dicomweb_url="http://pacs.example.org/dicom-web", username="alice", password="s3cret")
    with pytest.raises(PacsError, match=r"not encrypted \(http://\).*Nothing was sent"):
        DicomWebClient(remote).search_studies()
    assert no_network == []
    agreed = PacsSettings(**{**remote.__dict__, "allow_insecure_http": True})  # the user confirmed the warning
    with pytest.raises(PacsError, match="Cannot connect"):
        DicomWebClient(agreed).search_studies()
    assert len(no_network) == 1 and no_network[0].endswith("auth=True")


def test_the_warning_applies_only_where_a_password_would_leave_the_machine() -> None:
    def warns(url: str, password: str = "pw") -> bool:
        return insecure_password_warning(PacsSettings(dicomweb_url=url, username="u", password=password)) is not None

    assert warns("http://pacs.example.org/dicom-web") and warns("HTTP://10.0.0.5:8042")
    assert not warns("https://pacs.example.org/dicom-web")
    assert not warns("http://127.0.0.1:8042") and not warns("http://localhost:8042") and not warns("http://[::1]:8042")
    assert not warns("http://pacs.example.org", password="")


# ---- retrieved series: folder names, permissions, expiry -------------------------------------------------
HOSTILE = ["../../../../tmp/owned", "/etc/cron.d/x", "1.2.3/../../x", "..", ".", "", "a" * 300, "1.2\x00.3",
           "C:\\Windows\\x", "1.2.840.10008." + "9" * 80]


@pytest.mark.parametrize("uid", HOSTILE)
def test_hostile_uid_never_leaves_the_cache(tmp_path: Path, uid: str) -> None:
    root = tmp_path / "pacs"
    name = safe_name(uid)
    assert "/" not in name and "\\" not in name and name not in ("", ".", "..") and len(name) <= 64
    folder = series_folder(root, uid)
    assert folder.parent == root and folder.resolve().parent == root.resolve()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700 and stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_valid_uids_keep_their_name() -> None:
    uid = "1.2.826.0.1.3680043.8.498.12345678901234567890"
    assert safe_name(uid) == uid


def _instance(sop_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "DOE^JANE", "PID-4711"
    return ds


def test_retrieve_with_hostile_series_and_instance_uids_stays_inside(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The PACS answers with crafted UIDs; the client writes owner-only files inside the cache only."""
    client = DicomWebClient(PacsSettings(dicomweb_url="http://127.0.0.1:9/dicom-web"))
    sop_uids = ["../../../escaped", "/abs/path"]
    monkeypatch.setattr(client._client, "search_for_instances",
                        lambda **_k: [{"00080018": {"vr": "UI", "Value": [u]}} for u in sop_uids])
    monkeypatch.setattr(client._client, "retrieve_instance", lambda *_a, **_k: _instance(generate_uid()))
    root = tmp_path / "cache" / "pacs"
    folder = client.retrieve_series("1.2.3", "../../../../outside", root)
    written = sorted(folder.glob("*.dcm"))
    assert folder.parent == root and len(written) == 2 and len(list(folder.iterdir())) == 2  # DICOM files only
    assert all(f.resolve().parent == folder.resolve() for f in written)
    assert not (tmp_path / "outside").exists() and not (tmp_path / "escaped").exists()
    assert {stat.S_IMODE(f.stat().st_mode) for f in written} == {0o600}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert pydicom.dcmread(written[0]).PatientID == "PID-4711"


def test_retrieved_series_expire_by_policy(tmp_path: Path) -> None:
    root = tmp_path / "pacs"
    old, new = series_folder(root, "1.2.1"), series_folder(root, "1.2.2")
    foreign = root / "not-ours"
    foreign.mkdir()
    two_days_ago = time.time() - 48 * 3600
    os.utime(marker_for(old), (two_days_ago, two_days_ago))
    assert expire_retrieved(root, keep_hours=24) == 1
    assert not old.exists() and not marker_for(old).exists() and new.exists() and foreign.exists()  # ours, old
    assert expire_retrieved(root, keep_hours=0) == 1 and not new.exists() and foreign.exists()


# ---- audit log names --------------------------------------------------------------------------------------
def test_audit_log_name_does_not_contain_the_patient_id(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    path = audit_path(tmp_path / "audit", "PID-4711", case)
    assert "4711" not in path.name and "PID" not in path.name
    assert path == audit_path(tmp_path / "audit", "PID-4711", case)  # stable: the hash chain continues
    assert path != audit_path(tmp_path / "audit", "PID-4712", case)


def test_legacy_audit_log_is_renamed_not_forked(tmp_path: Path) -> None:
    import hashlib

    case = tmp_path / "case"
    case.mkdir()
    root = tmp_path / "audit"
    root.mkdir()
    digest = hashlib.sha256(str(case.resolve()).encode()).hexdigest()[:10]
    legacy = root / f"patientPID-4711-{digest}.jsonl"
    legacy.write_text('{"seq": 1}\n')
    path = audit_path(root, "PID-4711", case)
    assert not legacy.exists() and path.read_text() == '{"seq": 1}\n'
    assert [p.name for p in root.iterdir()] == [path.name]


# ---- TLS against a real Orthanc (private network namespace, 127.0.0.1 only) -------------------------------
def _key():  # noqa: ANN202
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject_cn: str, key, issuer_cn: str, issuer_key, *, ca: bool):  # noqa: ANN001, ANN202
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj) -> bytes:  # noqa: ANN001
    from cryptography.hazmat.primitives import serialization

    if hasattr(obj, "public_bytes"):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA the test trusts, a server certificate it issued (127.0.0.1), and an unrelated CA."""
    pytest.importorskip("cryptography")
    folder = tmp_path_factory.mktemp("pki")
    ca_key, rogue_key, server_key = _key(), _key(), _key()
    ca = _cert("MedFusion Test CA", ca_key, "MedFusion Test CA", ca_key, ca=True)
    rogue = _cert("Someone Else CA", rogue_key, "Someone Else CA", rogue_key, ca=True)
    server = _cert("127.0.0.1", server_key, "MedFusion Test CA", ca_key, ca=False)
    files = {"ca": _pem(ca), "rogue": _pem(rogue), "server_cert": _pem(server), "server_key": _pem(server_key),
             "server_pem": _pem(server) + _pem(server_key)}
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(data)
    return paths


@pytest.fixture(scope="module")
def tls_orthanc(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[OrthancServer]:
    """Orthanc with DICOM TLS on its DICOM port (server certificate from the test CA)."""
    for mark in orthanc_skip_marks():
        if mark.args[0]:
            pytest.skip(mark.kwargs["reason"])
    extra = {"DicomTlsEnabled": True, "DicomTlsCertificate": str(pki["server_cert"]),
             "DicomTlsPrivateKey": str(pki["server_key"]), "DicomTlsTrustedCertificates": str(pki["ca"]),
             "DicomTlsRemoteCertificateRequired": False}
    server = start_orthanc(tmp_path_factory.mktemp("orthanc_tls"), USER, PASSWORD, extra_config=extra)
    try:
        yield server
    finally:
        server.stop()


# Runs inside Orthanc's network namespace. DICOMweb goes through a TLS-terminating proxy on 127.0.0.1:8443
# (the test CA's server certificate) in front of Orthanc's HTTP port, because Debian 12's Orthanc 1.10.1
# crashes on its first HTTPS request; what is tested is the client's verification, not Orthanc's TLS.
TLS_CLIENT = """
import json, socket, ssl, sys, threading
from dataclasses import replace
from inference.errors import MedFusionError
from inference.settings import PacsSettings
from inference.pacs.dicomweb import DicomWebClient
from inference.pacs.dimse import DimseClient
args = json.loads(sys.argv[1])

def pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def handle(raw, context):
    try:
        tls = context.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    upstream = socket.create_connection(('127.0.0.1', args['http_port']))
    threading.Thread(target=pipe, args=(tls, upstream), daemon=True).start()
    pipe(upstream, tls)

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(args['server_cert'], args['server_key'])
listener = socket.create_server(('127.0.0.1', 0))
def accept_loop():
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn, context), daemon=True).start()
threading.Thread(target=accept_loop, daemon=True).start()

base = PacsSettings(**args['settings'], dicomweb_url=f'https://127.0.0.1:{listener.getsockname()[1]}/dicom-web')
def outcome(fn):
    try:
        value = fn()
        return 'ok' if value is None or isinstance(value, list) else value
    except MedFusionError as exc:
        return type(exc).__name__ + ': ' + str(exc)
out = {
    'web_trusted': outcome(lambda: DicomWebClient(base).search_studies()),
    'web_system_store': outcome(lambda: DicomWebClient(replace(base, ca_bundle='')).search_studies()),
    'web_rogue_ca': outcome(lambda: DicomWebClient(replace(base, ca_bundle=args['rogue'])).search_studies()),
    'web_bad_password': outcome(lambda: DicomWebClient(replace(base, password='wrong')).search_studies()),
    'web_missing_bundle': outcome(lambda: DicomWebClient(replace(base, ca_bundle='/nonexistent/ca.pem'))),
    'dimse_trusted': outcome(lambda: DimseClient(base, timeout=10).echo()),
    'dimse_rogue_ca': outcome(lambda: DimseClient(replace(base, ca_bundle=args['rogue']), timeout=10).echo()),
    'dimse_system_store': outcome(lambda: DimseClient(replace(base, ca_bundle=''), timeout=10).echo()),
    'dimse_plain_to_tls_port': outcome(lambda: DimseClient(replace(base, dimse_tls=False), timeout=5).echo()),
}
print(json.dumps(out))
"""


def test_tls_verified_with_custom_ca_and_untrusted_certificates_refused(tls_orthanc: OrthancServer,
                                                                         pki: dict[str, Path]) -> None:
    settings = {"username": USER, "password": PASSWORD, "ca_bundle": str(pki["ca"]), "dimse_host": "127.0.0.1",
                "dimse_port": tls_orthanc.dicom_port, "dimse_called_aet": tls_orthanc.aet, "dimse_tls": True}
    args = {"settings": settings, "rogue": str(pki["rogue"]), "http_port": tls_orthanc.http_port,
            "server_cert": str(pki["server_cert"]), "server_key": str(pki["server_key"])}
    result = tls_orthanc.run_client(TLS_CLIENT, json.dumps(args))
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["web_trusted"] == "ok" and out["dimse_trusted"] == "ok", out
    for key in ("web_system_store", "web_rogue_ca", "dimse_rogue_ca", "dimse_system_store"):
        assert "certificate that is not trusted" in out[key] and "CA bundle in Settings > PACS" in out[key], (key, out)
    assert "rejected the user name or password" in out["web_bad_password"]  # through TLS to the real Orthanc
    assert "does not exist" in out["web_missing_bundle"]
    assert out["dimse_plain_to_tls_port"].startswith("PacsError: Cannot connect")
