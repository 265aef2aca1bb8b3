"""Crafted, damaged and other-version session files give one SessionError — never another exception,
never an allocation beyond the memory budget (issue 14, item 4)."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference.export.labels import SegmentLabel
from inference.persistence import SessionError, SessionState, load_session, save_session


def _valid(tmp_path: Path) -> tuple[dict[str, Any], bytes]:
    labelmap = np.zeros((3, 8, 8), np.uint8)
    labelmap[1, 2:5, 2:5] = 1
    state = SessionState(image_source="/data/ct", image_signature="abc", labelmap=labelmap,
                         labels=[SegmentLabel(1, "Liver", (10, 20, 30), "AI")], prompts=[{"z": 1}],
                         ehr_edits={"values": {"age": 70}}, predictions=[{"outcome": "death", "probability": 0.2}])
    path = save_session(state, tmp_path / "valid.mfsession")
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("state.json")), zf.read("labelmap.zlib")


def _write(path: Path, header: Any, blob: bytes | None, *, blob_compression: int = zipfile.ZIP_STORED,
           raw_state: bytes | None = None) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("state.json", raw_state if raw_state is not None else json.dumps(header))
        if blob is not None:
            zf.writestr(zipfile.ZipInfo("labelmap.zlib"), blob, compress_type=blob_compression)
    path.write_bytes(buffer.getvalue())
    return path


def _set(key: str, value: Any) -> Callable[[dict], None]:
    def mutate(h: dict) -> None:
        h[key] = value
    return mutate


def _label(**changes: Any) -> Callable[[dict], None]:
    def mutate(h: dict) -> None:
        h["labels"][0].update(changes)
    return mutate


def _meta(**changes: Any) -> Callable[[dict], None]:
    def mutate(h: dict) -> None:
        h["labelmap"].update(changes)
    return mutate


CRAFTED = {
    "labels not a list": _set("labels", "Liver"),
    "label without value": lambda h: h["labels"][0].pop("value"),
    "label value text": _label(value="one"),
    "label value 0": _label(value=0),
    "label value 300": _label(value=300),
    "label colour short": _label(colour=[1, 2]),
    "label colour text": _label(colour="red"),
    "label category number": _label(category=5),
    "label type unknown": _label(algorithm_type="ROBOT"),
    "labels a dict": _set("labels", [{"value": 1, "name": "a"}, {"value": 1, "name": "b"}]),
    "gesture text": _set("gesture", "three"),
    "gesture huge": _set("gesture", 1e308),
    "gesture negative": _set("gesture", -1),
    "prompts a dict": _set("prompts", {"z": 1}),
    "prompts of numbers": _set("prompts", [1, 2]),
    "ehr_edits a list": _set("ehr_edits", [1]),
    "ehr values nested": _set("ehr_edits", {"values": {"age": {"x": 1}}}),
    "prediction without outcome": _set("predictions", [{"probability": 0.5}]),
    "prediction nan": _set("predictions", [{"outcome": "death", "probability": float("nan")}]),
    "prediction 2.0": _set("predictions", [{"outcome": "death", "probability": 2.0}]),
    "image_source number": _set("image_source", 5),
    "saved_at list": _set("saved_at", []),
    "shape text": _meta(shape="3x8x8"),
    "shape 2-D": _meta(shape=[24, 8]),
    "shape negative": _meta(shape=[-3, -8, 8]),
    "shape floats": _meta(shape=[3.0, 8, 8]),
    "dtype float64": _meta(dtype="float64"),
    "no checksum": lambda h: h["labelmap"].pop("sha1"),
    "labelmap meta a list": _set("labelmap", [3, 8, 8]),
    "other version": _set("format", 2),
    "deep prompts": _set("prompts", [{"a": json.loads("[" * 200 + "]" * 200)}]),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_header_gives_session_error(tmp_path: Path, case: str) -> None:
    header, blob = _valid(tmp_path)
    CRAFTED[case](header)
    path = _write(tmp_path / "crafted.mfsession", header, blob)
    with pytest.raises(SessionError):
        load_session(path)


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b"{"])
def test_state_json_that_is_not_an_object(tmp_path: Path, raw: bytes) -> None:
    path = _write(tmp_path / "s.mfsession", None, None, raw_state=raw)
    with pytest.raises(SessionError):
        load_session(path)


def test_the_valid_file_still_loads(tmp_path: Path) -> None:
    header, blob = _valid(tmp_path)
    back = load_session(_write(tmp_path / "ok.mfsession", header, blob))
    assert back.labelmap is not None and int(back.labelmap.sum()) == 9 and back.labels[0].name == "Liver"
    back.labelmap[0, 0, 0] = 3  # a writable array (the viewer paints on it)


def _zeros_stream(n: int) -> bytes:
    """A valid zlib stream of ``n`` zero bytes (``n`` a multiple of 16 MB), built in seconds.

    After a full flush the compressor's output for an identical chunk repeats byte for byte, so two chunks
    are compressed and the second one's bytes repeated; the trailer's Adler-32 covers all ``n`` bytes.
    """
    chunk = bytes(16 << 20)
    comp = zlib.compressobj(9)
    first = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    repeat = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)[:-4]
    adler = 1
    for _ in range(n // len(chunk)):
        adler = zlib.adler32(chunk, adler)
    return first + repeat * (n // len(chunk) - 1) + tail + struct.pack(">I", adler)


@pytest.fixture(scope="module")
def bomb_stream() -> bytes:
    return _zeros_stream(1600 << 20)  # 1.6 GB of zeros → 1.6 MB


def test_two_kilobyte_decompression_bomb_is_refused_without_allocating(tmp_path: Path, bomb_stream: bytes) -> None:
    header, _ = _valid(tmp_path)
    header["labelmap"] = {"shape": [1600, 1024, 1024], "dtype": "uint8", "sha1": "0" * 40}
    path = _write(tmp_path / "bomb.mfsession", header, bomb_stream, blob_compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 8 * 1024  # the ZIP deflates the zlib stream once more
    tracemalloc.start()
    try:
        with pytest.raises(SessionError, match="not stored the way"):
            load_session(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_label_map_over_the_budget_is_refused_before_decompressing(tmp_path: Path, bomb_stream: bytes) -> None:
    header, _ = _valid(tmp_path)
    header["labelmap"] = {"shape": [1600, 1024, 1024], "dtype": "uint8", "sha1": "0" * 40}
    path = _write(tmp_path / "big.mfsession", header, bomb_stream)  # stored, as we write them: 1.6 MB
    tracemalloc.start()
    try:
        with pytest.raises(SessionError, match="memory budget"):
            load_session(path, max_bytes=1 << 30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_stream_longer_than_its_shape_stops_at_the_shape(tmp_path: Path, bomb_stream: bytes) -> None:
    header, _ = _valid(tmp_path)
    header["labelmap"] = {"shape": [1, 8, 8], "dtype": "uint8", "sha1": "0" * 40}  # claims 64 bytes
    path = _write(tmp_path / "long.mfsession", header, bomb_stream)
    tracemalloc.start()
    try:
        with pytest.raises(SessionError, match="wrong size"):
            load_session(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20
