"""PNG/JPEG X-rays via Pillow.

Orientation: row 0 is the top row *as stored*; EXIF orientation is deliberately not applied (a
rotated pixel grid would no longer match masks drawn on the stored image) but is reported in
``meta['warnings']``. Colour images are reduced to luminance with a note; 16-bit PNG keeps its range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from inference.errors import ImageReadError
from inference.io.volume import StudyInfo, Volume

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
_EXIF_ORIENTATION = 0x0112


def read_raster(path: Path) -> Volume:
    """Read a PNG/JPEG as a ``(1, H, W)`` float32 volume with unknown pixel spacing."""
    warnings: list[str] = []
    meta: dict = {"spacing_known": False, "warnings": warnings}
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
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
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
