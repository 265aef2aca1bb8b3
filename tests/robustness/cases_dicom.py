"""DICOM corpus part 1: truncation, missing/invalid tags, wrong VRs, slice positions.

Invalid *text* values (``PixelSpacing = "abc"``) cannot be set through pydicom (it validates), so they
are written as a same-length placeholder and byte-patched in the saved file, exactly as a broken
exporter would have written them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.tag import Tag

from tests import synthetic_dicom as b
from tests.robustness.corpus import (
    Case,
    all_of,
    either,
    error,
    orthonormal,
    read,
    rng_for,
    shape_is,
    spacing_close,
    values_close,
    warns,
)

TRUNC_WORDS = ("truncated", "corrupt", "not a supported", "not supported")


def patch_bytes(path: Path, old: bytes, new: bytes) -> None:
    """Replace a same-length placeholder in a written file (keeps element lengths valid)."""
    data = path.read_bytes()
    if len(new) < len(old):
        new = new + b" " * (len(old) - len(new))
    assert len(new) == len(old) and old in data, (old, new)
    path.write_bytes(data.replace(old, new))


# --------------------------------------------------------------------------------------------- truncation


def _truncated_single(n_cuts: int) -> list[Case]:
    rng = rng_for("truncated")
    out = []
    for kind in ("ct", "cr"):
        probe_len = 964 if kind == "ct" else 940  # size of the written file (checked in make)
        cuts = sorted({0, 1, 64, 128, 131, 132, 140, 200} | {int(x) for x in rng.integers(1, probe_len, n_cuts)})
        for cut in cuts:
            def make(d: Path, kind: str = kind, cut: int = cut) -> Path:
                path, _ = b.write_single(d / "slice.dcm", modality=kind.upper())
                data = path.read_bytes()
                assert cut < len(data), (cut, len(data))
                path.write_bytes(data[:cut])
                return path

            out.append(Case(f"truncated/{kind}-cut-{cut:05d}", "dicom_truncated", make,
                            error("ImageReadError", any_words=TRUNC_WORDS, note="truncated or corrupt")))
        for drop in (1, 2, 3, 17, 64, 127):
            def make_tail(d: Path, kind: str = kind, drop: int = drop) -> Path:
                path, _ = b.write_single(d / "slice.dcm", modality=kind.upper())
                data = path.read_bytes()
                path.write_bytes(data[:-drop])
                return path

            out.append(Case(f"truncated/{kind}-drop-tail-{drop:03d}", "dicom_truncated", make_tail,
                            error("ImageReadError", any_words=TRUNC_WORDS, note="truncated or corrupt")))
    return out


def _truncated_series() -> list[Case]:
    out = []
    for n in (4, 5):
        for k in range(n):
            for how in ("drop-10", "drop-100", "half", "header-40pct", "empty"):
                def make(d: Path, n: int = n, k: int = k, how: str = how) -> Path:
                    files, _ = b.write_series(d / "series", n=n, seed=n * 10 + k)
                    data = files[k].read_bytes()
                    keep = {"drop-10": len(data) - 10, "drop-100": len(data) - 100, "half": len(data) // 2,
                            "header-40pct": int(len(data) * 0.4), "empty": 0}[how]
                    files[k].write_bytes(data[:keep])
                    return d / "series"

                if k in (0, n - 1):
                    _, stored = _stored_for(n, k)
                    exp = read(all_of(shape_is((n - 1, 8, 8)), values_close(stored - 1024.0),
                                      warns("skipped") if how != "empty" else None),
                               note="end slice dropped with a warning")
                else:
                    exp = error("ImageReadError", "not evenly spaced", note="missing slice reported")
                out.append(Case(f"truncated/series{n}-slice{k}-{how}", "dicom_truncated", make, exp))
    return out


def _stored_for(n: int, k: int) -> tuple[None, np.ndarray]:
    stored = b.marker_values(n, 8, 8, n * 10 + k)
    return None, np.delete(stored, k, axis=0)


# --------------------------------------------------------------------------------------------- tags

_PH_PS = b"9.123456\\9.123456"  # placeholders patched to invalid text after saving
_PH_DS = b"7.7777"


def _set_text(keyword: str, placeholder: bytes):
    def mut(ds, z):  # noqa: ANN001
        setattr(ds, keyword, placeholder.decode().split("\\") if b"\\" in placeholder else placeholder.decode())

    return mut


def _delete(keyword: str):
    def mut(ds, z):  # noqa: ANN001
        if keyword in ds:
            delattr(ds, keyword)

    return mut


def _setv(**values):
    def mut(ds, z):  # noqa: ANN001
        for k, v in values.items():
            setattr(ds, k, v)

    return mut


def _tag_mutations() -> list[tuple[str, object, bytes | None, bytes | None, str]]:
    """(id, mutation, placeholder, replacement, kind) with kind naming the expected behaviour."""
    m: list[tuple[str, object, bytes | None, bytes | None, str]] = []
    for name, text in (("text", b"abc\\def"), ("zero", b"0\\0"), ("negative", b"-0.5\\0.5"), ("one-value", b"0.7"),
                       ("nan", b"nan\\0.7"), ("inf", b"inf\\inf"), ("empty", b"")):
        m.append((f"pixelspacing-{name}", _set_text("PixelSpacing", _PH_PS), _PH_PS, text, "ps-bad"))
    m.append(("pixelspacing-missing", _delete("PixelSpacing"), None, None, "ps-bad"))
    m.append(("pixelspacing-huge", _setv(PixelSpacing=["1000", "1000"]), None, None, "read"))
    for name, text in (("text", b"a\\b\\c"), ("two-values", b"1\\2"), ("nan", b"nan\\0\\0"), ("empty", b"")):
        m.append((f"position-{name}", _set_text("ImagePositionPatient", b"9.1234\\9.1234\\9.1234"),
                  b"9.1234\\9.1234\\9.1234", text, "ipp-bad"))
    m.append(("position-missing", _delete("ImagePositionPatient"), None, None, "ipp-bad"))
    for name, text in (("text", b"a\\b\\c\\d\\e\\f"), ("five-values", b"1\\0\\0\\0\\1"), ("nan", b"nan\\0\\0\\0\\1\\0")):
        m.append((f"orientation-{name}", _set_text("ImageOrientationPatient", b"9.1\\9.1\\9.1\\9.1\\9.1\\9.1"),
                  b"9.1\\9.1\\9.1\\9.1\\9.1\\9.1", text, "iop-bad"))
    m.append(("orientation-missing", _delete("ImageOrientationPatient"), None, None, "iop-bad"))
    m.append(("orientation-all-zero", _setv(ImageOrientationPatient=["0"] * 6), None, None, "iop-degenerate"))
    m.append(("orientation-colinear", _setv(ImageOrientationPatient=["1", "0", "0", "1", "0", "0"]), None, None,
              "iop-degenerate"))
    m.append(("orientation-not-orthogonal", _setv(ImageOrientationPatient=["1", "0", "0", "0.5", "0.866", "0"]),
              None, None, "iop-degenerate"))
    m.append(("orientation-unnormalised", _setv(ImageOrientationPatient=["2", "0", "0", "0", "2", "0"]), None, None,
              "read"))
    for kw in ("RescaleSlope", "RescaleIntercept"):
        for name, text in (("text", b"abc"), ("nan", b"nan"), ("inf", b"inf"), ("empty", b"")):
            m.append((f"{kw.lower()}-{name}", _set_text(kw, _PH_DS), _PH_DS, text, "either"))
        m.append((f"{kw.lower()}-missing", _delete(kw), None, None, f"{kw}-missing"))
    m.append(("rescaleslope-zero", _setv(RescaleSlope="0"), None, None, "either"))
    m.append(("rescaleslope-negative", _setv(RescaleSlope="-1"), None, None, "slope-negative"))
    m.append(("rescaleslope-1e30", _setv(RescaleSlope="1e30"), None, None, "either"))
    for name, value in (("missing", None), ("unknown", "FOO"), ("rgb-one-sample", "RGB"), ("palette-no-lut", "PALETTE COLOR"),
                        ("ybr-one-sample", "YBR_FULL"), ("lowercase", "monochrome2")):
        mut = _delete("PhotometricInterpretation") if value is None else _setv(PhotometricInterpretation=value)
        m.append((f"photometric-{name}", mut, None, None, "either"))
    m.append(("rows-mismatch", _setv(Rows=10), None, None, "corrupt"))
    m.append(("columns-missing", _delete("Columns"), None, None, "error-any"))
    for name, values in (("bitsallocated-0", {"BitsAllocated": 0}), ("bitsallocated-7", {"BitsAllocated": 7}),
                         ("bitsallocated-12", {"BitsAllocated": 12}), ("bitsstored-20", {"BitsStored": 20}),
                         ("bitsstored-0", {"BitsStored": 0}), ("pixelrepresentation-2", {"PixelRepresentation": 2}),
                         ("samplesperpixel-0", {"SamplesPerPixel": 0}), ("samplesperpixel-2", {"SamplesPerPixel": 2}),
                         ("highbit-3", {"HighBit": 3})):
        m.append((name, _setv(**values), None, None, "either"))
    for name, text in (("windowcenter-text", b"abc"), ("windowwidth-zero", b"0")):
        kw = "WindowCenter" if "center" in name else "WindowWidth"
        m.append((name, _setv(**{kw: _PH_DS.decode(), ("WindowWidth" if kw == "WindowCenter" else "WindowCenter"): "40"}),
                  _PH_DS, text, "read"))
    m.append(("modality-missing", _delete("Modality"), None, None, "read"))
    m.append(("modality-unknown", _setv(Modality="XYZ"), None, None, "read"))
    m.append(("sopclass-missing", _delete("SOPClassUID"), None, None, "read"))
    m.append(("charset-unknown", _setv(SpecificCharacterSet="ISO_IR 999"), None, None, "read"))
    return m


def _tag_expect(kind: str, scope: str, n: int, stored: np.ndarray):
    exact = values_close(stored - 1024.0)
    if kind == "read":
        return read(shape_is((n, 8, 8)), note="read normally")
    if kind == "either":
        return either(note="clean error or valid reading")
    if kind == "error-any":
        return error("ImageReadError", note="specific error")
    if kind == "corrupt":
        return error("ImageReadError", any_words=("corrupt", "does not match", "different sizes"),
                     note="pixel data / Rows mismatch reported")
    if kind == "RescaleSlope-missing":
        return read(values_close(stored - 1024.0), note="slope 1 assumed")
    if kind == "RescaleIntercept-missing":
        return read(values_close(stored.astype(float)), note="intercept 0 assumed")
    if kind == "slope-negative":
        return read(values_close(-stored - 1024.0), note="negative slope applied")
    tag = {"ps-bad": "PixelSpacing", "ipp-bad": "ImagePositionPatient", "iop-bad": "ImageOrientationPatient",
           "iop-degenerate": "ImageOrientationPatient"}[kind]
    if scope == "single":
        if kind == "iop-degenerate":
            return either(all_of(exact, orthonormal), note="error naming IOP or identity orientation")
        check = all_of(exact, warns("pixel spacing assumed") if kind == "ps-bad" else None)
        return read(check, note=f"default {tag} (+warning)")
    if kind == "iop-degenerate":
        return error("ImageReadError", any_words=("ImageOrientationPatient", "orientation"),
                     note="IOP problem reported")
    return error("ImageReadError", tag, note=f"'lack the {tag} tag'")


def _tag_cases() -> list[Case]:
    out = []
    for name, mut, old, new, kind in _tag_mutations():
        for scope in ("single", "series-all", "series-one"):
            n = 1 if scope == "single" else 3

            def make(d: Path, mut=mut, old=old, new=new, scope=scope, n=n) -> Path:
                def apply(ds, z):  # noqa: ANN001
                    if scope != "series-one" or z == 1:
                        mut(ds, z)  # type: ignore[operator]

                files, _ = b.write_series(d / "s", n=n, mutate=apply, seed=7)
                if old is not None:
                    for k, f in enumerate(files):
                        if scope != "series-one" or k == 1:
                            patch_bytes(f, old, new)  # type: ignore[arg-type]
                return files[0] if scope == "single" else d / "s"

            stored = b.marker_values(n, 8, 8, 7)
            exp = _tag_expect(kind, scope, n, stored)
            if scope == "series-one" and kind not in ("ps-bad", "ipp-bad", "iop-bad", "corrupt"):
                exp = either(note="one odd slice: clean error or valid reading")
            if scope != "single" and kind in ("RescaleSlope-missing", "RescaleIntercept-missing"):
                exp = either(note="per-slice rescale")  # reading differs per slice: any clean outcome
            out.append(Case(f"tags/{name}/{scope}", "dicom_tags", make, exp))
    return out


# --------------------------------------------------------------------------------------------- wrong VRs

_VR_TAGS = {  # keyword: semantic values
    "Rows": [8], "Columns": [8], "PixelSpacing": [0.7, 0.7], "ImagePositionPatient": [-5.0, -5.0, 0.0],
    "ImageOrientationPatient": [1, 0, 0, 0, 1, 0], "RescaleSlope": [1.0], "RescaleIntercept": [-1024.0],
    "BitsAllocated": [16], "BitsStored": [16], "PixelRepresentation": [0], "PhotometricInterpretation": ["MONOCHROME2"],
    "WindowCenter": [40.0], "NumberOfFrames": [1], "SliceThickness": [2.0], "SamplesPerPixel": [1],
}
_VRS = ("US", "FD", "DS", "LO", "SH", "SL")


def _value_for(vr: str, values: list):
    if vr in ("US", "SL"):
        conv = [int(v) if not isinstance(v, str) else 2 for v in values]
        if vr == "US":
            conv = [abs(v) % 65536 for v in conv]
        return conv if len(conv) > 1 else conv[0]
    if vr == "FD":
        conv = [float(v) if not isinstance(v, str) else 2.0 for v in values]
        return conv if len(conv) > 1 else conv[0]
    if vr == "DS":
        return [f"{v:g}" if not isinstance(v, str) else "2" for v in values] if len(values) > 1 else (
            f"{values[0]:g}" if not isinstance(values[0], str) else "2")
    if vr == "SH":
        return "n/a"
    if vr == "LO":
        return "\\".join(str(v) for v in values) if len(values) > 1 else str(values[0]) + " units"
    raw = np.asarray([v if not isinstance(v, str) else 0 for v in values], dtype="<f8").tobytes()
    return raw


def _vr_cases() -> list[Case]:
    out = []
    for kw, values in _VR_TAGS.items():
        for vr in _VRS:
            for syntax_name, syntax in (("explicit", b.ExplicitVRLittleEndian), ("implicit", b.IMPLICIT)):
                def make(d: Path, kw=kw, values=values, vr=vr, syntax=syntax) -> Path:
                    def mut(ds, z):  # noqa: ANN001
                        ds[Tag(kw)] = DataElement(Tag(kw), vr, _value_for(vr, values))

                    path, _ = b.write_single(d / "img.dcm", syntax=syntax, mutate=mut)
                    return path

                out.append(Case(f"vr/{kw}-as-{vr}/{syntax_name}", "dicom_wrong_vr", make,
                                either(note="clean error or valid reading")))
    for kw, vr in (("StudyInstanceUID", b"UI"), ("PixelSpacing", b"DS"), ("ImagePositionPatient", b"DS"),
                   ("RescaleSlope", b"DS"), ("SeriesDescription", b"LO"), ("PatientName", b"PN"),
                   ("Modality", b"CS"), ("WindowCenter", b"DS")):
        for scope in ("single", "series"):
            def make_vr(d: Path, kw=kw, vr=vr, scope=scope) -> Path:
                def mut(ds, z):  # noqa: ANN001
                    if kw == "WindowCenter":
                        ds.WindowCenter, ds.WindowWidth = "40", "400"

                files, _ = b.write_series(d / "s", n=1 if scope == "single" else 3, mutate=mut)
                tag = Tag(kw)
                marker = tag.group.to_bytes(2, "little") + tag.element.to_bytes(2, "little") + vr
                for f in files[:2]:
                    patch_bytes(f, marker, marker[:5] + b"\x00")
                return files[0] if scope == "single" else d / "s"

            exp = (error("ImageReadError", any_words=("corrupt", "truncated")) if scope == "single"
                   else either(note="corrupt slices skipped with a warning, or a clean error"))
            out.append(Case(f"vr/corrupt-vr-bytes-{kw}/{scope}", "dicom_wrong_vr", make_vr, exp))
    return out


# --------------------------------------------------------------------------------------------- positions


def _series_case(cid: str, zs: list[float], exp, *, keep: list[int] | None = None, seed: int = 3) -> Case:
    def make(d: Path, zs=zs, keep=keep, seed=seed) -> Path:
        files, _ = b.write_series(d / "s", n=len(zs), z_positions=zs, seed=seed)
        if keep is not None:
            for k, f in enumerate(files):
                if k not in keep:
                    f.unlink()
        return d / "s"

    return Case(cid, "dicom_slice_positions", make, exp)


def _position_cases() -> list[Case]:
    rng = rng_for("positions")
    out = []
    for n in range(3, 9):
        for i in range(n - 1):
            zs = [2.0 * k for k in range(n)]
            zs[i + 1] = zs[i]
            out.append(_series_case(f"positions/duplicate-n{n}-at{i}", zs,
                                    error("ImageReadError", "duplicate slice positions")))
    for n in range(4, 10):
        zs = [2.0 * k for k in range(n)]
        for k in range(1, n - 1):
            out.append(_series_case(f"positions/missing-n{n}-slice{k}", zs,
                                    error("ImageReadError", "not evenly spaced", "missing slices"),
                                    keep=[j for j in range(n) if j != k]))
        for k in (0, n - 1):
            stored = np.delete(b.marker_values(n, 8, 8, 3), k, axis=0)
            out.append(_series_case(f"positions/missing-n{n}-end{k}", zs,
                                    read(all_of(values_close(stored - 1024.0), spacing_close((0.7, 0.7, 2.0)))),
                                    keep=[j for j in range(n) if j != k]))
    for n in range(3, 11):
        jit = rng.uniform(-1e-3, 1e-3, n)
        zs = [2.0 * k + float(jit[k]) for k in range(n)]
        out.append(_series_case(f"positions/jitter-small-n{n}", zs, read(shape_is((n, 8, 8)))))
        big = rng.uniform(-0.6, 0.6, n)
        big[n // 2] = 0.6
        zs = [2.0 * k + float(big[k]) for k in range(n)]
        out.append(_series_case(f"positions/jitter-large-n{n}", zs, error("ImageReadError", "not evenly spaced")))
    for n in range(2, 8):
        stored = b.marker_values(n, 8, 8, 3)
        zs = [-2.5 * k for k in range(n)]
        out.append(_series_case(f"positions/descending-n{n}", zs,
                                read(all_of(values_close(stored[::-1] - 1024.0), spacing_close((0.7, 0.7, 2.5))))))
    for dz in (0.01, 0.1, 0.625, 1.25, 3.0, 5.0, 10.0, 100.0):
        stored = b.marker_values(4, 8, 8, 3)
        out.append(_series_case(f"positions/spacing-{dz:g}mm", [dz * k for k in range(4)],
                                read(all_of(values_close(stored - 1024.0), spacing_close((0.7, 0.7, dz), 1e-4)))))
    for n in range(3, 7):  # positions move only within the slice plane: all at the same depth
        def make(d: Path, n: int = n) -> Path:
            pos = [np.array([float(k), 0.0, 0.0]) for k in range(n)]
            b.write_series(d / "s", n=n, positions=pos, seed=n)
            return d / "s"

        out.append(Case(f"positions/in-plane-shift-n{n}", "dicom_slice_positions", make,
                        error("ImageReadError", "duplicate slice positions")))
    return out


def cases() -> list[Case]:
    from tests.robustness import cases_dicom2, cases_dicom3

    return [*_truncated_single(60), *_truncated_series(), *_tag_cases(), *_vr_cases(), *_position_cases(),
            *cases_dicom2.cases(), *cases_dicom3.cases()]
