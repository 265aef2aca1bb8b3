"""DICOM corpus part 3: compressed syntaxes (with and without decoders), zero-size and gigantic
dimensions, inflated value lengths, and inputs the fuzzer found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.tag import Tag

from tests import synthetic_dicom as b
from tests.robustness.cases_dicom import patch_bytes
from tests.robustness.corpus import Case, either, error, read, shape_is, values_close

# --------------------------------------------------------------------------------------------- compressed

_NO_DECODER = {"mpeg2": "1.2.840.10008.1.2.4.100", "mpeg2-high": "1.2.840.10008.1.2.4.101",
               "mpeg4": "1.2.840.10008.1.2.4.102", "hevc": "1.2.840.10008.1.2.4.107",
               "jpegxl": "1.2.840.10008.1.2.4.110", "unknown-uid": "1.2.840.10008.9.9.9.999"}
_GARBAGE_DECODABLE = {"jpeg-baseline": "1.2.840.10008.1.2.4.50", "jpeg-lossless": "1.2.840.10008.1.2.4.70",
                      "jpeg-ls": "1.2.840.10008.1.2.4.80", "j2k": "1.2.840.10008.1.2.4.90",
                      "htj2k": "1.2.840.10008.1.2.4.201", "rle": "1.2.840.10008.1.2.5",
                      "jpeg-extended-12bit": "1.2.840.10008.1.2.4.51"}
_PLACEHOLDER_SYNTAX = "1.2.840.10008.1.2.4.100"  # same length as the patched-in UIDs pydicom refuses to write


def _compressed_file(path: Path, syntax: str, payload: bytes, z: float = 0.0, series: str = "1", inst: int = 1) -> Path:
    ds = b.base(rows=8, cols=8, series=series, instance=inst)
    b.geometry(ds, np.array([0.0, 0.0, z]))
    patch = syntax in ("1.2.840.10008.1.2.4.110", "1.2.840.10008.9.9.9.999")
    ds.file_meta.TransferSyntaxUID = _PLACEHOLDER_SYNTAX if patch else syntax
    ds.PixelData = encapsulate([payload])
    ds["PixelData"].VR = "OB"
    b.save(ds, path)
    if patch:  # pydicom will not write a syntax it does not know: patch the UID in place
        assert len(syntax) == len(_PLACEHOLDER_SYNTAX)
        path.write_bytes(path.read_bytes().replace(_PLACEHOLDER_SYNTAX.encode(), syntax.encode(), 1))
    return path


def _compressed_cases() -> list[Case]:
    out = []
    payloads = {"empty": b"\x00\x00", "rand16": np.random.default_rng(1).bytes(16),
                "rand300": np.random.default_rng(2).bytes(300)}
    for group, table, exp in (
        ("no-decoder", _NO_DECODER, error("UnsupportedInputError", any_words=("decoder", "transfer syntax", "compress"),
                                          note="names the compression; no decoder")),
        ("garbage", _GARBAGE_DECODABLE, error("ImageReadError", any_words=("corrupt", "truncated", "decoder"),
                                              note="truncated or corrupt")),
    ):
        for name, syntax in table.items():
            for pname, payload in payloads.items():
                for scope in ("single", "series"):
                    def make(d: Path, syntax=syntax, payload=payload, scope=scope) -> Path:
                        if scope == "single":
                            return _compressed_file(d / "c.dcm", syntax, payload)
                        for z in range(3):
                            _compressed_file(d / "s" / f"{z}.dcm", syntax, payload, z=2.0 * z, inst=z + 1)
                        return d / "s"

                    out.append(Case(f"compressed/{group}-{name}-{pname}-{scope}", "dicom_compressed", make, exp))
    for name, syntax in (("rle", "1.2.840.10008.1.2.5"), ("jpeg-ls", "1.2.840.10008.1.2.4.80"),
                         ("deflate", "1.2.840.10008.1.2.1.99")):
        for scope in ("single", "series"):
            n = 1 if scope == "single" else 3
            stored = b.marker_values(n, 8, 8, 4)

            def make_valid(d: Path, syntax=syntax, scope=scope, n=n) -> Path:
                files, _ = b.write_series(d / "s", n=n, seed=4, mutate=lambda ds, z: _compress(ds, syntax))
                return files[0] if scope == "single" else d / "s"

            out.append(Case(f"compressed/valid-{name}-{scope}", "dicom_compressed", make_valid,
                            read(values_close(stored - 1024.0), note="decoded exactly")))
    return out


def _compress(ds: Dataset, syntax: str) -> None:
    if syntax == "1.2.840.10008.1.2.1.99":
        ds.file_meta.TransferSyntaxUID = syntax
        return
    ds.compress(syntax, encoding_plugin="pydicom" if syntax.endswith(".5") else "")


# --------------------------------------------------------------------------------------------- dimensions

GIGANTIC = [(60000, 60000), (65535, 65535), (40000, 50000), (20000, 30000), (65535, 1024)]


def _dimension_cases() -> list[Case]:
    out = []
    for rows, cols in ((0, 8), (8, 0), (0, 0)):
        for scope in ("single", "series"):
            def make(d: Path, rows=rows, cols=cols, scope=scope) -> Path:
                files, _ = b.write_series(d / "s", n=1 if scope == "single" else 2, mutate=lambda ds, z: _dims(ds, rows, cols))
                return files[0] if scope == "single" else d / "s"

            out.append(Case(f"dims/zero-{rows}x{cols}-{scope}", "dicom_dimensions", make,
                            error("ImageReadError", note="specific error")))
    for rows, cols in ((1, 1), (1, 9), (9, 1), (2, 3), (513, 2)):
        stored = b.marker_values(1, rows, cols, 0)[0]
        stored[0, 0] = 50

        def make_small(d: Path, rows=rows, cols=cols) -> Path:
            path, _ = b.write_single(d / "t.dcm", rows=rows, cols=cols)
            return path

        out.append(Case(f"dims/tiny-{rows}x{cols}", "dicom_dimensions", make_small,
                        read(shape_is((1, rows, cols)), note="read as is")))
    for rows, cols in GIGANTIC:
        for scope, n in (("single", 1), ("series", 3)):
            def make_big(d: Path, rows=rows, cols=cols, n=n, scope=scope) -> Path:
                files, _ = b.write_series(d / "s", n=n, mutate=lambda ds, z: _dims(ds, rows, cols))
                return files[0] if scope == "single" else d / "s"

            need = rows * cols * n * 4
            guarded = (error("MemoryBudgetExceeded", "memory", note="refused before allocating")
                       if need > 8192 * 2**20 else
                       error("ImageReadError", any_words=("corrupt", "truncated"), note="fits the budget; corrupt"))
            out.append(Case(f"dims/gigantic-{rows}x{cols}-{scope}-guarded", "dicom_dimensions", make_big, guarded,
                            action="guarded_open"))
            out.append(Case(f"dims/gigantic-{rows}x{cols}-{scope}-estimate", "dicom_dimensions", make_big,
                            read(lambda v, need=need: None if v == need else f"estimate {v}, expected {need}",
                                 note="header-only estimate"), action="estimate"))
            out.append(Case(f"dims/gigantic-{rows}x{cols}-{scope}-open", "dicom_dimensions", make_big,
                            error("ImageReadError", any_words=("corrupt", "truncated", "memory", "does not match")),
                            extra={"note": "plain open_image, no guard"}))
    return out


def _dims(ds: Dataset, rows: int, cols: int) -> None:
    ds.Rows, ds.Columns = rows, cols




def _length_cases() -> list[Case]:
    """A value length inflated so the value swallows the elements after it (incl. the patient's name/ID)."""
    out = []
    for kw in ("Modality", "SeriesDescription"):
        for syntax_name, syntax in (("explicit", b.ExplicitVRLittleEndian), ("implicit", b.IMPLICIT)):
            for length in (*range(16, 88, 6), 258, 300, 514):
                def make(d: Path, kw=kw, syntax=syntax, length=length, syntax_name=syntax_name) -> Path:
                    path, _ = b.write_single(d / "x.dcm", syntax=syntax)
                    tag = Tag(kw)
                    head = tag.group.to_bytes(2, "little") + tag.element.to_bytes(2, "little")
                    value = b"CT" if kw == "Modality" else b"robust"
                    if syntax_name == "implicit":
                        old = head + len(value).to_bytes(4, "little") + value
                        new = head + length.to_bytes(4, "little") + value
                    else:
                        vr = b"CS" if kw == "Modality" else b"LO"
                        old = head + vr + len(value).to_bytes(2, "little") + value
                        new = head + vr + length.to_bytes(2, "little") + value
                    patch_bytes(path, old, new)
                    return path

                out.append(Case(f"lengths/{kw}-{syntax_name}-len{length}", "dicom_corrupt_lengths", make,
                                either(note="clean error (no header bytes, no PHI in the message) or a reading")))
    for k, (cut, flips) in enumerate(FUZZ_FOUND):
        def make_found(d: Path, cut=cut, flips=flips) -> Path:
            path, _ = b.write_single(d / "impl.dcm", syntax=b.IMPLICIT)
            data = bytearray(path.read_bytes()[:cut])
            for pos, value in flips:
                data[pos] = value
            path.write_bytes(bytes(data))
            return path

        out.append(Case(f"lengths/fuzz-found-{k}", "dicom_corrupt_lengths", make_found,
                        error("ImageReadError", any_words=("truncated", "corrupt", "non-image"),
                              note="clean message without header bytes or PHI")))
    return out


# Inputs the hypothesis fuzzer found (test_fuzz.py), frozen as corpus cases: (keep bytes, [(offset, new byte)]).
# 0: implicit-VR CT slice cut to 479 bytes, Modality length 2 → 258 (byte 396) and byte 329 zeroed.
FUZZ_FOUND = [(479, [(329, 0), (396, 1)])]



def cases() -> list[Case]:
    return [*_compressed_cases(), *_dimension_cases(), *_length_cases()]
