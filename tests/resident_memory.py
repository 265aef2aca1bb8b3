"""Resident memory of the current process, for tests that check what a change keeps resident (Linux only).

Light on purpose: child processes started by the tests import it before anything they measure.
"""

from __future__ import annotations

from pathlib import Path


def resident_mib() -> float:
    """VmRSS from /proc/self/status, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")
