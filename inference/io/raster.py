"""PNG/JPEG X-rays via Pillow.

Orientation: row 0 is the top row *as stored*; EXIF orientation is deliberately not applied (a
rotated pixel grid would no longer match masks drawn on the stored image) but is reported in
``meta['warnings']``. Colour images are reduced to luminance with a note; 16-bit PNG keeps its range.
"""

from __future__ import annotations

import struct
from pathlib import Path

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
            fh.seek(2)
            for _ in range(10000):  # markers before the frame header; bounded against garbage
                marker = fh.read(2)
                if len(marker) < 2 or marker[0] != 0xFF:
                    return None
                if marker[1] in (0x01, 0xFF) or 0xD0 <= marker[1] <= 0xD7:
                    continue
                length = struct.unpack(">H", fh.read(2))[0]
                if marker[1] in _JPEG_SOF:
                    _, height, width = struct.unpack(">BHH", fh.read(5))
                    return width, height
                fh.seek(length - 2, 1)
    except (OSError, struct.error):
        return None
    return None


def read_raster(path: Path) -> Volume:
    """Read a PNG/JPEG as a ``(1, H, W)`` float32 volume with unknown pixel spacing."""
    warnings: list[str] = []
    meta: dict = {"spacing_known": False, "warnings": warnings}
    size = raster_size(path)
    if size is not None:
        check_allocation(size[0] * size[1] * 4, f"image '{path.name}'")
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
