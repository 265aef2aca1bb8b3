"""Fast tier: every 10th corpus case of each category (≈ 160 inputs), each in a worker subprocess
with a timeout. Zero hangs, zero crashes, and no unhandled exception outside the known defects."""

from __future__ import annotations

import json

import pytest

from tests.robustness.corpus import build_catalogue, fast_subset, selftest_cases
from tests.robustness.runner import render_table, run_cases, summarize

CASES = fast_subset(build_catalogue())


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("corpus_fast")
    results = run_cases(CASES, root, workers=1)
    (root / "summary.json").write_text(json.dumps(summarize(results), indent=1))
    (root / "summary.md").write_text(render_table(results))
    return results


def test_fast_corpus_never_hangs_crashes_or_leaks_exceptions(corpus_results: dict[str, dict]) -> None:
    summary = summarize(corpus_results)
    assert summary["cases"] == len(CASES) >= 100
    assert not summary["hangs"], summary["hangs"]
    assert not summary["crashes"], summary["crashes"]
    known = {cid for cid, r in corpus_results.items() if r.get("xfail")}
    assert not [cid for cid in summary["unhandled"] if cid not in known]
    assert "generator_error" not in summary["status"]
    assert len({r["category"] for r in corpus_results.values()}) >= 15


@pytest.mark.parametrize(
    "case_id",
    [pytest.param(c.case_id, marks=pytest.mark.xfail(strict=True, reason=c.xfail)) if c.xfail else c.case_id
     for c in CASES],
)
def test_case(corpus_results: dict[str, dict], case_id: str) -> None:
    r = corpus_results[case_id]
    assert r["verdict"] == "pass", f"{r['status']}: {r.get('detail')}"


def test_runner_records_hangs_and_crashes_and_carries_on(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("MEDFUSION_CORPUS_SELFTEST", "1")
    cases = selftest_cases()
    results = run_cases(cases, tmp_path, timeout=3.0)
    assert [results[c.case_id]["status"] for c in cases] == ["hang", "crash", "read"]
    assert results["selftest/ok"]["verdict"] == "pass"
