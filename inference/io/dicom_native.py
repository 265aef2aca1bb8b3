"""Fast path for uncompressed slices: read the pixel bytes straight into the volume.

pydicom parses the whole file a second time (after the header scan) and builds Python objects for
every element just to hand back the pixel bytes; for a 150-slice uncompressed CT that doubles the load
time. Here the pixel data of a little-endian, single-frame, grayscale slice is read from the end of the
file (where Part 10 files keep it) into a small buffer, and converted to float32 in place — numpy and
file reads release the GIL, so the reader's thread pool runs them in parallel.

The fast path is taken only when the file proves its layout: the 8 or 12 bytes right before the last
``needed`` bytes must be the Pixel Data element header (tag, VR, exact length). Anything else — trailing
padding, a wrong length, a truncated file, big endian, colour, several frames, a Modality LUT — returns
``False`` and the caller decodes with pydicom as before, so every robustness rule still applies there.
The values equal pydicom's (same unused-bit correction, same float32 rescale), which the tests check.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from inference.io.dicom_pixels import number_of_frames, rescale_params, transfer_syntax

_PIXEL_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
_DTYPES = {(8, 0): np.uint8, (8, 1): np.int8, (16, 0): np.uint16, (16, 1): np.int16, (32, 0): np.uint32,
           (32, 1): np.int32}


def _layout(header: Dataset, name: str) -> tuple[type, int, bool, int] | None:
    """(dtype, bits stored, explicit VR?, pixel count) when the slice qualifies for the fast path, else None."""
    try:
        uid = transfer_syntax(header)
        if uid not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            return None
        if str(header.get("PhotometricInterpretation", "")) != "MONOCHROME2" or "ModalityLUTSequence" in header:
            return None
        if int(header.get("SamplesPerPixel", 1) or 1) != 1 or number_of_frames(header, name) != 1:
            return None
        bits = int(header.BitsAllocated)
        stored = int(header.get("BitsStored", bits) or bits)
        dtype = _DTYPES.get((bits, int(header.get("PixelRepresentation", 0) or 0)))
        rows, cols = int(header.Rows), int(header.Columns)
    except (AttributeError, TypeError, ValueError):
        return None
    if dtype is None or not 0 < stored <= bits or rows <= 0 or cols <= 0:
        return None
    return dtype, stored, uid == ExplicitVRLittleEndian, rows * cols


def _element_header_matches(head: bytes, explicit: bool, length: int) -> bool:
    if explicit:
        return (head[:4] == _PIXEL_TAG and head[4:6] in (b"OW", b"OB") and head[6:8] == b"\x00\x00"
                and struct.unpack("<I", head[8:12])[0] == length)
    return head[:4] == _PIXEL_TAG and struct.unpack("<I", head[4:8])[0] == length


def read_native_slice(path: Path, header: Dataset, out: np.ndarray) -> bool:
    """Write the slice's float32 modality values into ``out`` (rows × cols); ``False`` when not applicable.

    Raises only what :func:`rescale_params` raises (an invalid rescale tag); I/O problems return ``False``
    so that pydicom reports them with the usual messages.
    """
    layout = _layout(header, path.name)
    if layout is None or out.dtype != np.float32 or out.size != layout[3]:
        return False
    dtype, stored_bits, explicit, count = layout
    slope, intercept = rescale_params(header, path.name)
    needed = count * np.dtype(dtype).itemsize
    head_size = 12 if explicit else 8
    raw: np.ndarray = np.empty(count, dtype=dtype)
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            for length in (needed, needed + 1):  # odd 8-bit data is padded to an even length
                start = size - length - head_size
                if start < 0:
                    continue
                fh.seek(start)
                if _element_header_matches(fh.read(head_size), explicit, length):
                    break
            else:
                return False
            if fh.readinto(raw.data.cast("B")) != needed:
                return False
    except OSError:
        return False
    shift = raw.dtype.itemsize * 8 - stored_bits
    if shift:  # as pydicom: drop bits above BitsStored (sign-extending signed data)
        np.left_shift(raw, shift, out=raw)
        np.right_shift(raw, shift, out=raw)
    target = out.reshape(-1)
    target[...] = raw
    if slope != 1.0 or intercept != 0.0:
        target *= np.float32(slope)
        target += np.float32(intercept)
    return True
