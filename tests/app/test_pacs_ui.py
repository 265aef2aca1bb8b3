"""The PACS dialog against a real Orthanc: search → retrieve into the viewer → store our SEG → query it back.

Orthanc runs in its own network namespace (tests/orthanc_fixture.py). The viewer under test stays in
the normal namespace, so a small relay process bridges them: it opens listening sockets on this
namespace's 127.0.0.1 first, then enters Orthanc's namespace (``setns``) and forwards each accepted
connection to Orthanc's loopback ports. Nothing listens beyond loopback, nothing leaves the machine.
The dialog gets the relay's address through ``Settings.pacs`` like any configured server.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.export_install import install_export
from inference.io.loader import open_image
from inference.settings import PacsSettings
from tests.app.test_export_ui import attach_labels
from tests.orthanc_fixture import (
    OrthancServer,
    copy_series_with_identity,
    orthanc_skip_marks,
    start_orthanc,
)

USER, PASSWORD = "medfusion-ui-test", "pw-only-for-this-test"


pytestmark = orthanc_skip_marks()

RELAY = r"""
import ctypes, os, socket, sys, threading
pid, targets = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
listeners = []
for target in targets:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(32)
    listeners.append((s, target))
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET: connections made from now on reach Orthanc's loopback
    sys.exit("setns failed: " + os.strerror(ctypes.get_errno()))
print(" ".join(str(s.getsockname()[1]) for s, _ in listeners), flush=True)

def pump(src, dst):
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

def serve(listener, port):
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", port))
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

for item in listeners:
    threading.Thread(target=serve, args=item, daemon=True).start()
sys.stdin.read()  # runs until the test closes our stdin
"""


@pytest.fixture(scope="module")
def identified_series(ct_series_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_series_with_identity(ct_series_dir, tmp_path_factory.mktemp("pacs_ui_ct"), "DOE^JANE", "PID-4711")


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, identified_series: Path) -> Iterator[PacsSettings]:
    """Seeded Orthanc + relay; yields the settings a user would enter."""
    server: OrthancServer = start_orthanc(tmp_path_factory.mktemp("orthanc_ui"), USER, PASSWORD)
    relay = None
    try:
        seeded = server.seed(identified_series, USER, PASSWORD)
        assert seeded.returncode == 0 and int(seeded.stdout) == 20, seeded.stderr
        relay = subprocess.Popen([sys.executable, "-c", RELAY, str(server.pid), str(server.http_port),
                                  str(server.dicom_port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        http_port, dicom_port = (int(p) for p in relay.stdout.readline().split())
        yield PacsSettings(dicomweb_url=f"http://127.0.0.1:{http_port}/dicom-web", username=USER, password=PASSWORD,
                           dimse_host="127.0.0.1", dimse_port=dicom_port, dimse_called_aet=server.aet,
                           dimse_calling_aet="MEDFUSION")
    finally:
        if relay is not None:
            relay.stdin.close()
            relay.terminate()
            relay.wait(10)
        server.stop()


def _wait(qtbot, window) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60000)
    qtbot.wait(20)


def test_search_retrieve_store_and_query_back(window, qtbot, pacs: PacsSettings, identified_series: Path,  # noqa: ANN001
                                              tmp_path: Path, messages: list[str]) -> None:
    from dataclasses import replace

    from app.widgets.pacs_dialog import PacsDialog
    from inference.export.seg import read_seg
    from inference.pacs.dicomweb import DicomWebClient

    labels = attach_labels(window)
    ws = install_export(window, recovery_dir=tmp_path / "recovery")
    window.settings.cache_dir = str(tmp_path / "cache")
    dialog = PacsDialog(ws.pacs, window)
    qtbot.addWidget(dialog)
    assert "No PACS configured" in dialog.server.text() and not dialog.search_button.isEnabled()
    dialog.apply_settings(pacs)
    assert (tmp_path / "settings.json").is_file()  # remembered in the settings file, never in code
    dialog.show()

    dialog.test_connection()
    _wait(qtbot, window)
    assert "C-ECHO" in dialog.status.text() and "succeeded" in dialog.status.text()

    dialog.name.setText("DOE^J*")
    dialog.modality.setCurrentIndex(dialog.modality.findData("CT"))
    dialog.search()
    _wait(qtbot, window)
    assert dialog.study_table.rowCount() == 1 and dialog.study_table.item(0, 1).text() == "PID-4711"
    dialog.name.setText("NOBODY*")
    dialog.search()
    _wait(qtbot, window)
    assert dialog.study_table.rowCount() == 0
    dialog.name.setText("")
    dialog.date_from.setText("2022-12-01")
    dialog.date_to.setText("20221231")
    dialog.search()
    _wait(qtbot, window)
    assert dialog.study_table.rowCount() == 1
    dialog.date_from.setText("12/2022")
    dialog.search()
    assert "YYYYMMDD" in messages[-1]
    messages.clear()

    dialog.study_table.selectRow(0)
    _wait(qtbot, window)
    assert dialog.series_table.rowCount() == 1 and dialog.series_table.item(0, 1).text() == "CT"
    assert dialog.retrieve_button.isEnabled()
    dialog.grab().save(str(tmp_path / "pacs_dialog.png"))  # for a look at the layout (pytest --basetemp)
    dialog.retrieve()
    _wait(qtbot, window)
    qtbot.waitUntil(lambda: window.document.volume is not None, timeout=60000)
    _wait(qtbot, window)
    vol = window.document.volume
    np.testing.assert_array_equal(vol.array, open_image(identified_series).array)
    assert dialog.progress.value() == 100 and window.document.study_info().patient_id == "PID-4711"

    expected = np.zeros(vol.shape, np.uint8)
    expected[4:7, 200:260, 180:300] = 1
    labels.set_masks(expected, [("Liver", 1, (200, 100, 50))], {"Liver": "AI"})
    dialog.store_segmentation()
    _wait(qtbot, window)
    assert messages == [] and dialog.stored == 1
    assert sorted(dialog.series_table.item(r, 1).text() for r in range(dialog.series_table.rowCount())) == [
        "CT", "SEG"]

    # query it back from the PACS (through the same configured address) and re-read it onto the image
    client = DicomWebClient(pacs)
    study = client.search_studies(patient_id="PID-4711")[0]
    seg_series = next(s for s in client.list_series(study.study_uid) if s.modality == "SEG")
    folder = client.retrieve_series(study.study_uid, seg_series.series_uid, tmp_path / "back")
    seg_file = next(folder.iterdir())
    assert pydicom.dcmread(seg_file).SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"
    back, table = read_seg(seg_file, vol)
    np.testing.assert_array_equal(back, expected)
    assert [lab.name for lab in table] == ["Liver"]

    # DIMSE-only PACS: C-FIND still searches; retrieval is disabled with a reason
    dialog.apply_settings(replace(pacs, dicomweb_url=""))
    dialog.date_from.setText("")
    dialog.date_to.setText("")
    dialog.patient_id.setText("PID-4711")
    dialog.search()
    _wait(qtbot, window)
    assert dialog.study_table.rowCount() == 1 and "SEG" in dialog.study_table.item(0, 4).text()
    assert not dialog.retrieve_button.isEnabled() and "DICOMweb" in dialog.retrieve_button.toolTip()
    assert ws.pacs_dialog is None or ws.pacs_dialog is not dialog  # the menu's dialog is separate


def test_cancel_and_unreachable_server(window, qtbot, pacs: PacsSettings, tmp_path: Path,  # noqa: ANN001
                                       messages: list[str]) -> None:
    from dataclasses import replace

    from app.widgets.pacs_dialog import PacsDialog

    attach_labels(window)
    ws = install_export(window, recovery_dir=tmp_path / "recovery")
    window.settings.cache_dir = str(tmp_path / "cache")
    dialog = PacsDialog(ws.pacs, window)
    qtbot.addWidget(dialog)
    dialog.apply_settings(pacs)
    dialog.patient_id.setText("PID-4711")
    dialog.search()
    _wait(qtbot, window)
    dialog.study_table.selectRow(0)
    _wait(qtbot, window)
    ct_row = next(r for r in range(dialog.series_table.rowCount()) if dialog.series_table.item(r, 1).text() == "CT")
    dialog.series_table.selectRow(ct_row)
    dialog.retrieve()
    dialog.cancel()  # at once: the download stops between images and its files are removed
    _wait(qtbot, window)
    qtbot.wait(200)
    assert window.document.volume is None and dialog.status.text() == "Cancelled."
    assert list((tmp_path / "cache" / "pacs").rglob("*.dcm")) == []
    assert messages == []

    dialog.apply_settings(replace(pacs, dicomweb_url="http://127.0.0.1:9/dicom-web", dimse_host=""))
    dialog.search()
    _wait(qtbot, window)
    assert messages and "Cannot connect to the PACS" in messages[-1]
    dialog.apply_settings(replace(pacs, password="wrong", dimse_host=""))
    dialog.search()
    _wait(qtbot, window)
    assert "user name or password" in messages[-1]
