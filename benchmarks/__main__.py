"""``python -m benchmarks`` (or ``all``) runs the CPU suite and rewrites docs/performance.md;
``python -m benchmarks NAME [args]`` runs ``benchmarks/NAME.py``'s ``main(argv)`` alone.

The suite uses small counts so it finishes in under 10 minutes on 2 idle CPU cores; ``seg_quality`` (Dice
on all shared data, ~10 min by itself) is not part of it. Every benchmark writes its own block of
docs/performance.md and its headline row; the summary block at the top is rebuilt at the end.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path

# (module, argv) in run order: cheap ones first, the UI/memory probes (own processes) last.
SUITE: tuple[tuple[str, list[str]], ...] = (
    ("sequence_models", []),
    ("io_load", ["--repeats", "5", "--slices", "150"]),
    ("segmentation", ["--repeats", "8"]),
    ("encoder_variants", ["--repeats", "3", "--slices", "3"]),
    ("propagation", ["--slices", "50"]),
    ("predict", ["--patients", "3"]),
    ("explain", ["--repeats", "1"]),
    ("ui", []),
    ("memory", ["--slices", "300"]),
)


def run_suite(extra: list[str]) -> int:
    """Every benchmark of SUITE in this process; a failing one is reported and the rest still run."""
    from benchmarks import write_summary

    no_write = "--no-write" in extra
    failed: list[str] = []
    started = time.perf_counter()
    cpu0 = os.times()
    for name, argv in SUITE:
        print(f"\n=== {name} {' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        try:
            rc = int(importlib.import_module(f"benchmarks.{name}").main(argv + extra) or 0)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' numbers
            traceback.print_exc()
            rc = 1
        if rc:
            failed.append(name)
        print(f"=== {name}: {'ok' if not rc else 'FAILED'} in {time.perf_counter() - t0:.0f} s", flush=True)
    total = time.perf_counter() - started
    cpu = os.times()
    busy = (cpu.user - cpu0.user) + (cpu.system - cpu0.system) + (cpu.children_user - cpu0.children_user) + (
        cpu.children_system - cpu0.children_system)
    load = os.getloadavg()[1]
    note = (f"Suite run {time.strftime('%Y-%m-%d %H:%M')}: {total / 60:.1f} min wall, {busy / 60:.1f} min CPU of "
            f"this suite; 5-min load average {load:.1f} on {os.cpu_count()} cores (the machine was shared with "
            "other jobs, so absolute times are inflated: compare the ratios, each measured in the same run).")
    if not no_write:
        print(write_summary(note=note))
    print(f"\nsuite: {total:.0f} s wall; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")
    )
    if not argv or argv[0] == "all" or argv[0].startswith("--"):
        return run_suite(argv[1:] if argv and argv[0] == "all" else argv)
    if argv[0] not in names:
        print(f"usage: python -m benchmarks [all|{'|'.join(names)}] [args]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{argv[0]}")
    rc = int(module.main(argv[1:]) or 0)
    if rc == 0 and "--no-write" not in argv:
        from benchmarks import write_summary

        write_summary()
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
