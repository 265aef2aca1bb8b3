"""The encoder engine is chosen by measurement on this machine, cached, and the cache file is untrusted.

Unit tests with stand-in engines on a simulated clock (each call advances it by a fixed cost), so the
decision logic is tested without timing anything; the real engines are covered in ``test_encoder_variants.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from inference.models import engine_choice
from inference.models.engine_choice import (
    CHOICE_FILE,
    EngineConfig,
    candidates,
    choose_engine,
    decide,
    fingerprint,
    read_choice,
)

OPTIONS = candidates(2, onnx_available=True)  # onnx-all-2t (default), fused-2t, onnx-all-1t
COST_MS = {"onnx-all-2t": 6.0, "fused-2t": 2.0, "onnx-all-1t": 12.0}


class Clock:
    """Simulated seconds; a stand-in engine call advances it by its cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def engine(self, ms: float, counter: list[str] | None = None, name: str = "") -> Callable[[], object]:
        def call() -> None:
            self.now += ms / 1000
            if counter is not None:
                counter.append(name)

        return call


CLOCK = Clock()


def _builder(calls: list[str]) -> Callable[[EngineConfig], Callable[[], object]]:
    def build(config: EngineConfig) -> Callable[[], object]:
        calls.append(config.name)
        return CLOCK.engine(COST_MS[config.name])

    return build


def test_candidates_are_exact_engines_only() -> None:
    assert [c.name for c in OPTIONS] == ["onnx-all-2t", "fused-2t", "onnx-all-1t"]
    assert [c.name for c in candidates(1, onnx_available=True)] == ["onnx-all-1t", "fused-1t"]
    assert [c.name for c in candidates(4, onnx_available=False)] == ["fused-4t"]
    assert not any(c.runtime in ("int8", "compile") for c in OPTIONS)


def test_first_start_measures_then_the_file_decides(tmp_path: Path) -> None:
    expected = fingerprint("abc", 2)
    calls: list[str] = []
    first = choose_engine(tmp_path, expected, OPTIONS, _builder(calls), rounds=2, clock=CLOCK)
    assert first.chosen.name == "fused-2t" and first.source == "measured now"
    assert set(calls) == {c.name for c in OPTIONS}
    assert first.measured_ms["fused-2t"] < first.measured_ms["onnx-all-2t"]
    calls.clear()
    again = choose_engine(tmp_path, expected, OPTIONS, _builder(calls), rounds=2, clock=CLOCK)
    assert calls == [] and again.chosen == first.chosen and again.source == "cached"
    # another machine (or library version, thread count, checkpoint) measures again
    other = choose_engine(tmp_path, fingerprint("abc", 1), OPTIONS, _builder(calls), rounds=2, clock=CLOCK)
    assert calls and other.source == "measured now"


def test_a_challenger_must_clearly_beat_the_default() -> None:
    assert decide({"onnx-all-2t": 100.0, "fused-2t": 95.0, "onnx-all-1t": 120.0}, OPTIONS).name == "onnx-all-2t"
    assert decide({"onnx-all-2t": 100.0, "fused-2t": 80.0, "onnx-all-1t": 120.0}, OPTIONS).name == "fused-2t"


def test_clearly_slower_engines_sit_out_after_the_first_round() -> None:
    calls: list[str] = []
    engines = {"fast": CLOCK.engine(2, calls, "fast"), "slow": CLOCK.engine(20, calls, "slow")}
    measured = engine_choice.measure(engines, rounds=3, clock=CLOCK)
    assert calls.count("fast") == 4 and calls.count("slow") == 2  # warm-up + round 1 only
    assert measured == pytest.approx({"fast": 2.0, "slow": 20.0})


def _record(tmp_path: Path, **changes: object) -> None:
    good = {"format": 1, "chosen": {"runtime": "fused", "threads": 2, "graph_opt": "all"},
            "measured_ms": {"fused-2t": 10.0}, "fingerprint": fingerprint("abc", 2), "measured_at": "2026-01-01"}
    (tmp_path / CHOICE_FILE).write_text(json.dumps({**good, **changes}))


@pytest.mark.parametrize("changes", [
    {"chosen": {"runtime": "evil", "threads": 2}},  # not an engine of ours
    {"chosen": {"runtime": "int8", "threads": 2}},  # inexact engines are never chosen from a file
    {"chosen": {"runtime": "fused", "threads": -1}},
    {"chosen": {"runtime": "fused", "threads": True}},
    {"chosen": {"runtime": "fused", "threads": "2"}},
    {"chosen": {"runtime": "onnx", "threads": 2, "graph_opt": "turbo"}},
    {"chosen": "fused"},
    {"measured_ms": {"fused-2t": float("nan")}},
    {"measured_ms": [1, 2]},
    {"measured_at": 5},
    {"format": 2},
])
def test_a_malformed_choice_file_is_measured_again(tmp_path: Path, changes: dict[str, object]) -> None:
    _record(tmp_path, **changes)
    assert read_choice(tmp_path, fingerprint("abc", 2), OPTIONS) is None
    calls: list[str] = []
    choice = choose_engine(tmp_path, fingerprint("abc", 2), OPTIONS, _builder(calls), rounds=1, clock=CLOCK)
    assert calls and choice.source == "measured now"
    assert read_choice(tmp_path, fingerprint("abc", 2), OPTIONS) is not None  # rewritten, usable again


@pytest.mark.parametrize("content", ["", "{", "[]", "null", "[" * 100_000, "x" * 100_000])
def test_garbage_choice_files_never_raise(tmp_path: Path, content: str) -> None:
    (tmp_path / CHOICE_FILE).write_text(content)
    assert read_choice(tmp_path, fingerprint("abc", 2), OPTIONS) is None


def test_a_valid_file_is_used(tmp_path: Path) -> None:
    _record(tmp_path)
    choice = read_choice(tmp_path, fingerprint("abc", 2), OPTIONS)
    assert choice is not None and choice.chosen == EngineConfig("fused", 2)


def test_a_forced_engine_is_not_measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from inference.models.encoder_runtime import apply_encoder_runtime
    from inference.models.litemedsam import load_litemedsam

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured although the engine was forced")

    monkeypatch.setattr(engine_choice, "measure", fail)
    model = apply_encoder_runtime(copy.deepcopy(load_litemedsam("cpu", runtime="eager")), "fused", cache_dir=tmp_path)
    assert model.encoder_runtime == "fused" and "settings" in model.encoder_engine
    assert not (tmp_path / CHOICE_FILE).exists()


def test_a_choice_measured_under_heavy_load_is_measured_again_when_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(tmp_path, load=3.0)  # measured while the CPU was heavily contended
    monkeypatch.setattr(engine_choice, "load_per_core", lambda: 2.0)
    assert read_choice(tmp_path, fingerprint("abc", 2), OPTIONS) is not None  # still busy: keep it
    monkeypatch.setattr(engine_choice, "load_per_core", lambda: 0.1)
    assert read_choice(tmp_path, fingerprint("abc", 2), OPTIONS) is None  # quiet now: measure again
    _record(tmp_path, load=0.2)
    assert read_choice(tmp_path, fingerprint("abc", 2), OPTIONS) is not None
    _record(tmp_path, load="high")
    assert read_choice(tmp_path, fingerprint("abc", 2), OPTIONS) is None
