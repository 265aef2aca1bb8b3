"""Run one corpus case in-process and judge the outcome (used inside the worker subprocess).

Outcome ``status``: ``read`` / ``error`` (a MedFusionError) / ``unhandled`` (anything else) /
``generator_error`` (the corpus itself failed to write the input). ``verdict`` is ``pass`` when the
outcome matches the case's expectation and the invariants hold.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from inference.errors import MedFusionError
from tests.robustness.corpus import Case, case_dir, error_invariants, volume_invariants


def _action(case: Case, path: Path) -> object:
    if case.action == "open":
        from inference.io.loader import open_image

        return open_image(path, series_uid=case.series_uid)
    if case.action == "guarded_open":
        from inference.io.memory_budget import guarded_open
        from inference.settings import Settings

        return guarded_open(path, Settings(), series_uid=case.series_uid)
    if case.action == "estimate":
        from inference.io.loader import estimate_bytes

        return estimate_bytes(path, series_uid=case.series_uid)
    if case.action == "ehr":
        from tests.robustness.cases_ehr import read_ehr

        return read_ehr(path)
    if case.action == "ehr_labels":
        from tests.robustness.cases_ehr import read_labels

        return read_labels(path)
    raise ValueError(f"unknown action {case.action}")


def template(message: str) -> str:
    """A message with names and numbers blanked, to group outcomes in the report."""
    text = re.sub(r"(/[^\s/']+)+/?", "…", message)  # absolute paths
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\([^)]*\)", "(…)", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:110]


def _describe_result(result: object) -> str:
    from inference.io.volume import Volume

    if isinstance(result, Volume):
        warn = "; warns: " + template(result.meta["warnings"][0]) if result.meta.get("warnings") else ""
        return f"read {result.shape}{warn}"
    if isinstance(result, int):
        return "estimate (bytes)"
    if isinstance(result, list):
        warned = sum(bool(getattr(p, "warnings", None)) for p in result)
        return f"read {len(result)} patients" + (" + warning" if warned else "")
    if isinstance(result, dict):
        return f"read labels for {len(result)} patients"
    return f"read {type(result).__name__}"


def evaluate(case: Case, root: Path) -> dict:
    """Write the case's input, run its action, and judge what happened."""
    d = case_dir(root, case)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    out: dict = {"id": case.case_id, "category": case.category}
    try:
        path = case.make(d)
    except Exception as exc:  # noqa: BLE001 - a bug in the corpus generator, reported as such
        out.update(status="generator_error", verdict="fail", detail=f"generator: {type(exc).__name__}: {exc}",
                   produces="generator error")
        return out
    exp = case.expect
    t0 = time.perf_counter()
    try:
        result = _action(case, path)
    except MedFusionError as exc:
        out["seconds"] = time.perf_counter() - t0
        names = [k.__name__ for k in type(exc).__mro__]
        msg = str(exc)
        out.update(status="error", exc_type=type(exc).__name__, message=msg[:400],
                   produces=f"{type(exc).__name__}: {template(msg)}")
        problem = error_invariants(exc)
        if problem is None and exp.outcome == "read":
            problem = f"expected a reading, got {type(exc).__name__}: {msg}"
        if problem is None and exp.outcome == "error":
            low = msg.lower()
            if exp.error not in names:
                problem = f"expected {exp.error}, got {type(exc).__name__}: {msg}"
            elif missing := [w for w in exp.words if w.lower() not in low]:
                problem = f"message lacks {missing}: {msg}"
            elif exp.any_words and not any(w.lower() in low for w in exp.any_words):
                problem = f"message has none of {list(exp.any_words)}: {msg}"
        out.update(verdict="pass" if problem is None else "fail", detail=problem or "")
        return out
    except BaseException as exc:  # noqa: BLE001 - exactly what the corpus hunts for
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        out["seconds"] = time.perf_counter() - t0
        out.update(status="unhandled", exc_type=type(exc).__name__, message=str(exc)[:400], verdict="fail",
                   detail=f"unhandled {type(exc).__name__}: {str(exc)[:300]}",
                   produces=f"UNHANDLED {type(exc).__name__}")
        return out
    out["seconds"] = time.perf_counter() - t0
    out.update(status="read", produces=_describe_result(result))
    problem = None
    if exp.outcome == "error":
        problem = f"expected {exp.error} ({', '.join(exp.words + exp.any_words)}), got {_describe_result(result)}"
    if problem is None and case.action in ("open", "guarded_open"):
        problem = volume_invariants(result)
    if problem is None and exp.check is not None:
        problem = exp.check(result)
    out.update(verdict="pass" if problem is None else "fail", detail=problem or "")
    return out
