"""DICOMweb and DIMSE clients against a real Orthanc in a private network namespace.

The fixture starts Orthanc with ``unshare -n`` (only loopback, nothing leaves the machine) and seeds
it with an identified copy of the shared CT through Orthanc's REST API. Client code runs in child
processes entered into that namespace with ``nsenter`` (see tests/orthanc_fixture.py); each script
prints a JSON summary that the test asserts on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from inference.export.deid import Deidentifier
from inference.export.seg import SegmentLabel, write_seg
from inference.io.loader import open_image
from tests.orthanc_fixture import (
    OrthancServer,
    copy_series_with_identity,
    orthanc_skip_marks,
    start_orthanc,
)

USER, PASSWORD = "medfusion-test", "pw-only-for-this-test"


pytestmark = orthanc_skip_marks()

PRELUDE = """
import json, socket, sys
from pathlib import Path
from inference.settings import PacsSettings
from inference.errors import MedFusionError
args = json.loads(sys.argv[1])
settings = PacsSettings(**args['settings'])
out = {}
def error_of(fn):
    try:
        fn()
    except MedFusionError as exc:
        return type(exc).__name__ + ': ' + str(exc)
    return None
"""

DICOMWEB = PRELUDE + """
import numpy as np
from dataclasses import asdict, replace
from inference.errors import Cancelled
from inference.pacs.dicomweb import DicomWebClient
from inference.progress import CancelToken
from inference.io.loader import open_image
from inference.export.seg import SegmentLabel, read_seg, write_seg
client = DicomWebClient(settings)
out['by_name'] = [asdict(s) for s in client.search_studies(patient_name='DOE^J*')]
out['by_id'] = len(client.search_studies(patient_id='PID-4711'))
out['by_date'] = len(client.search_studies(date_range=('20221201', '20221231')))
out['other_date'] = len(client.search_studies(date_range=('20200101', '20201231')))
out['by_modality'] = len(client.search_studies(modality='CT'))
out['nobody'] = len(client.search_studies(patient_name='NOBODY*'))
study = out['by_name'][0]['study_uid']
series = client.list_series(study)
out['series'] = [asdict(s) for s in series]
steps = []
folder = client.retrieve_series(study, series[0].series_uid, Path(args['dest']),
                                progress=lambda f, m: steps.append(f))
out['progress'] = steps
out['folder'] = str(folder)
token = CancelToken()
def cancel_after_first(fraction, message):
    token.cancel()
cancel_dir = Path(args['dest']) / 'cancelled'
try:
    client.retrieve_series(study, series[0].series_uid, cancel_dir, progress=cancel_after_first, cancel=token)
    out['cancelled'] = False
except Cancelled:
    out['cancelled'] = True
out['left_after_cancel'] = len(list(cancel_dir.rglob('*.dcm')))
volume = open_image(folder)
labelmap = np.zeros(volume.shape, np.uint8)
labelmap[4:7, 200:260, 180:300] = 2
seg_path = write_seg(labelmap, [SegmentLabel(2, 'Liver', (200, 100, 50), 'AI', 'LiteMedSAM', '1.0')], volume,
                     Path(args['dest']) / 'seg.dcm')
out['stored'] = client.store([seg_path])
after = client.list_series(study)
out['modalities_after'] = sorted(s.modality for s in after)
seg_series = next(s for s in after if s.modality == 'SEG')
seg_folder = client.retrieve_series(study, seg_series.series_uid, Path(args['dest']) / 'segback')
back, labels = read_seg(next(seg_folder.iterdir()), volume)
out['seg_roundtrip_equal'] = bool((back == labelmap).all())
out['seg_labels'] = [(l.value, l.name, l.algorithm_type) for l in labels]
out['seg_by_modality'] = len(client.search_studies(modality='SEG'))
out['bad_password'] = error_of(lambda: DicomWebClient(replace(settings, password='wrong')).search_studies())
out['refused'] = error_of(lambda: DicomWebClient(replace(settings, dicomweb_url='http://127.0.0.1:9')).search_studies())
silent = socket.socket(); silent.bind(('127.0.0.1', 0)); silent.listen(1)  # accepts, never answers
port = silent.getsockname()[1]
out['timeout'] = error_of(lambda: DicomWebClient(replace(settings, dicomweb_url=f'http://127.0.0.1:{port}/dicom-web'),
                                                 timeout=0.5).search_studies())
out['unconfigured'] = error_of(lambda: DicomWebClient(replace(settings, dicomweb_url='')))
print(json.dumps(out))
"""

DIMSE = PRELUDE + """
from dataclasses import replace
from inference.pacs.dimse import DimseClient
client = DimseClient(settings)
client.echo()
out['echo'] = True
out['found'] = [s.patient_name for s in client.find_studies(patient_name='DOE*')]
out['found_uid'] = [s.study_uid for s in client.find_studies(patient_id='PID-4711')]
out['not_found'] = len(client.find_studies(patient_name='NOBODY*'))
files = sorted(Path(args['files']).iterdir())
steps = []
out['stored'] = client.store_files(files, progress=lambda f, m: steps.append(f))
out['progress_last'] = steps[-1]
out['after_store'] = [(s.patient_name, sorted(s.modalities), s.n_series) for s in client.find_studies(patient_id='PID-0815')]
out['refused'] = error_of(lambda: DimseClient(replace(settings, dimse_port=9), timeout=2).echo())
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def identified_series(ct_series_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_series_with_identity(ct_series_dir, tmp_path_factory.mktemp("pacs_ct"), "DOE^JANE", "PID-4711")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, identified_series: Path) -> Iterator[OrthancServer]:
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"), USER, PASSWORD)
    try:
        seeded = server.seed(identified_series, USER, PASSWORD)
        assert seeded.returncode == 0, seeded.stderr
        assert int(seeded.stdout) == 20
        yield server
    finally:
        server.stop()


def _run(server: OrthancServer, script: str, **args: object) -> dict:
    settings = {"dicomweb_url": f"{server.url}/dicom-web", "username": USER, "password": PASSWORD,
                "dimse_host": "127.0.0.1", "dimse_port": server.dicom_port, "dimse_called_aet": server.aet,
                "dimse_calling_aet": "MEDFUSION"}
    result = server.run_client(script, json.dumps({"settings": settings, **args}))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dicomweb_query_retrieve_store_seg(orthanc: OrthancServer, identified_series: Path, tmp_path: Path) -> None:
    out = _run(orthanc, DICOMWEB, dest=str(tmp_path))
    assert len(out["by_name"]) == 1 and out["by_name"][0]["patient_id"] == "PID-4711"
    assert out["by_name"][0]["study_date"] == "20221208" and "CT" in out["by_name"][0]["modalities"]
    assert (out["by_id"], out["by_date"], out["other_date"], out["by_modality"], out["nobody"]) == (1, 1, 0, 1, 0)
    assert [(s["modality"], s["n_instances"]) for s in out["series"]] == [("CT", 20)]
    assert len(out["progress"]) == 20 and out["progress"][-1] == 1.0
    assert out["cancelled"] and out["left_after_cancel"] == 0
    retrieved, original = open_image(Path(out["folder"])), open_image(identified_series)
    np.testing.assert_array_equal(retrieved.array, original.array)
    assert retrieved.spacing == pytest.approx(original.spacing) and retrieved.origin == pytest.approx(original.origin)
    assert out["stored"] == 1 and out["modalities_after"] == ["CT", "SEG"]
    assert out["seg_roundtrip_equal"] and out["seg_labels"] == [[2, "Liver", "AI"]]
    assert out["seg_by_modality"] == 1
    assert "rejected the user name or password" in out["bad_password"]
    assert out["refused"].startswith("PacsError: Cannot connect")
    assert "did not answer within 0.5 s" in out["timeout"]
    assert "No DICOMweb server is configured" in out["unconfigured"]


def _deidentified_copy(src: Path, dst: Path) -> Path:
    """A second study for DIMSE: the seeded series de-identified (new UIDs, new pseudonym)."""
    deid = Deidentifier(patient_name="ROE^RICHARD", patient_id="PID-0815")
    dst.mkdir()
    for f in sorted(src.iterdir()):
        deid.apply(pydicom.dcmread(f)).save_as(dst / f.name, enforce_file_format=True)
    return dst


def test_dimse_echo_find_store(orthanc: OrthancServer, identified_series: Path, tmp_path: Path) -> None:
    files = _deidentified_copy(identified_series, tmp_path / "files")
    volume = open_image(files)
    labelmap = np.zeros(volume.shape, np.uint8)
    labelmap[10, 100:150, 100:150] = 1
    write_seg(labelmap, [SegmentLabel(1, "Lesion", algorithm_type="MANUAL")], volume, files / "seg.dcm")
    out = _run(orthanc, DIMSE, files=str(files))
    assert out["echo"] and out["found"] == ["DOE^JANE"] and out["not_found"] == 0
    assert out["stored"] == 21 and out["progress_last"] == 1.0  # 20 JPEG 2000 CT images + 1 SEG
    assert out["after_store"] == [["ROE^RICHARD", ["CT", "SEG"], 2]]
    assert out["refused"].startswith("PacsError: Cannot connect to the DICOM node")
