"""DICOM corpus part 2: mixed folders, gantry tilt/oblique, non-square pixels, bit depths, colour and
multi-frame images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests import synthetic_dicom as b
from tests import synthetic_dicom as sd
from tests.robustness.corpus import (
    Case,
    all_of,
    either,
    error,
    read,
    rng_for,
    shape_is,
    spacing_close,
    values_close,
    warns,
)

# --------------------------------------------------------------------------------------------- mixed folders


def _mixed_cases() -> list[Case]:
    out = []
    for k in (2, 3, 4):
        for n in (1, 2, 3, 4):
            for with_sr in (False, True):
                def make(d: Path, k: int = k, n: int = n, with_sr: bool = with_sr) -> Path:
                    for s in range(k):
                        b.write_series(d / "f" / f"sub{s}", n=n, series=str(s + 1), description=f"series {s}",
                                       seed=s, z_positions=[3.0 * j for j in range(n)])
                    if with_sr:
                        sd.write_non_image(d / "f" / "report.dcm")
                    return d / "f"

                tag = f"{k}series-{n}slices{'-sr' if with_sr else ''}"
                out.append(Case(f"mixed/{tag}", "dicom_mixed_series", make,
                                error("SeriesSelectionRequired", f"{k} image series", note="asks which series")))
                stored = b.marker_values(n, 8, 8, k - 1)
                out.append(Case(f"mixed/{tag}-chosen", "dicom_mixed_series", make,
                                read(all_of(values_close(stored - 1024.0), spacing_close((0.7, 0.7, 3.0 if n > 1 else 2.0)))),
                                series_uid=b.uid(2, k)))
    for n in (2, 3, 4, 5):
        for angle in (90, 45, 10):
            def make_orient(d: Path, n: int = n, angle: int = angle) -> Path:
                b.write_series(d / "f", n=n, seed=1)
                a = np.deg2rad(angle)
                iop = (1, 0, 0, 0, float(np.cos(a)), float(np.sin(a)))
                b.write_series(d / "f" / "other", n=n, seed=2, iop=iop, z_positions=[2.0 * j + 50 for j in range(n)])
                return d / "f"

            out.append(Case(f"mixed/orientations-n{n}-{angle}deg", "dicom_mixed_series", make_orient,
                            error("ImageReadError", "mixes slice orientations")))
    for n in (2, 3, 4, 5):
        def make_sizes(d: Path, n: int = n) -> Path:
            b.write_series(d / "f", n=n, seed=1)
            b.write_series(d / "f" / "x", n=1, rows=10, cols=10, z_positions=[2.0 * n])
            return d / "f"

        out.append(Case(f"mixed/sizes-n{n}", "dicom_mixed_series", make_sizes,
                        error("ImageReadError", "different sizes")))

        def make_ps(d: Path, n: int = n) -> Path:
            b.write_series(d / "f", n=n, seed=1)
            b.write_series(d / "f" / "x", n=1, pixel_spacing=(0.9, 0.9), z_positions=[2.0 * n])
            return d / "f"

        out.append(Case(f"mixed/pixelspacing-n{n}", "dicom_mixed_series", make_ps,
                        error("ImageReadError", "different PixelSpacing")))
    for j in range(6):
        def make_junk(d: Path, j: int = j) -> Path:
            b.write_series(d / "f", n=3, seed=1)
            rng = np.random.default_rng(j)
            (d / "f" / "README.txt").write_text("export notes")
            (d / "f" / f"blob{j}").write_bytes(rng.bytes(64 + 100 * j))
            (d / "f" / ".hidden").write_bytes(b"x")
            (d / "f" / "DICOMDIR").write_bytes(rng.bytes(50))
            return d / "f"

        out.append(Case(f"mixed/junk-files-{j}", "dicom_mixed_series", make_junk,
                        read(shape_is((3, 8, 8)), note="junk ignored")))

    def only_sr(d: Path) -> Path:
        sd.write_non_image(d / "f" / "a.dcm")
        sd.write_non_image(d / "f" / "b.dcm", modality="SEG")
        return d / "f"

    out.append(Case("mixed/only-non-image", "dicom_mixed_series", only_sr,
                    error("UnsupportedInputError", "non-image")))

    def empty(d: Path) -> Path:
        (d / "f").mkdir(parents=True)
        return d / "f"

    out.append(Case("mixed/empty-folder", "dicom_mixed_series", empty, error("ImageReadError", "is empty")))

    def only_junk(d: Path) -> Path:
        (d / "f").mkdir(parents=True)
        (d / "f" / "x.bin").write_bytes(b"\x00" * 300)
        return d / "f"

    out.append(Case("mixed/only-junk", "dicom_mixed_series", only_junk, error("ImageReadError", "no DICOM")))

    def wrong_uid(d: Path) -> Path:
        b.write_series(d / "f", n=2)
        return d / "f"

    out.append(Case("mixed/unknown-series-uid", "dicom_mixed_series", wrong_uid,
                    error("ImageReadError", "no image series with UID"), series_uid="9.9.9"))
    for k in (2, 3):
        def blank_uids(d: Path, k: int = k) -> Path:
            for s in range(k):
                b.write_series(d / "f" / str(s), n=2, series=str(s + 1), seed=s,
                               mutate=lambda ds, z: setattr(ds, "SeriesInstanceUID", ""))
            return d / "f"

        out.append(Case(f"mixed/blank-series-uids-{k}", "dicom_mixed_series", blank_uids,
                        error("SeriesSelectionRequired", f"{k} image series")))
    return out


# --------------------------------------------------------------------------------------------- geometry


def _geometry_cases() -> list[Case]:
    out = []
    for angle in (0.5, 1, 2, 3, 5, 7, 10, 12, 15, 20, 25, 30):
        for n in (3, 5):
            def make(d: Path, angle: float = angle, n: int = n) -> Path:
                t = np.tan(np.deg2rad(angle))
                pos = [np.array([0.0, 2.0 * k * t, 2.0 * k]) for k in range(n)]
                b.write_series(d / "s", n=n, positions=pos, seed=n)
                return d / "s"

            out.append(Case(f"geometry/gantry-tilt-{angle:g}deg-n{n}", "dicom_gantry_oblique", make,
                            read(all_of(shape_is((n, 8, 8)), warns("gantry tilt")),
                                 note="loads with a 'sheared (gantry tilt)' warning")))
    rng = rng_for("oblique")
    for j in range(16):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        iop = tuple(float(v) for v in np.concatenate([rot[:, 0], rot[:, 1]]))

        def check(v: object, rot: np.ndarray = rot) -> str | None:
            d = np.asarray(v.direction)  # type: ignore[attr-defined]
            return None if np.allclose(d, rot, atol=1e-4) else "direction does not match the IOP cosines"

        def make_obl(d: Path, iop: tuple = iop) -> Path:
            b.write_series(d / "s", n=4, iop=iop, seed=5)
            return d / "s"

        out.append(Case(f"geometry/oblique-{j:02d}", "dicom_gantry_oblique", make_obl,
                        read(all_of(check, spacing_close((0.7, 0.7, 2.0))), note="direction = IOP cosines")))
    return out


def _non_square_cases() -> list[Case]:
    out = []
    values = (0.1, 0.35, 0.5, 0.7, 1.0, 2.5, 5.0)
    i = 0
    for r in values:
        for c in values:
            if r == c:
                continue
            rows, cols = 6 + i % 5, 9 + i % 3
            scope = "series" if i % 2 else "single"
            n = 3 if scope == "series" else 1

            def make(d: Path, r: float = r, c: float = c, rows: int = rows, cols: int = cols, n: int = n) -> Path:
                files, _ = b.write_series(d / "s", n=n, rows=rows, cols=cols, pixel_spacing=(r, c), seed=2)
                return d / "s" if n > 1 else files[0]

            out.append(Case(f"nonsquare/row{r:g}-col{c:g}-{rows}x{cols}-{scope}", "dicom_non_square_pixels", make,
                            read(all_of(shape_is((n, rows, cols)), spacing_close((c, r, 2.0 if n > 1 else 2.0))),
                                 note="spacing (x=column, y=row)")))
            i += 1
    return out


# --------------------------------------------------------------------------------------------- bit depth


def _bits_cases() -> list[Case]:
    out = []
    combos = [(8, 8), (8, 6), (16, 10), (16, 12), (16, 14), (16, 16), (32, 24), (32, 32)]
    for alloc, stored_bits in combos:
        for signed in (False, True):
            for photometric in ("MONOCHROME2", "MONOCHROME1"):
                for slope, intercept in ((1.0, 0.0), (2.0, -100.0)):
                    rng = np.random.default_rng([alloc, stored_bits, signed, slope > 1])
                    lo, hi = (-(2 ** (stored_bits - 1)), 2 ** (stored_bits - 1) - 1) if signed else (0, 2**stored_bits - 1)
                    stored = rng.integers(lo, hi, size=(5, 6), endpoint=True)
                    stored[0, 0], stored[0, 1] = lo, hi
                    values = stored * slope + intercept
                    if photometric == "MONOCHROME1":
                        a, c = lo * slope + intercept, hi * slope + intercept
                        values = min(a, c) + max(a, c) - values

                    def make(d: Path, alloc=alloc, stored_bits=stored_bits, signed=signed, photometric=photometric,
                             slope=slope, intercept=intercept, stored=stored) -> Path:
                        ds = b.base(rows=5, cols=6, modality="OT", sop_class=b.SC)
                        ds.BitsAllocated, ds.BitsStored, ds.HighBit = alloc, stored_bits, stored_bits - 1
                        ds.PixelRepresentation = int(signed)
                        ds.PhotometricInterpretation = photometric
                        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
                        b.set_pixels(ds, stored)
                        return b.save(ds, d / "img.dcm")

                    cid = (f"bits/{alloc}alloc-{stored_bits}stored-{'signed' if signed else 'unsigned'}-"
                           f"{photometric.lower()}-slope{slope:g}")
                    out.append(Case(cid, "dicom_bit_depth", make,
                                    read(values_close(values[np.newaxis]), note="exact modality values")))
    return out


# --------------------------------------------------------------------------------------------- colour / frames


def _rgb(d: Path, rows: int, cols: int, planar: int, bits: int, seed: int) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 2**bits - 1, size=(rows, cols, 3), endpoint=True)
    ds = b.base(rows=rows, cols=cols, modality="OT", sop_class=b.SC)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", planar
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    arr = rgb.transpose(2, 0, 1) if planar else rgb
    b.set_pixels(ds, arr)
    lum = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return b.save(ds, d / "rgb.dcm"), lum


def _frames(d: Path, k: int, *, enhanced: bool, seed: int, missing_pos: bool = False, claim: int | None = None,
            photometric: str = "MONOCHROME2") -> Path:
    stored = b.marker_values(k, 6, 7, seed)
    ds = b.base(rows=6, cols=7, modality="CT", sop_class=b.ENHANCED_CT if enhanced else b.SC)
    ds.NumberOfFrames = claim if claim is not None else k
    ds.PhotometricInterpretation = photometric
    if enhanced:
        perm = np.random.default_rng(seed).permutation(k)
        items = []
        for f in range(k):
            item = Dataset()
            pos = Dataset()
            pos.ImagePositionPatient = ["0", "0", f"{2.0 * perm[f]:g}"]
            if not (missing_pos and f == k // 2):
                item.PlanePositionSequence = Sequence([pos])
            items.append(item)
        ds.PerFrameFunctionalGroupsSequence = Sequence(items)
        shared = Dataset()
        ori, meas = Dataset(), Dataset()
        ori.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        meas.PixelSpacing = ["0.5", "0.5"]
        shared.PlaneOrientationSequence = Sequence([ori])
        shared.PixelMeasuresSequence = Sequence([meas])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        stored[:, 0, 0] = perm * 100 + 50  # frame f lies at z rank perm[f]
    else:
        ds.SliceThickness = "1.5"
    b.set_pixels(ds, stored)
    return b.save(ds, d / "mf.dcm")


def _colour_frame_cases() -> list[Case]:
    out = []
    for rows, cols in ((4, 4), (7, 5), (16, 16)):
        for planar in (0, 1):
            for bits in (8, 16):
                seed = rows * 100 + cols * 10 + planar + bits
                rng = np.random.default_rng(seed)
                rgb = rng.integers(0, 2**bits - 1, size=(rows, cols, 3), endpoint=True)
                lum = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114

                def make(d: Path, rows=rows, cols=cols, planar=planar, bits=bits, seed=seed) -> Path:
                    return _rgb(d, rows, cols, planar, bits, seed)[0]

                out.append(Case(f"colour/rgb-{rows}x{cols}-planar{planar}-{bits}bit", "dicom_colour_multiframe", make,
                                read(values_close(lum[np.newaxis], 0.01), note="RGB → luminance")))
    for k in range(2, 12):
        stored = b.marker_values(k, 6, 7, k)
        out.append(Case(f"frames/legacy-{k}", "dicom_colour_multiframe",
                        lambda d, k=k: _frames(d, k, enhanced=False, seed=k),
                        read(all_of(values_close(stored.astype(float)), spacing_close((1.0, 1.0, 1.5))),
                             note="frames in stored order")))
    for k in range(2, 9):
        out.append(Case(f"frames/enhanced-shuffled-{k}", "dicom_colour_multiframe",
                        lambda d, k=k: _frames(d, k, enhanced=True, seed=k),
                        read(all_of(lambda v, k=k: None if list(v.array[:, 0, 0]) == [100.0 * j + 50 for j in range(k)]
                                    else f"frame order {list(v.array[:, 0, 0])}", spacing_close((0.5, 0.5, 2.0))),
                             note="frames sorted by position")))
        out.append(Case(f"frames/enhanced-missing-position-{k}", "dicom_colour_multiframe",
                        lambda d, k=k: _frames(d, k, enhanced=True, seed=k, missing_pos=True),
                        read(all_of(shape_is((k, 6, 7)), warns("1 mm")), note="stored order, 1 mm + warning")))
    for k in range(2, 7):
        out.append(Case(f"frames/claims-more-{k}", "dicom_colour_multiframe",
                        lambda d, k=k: _frames(d, k, enhanced=False, seed=k, claim=k + 3),
                        error("ImageReadError", any_words=("truncated", "corrupt"))))
        out.append(Case(f"frames/claims-fewer-{k}", "dicom_colour_multiframe",
                        lambda d, k=k: _frames(d, k + 2, enhanced=False, seed=k, claim=k), either()))
        stored = b.marker_values(k, 6, 7, k).astype(float)
        out.append(Case(f"frames/monochrome1-{k}", "dicom_colour_multiframe",
                        lambda d, k=k: _frames(d, k, enhanced=False, seed=k, photometric="MONOCHROME1"),
                        read(values_close(65535.0 - stored), note="inverted")))
    for claim in ("0", "-1", "abc"):
        out.append(Case(f"frames/numberofframes-{claim}", "dicom_colour_multiframe",
                        lambda d, claim=claim: _bad_frames(d, claim), either()))
    for name, photometric in (("ybr-full", "YBR_FULL"), ("ybr-full-422", "YBR_FULL_422"), ("palette", "PALETTE COLOR")):
        def make_col(d: Path, photometric=photometric) -> Path:
            path, _ = _rgb(d, 6, 6, 0, 8, 3)
            from pydicom import dcmread
            ds = dcmread(path)
            ds.PhotometricInterpretation = photometric
            if photometric == "PALETTE COLOR":
                ds.SamplesPerPixel = 1
            ds.save_as(path)
            return path

        out.append(Case(f"colour/{name}", "dicom_colour_multiframe", make_col, either()))
    return out


def _bad_frames(d: Path, claim: str) -> Path:
    path = _frames(d, 2, enhanced=False, seed=1, claim=77)
    data = path.read_bytes().replace(b"77", claim.encode().ljust(2)[:2] if len(claim) <= 2 else b"ab", 1)
    path.write_bytes(data)
    return path


def cases() -> list[Case]:
    return [*_mixed_cases(), *_geometry_cases(), *_non_square_cases(), *_bits_cases(), *_colour_frame_cases()]


__all__ = ["cases", "either", "rng_for"]
