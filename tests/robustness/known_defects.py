"""Open defects in other modules, found by the corpus: case-id patterns → precise description.

Cases matching a pattern are strict xfails: when the owner fixes the defect the case passes, the
test reports XPASS(strict) and the entry must be deleted here. Keep in sync with docs/robustness.md.

Every defect found so far is fixed (issue 9; the history of what each was is in docs/robustness.md,
"Fixed defects"). Add new findings as ``D_NAME = "module.function: what is wrong; what is expected"``
plus ``(pattern, D_NAME)`` rows in ``KNOWN``.
"""

from __future__ import annotations

from fnmatch import fnmatch

KNOWN: list[tuple[str, str]] = []


def defect_for(case_id: str) -> str:
    """The open defect a case is known to hit, or ``''``."""
    for pattern, reason in KNOWN:
        if fnmatch(case_id, pattern):
            return reason
    return ""
