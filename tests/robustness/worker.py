"""Worker subprocess: ``python -m tests.robustness.worker ROOT``; reads case ids on stdin, answers
one JSON line per case on stdout. Runs under an address-space limit so a reader that tries to
allocate a gigantic array fails (MemoryError) instead of swapping the machine to death."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

AS_LIMIT = int(os.environ.get("MEDFUSION_CORPUS_AS_LIMIT", str(6 * 2**30)))


def main(root: str) -> int:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # keep library prints off the protocol channel
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    from tests.robustness.corpus import build_catalogue
    from tests.robustness.evaluate import evaluate

    catalogue = {c.case_id: c for c in build_catalogue()}
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        case_id = line.strip()
        if not case_id:
            continue
        case = catalogue.get(case_id)
        if case is None:
            result = {"id": case_id, "status": "generator_error", "verdict": "fail", "detail": "unknown case id"}
        else:
            result = evaluate(case, Path(root))
        protocol.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
