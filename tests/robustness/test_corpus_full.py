"""Slow tier: all corpus cases (≥ 1000); writes the results table into docs/robustness.md."""

from __future__ import annotations

import time

import pytest

from tests.robustness.corpus import build_catalogue
from tests.robustness.report import write_doc
from tests.robustness.runner import run_cases, summarize

pytestmark = pytest.mark.slow
CASES = build_catalogue()


@pytest.fixture(scope="module")
def full_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    t0 = time.perf_counter()
    results = run_cases(CASES, tmp_path_factory.mktemp("corpus_full"), workers=2)
    write_doc(results, time.perf_counter() - t0)
    return results


def test_full_corpus_size_and_safety(full_results: dict[str, dict]) -> None:
    summary = summarize(full_results)
    assert summary["cases"] >= 1000
    assert not summary["hangs"] and not summary["crashes"]
    known = {cid for cid, r in full_results.items() if r.get("xfail")}
    assert not [cid for cid in summary["unhandled"] if cid not in known]
    assert "generator_error" not in summary["status"]


@pytest.mark.parametrize(
    "case_id",
    [pytest.param(c.case_id, marks=pytest.mark.xfail(strict=True, reason=c.xfail)) if c.xfail else c.case_id
     for c in CASES],
)
def test_case(full_results: dict[str, dict], case_id: str) -> None:
    r = full_results[case_id]
    assert r["verdict"] == "pass", f"{r['status']}: {r.get('detail')}"
