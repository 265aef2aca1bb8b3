"""PNG/JPEG X-rays via Pillow.

Orientation: row 0 is the top row *as stored*; EXIF orientation is deliberately not applied (a
rotated pixel grid would no longer match masks drawn on the stored image) but is reported in
``meta['warnings']``. Colour images are reduced to luminance with a note; 16-bit PNG keeps its range.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from inference.errors import ImageReadError
from inference.io.limits import check_allocation
from inference.io.volume import StudyInfo, Volume

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
_EXIF_ORIENTATION = 0x0112


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT/JPG/DAC)


def raster_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the PNG/JPEG header alone, without Pillow's decompression-bomb refusal.

    The memory guard needs the claimed size even when it is absurd (to say how absurd); ``None`` when
    the header is not a PNG/JPEG header we can parse.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(24)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head[:2] != b"\xff\xd8":
                return None
            frame = _jpeg_frame_header(fh)
            if frame is None:
                return None
            _, height, width = struct.unpack(">BHH", frame[:5])
            return width, height
    except (OSError, struct.error):
        return None


# Peak bytes per pixel while read_raster decodes (measured with /usr/bin/time on 13000² PNGs: RGB 16.4,
# gray 6.0 above the interpreter): Pillow's decoded image (RGB/RGBA/LA/CMYK use 4 bytes a pixel), the
# copies the conversion makes, and the float32 result.
_PNG_MODE_PEAK = {0: 6, 2: 19, 3: 16, 4: 19, 6: 19}  # by PNG colour type (8-bit samples)
_JPEG_PEAK = {1: 6, 3: 19, 4: 19}  # by number of components


def raster_decode_bytes(path: Path) -> int | None:
    """Peak memory of :func:`read_raster` for this file, from its header alone (``None``: not parseable).

    The float32 result is only a quarter of what decoding a colour image needs (a 13000² RGB PNG: 0.6 GB
    of output, 2.7 GB at the peak), so the memory guard counts this, not the output size.
    """
    size = raster_size(path)
    if size is None:
        return None
    per_pixel = 19
    try:
        with path.open("rb") as fh:
            head = fh.read(26)
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            depth, colour = head[24], head[25]
            per_pixel = 8 if (colour == 0 and depth == 16) else _PNG_MODE_PEAK.get(colour, 19)
        else:
            per_pixel = _JPEG_PEAK.get(_jpeg_components(path) or 3, 19)
    except OSError:
        pass
    return size[0] * size[1] * per_pixel


def _jpeg_frame_header(fh: BinaryIO) -> bytes | None:
    """The first 6 bytes of a JPEG's frame header (precision, height, width, components), found by
    walking the markers after SOI; ``None`` when the walk meets garbage (bounded: 10000 markers).
    May raise ``struct.error`` on a truncated segment length."""
    fh.seek(2)
    for _ in range(10000):
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        if marker[1] in (0x01, 0xFF) or 0xD0 <= marker[1] <= 0xD7:
            continue
        length = struct.unpack(">H", fh.read(2))[0]
        if marker[1] in _JPEG_SOF:
            return fh.read(6)
        fh.seek(length - 2, 1)
    return None


def _jpeg_components(path: Path) -> int | None:
    """Number of colour components from the JPEG frame header (``None``: not found)."""
    try:
        with path.open("rb") as fh:
            frame = _jpeg_frame_header(fh)
            return int(frame[5]) if frame is not None else None
    except (OSError, struct.error, IndexError):
        return None


def read_raster(path: Path) -> Volume:
    """Read a PNG/JPEG as a ``(1, H, W)`` float32 volume with unknown pixel spacing."""
    warnings: list[str] = []
    meta: dict = {"spacing_known": False, "warnings": warnings}
    peak = raster_decode_bytes(path)
    if peak is not None:
        check_allocation(peak, f"image '{path.name}'")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                array = np.asarray(img).astype(np.float32)
            elif mode == "L":
                array = np.asarray(img, dtype=np.uint8).astype(np.float32)
            elif mode in ("1",):
                array = np.asarray(img.convert("L"), dtype=np.uint8).astype(np.float32)
            else:
                rgb = img.convert("RGB")
                channels = np.asarray(rgb, dtype=np.uint8)
                if not (np.array_equal(channels[..., 0], channels[..., 1])
                        and np.array_equal(channels[..., 1], channels[..., 2])):
                    warnings.append(f"colour image ({mode}) converted to grayscale")
                meta["converted_from"] = mode
                array = np.asarray(rgb.convert("L"), dtype=np.uint8).astype(np.float32)
    except Image.DecompressionBombError:
        raise ImageReadError(
            f"The image file '{path.name}' is too large to open (its header claims more than "
            f"{Image.MAX_IMAGE_PIXELS or 0:,} pixels; it may be corrupt)."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"The image file '{path.name}' is corrupt or truncated and could not be read.") from exc
    if orientation not in (1, None):
        meta["exif_orientation"] = int(orientation)
        warnings.append(f"EXIF orientation {orientation} ignored: shown as stored")
    meta["bit_depth"] = 16 if mode.startswith("I") else 8
    return Volume(
        array=np.ascontiguousarray(array[np.newaxis]),
        spacing=(1.0, 1.0, 1.0),
        modality="OT",
        units="",
        info=StudyInfo(modality="OT"),
        source=str(path),
        meta=meta,
    )
