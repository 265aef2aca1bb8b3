"""The encoder engine is chosen by measurement on this machine, cached, and the cache file is untrusted.

Unit tests with stand-in engines on a simulated clock (each call advances it by a fixed cost), so the
decision logic is tested without timing anything; the real engines (and a first start that measures,
stores and then reads the decision) are covered in ``test_encoder_variants.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from inference.models import engine_choice
from inference.models.engine_choice import (
    CHOICE_FILE,
    EngineChoice,
    EngineConfig,
    MeasuringEncoder,
    candidates,
    decide,
    fingerprint,
    read_choice,
    write_choice,
)

OPTIONS = candidates(2, onnx_available=True)  # onnx-all-2t (default), fused-2t, onnx-all-1t


class Clock:
    """Simulated seconds; a stand-in engine call advances it by its cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def engine(self, name: str, ms: float, calls: list[str]) -> Callable[[torch.Tensor], torch.Tensor]:
        def call(x: torch.Tensor) -> torch.Tensor:
            self.now += ms / 1000 * x.shape[0]
            calls.append(name)
            return x * 2  # every engine computes the same thing

        return call


def _measuring(costs: dict[str, float], decided: list[EngineChoice], rounds: int = 2) -> tuple[MeasuringEncoder, list[str]]:
    clock, calls = Clock(), list[str]()
    engines = {c: clock.engine(c.name, costs[c.name], calls) for c in OPTIONS}
    return MeasuringEncoder(engines, OPTIONS, fingerprint("abc", 2), decided.append, rounds, clock), calls


def test_candidates_are_exact_engines_only() -> None:
    assert [c.name for c in OPTIONS] == ["onnx-all-2t", "fused-2t", "onnx-all-1t"]
    assert [c.name for c in candidates(1, onnx_available=True)] == ["onnx-all-1t", "fused-1t"]
    assert [c.name for c in candidates(4, onnx_available=False)] == ["fused-4t"]
    assert not any(c.runtime in ("int8", "compile") for c in OPTIONS)


def test_the_first_encodes_time_every_engine_then_the_fastest_runs() -> None:
    decided: list[EngineChoice] = []
    encoder, calls = _measuring({"onnx-all-2t": 6.0, "fused-2t": 2.0, "onnx-all-1t": 9.0}, decided)
    x = torch.ones(1, 3)
    for _ in range(9):  # 3 engines × (warm-up + 2 timed)
        assert torch.equal(encoder(x), x * 2)  # real work is done (and returned) while measuring
    assert sorted(set(calls)) == ["fused-2t", "onnx-all-1t", "onnx-all-2t"] and len(calls) == 9
    assert encoder.decided and len(decided) == 1 and decided[0].chosen.name == "fused-2t"
    assert decided[0].measured_ms == pytest.approx({"onnx-all-2t": 6.0, "fused-2t": 2.0, "onnx-all-1t": 9.0})
    calls.clear()
    encoder(torch.ones(4, 3))
    assert calls == ["fused-2t"] and len(decided) == 1  # decided once; only the chosen engine runs now


def test_clearly_slower_engines_sit_out_after_their_first_timed_call() -> None:
    decided: list[EngineChoice] = []
    encoder, calls = _measuring({"onnx-all-2t": 2.0, "fused-2t": 20.0, "onnx-all-1t": 3.0}, decided, rounds=3)
    while not encoder.decided:
        encoder(torch.ones(1, 3))
    assert calls.count("fused-2t") == 2 and calls.count("onnx-all-2t") == 4  # warm-up + 1 vs warm-up + 3
    assert decided[0].chosen.name == "onnx-all-2t"


def test_a_challenger_must_clearly_beat_the_default() -> None:
    assert decide({"onnx-all-2t": 100.0, "fused-2t": 95.0, "onnx-all-1t": 120.0}, OPTIONS).name == "onnx-all-2t"
    assert decide({"onnx-all-2t": 100.0, "fused-2t": 80.0, "onnx-all-1t": 120.0}, OPTIONS).name == "fused-2t"


def test_a_stored_decision_is_read_back_on_this_machine_only(tmp_path: Path) -> None:
    choice = EngineChoice(EngineConfig("onnx", 1), {"onnx-all-1t": 5.0, "onnx-all-2t": 7.0}, fingerprint("abc", 2),
                          "2026-01-01 10:00", "measured now", 0.3)
    write_choice(tmp_path, choice)
    again = read_choice(tmp_path, fingerprint("abc", 2), OPTIONS)
    assert again is not None and again.chosen == choice.chosen and again.source == "cached"
    assert read_choice(tmp_path, fingerprint("abc", 1), OPTIONS) is None  # other thread count: measure again
    assert read_choice(tmp_path, fingerprint("other weights", 2), OPTIONS) is None


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

    monkeypatch.setattr(MeasuringEncoder, "__init__", fail)
    monkeypatch.setattr("inference.models.encoder_runtime.read_choice", fail)
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
