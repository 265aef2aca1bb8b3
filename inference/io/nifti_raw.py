"""What SimpleITK's NIfTI reader hides: truncated voxel data and NaN/Inf voxels.

SimpleITK (ITK's NIfTI IO) pads a file whose voxel data is cut short with zeros and turns NaN/Inf
voxels into 0, so neither "this file is corrupt" nor "these voxels were not numbers" reaches the
user. This module reads the NIfTI-1/-2 header itself, checks the data length, and for float data
finds the non-finite voxels in the raw bytes, so ``sitk_io`` can apply the documented policy
(replace by the minimum, count in ``meta['nonfinite_replaced']``, refuse when nothing is finite).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.errors import ImageReadError

_FLOAT_TYPES = {16: "f4", 64: "f8"}  # NIfTI datatype codes that can hold NaN/Inf
_CHUNK = 16 * 2**20


@dataclass(frozen=True)
class NiftiHeader:
    """The fields needed to locate the voxel data."""

    dims: tuple[int, ...]  # dim[1..dim[0]]
    datatype: int
    bitpix: int
    vox_offset: int
    endian: str  # '<' or '>'

    @property
    def data_bytes(self) -> int:
        return int(np.prod(self.dims, dtype=object)) * self.bitpix // 8

    @property
    def first_volume(self) -> tuple[int, int, int]:
        """(nz, ny, nx) of the first 3-D volume (what ``sitk_io`` shows)."""
        d = list(self.dims[:3]) + [1] * (3 - min(len(self.dims), 3))
        return d[2], d[1], d[0]


def _open(path: Path, gz: bool):  # noqa: ANN202 - binary file object
    return gzip.open(path, "rb") if gz else path.open("rb")


def read_header(path: Path, gz: bool) -> NiftiHeader | None:
    """The header of a single-file NIfTI-1/-2, or ``None`` when it is not one we can interpret."""
    try:
        with _open(path, gz) as fh:
            raw = fh.read(540)
    except (OSError, EOFError, zlib.error):
        return None
    if len(raw) < 348:
        return None
    for endian in ("<", ">"):
        size = struct.unpack(endian + "i", raw[:4])[0]
        if size == 348 and raw[344:347] == b"n+1":
            ndim, *rest = struct.unpack(endian + "8h", raw[40:56])
            datatype, bitpix = struct.unpack(endian + "2h", raw[70:74])
            offset = struct.unpack(endian + "f", raw[108:112])[0]
            break
        if size == 540 and len(raw) >= 540 and raw[4:7] == b"n+2":
            datatype, bitpix = struct.unpack(endian + "2h", raw[12:16])
            ndim, *rest = struct.unpack(endian + "8q", raw[16:80])
            offset = struct.unpack(endian + "q", raw[168:176])[0]
            break
    else:
        return None
    if not 1 <= ndim <= 7 or bitpix <= 0 or bitpix % 8 or not np.isfinite(offset) or offset < 0:
        return None
    dims = tuple(int(v) for v in rest[:ndim])
    if any(v <= 0 for v in dims):
        return None
    return NiftiHeader(dims, int(datatype), int(bitpix), int(offset), endian)


def _gzip_length_at_least(path: Path, needed: int) -> bool:
    """Whether a .gz holds ≥ ``needed`` bytes: the ISIZE trailer answers fast, else count by streaming."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        if fh.tell() >= 4:
            fh.seek(-4, 2)
            isize = struct.unpack("<I", fh.read(4))[0]
            if needed < 2**32 and isize >= needed:
                return True
    total = 0
    try:
        with gzip.open(path, "rb") as gz:
            while total < needed:
                block = gz.read(_CHUNK)
                if not block:
                    break
                total += len(block)
    except (OSError, EOFError, zlib.error):
        return False
    return total >= needed


def check_complete(path: Path, header: NiftiHeader, gz: bool) -> None:
    """:class:`ImageReadError` when the file ends before its voxel data does (SimpleITK would pad with 0)."""
    needed = header.vox_offset + header.data_bytes
    complete = _gzip_length_at_least(path, needed) if gz else path.stat().st_size >= needed
    if not complete:
        raise ImageReadError(
            f"The file '{path.name}' could not be read as NIfTI: its voxel data is truncated or corrupt."
        )


def nonfinite_mask(path: Path, header: NiftiHeader, gz: bool) -> np.ndarray | None:
    """Boolean ``(nz, ny, nx)`` mask of NaN/Inf voxels in the first volume (``None``: not float data)."""
    code = _FLOAT_TYPES.get(header.datatype)
    if code is None or np.dtype(code).itemsize * 8 != header.bitpix or len(header.dims) > 4:
        return None
    dtype = np.dtype(header.endian + code)
    shape = header.first_volume
    count = int(np.prod(shape))
    mask = np.empty(count, dtype=bool)
    per_chunk = max(_CHUNK // dtype.itemsize, 1)
    done = 0
    try:
        with _open(path, gz) as fh:
            fh.seek(header.vox_offset)
            while done < count:
                n = min(per_chunk, count - done)
                block = fh.read(n * dtype.itemsize)
                if len(block) != n * dtype.itemsize:
                    break
                mask[done:done + n] = ~np.isfinite(np.frombuffer(block, dtype=dtype))
                done += n
    except (OSError, EOFError, zlib.error):
        pass
    if done < count:
        raise ImageReadError(
            f"The file '{path.name}' could not be read as NIfTI: its voxel data is truncated or corrupt."
        )
    return mask.reshape(shape)
