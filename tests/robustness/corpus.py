"""The robustness corpus: ≥ 1000 malformed or unusual inputs, generated on demand (never committed).

Each :class:`Case` knows how to write its input under a directory (``make``), which API to call
(``action``) and what must happen (``expect``): a specific :class:`MedFusionError` whose message names
the problem, or a reading that passes the volume invariants plus case-specific checks. Cases are
produced by seeded parameter sweeps, so every id is a distinct input and the catalogue is the same on
every machine. ``xfail`` carries the precise defect text for cases the current readers get wrong.

Categories live in ``cases_dicom.py``, ``cases_files.py`` and ``cases_ehr.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

SEED = 20261124
FAST_STRIDE = 10  # the fast tier runs every 10th case of each category

Check = Callable[[object], "str | None"]  # Volume (or EHR table) -> problem description, None when fine


@dataclass(frozen=True)
class Expect:
    """What a case must produce.

    ``outcome``: ``"error"`` (a MedFusionError subclass ``error`` whose message contains every word
    of ``words`` and at least one of ``any_words``), ``"read"`` (a result passing ``check``), or
    ``"either"`` (whichever happens, it must be clean: a specific error or a valid reading).
    """

    outcome: str
    error: str = "MedFusionError"  # class name in inference.errors / loader modules
    words: tuple[str, ...] = ()
    any_words: tuple[str, ...] = ()
    check: Check | None = None
    note: str = ""


@dataclass(frozen=True)
class Case:
    """One input of the corpus."""

    case_id: str
    category: str
    make: Callable[[Path], Path]
    expect: Expect
    action: str = "open"  # open | guarded_open | estimate | ehr
    series_uid: str | None = None
    xfail: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)


def error(cls: str = "ImageReadError", *words: str, any_words: tuple[str, ...] = (), note: str = "") -> Expect:
    return Expect("error", error=cls, words=tuple(words), any_words=any_words, note=note)


def read(check: Check | None = None, note: str = "") -> Expect:
    return Expect("read", check=check, note=note)


def either(check: Check | None = None, note: str = "") -> Expect:
    return Expect("either", check=check, note=note)


# ---------------------------------------------------------------------------------------------
# Volume checks (composable)


def all_of(*checks: Check | None) -> Check:
    def run(vol: object) -> str | None:
        for c in checks:
            if c is not None and (problem := c(vol)):
                return problem
        return None

    return run


def shape_is(shape: tuple[int, int, int]) -> Check:
    return lambda v: None if tuple(v.shape) == tuple(shape) else f"shape {v.shape}, expected {shape}"  # type: ignore[attr-defined]


def values_close(expected: np.ndarray, atol: float = 1e-3) -> Check:
    exp = np.asarray(expected, dtype=np.float64)

    def run(v: object) -> str | None:
        arr = v.array  # type: ignore[attr-defined]
        if arr.shape != exp.shape:
            return f"shape {arr.shape}, expected {exp.shape}"
        err = float(np.max(np.abs(arr.astype(np.float64) - exp))) if arr.size else 0.0
        return None if err <= atol + 1e-6 * float(np.max(np.abs(exp), initial=0)) else f"values differ by {err:.4g}"

    return run


def spacing_close(spacing: tuple[float, float, float], tol: float = 1e-3) -> Check:
    return lambda v: (None if np.allclose(v.spacing, spacing, atol=tol)  # type: ignore[attr-defined]
                      else f"spacing {v.spacing}, expected {spacing}")  # type: ignore[attr-defined]


def warns(word: str) -> Check:
    def run(v: object) -> str | None:
        ws = " | ".join(v.meta.get("warnings", []))  # type: ignore[attr-defined]
        return None if word.lower() in ws.lower() else f"no warning containing '{word}' (warnings: {ws or 'none'})"

    return run


def meta_is(key: str, value: object) -> Check:
    return lambda v: (None if v.meta.get(key) == value  # type: ignore[attr-defined]
                      else f"meta[{key!r}] = {v.meta.get(key)!r}, expected {value!r}")  # type: ignore[attr-defined]


def volume_invariants(vol: object) -> str | None:
    """What every reading must satisfy, whatever the input: finite float32 3-D data, sane geometry."""
    from inference.io.volume import Volume

    if not isinstance(vol, Volume):
        return f"returned {type(vol).__name__}, not a Volume"
    a = vol.array
    if a.dtype != np.float32 or a.ndim != 3 or min(a.shape) < 1:
        return f"array {a.dtype} {a.shape} is not a non-empty float32 3-D array"
    if not np.isfinite(a).all():
        return "array contains NaN/Inf"
    sp = np.asarray(vol.spacing, dtype=float)
    if sp.shape != (3,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        return f"spacing {vol.spacing} is not three positive finite numbers"
    if not np.all(np.isfinite(np.asarray(vol.origin, dtype=float))):
        return f"origin {vol.origin} is not finite"
    d = np.asarray(vol.direction, dtype=float)
    if d.shape != (3, 3) or not np.all(np.isfinite(d)) or abs(np.linalg.det(d)) < 1e-6:
        return "direction is not a finite, non-singular 3x3 matrix"
    if not isinstance(vol.meta.get("warnings", []), list):
        return "meta['warnings'] is not a list"
    return None


def orthonormal(vol: object) -> str | None:
    """DICOM directions come from unit cosines: they must be orthonormal (NRRD may be sheared)."""
    d = np.asarray(vol.direction, dtype=float)  # type: ignore[attr-defined]
    return None if np.all(np.isfinite(d)) and np.allclose(d.T @ d, np.eye(3), atol=1e-3) else "direction not orthonormal"


def error_invariants(exc: BaseException) -> str | None:
    """A user-facing error is one clear sentence, never a traceback or a header dump, and no PHI."""
    from tests.synthetic_dicom import PATIENT_ID, PATIENT_NAME

    text = str(exc)
    if not text.strip():
        return "empty error message"
    if any(p in text for p in (PATIENT_NAME, PATIENT_NAME.replace("^", " "), PATIENT_ID)):
        return f"error message contains the patient's name/ID: {text[:200]!r}"
    if "\n" in text.strip() or "Traceback" in text or len(text) > 600 or "\x00" in text:
        return f"error message is not a single short sentence: {text[:200]!r}"
    return None


# ---------------------------------------------------------------------------------------------
# Catalogue


def rng_for(name: str) -> np.random.Generator:
    """Per-category seeded generator (stable regardless of which other categories exist)."""
    return np.random.default_rng([SEED, sum(ord(c) * (i + 1) for i, c in enumerate(name))])


def build_catalogue() -> list[Case]:
    """All cases, in a stable order (cheap: nothing is written)."""
    from tests.robustness import cases_dicom, cases_ehr, cases_files
    from tests.robustness.known_defects import defect_for

    cases = [*cases_dicom.cases(), *cases_files.cases(), *cases_ehr.cases()]
    if os.environ.get("MEDFUSION_CORPUS_SELFTEST"):
        cases += selftest_cases()
    cases = [replace(c, xfail=reason) if not c.xfail and (reason := defect_for(c.case_id)) else c for c in cases]
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise RuntimeError(f"duplicate case ids: {dupes[:5]}")
    return cases


def selftest_cases() -> list[Case]:
    """Cases that hang / kill the worker, to prove the runner records them and carries on."""
    import time

    def hang(d: Path) -> Path:
        time.sleep(3600)
        return d

    def crash(d: Path) -> Path:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)  # like a segfault or the OOM killer, without a core file
        return d

    def ok(d: Path) -> Path:
        from tests.synthetic_dicom import write_single

        return write_single(d / "ok.dcm")[0]

    return [Case("selftest/hang", "selftest", hang, read()), Case("selftest/crash", "selftest", crash, read()),
            Case("selftest/ok", "selftest", ok, read(shape_is((1, 8, 8))))]


def fast_subset(cases: list[Case]) -> list[Case]:
    """Every FAST_STRIDE-th case of each category, so every category is represented."""
    out: list[Case] = []
    seen: dict[str, int] = {}
    for c in cases:
        k = seen.get(c.category, 0)
        seen[c.category] = k + 1
        if k % FAST_STRIDE == 0:
            out.append(c)
    return out


def case_dir(root: Path, case: Case) -> Path:
    return Path(root) / case.case_id.replace("/", "__")
