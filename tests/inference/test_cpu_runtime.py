"""Segmenting without PyTorch: the PyTorch backend records the CPU path once its ONNX engine is decided, a
new process then segments with the same embeddings and masks and never imports torch, and a damaged or
forged record falls back to PyTorch, which writes it again."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.io.loader import open_image
from inference.models.cpu_runtime import MANIFEST_FILE, load_cpu_runtime, read_manifest
from inference.models.preprocess import LUNG_LESION_WINDOW
from inference.models.registry import litemedsam_file
from inference.segmentation.evaluation import padded_box
from inference.segmentation.factory import create_backend
from inference.segmentation.litemedsam_backend import LiteMedSAMBackend
from inference.segmentation.litemedsam_cpu_backend import CpuLiteMedSAMBackend
from inference.settings import Settings

pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
import numpy as np
from inference.io.loader import open_image
from inference.segmentation.factory import create_backend
from inference.settings import Settings

cache, image, out, box = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
backend = create_backend(Settings(cache_dir=cache, device="cpu"))
plane = open_image(image).array[33]
emb = backend.embed(plane, (-300.0, 1000.0))
boxed = backend.decode(emb, box)
clicked = backend.decode(emb, box, [((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, True)])
prompted = backend.decode(emb, box, (), boxed.low_res)
np.savez(out, features=emb.features, boxed=boxed.mask, clicked=clicked.mask, prompted=prompted.mask)
print(json.dumps({"backend": type(backend).__name__, "torch": "torch" in sys.modules}))
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder after a first start whose encoder engine is ONNX Runtime (what ``auto`` picks here)."""
    cache = tmp_path_factory.mktemp("cache")
    backend = LiteMedSAMBackend.load("cpu", encoder_runtime="onnx", cache_dir=cache / "encoder")
    assert read_manifest(cache / "encoder") is None  # written once an embedding has been made
    backend.embed(np.zeros((64, 64), np.float32), None)
    assert read_manifest(cache / "encoder") is not None
    return cache


def _nodule(lung1_dir: Path) -> tuple[np.ndarray, list[float]]:
    label = open_image(lung1_dir / "label.nrrd").array[33] > 0
    return open_image(lung1_dir / "image.nrrd").array[33], [float(v) for v in padded_box(label, 5)]


def test_a_new_process_segments_the_same_without_importing_torch(recorded: Path, lung1_dir: Path,
                                                                  tmp_path: Path) -> None:
    plane, box = _nodule(lung1_dir)
    out = tmp_path / "child.npz"
    done = subprocess.run([sys.executable, "-c", CHILD, str(recorded), str(lung1_dir / "image.nrrd"), str(out),
                           json.dumps(box)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said == {"backend": "CpuLiteMedSAMBackend", "torch": False}
    child = np.load(out)
    torch_backend = LiteMedSAMBackend.load("cpu", encoder_runtime="onnx", cache_dir=recorded / "encoder",
                                           decoder_bf16=False)
    emb = torch_backend.embed(plane, LUNG_LESION_WINDOW)
    want = emb.features.numpy()
    assert float(np.abs(child["features"] - want).max()) <= 1e-5 * float(np.abs(want).max())
    boxed = torch_backend.decode(emb, box)
    clicked = torch_backend.decode(emb, box, [((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, True)])
    prompted = torch_backend.decode(emb, box, (), boxed.low_res)
    assert boxed.mask.sum() > 30  # the nodule, not two empty masks that trivially agree
    for name, mask in (("boxed", boxed.mask), ("clicked", clicked.mask), ("prompted", prompted.mask)):
        assert int((child[name] != mask).sum()) <= 2, name  # float rounding may flip a border pixel


def test_batched_embeddings_equal_single_ones(recorded: Path, lung1_dir: Path) -> None:
    model = load_cpu_runtime(recorded / "encoder", litemedsam_file().sha256)
    assert model is not None
    backend = CpuLiteMedSAMBackend(model)
    volume = open_image(lung1_dir / "image.nrrd").array
    batch = backend.embed_many([volume[32], volume[33], volume[34]], LUNG_LESION_WINDOW, batch=2)
    single = backend.embed(volume[33], LUNG_LESION_WINDOW).features
    assert len(batch) == 3 and batch[1].features.base is None  # its own copy, not a view of the batch
    assert float(np.abs(batch[1].features - single).max()) <= 1e-5 * float(np.abs(single).max())


def _settings(cache: Path) -> Settings:
    """``onnx`` as the fixture's first start used (``auto`` would measure the engines again first)."""
    return Settings(cache_dir=str(cache), device="cpu", encoder_runtime="onnx")


def test_a_damaged_decoder_file_means_pytorch_which_records_again(recorded: Path, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(recorded, cache)
    folder = cache / "encoder"
    manifest = read_manifest(folder)
    assert manifest is not None
    npz = folder / manifest.decoder_file
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with caplog.at_level("INFO"):
        backend = create_backend(_settings(cache))
    assert isinstance(backend, LiteMedSAMBackend)
    assert any("sha256" in r.getMessage() for r in caplog.records)  # said why, in the log
    backend.embed(np.zeros((64, 64), np.float32), None)  # engine decided: the record is written again
    assert isinstance(create_backend(_settings(cache)), CpuLiteMedSAMBackend)


def test_a_forged_record_with_a_pickled_array_is_refused(recorded: Path, tmp_path: Path) -> None:
    """Someone who rewrites the file and the manifest's sha256 still cannot make ``np.load`` unpickle."""
    import hashlib
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(recorded, cache)
    folder = cache / "encoder"
    buffer = io.BytesIO()
    np.savez(buffer, evil=np.array([{"x": 1}], dtype=object))
    (folder / "forged.npz").write_bytes(buffer.getvalue())
    record = json.loads((folder / MANIFEST_FILE).read_text())
    record.update(decoder_file="forged.npz", decoder_sha256=hashlib.sha256(buffer.getvalue()).hexdigest())
    (folder / MANIFEST_FILE).write_text(json.dumps(record))
    assert load_cpu_runtime(folder, litemedsam_file().sha256) is None
    assert isinstance(create_backend(_settings(cache)), LiteMedSAMBackend)


def test_a_forced_pytorch_engine_leaves_the_record_alone(recorded: Path, tmp_path: Path) -> None:
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(recorded, cache)
    forced = create_backend(Settings(cache_dir=str(cache), device="cpu", encoder_runtime="fused"))
    assert isinstance(forced, LiteMedSAMBackend)
    forced.embed(np.zeros((64, 64), np.float32), None)
    assert read_manifest(cache / "encoder") is not None
    assert isinstance(create_backend(_settings(cache)), CpuLiteMedSAMBackend)


def test_the_upsampling_graph_computes_what_the_numpy_upsampling_does(recorded: Path, lung1_dir: Path) -> None:
    """The record's ONNX upsampling stage replaces numpy's; the logits must not change beyond float rounding."""
    from inference.models.numpy_decoder import decode

    model = load_cpu_runtime(recorded / "encoder", litemedsam_file().sha256)
    assert model is not None and model.decoder.upsampler is not None
    plane, box = _nodule(lung1_dir)
    emb = CpuLiteMedSAMBackend(model).embed(plane, LUNG_LESION_WINDOW)
    box_256 = emb.info.box_to_model(np.asarray(box, dtype=np.float32))
    for valid in (None, (256, 192)):  # the whole frame, and a cropped one (fewer grid cells)
        with_graph, _ = decode(model.decoder, emb.features, box_256, multimask="all", valid_size=valid)
        upsampler, model.decoder.upsampler = model.decoder.upsampler, None
        numpy_only, _ = decode(model.decoder, emb.features, box_256, multimask="all", valid_size=valid)
        model.decoder.upsampler = upsampler
        assert float(np.abs(with_graph - numpy_only).max()) <= 1e-5 * float(np.abs(numpy_only).max())


def test_embeddings_are_the_callers_own_memory(recorded: Path) -> None:
    """An embedding kept in a cache must not pin a block of ONNX Runtime's arena (issue 17: with the returned
    array kept as it was, the arena grew ~36 MiB by the third encode)."""
    model = load_cpu_runtime(recorded / "encoder", litemedsam_file().sha256)
    assert model is not None
    features = model.encode(np.zeros((1, 3, 256, 256), np.float32))
    assert features.shape == (1, 256, 64, 64) and features.flags.owndata and features.base is None


ARENA_CHILD = """
import json, sys
from pathlib import Path
import numpy as np
from inference.models.verified_files import onnx_session
from tests.resident_memory import resident_mib as rss
encoder = onnx_session(Path(sys.argv[1]).read_bytes(), 2)
upsampler = onnx_session(Path(sys.argv[2]).read_bytes(), 2)
encoder.run(None, {encoder.get_inputs()[0].name: np.zeros((1, 3, 256, 256), np.float32)})
before = rss()
upsampler.run(None, {"rows": np.zeros((4096, 256), np.float32)})
print(json.dumps({"grown_mib": rss() - before}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident memory is read from /proc/self/status")
def test_the_upsampling_graph_works_in_the_encoders_arena(recorded: Path) -> None:
    """One CPU arena for every session of the process: the decoder's upsampling run takes blocks the encoder
    has free between its runs (measured: +0.1 MiB) instead of growing an arena of its own (+24 MiB)."""
    manifest = read_manifest(recorded / "encoder")
    assert manifest is not None
    folder = recorded / "encoder"
    done = subprocess.run([sys.executable, "-c", ARENA_CHILD, str(folder / manifest.encoder_file),
                           str(folder / manifest.upsample_file)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=True)
    grown = json.loads(done.stdout.strip().splitlines()[-1])["grown_mib"]
    assert grown < 8, f"the upsampling run grew the process by {grown:.0f} MiB"


@pytest.mark.parametrize("old_format", [False, True], ids=["same format", "older format"])
def test_a_replaced_record_removes_its_own_old_files_only(recorded: Path, tmp_path: Path, old_format: bool) -> None:
    """A record written anew (other weights, a damaged file, a new record format) deletes earlier records'
    files, when they carry the names the recorder writes; anything else a forged record names stays."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(recorded, cache)
    folder = cache / "encoder"
    old_decoder, foreign = folder / "litemedsam_decoder_0000000000000000.npz", folder / "keepme.onnx"
    old_decoder.write_bytes(b"old weights")
    foreign.write_bytes(b"not ours")
    record = json.loads((folder / MANIFEST_FILE).read_text())
    record.update(decoder_file=old_decoder.name, upsample_file=foreign.name)
    if old_format:
        record["format"] = 1
    (folder / MANIFEST_FILE).write_text(json.dumps(record))
    backend = create_backend(_settings(cache))  # the named files fail their sha256: the PyTorch path
    assert isinstance(backend, LiteMedSAMBackend)
    backend.embed(np.zeros((64, 64), np.float32), None)  # ... which records again
    manifest = read_manifest(folder)
    assert manifest is not None and (folder / manifest.decoder_file).exists()
    assert not old_decoder.exists() and foreign.read_bytes() == b"not ours"
