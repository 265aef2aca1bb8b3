"""Run the whole robustness corpus and write the results table into docs/robustness.md.

    .venv/bin/python scripts/robustness_report.py [--workers 2] [--keep DIR]

Exit status 1 when a case fails that is not a known (documented) defect, or anything hangs/crashes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.robustness.corpus import build_catalogue  # noqa: E402
from tests.robustness.report import write_doc  # noqa: E402
from tests.robustness.runner import run_cases, summarize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="write the inputs here (default: temp dir, deleted)")
    args = parser.parse_args(argv)
    cases = build_catalogue()
    with tempfile.TemporaryDirectory(prefix="medfusion-corpus-") as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        results = run_cases(cases, root, workers=args.workers)
        seconds = time.perf_counter() - t0
    doc = write_doc(results, seconds)
    s = summarize(results)
    print(f"{s['cases']} cases in {seconds:.0f} s: {s['passed']} passed, {s['xfail']} known defects, "
          f"{len(s['unexpected_failures'])} unexpected failures; statuses {s['status']}; table in {doc}")
    for cid, detail in s["unexpected_failures"]:
        print(f"  FAIL {cid}: {detail}")
    bad = s["unexpected_failures"] or s["hangs"] or s["crashes"] or s["xpass"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
