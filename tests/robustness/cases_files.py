"""Non-DICOM corpus: garbage files, NIfTI with NaN/Inf and broken headers, corrupt NRRD headers,
PNG/JPEG that are not X-rays (colour, tiny, odd modes, truncated, gigantic headers)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.robustness.corpus import (
    Case,
    all_of,
    either,
    error,
    meta_is,
    read,
    rng_for,
    shape_is,
    values_close,
    warns,
)

ANY_READ_ERROR = ("corrupt", "truncated", "not supported", "not a supported", "could not be read", "no DICOM",
                  "non-image", "empty")

# --------------------------------------------------------------------------------------------- garbage


def _garbage_cases() -> list[Case]:
    out = []
    for suffix in (".dcm", "", ".nii", ".nii.gz", ".nrrd", ".png", ".jpg", ".mha", ".ima", ".bin"):
        for size in (0, 1, 131, 132, 1000):
            def make(d: Path, suffix=suffix, size=size) -> Path:
                p = d / f"junk{suffix}"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(np.random.default_rng(size).bytes(size))
                return p

            out.append(Case(f"garbage/random-{size}b{suffix or '-nosuffix'}", "not_an_image", make,
                            error("ImageReadError", any_words=ANY_READ_ERROR)))
    for size in (0, 10, 100, 1000):
        for seed in range(3):
            def make_pre(d: Path, size=size, seed=seed) -> Path:
                p = d / "x.dcm"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"\x00" * 128 + b"DICM" + np.random.default_rng(seed).bytes(size))
                return p

            out.append(Case(f"garbage/preamble-then-{size}b-{seed}", "not_an_image", make_pre,
                            error("ImageReadError", any_words=ANY_READ_ERROR)))
    for name, text in (("text", "hello radiologist\n"), ("csv", "a,b\n1,2\n"), ("html", "<html></html>"),
                       ("json", '{"Rows": 512}')):
        def make_txt(d: Path, text=text) -> Path:
            p = d / "report.dcm"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            return p

        out.append(Case(f"garbage/{name}-named-dcm", "not_an_image", make_txt,
                        error("ImageReadError", any_words=ANY_READ_ERROR)))
    out.append(Case("garbage/missing-path", "not_an_image", lambda d: d / "nope.dcm",
                    error("ImageReadError", "does not exist")))
    return out


# --------------------------------------------------------------------------------------------- NIfTI


def _nifti_data(kind: str, frac: float, shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = rng.normal(0, 100, size=shape).astype(dtype)
    n = arr.size
    count = n if frac >= 1 else (1 if frac == 0.001 else int(round(frac * n)))
    if frac == 0:
        count = 0
    idx = rng.permutation(n)[:count]
    bad = {"nan": np.nan, "posinf": np.inf, "neginf": -np.inf}
    flat = arr.reshape(-1)
    for j, i in enumerate(idx):
        flat[i] = bad[kind] if kind in bad else (np.nan, np.inf, -np.inf)[j % 3]
    return arr


def _expected_nifti(arr: np.ndarray) -> np.ndarray | None:
    vol = arr[0] if arr.ndim == 4 else (arr[np.newaxis] if arr.ndim == 2 else arr)
    vol = vol.astype(np.float32).astype(np.float64)
    finite = np.isfinite(vol)
    if not finite.any():
        return None
    out = vol.copy()
    out[~finite] = vol[finite].min()
    return out


def _nonfinite_case(cid: str, arr: np.ndarray, suffix: str) -> Case:
    import SimpleITK as sitk

    def make(d: Path) -> Path:
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"vol{suffix}"
        sitk.WriteImage(sitk.GetImageFromArray(arr, isVector=False), str(path))
        return path

    exp_arr = _expected_nifti(arr)
    first = (arr[0] if arr.ndim == 4 else arr).astype(np.float32)
    n_bad = int(first.size - np.count_nonzero(np.isfinite(first)))
    if exp_arr is None:
        return Case(cid, "nifti_nrrd_nonfinite", make,
                    error("ImageReadError", "no finite values", note="'contains no finite values'"))
    checks = [values_close(exp_arr)] + ([meta_is("nonfinite_replaced", n_bad)] if n_bad else [])
    return Case(cid, "nifti_nrrd_nonfinite", make, read(all_of(*checks), note="non-finite → minimum, counted in meta"))


def _nifti_cases() -> list[Case]:
    import SimpleITK as sitk

    out = []
    shapes = {"3d": (4, 5, 6), "2d": (7, 9), "4d": (2, 3, 4, 5)}
    for kind in ("nan", "posinf", "neginf", "mixed"):
        for frac in (0.0, 0.001, 0.1, 0.5, 0.99, 1.0):
            for sname, shape in shapes.items():
                for dtype in ("float32", "float64"):
                    for fmt in ("nifti", "nrrd"):
                        if kind != "nan" and frac == 0.0:
                            continue  # identical inputs to the 'nan' control
                        seed = sum(map(ord, f"{kind}{frac}{sname}{dtype}"))
                        arr = _nifti_data(kind, frac, shape, dtype, seed)
                        suffix = ".nrrd" if fmt == "nrrd" else (".nii.gz" if seed % 2 else ".nii")
                        out.append(_nonfinite_case(f"{fmt}/{kind}-{frac:g}-{sname}-{dtype}", arr, suffix))
    # broken NIfTI files
    for cut in (0, 10, 100, 200, 347, 348, 352, 400, 600):
        for gz in (False, True):
            def make_cut(d: Path, cut=cut, gz=gz) -> Path:
                d.mkdir(parents=True, exist_ok=True)
                img = sitk.GetImageFromArray(np.arange(120, dtype=np.float32).reshape(4, 5, 6))
                raw = d / "full.nii"
                sitk.WriteImage(img, str(raw))
                data = raw.read_bytes()[:cut]
                raw.unlink()
                path = d / ("cut.nii.gz" if gz else "cut.nii")
                path.write_bytes(_gzip(data) if gz else data)
                return path

            out.append(Case(f"nifti/truncated-{cut}{'-gz' if gz else ''}", "nifti_corrupt", make_cut,
                            error("ImageReadError", "could not be read")))
    for name, dims in (("dim-negative", (3, -4, 5, 6)), ("dim-zero", (3, 0, 5, 6)), ("ndim-0", (0, 4, 5, 6)),
                       ("ndim-9", (9, 4, 5, 6)), ("gigantic", (3, 30000, 30000, 30000)),
                       ("gigantic-slab", (3, 32000, 32000, 8))):
        for action in ("open", "guarded_open"):
            def make_dim(d: Path, dims=dims) -> Path:
                d.mkdir(parents=True, exist_ok=True)
                img = sitk.GetImageFromArray(np.arange(120, dtype=np.float32).reshape(4, 5, 6))
                path = d / "dims.nii"
                sitk.WriteImage(img, str(path))
                data = bytearray(path.read_bytes())
                vals = list(dims) + [1] * (8 - len(dims))
                data[40:56] = struct.pack("<8h", *vals)
                path.write_bytes(bytes(data))
                return path

            if "gigantic" in name and action == "guarded_open":
                exp = error("MemoryBudgetExceeded", "memory")
            else:
                exp = error("ImageReadError", any_words=("could not be read", "corrupt", "memory", "supported"))
            out.append(Case(f"nifti/header-{name}-{action}", "nifti_corrupt", make_dim, exp, action=action))
    return out


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


# --------------------------------------------------------------------------------------------- NRRD

_NRRD_GOOD = {
    "magic": "NRRD0004", "type": "short", "dimension": "3", "space": "left-posterior-superior", "sizes": "4 5 6",
    "space directions": "(1,0,0) (0,1,0) (0,0,2)", "kinds": "domain domain domain", "endian": "little",
    "encoding": "raw", "space origin": "(0,0,0)",
}
_NRRD_MUTATIONS: list[tuple[str, dict, str]] = [
    ("control", {}, "read"),
    ("magic-missing", {"magic": None}, "error"), ("magic-future", {"magic": "NRRD9999"}, "either"),
    ("magic-garbage", {"magic": "NRRX0004"}, "error"),
    ("type-unknown", {"type": "quaternion"}, "error"), ("type-missing", {"type": None}, "error"),
    ("dimension-zero", {"dimension": "0"}, "error"), ("dimension-negative", {"dimension": "-1"}, "error"),
    ("dimension-text", {"dimension": "three"}, "error"), ("dimension-mismatch", {"dimension": "2"}, "error"),
    ("dimension-5", {"dimension": "5", "sizes": "4 5 6 1 1", "space": None, "space directions": None,
                     "kinds": None, "space origin": None}, "either"),
    ("sizes-missing", {"sizes": None}, "error"), ("sizes-negative", {"sizes": "4 -5 6"}, "error"),
    ("sizes-zero", {"sizes": "4 0 6"}, "error"), ("sizes-text", {"sizes": "a b c"}, "error"),
    ("sizes-too-few", {"sizes": "4 5"}, "error"), ("sizes-too-many-for-data", {"sizes": "40 50 60"}, "error"),
    ("sizes-gigantic", {"sizes": "60000 60000 60000"}, "gigantic"),
    ("sizes-gigantic-2d", {"dimension": "2", "sizes": "60000 60000", "space": None,
                           "space directions": None, "kinds": None, "space origin": None}, "gigantic"),
    ("directions-short", {"space directions": "(1,0) (0,1,0) (0,0,1)"}, "error"),
    ("directions-none", {"space directions": "none none none"}, "either"),
    ("directions-nan", {"space directions": "(nan,0,0) (0,1,0) (0,0,1)"}, "either"),
    ("directions-zero-vector", {"space directions": "(0,0,0) (0,1,0) (0,0,1)"}, "either"),
    ("directions-not-orthogonal", {"space directions": "(1,0,0) (1,1,0) (0,0,1)"}, "either"),
    ("directions-text", {"space directions": "up down left"}, "error"),
    ("spacings-negative", {"space directions": None, "space": None, "space origin": None,
                           "spacings": "-1 1 1"}, "either"),
    ("encoding-unknown", {"encoding": "bzip9"}, "error"),
    ("encoding-gzip-but-raw", {"encoding": "gzip"}, "read"),  # zlib's gzread passes plain data through
    ("endian-middle", {"endian": "middle"}, "either"), ("space-unknown", {"space": "inside-out"}, "error"),
    ("origin-text", {"space origin": "(a,b,c)"}, "either"), ("origin-nan", {"space origin": "(nan,0,0)"}, "either"),
    ("data-truncated", {"_data": "short"}, "error"), ("data-longer", {"_data": "long"}, "either"),
    ("no-blank-line", {"_blank": False}, "error"), ("nul-in-header", {"kinds": "domain\x00 domain domain"}, "either"),
    ("long-line", {"content": "x" * 200_000}, "either"),
    ("detached-missing-data", {"data file": "missing.raw"}, "error"),
]


def _nrrd_bytes(fields: dict, dtype: str, seed: int) -> bytes:
    np_type = {"short": "<i2", "float": "<f4", "uchar": "u1"}[dtype]
    arr = np.random.default_rng(seed).integers(0, 100, size=120).astype(np_type)
    data = arr.tobytes()
    if fields.get("_data") == "short":
        data = data[: len(data) // 2]
    elif fields.get("_data") == "long":
        data += b"\x01" * 64
    lines = []
    for k, v in fields.items():
        if k.startswith("_") or v is None:
            continue
        lines.append(v if k == "magic" else f"{k}: {v}")
    blank = "\n" if fields.get("_blank", True) else ""
    if "data file" in fields:
        return ("\n".join(lines) + "\n").encode("latin-1")
    return ("\n".join(lines) + "\n" + blank).encode("latin-1") + data


def _nrrd_cases() -> list[Case]:
    out = []
    for name, changes, kind in _NRRD_MUTATIONS:
        for dtype in ("short", "float", "uchar"):
            fields = dict(_NRRD_GOOD)
            fields["type"] = dtype
            fields.update(changes)
            seed = sum(map(ord, name + dtype))
            suffix = ".nhdr" if "data file" in changes else ".nrrd"

            def make(d: Path, fields=fields, dtype=dtype, seed=seed, suffix=suffix) -> Path:
                d.mkdir(parents=True, exist_ok=True)
                p = d / f"img{suffix}"
                p.write_bytes(_nrrd_bytes(fields, dtype, seed))
                return p

            np_type = {"short": "<i2", "float": "<f4", "uchar": "u1"}[dtype]
            arr = np.random.default_rng(seed).integers(0, 100, size=120).astype(np_type).astype(float).reshape(6, 5, 4)
            for action in (("open", "guarded_open") if kind == "gigantic" else ("open",)):
                if kind == "read":
                    exp = read(values_close(arr), note="read exactly")
                elif kind == "gigantic":
                    exp = (error("MemoryBudgetExceeded", "memory") if action == "guarded_open"
                           else error("ImageReadError", any_words=("could not be read", "corrupt", "memory")))
                elif kind == "error":
                    exp = error("ImageReadError", "could not be read", note="'could not be read as NIfTI/NRRD'")
                else:
                    exp = either()
                cid = f"nrrd/{name}-{dtype}" + ("-guarded" if action == "guarded_open" else "")
                out.append(Case(cid, "nrrd_corrupt", make, exp, action=action))
    return out


# --------------------------------------------------------------------------------------------- raster


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _save_img(img: Image.Image, path: Path, fmt: str, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    return path


def _raster_cases() -> list[Case]:
    out = []
    rng = rng_for("raster")
    for w, h in ((1, 1), (2, 2), (3, 4), (4, 4), (16, 16), (64, 48), (300, 200), (1, 500)):
        for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg")):
            rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            r16 = rgb.astype(np.int64)
            lum = (r16[..., 0] * 299 + r16[..., 1] * 587 + r16[..., 2] * 114) / 1000.0
            gray = rng.integers(0, 256, size=(h, w), dtype=np.uint8)

            def make_rgb(d: Path, rgb=rgb, fmt=fmt, suffix=suffix) -> Path:
                return _save_img(Image.fromarray(rgb, "RGB"), d / f"photo{suffix}", fmt)

            def make_gray(d: Path, gray=gray, fmt=fmt, suffix=suffix) -> Path:
                return _save_img(Image.fromarray(gray, "L"), d / f"gray{suffix}", fmt)

            rgb_check = all_of(shape_is((1, h, w)), warns("colour"),
                               values_close(lum[np.newaxis], 1.0) if fmt == "PNG" else None)
            out.append(Case(f"raster/rgb-{w}x{h}{suffix}", "raster_not_xray", make_rgb,
                            read(rgb_check, note="colour → luminance + warning")))
            out.append(Case(f"raster/gray-{w}x{h}{suffix}", "raster_not_xray", make_gray,
                            read(all_of(shape_is((1, h, w)),
                                        values_close(gray[np.newaxis].astype(float), 0.0) if fmt == "PNG" else None))))
    for fmt, suffix, modes in (("PNG", ".png", ("LA", "RGBA", "P", "1", "I;16")),
                               ("JPEG", ".jpg", ("CMYK", "YCbCr", "1", "L"))):
        for mode in modes:
            def make_mode(d: Path, mode=mode, fmt=fmt, suffix=suffix) -> Path:
                base = Image.fromarray(np.random.default_rng(5).integers(0, 256, (12, 10, 3), dtype=np.uint8), "RGB")
                img = base.convert(mode) if mode not in ("I;16", "I") else Image.fromarray(
                    (np.arange(120).reshape(12, 10) * (500 if mode == "I;16" else 70000)).astype(
                        np.uint16 if mode == "I;16" else np.int32))
                return _save_img(img, d / f"mode{suffix}", fmt)

            out.append(Case(f"raster/mode-{mode.replace(';', '')}{suffix}", "raster_not_xray", make_mode,
                            either(shape_is((1, 12, 10)), note="read as luminance or refused by the encoder")))
    for frac in (0.05, 0.2, 0.4, 0.6, 0.8, 0.95):
        for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg")):
            def make_cut(d: Path, frac=frac, fmt=fmt, suffix=suffix) -> Path:
                arr = np.random.default_rng(9).integers(0, 256, (64, 64), dtype=np.uint8)
                p = _save_img(Image.fromarray(arr, "L"), d / f"cut{suffix}", fmt)
                data = p.read_bytes()
                p.write_bytes(data[: int(len(data) * frac)])
                return p

            out.append(Case(f"raster/truncated-{frac:g}{suffix}", "raster_not_xray", make_cut,
                            error("ImageReadError", "corrupt or truncated")))
    for suffix in (".png", ".jpg", ".jpeg"):
        def make_empty(d: Path, suffix=suffix) -> Path:
            d.mkdir(parents=True, exist_ok=True)
            (d / f"e{suffix}").write_bytes(b"")
            return d / f"e{suffix}"

        out.append(Case(f"raster/empty{suffix}", "raster_not_xray", make_empty,
                        error("ImageReadError", "corrupt or truncated")))
    for fmt, suffix in (("PNG", ".jpg"), ("JPEG", ".png")):
        def make_swap(d: Path, fmt=fmt, suffix=suffix) -> Path:
            return _save_img(Image.fromarray(np.full((5, 6), 77, np.uint8), "L"), d / f"swap{suffix}", fmt)

        out.append(Case(f"raster/{fmt.lower()}-named{suffix}", "raster_not_xray", make_swap,
                        read(shape_is((1, 5, 6)), note="content sniffed")))
    for orientation in (3, 6, 8):
        def make_exif(d: Path, orientation=orientation) -> Path:
            img = Image.fromarray(np.arange(20, dtype=np.uint8).reshape(4, 5), "L")
            exif = Image.Exif()
            exif[0x0112] = orientation
            return _save_img(img, d / "exif.jpg", "JPEG", exif=exif)

        out.append(Case(f"raster/exif-orientation-{orientation}", "raster_not_xray", make_exif,
                        read(all_of(shape_is((1, 4, 5)), warns("EXIF")), note="stored orientation + warning")))
    for w, h in ((60000, 60000), (100000, 100000), (30000, 30000), (20000, 20000)):
        for action in ("open", "guarded_open"):
            def make_big(d: Path, w=w, h=h) -> Path:
                d.mkdir(parents=True, exist_ok=True)
                (d / "huge.png").write_bytes(_png_header_only(w, h))
                return d / "huge.png"

            exp = (error("MemoryBudgetExceeded", "memory") if action == "guarded_open" and w * h * 4 > 8192 * 2**20
                   else error("ImageReadError", any_words=("corrupt", "truncated", "too large", "memory")))
            out.append(Case(f"raster/gigantic-header-{w}x{h}-{action}", "raster_not_xray", make_big, exp, action=action))
    return out


def cases() -> list[Case]:
    return [*_garbage_cases(), *_nifti_cases(), *_nrrd_cases(), *_raster_cases()]


