"""Refuse an allocation that cannot succeed, before attempting it.

A header that claims 60000×60000 pixels per slice (or a PNG that claims 10⁹ pixels) must give the
user one clear sentence, not a ``MemoryError`` from deep inside NumPy, nor an overcommitted
allocation that the OS kills later. The memory budget in the settings is checked by
``inference.io.memory_budget``; this is the hard floor for callers that skip the guard.
"""

from __future__ import annotations

import os

from inference.errors import ImageReadError


def physical_memory_bytes() -> int | None:
    """Installed RAM, or ``None`` where the platform does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def human_bytes(n: float) -> str:
    """``'40.2 GB'`` style size for messages."""
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def check_allocation(nbytes: int, what: str) -> None:
    """:class:`ImageReadError` ("too large") when ``nbytes`` exceed this computer's memory."""
    ram = physical_memory_bytes()
    if ram is not None and nbytes > ram:
        raise ImageReadError(
            f"The {what} is too large to open: it would need about {human_bytes(nbytes)} of memory, more than "
            f"this computer has ({human_bytes(ram)}); its header may be wrong."
        )
