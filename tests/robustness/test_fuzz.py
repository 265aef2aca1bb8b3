"""Slow tier: hypothesis fuzzing of the readers with byte-level mutations of valid seed files.

Every mutated input must produce a MedFusionError (one sentence) or a Volume passing the invariants,
within a time bound. No exception is tolerated: every defect the fuzzer found so far is fixed (and
frozen as a corpus case in ``cases_dicom3.FUZZ_FOUND``).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inference.errors import MedFusionError
from tests import synthetic_dicom as b
from tests.robustness.corpus import error_invariants, volume_invariants

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]
TIMEOUT_S = 30.0


def _seed_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, Path] = {}
    seeds["dicom-ct"], _ = b.write_single(root / "ct.dcm")
    seeds["dicom-implicit"], _ = b.write_single(root / "impl.dcm", syntax=b.IMPLICIT)
    seeds["dicom-cr"], _ = b.write_single(root / "cr.dcm", modality="CR")
    arr = np.random.default_rng(0).normal(0, 50, (3, 4, 5)).astype(np.float32)
    for suffix in (".nrrd", ".nii"):
        sitk.WriteImage(sitk.GetImageFromArray(arr), str(root / f"v{suffix}"))
        seeds[suffix[1:]] = root / f"v{suffix}"
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (8, 6, 3), dtype=np.uint8), "RGB")
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg")):
        img.save(root / f"x{suffix}", fmt)
        seeds[fmt.lower()] = root / f"x{suffix}"
    files, _ = b.write_series(root / "series", n=3)
    seeds["dicom-series"] = files[1]  # the middle slice of a 3-slice series is mutated; the folder is opened
    return seeds


SEEDS = _seed_files(Path(tempfile.mkdtemp(prefix="medfusion-fuzz-seeds-")))

mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("digits"), st.floats(0, 1), st.sampled_from([b"9", b"-", b".", b"\\", b"n", b"e", b"0"])),
)


def _mutate(data: bytes, ops: list[tuple]) -> bytes:
    buf = bytearray(data)
    for op, where, arg in ops:
        pos = min(int(where * len(buf)), max(len(buf) - 1, 0))
        if op == "flip" and buf:
            buf[pos] = arg
        elif op == "insert":
            buf[pos:pos] = arg
        elif op == "delete":
            del buf[pos:pos + arg]
        elif op == "truncate":
            del buf[pos:]
        elif op == "digits" and buf:
            buf[pos:pos + 1] = arg
    return bytes(buf)


def _open_with_timeout(path: Path) -> tuple[str, object]:
    from inference.io.loader import open_image

    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = ("read", open_image(path))
        except BaseException as exc:  # noqa: BLE001 - classified by the caller
            box["result"] = ("raised", exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT_S)
    if thread.is_alive():
        return "hang", None
    return box["result"]  # type: ignore[return-value]


@pytest.mark.parametrize("seed_kind", sorted(SEEDS))
@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_inputs_fail_cleanly_or_read_validly(seed_kind: str, ops: list[tuple]) -> None:
    seed = SEEDS[seed_kind]
    with tempfile.TemporaryDirectory(prefix="medfusion-fuzz-") as tmp:
        if seed_kind == "dicom-series":
            folder = Path(tmp) / "series"
            shutil.copytree(seed.parent, folder)
            path = folder / seed.name
        path = path if seed_kind == "dicom-series" else Path(tmp) / seed.name
        path.write_bytes(_mutate(seed.read_bytes(), ops))
        kind, value = _open_with_timeout(path.parent if seed_kind == "dicom-series" else path)
    assert kind != "hang", f"open_image did not return within {TIMEOUT_S} s for {seed_kind} {ops}"
    if kind == "read":
        problem = volume_invariants(value)
        assert problem is None, f"{seed_kind} {ops}: {problem}"
        return
    assert isinstance(value, BaseException)
    if isinstance(value, MedFusionError):
        problem = error_invariants(value)
        assert problem is None, f"{seed_kind} {ops}: {problem}"
        return
    tb = "".join(traceback.format_exception(value))[-1500:]
    pytest.fail(f"unhandled {type(value).__name__} for {seed_kind} mutated by {ops}:\n{tb}")
