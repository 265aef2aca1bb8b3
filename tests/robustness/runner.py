"""Run corpus cases in worker subprocesses with a per-case timeout; render the summary table.

A case that exceeds its time is recorded as a ``hang`` and its worker is killed; a worker that
dies (segfault, abort, OOM kill) records a ``crash`` for the case it was running. Either way a
fresh worker picks up the remaining cases, so one bad input never stops the run.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from tests.robustness.corpus import Case

REPO = Path(__file__).resolve().parents[2]
CASE_TIMEOUT_S = 30.0
STARTUP_TIMEOUT_S = 120.0


class _Worker:
    def __init__(self, root: Path, log: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.robustness.worker", str(root)], cwd=REPO, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        first = self.lines.get(timeout=STARTUP_TIMEOUT_S)
        if first is None or not json.loads(first).get("ready"):
            raise RuntimeError(f"corpus worker failed to start (see {log})")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def ask(self, case_id: str, timeout: float) -> dict | None | str:
        """The JSON result, ``None`` when the worker died, ``'hang'`` on timeout."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(case_id + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return "hang"
        return None if line is None else json.loads(line)

    def close(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        elif self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _run_list(cases: list[Case], root: Path, timeout: float, results: dict[str, dict], tag: str) -> None:
    log = root / f"worker-{tag}.stderr"
    worker: _Worker | None = None
    for case in cases:
        if worker is None:
            worker = _Worker(root, log)
        t0 = time.perf_counter()
        answer = worker.ask(case.case_id, timeout)
        if isinstance(answer, dict):
            results[case.case_id] = answer
            continue
        if answer == "hang":
            worker.close(kill=True)
            status, detail = "hang", f"no result within {timeout:.0f} s"
        else:
            code = worker.proc.wait()
            worker.close()
            status, detail = "crash", f"worker died (exit code {code})"
        worker = None
        results[case.case_id] = {"id": case.case_id, "category": case.category, "status": status, "verdict": "fail",
                                 "detail": detail, "produces": status.upper(), "seconds": time.perf_counter() - t0}
    if worker is not None:
        worker.close()


def run_cases(cases: list[Case], root: Path, *, workers: int = 1, timeout: float = CASE_TIMEOUT_S) -> dict[str, dict]:
    """Results keyed by case id (every case gets one, whatever happens)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    chunks = [cases[i::workers] for i in range(workers)]
    threads = [threading.Thread(target=_run_list, args=(chunk, root, timeout, results, str(i)))
               for i, chunk in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for case in cases:  # annotate expectation for the report
        r = results[case.case_id]
        r["xfail"] = case.xfail
        r["note"] = case.expect.note
    return results


def summarize(results: dict[str, dict]) -> dict:
    """Counts for the fast test's assertion and the report."""
    status = Counter(r["status"] for r in results.values())
    unexpected = [r for r in results.values() if r["verdict"] != "pass" and not r.get("xfail")]
    return {
        "cases": len(results),
        "passed": sum(r["verdict"] == "pass" for r in results.values()),
        "xfail": sum(bool(r.get("xfail")) and r["verdict"] != "pass" for r in results.values()),
        "xpass": sum(bool(r.get("xfail")) and r["verdict"] == "pass" for r in results.values()),
        "status": dict(status),
        "unexpected_failures": [(r["id"], r.get("detail", "")) for r in unexpected],
        "hangs": [r["id"] for r in results.values() if r["status"] == "hang"],
        "crashes": [r["id"] for r in results.values() if r["status"] == "crash"],
        "unhandled": [r["id"] for r in results.values() if r["status"] == "unhandled"],
    }


def render_table(results: dict[str, dict], *, title_note: str = "") -> str:
    """Markdown: per category tried / passed / known defects (xfail) / failed / what it produces."""
    by_cat: dict[str, list[dict]] = defaultdict(list)
    for r in results.values():
        by_cat[r["category"]].append(r)
    lines = ["| category | cases | passed | known defects (xfail) | other failures | what the cases produce |",
             "|---|---:|---:|---:|---:|---|"]
    total = Counter()
    for cat in sorted(by_cat):
        rs = by_cat[cat]
        passed = sum(r["verdict"] == "pass" for r in rs)
        xf = sum(r["verdict"] != "pass" and bool(r.get("xfail")) for r in rs)
        other = len(rs) - passed - xf
        kinds = Counter(_kind(r) for r in rs)
        produces = "; ".join(f"{k} ×{n}" for k, n in kinds.most_common(4))
        if len(kinds) > 4:
            produces += f"; … ({len(kinds) - 4} more kinds)"
        lines.append(f"| {cat} | {len(rs)} | {passed} | {xf} | {other} | {produces} |")
        total.update(cases=len(rs), passed=passed, xfail=xf, other=other)
    lines.append(f"| **total** | **{total['cases']}** | **{total['passed']}** | **{total['xfail']}** | "
                 f"**{total['other']}** | statuses: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(Counter(r['status'] for r in results.values()).items()))
                 + " |")
    if title_note:
        lines.insert(0, title_note + "\n")
    return "\n".join(lines)


def _kind(r: dict) -> str:
    produces = r.get("produces", r["status"])
    if produces.startswith("read"):
        produces = "read" + (" + warning" if "warns" in produces else "")
    return produces.replace("|", "/")


def render_failures(results: dict[str, dict]) -> str:
    """Markdown list of every case that did not pass, grouped by defect text."""
    groups: dict[str, list[str]] = defaultdict(list)
    for r in sorted(results.values(), key=lambda r: r["id"]):
        if r["verdict"] != "pass":
            key = r.get("xfail") or f"(not yet triaged) {template_detail(r.get('detail', ''))}"
            groups[key].append(r["id"])
    out = []
    for key, ids in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(f"`{i}`" for i in ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
        out.append(f"- **{len(ids)} case(s)** — {key}  \n  e.g. {shown}")
    return "\n".join(out) if out else "- none"


def template_detail(detail: str) -> str:
    from tests.robustness.evaluate import template

    return template(detail)
