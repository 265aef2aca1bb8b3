"""Benchmarks: timings and quality numbers written into docs/ (never asserted in unit tests)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def replace_section(path: Path, marker: str, body: str, title: str = "") -> None:
    """Put ``body`` between ``<!-- marker:start -->``/``<!-- marker:end -->`` in ``path`` (appended if absent)."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else (f"# {title}\n\n" if title else "")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")


HEADLINES = Path(__file__).with_name("headlines.json")
PERFORMANCE_MD = REPO / "docs" / "performance.md"


def publish(marker: str, lines: list[str], write: bool = True) -> None:
    """Print a benchmark's markdown block and (unless ``--no-write``) put it into docs/performance.md."""
    body = "\n".join(lines)
    print(body)
    if write:
        replace_section(PERFORMANCE_MD, marker, body, "Performance")
SUMMARY_HEADER = (
    "| what | absolute (this machine, loaded) | vs reference, same run | target | measured |",
    "|---|---|---|---|---|",
)


def machine() -> str:
    """One line naming the machine: CPU model, cores, RAM, OS."""
    import os
    import platform

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        ram = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        ram = 0.0
    return f"{model}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, {platform.system()} {platform.release()}"


def record_headline(what: str, absolute: str, ratio: str, target: str = "–", write: bool = True) -> None:
    """Store one summary row (kept in ``benchmarks/headlines.json``; the summary block is rebuilt from it).

    ``write=False`` (a ``--no-write`` run) stores nothing: a trial run must not replace the published rows.
    """
    if not write:
        return
    import json
    import time

    rows = json.loads(HEADLINES.read_text()) if HEADLINES.exists() else {}
    rows[what] = {"absolute": absolute, "ratio": ratio, "target": target, "date": time.strftime("%Y-%m-%d %H:%M")}
    HEADLINES.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")


def write_summary(path: Path = PERFORMANCE_MD, note: str | None = None) -> str:
    """Rebuild the ``summary`` block of docs/performance.md from the recorded headline rows.

    ``note`` (the suite's run line) is stored with the rows; without one the last stored note is kept.
    """
    import json

    rows = json.loads(HEADLINES.read_text()) if HEADLINES.exists() else {}
    if note is not None:
        rows["_note"] = note
        HEADLINES.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    note = rows.pop("_note", "")
    lines = [
        "### Headline numbers (`python -m benchmarks`)", "",
        f"Machine: {machine()}. {note}".rstrip(), "",
        *SUMMARY_HEADER,
        *[f"| {k} | {v['absolute']} | {v['ratio']} | {v['target']} | {v['date']} |" for k, v in rows.items()],
    ]
    body = "\n".join(lines)
    replace_section(path, "summary", body, "Performance")
    return body


def prepare_encoder_cache(home: Path) -> bool:
    """Do in a fresh profile's cache what the first start does (export the ONNX encoder, measure the engine,
    record the torch-free CPU path when ONNX Runtime won), so the probes measure a normal later start.
    True when the torch-free path was recorded."""
    from inference.models.cpu_runtime_export import write_cpu_runtime
    from inference.models.encoder_runtime import settle
    from inference.models.litemedsam import load_litemedsam
    from inference.models.registry import litemedsam_file

    folder = Path(home) / "cache" / "encoder"
    model = load_litemedsam("cpu", runtime="auto", cache_dir=folder)
    settle(model)  # + engine choice
    return write_cpu_runtime(model, folder, litemedsam_file().sha256)
