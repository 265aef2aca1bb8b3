"""Which exact CPU engine runs the image encoder on *this* machine: measured at the first start, cached,
checked on read.

The fastest engine differs between machines: ONNX Runtime was 2.6× the upstream PyTorch encoder on one
2-core VM and 1.4× on another of the same kind, and under CPU contention a 2-thread PyTorch encoder can
run slower than a 1-thread one (OpenMP threads wait for each other). So ``encoder_runtime = "auto"`` does
not assume. At the first start the real encodes are spread over the exact candidates (PyTorch ``fused``;
ONNX Runtime with the process's thread count and with one thread) and timed (:class:`MeasuringEncoder`:
no separate benchmark, so the first start is not slower); when each has been timed, the fastest is kept,
unless it beats the default (ONNX with all threads, else ``fused``) by less than :data:`MARGIN`, so noise
does not pin a worse engine. The decision is stored with the machine's fingerprint (CPU model,
instruction-set flags, cores, threads, library versions, encoder weights) and measured again when any of
that changes, or when it was measured under heavy CPU load and the machine is quiet now (a contended
start favours one thread). The file is untrusted: it is size-capped and validated field by field, and
it can only select among the exact engines listed here, so a forged file costs speed, never correctness.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from inference.models.machine import cpu_flags, cpu_model
from inference.models.verified_files import GRAPH_OPT_LEVELS

log = logging.getLogger(__name__)

CHOICE_FORMAT = 1
CHOICE_FILE = "engine_choice.json"
MARGIN = 0.10  # a challenger must be this much faster than the default engine
PROBE_ROUNDS = 3  # timed calls per candidate after its warm-up call
BUSY_LOAD, QUIET_LOAD = 1.5, 0.5  # load average per core: "measured under heavy load" / "quiet now"
_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class EngineConfig:
    """One exact encoder engine: ``fused`` (PyTorch) or ``onnx`` with its threads and graph level."""

    runtime: str
    threads: int
    graph_opt: str = "all"

    @property
    def name(self) -> str:
        if self.runtime == "onnx":
            return f"onnx-{self.graph_opt}-{self.threads}t"
        return f"{self.runtime}-{self.threads}t"


@dataclass(frozen=True)
class EngineChoice:
    """The measured decision: the chosen engine and every candidate's median ms on this machine."""

    chosen: EngineConfig
    measured_ms: dict[str, float]
    fingerprint: dict[str, object]
    measured_at: str
    source: str  # "measured now" or "cached"
    load: float = -1.0  # 1-minute load average per core while measuring (-1: unknown)

    def describe(self) -> str:
        times = ", ".join(f"{k} {v:.0f} ms" for k, v in sorted(self.measured_ms.items(), key=lambda kv: kv[1]))
        load = f", load {self.load:.1f}/core" if self.load >= 0 else ""
        return f"{self.chosen.name} ({self.source} {self.measured_at}{load}: {times})"


def load_per_core() -> float:
    """1-minute load average per core, or -1 where the OS does not report one."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return -1.0


def fingerprint(weights_digest: str, threads: int) -> dict[str, object]:
    """What the measurement depends on; a change in any of it means measuring again."""
    import torch

    try:
        import onnxruntime

        ort_version: str | None = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "cpu": cpu_model(), "isa": cpu_flags(), "cores": os.cpu_count() or 1, "threads": int(threads),
        "torch": torch.__version__, "onnxruntime": ort_version, "weights": weights_digest,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def candidates(threads: int, onnx_available: bool) -> list[EngineConfig]:
    """The exact engines worth timing: ``fused``; ONNX at all threads and, on multi-core, at one thread."""
    out = [EngineConfig("fused", threads)]
    if onnx_available:
        out.insert(0, EngineConfig("onnx", threads, "all"))  # the default: first
        if threads > 1:
            out.append(EngineConfig("onnx", 1, "all"))
    return out


def decide(measured: Mapping[str, float], options: list[EngineConfig]) -> EngineConfig:
    """The fastest candidate, unless it beats the default (``options[0]``) by less than :data:`MARGIN`."""
    default = options[0]
    best = min(options, key=lambda c: measured[c.name])
    return best if measured[best.name] < (1 - MARGIN) * measured[default.name] else default


def _valid_config(raw: object, allowed: list[EngineConfig]) -> EngineConfig:
    if not isinstance(raw, dict):
        raise ValueError("chosen engine is not an object")
    runtime, threads, graph_opt = raw.get("runtime"), raw.get("threads"), raw.get("graph_opt", "all")
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= 1024:
        raise ValueError("bad thread count")
    if graph_opt not in GRAPH_OPT_LEVELS:
        raise ValueError("bad graph level")
    config = EngineConfig(str(runtime), threads, str(graph_opt))
    if config not in allowed:
        raise ValueError(f"engine {config.name} is not a candidate here")
    return config


def read_choice(folder: Path, expected: dict[str, object], allowed: list[EngineConfig]) -> EngineChoice | None:
    """The cached decision if the file is well-formed and was measured on this machine, else ``None``."""
    path = folder / CHOICE_FILE
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise ValueError("too large")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.get("format") != CHOICE_FORMAT:
            raise ValueError("unknown format")
        if raw.get("fingerprint") != expected:
            log.info("encoder engine choice was measured on another machine or setup; measuring again")
            return None
        chosen = _valid_config(raw.get("chosen"), allowed)
        measured = raw.get("measured_ms")
        if not isinstance(measured, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for k, v in measured.items()
        ):
            raise ValueError("bad timings")
        when = raw.get("measured_at")
        if not isinstance(when, str) or len(when) > 40:
            raise ValueError("bad date")
        load = raw.get("load", -1.0)
        if not isinstance(load, int | float) or isinstance(load, bool) or not math.isfinite(load):
            raise ValueError("bad load")
        if load > BUSY_LOAD and 0 <= load_per_core() < QUIET_LOAD:
            log.info("encoder engine choice was measured under heavy load; measuring again now the CPU is quiet")
            return None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
        log.warning("encoder engine choice file is unusable (%s); measuring again", err)
        return None
    return EngineChoice(chosen, {str(k): float(v) for k, v in measured.items()}, expected, when, "cached",
                        float(load))


def write_choice(folder: Path, choice: EngineChoice) -> None:
    """Store the decision atomically (a failure to write only means measuring again next time)."""
    record = {"format": CHOICE_FORMAT, "chosen": asdict(choice.chosen), "measured_ms": choice.measured_ms,
              "fingerprint": choice.fingerprint, "measured_at": choice.measured_at, "load": choice.load}
    path = folder / CHOICE_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        log.warning("could not store the encoder engine choice in %s (%s)", folder, err)


class MeasuringEncoder(nn.Module):
    """The first encodes of a first start, spread over the candidate engines and timed; then the fastest.

    Each call runs on the candidate with the fewest calls so far: one warm-up call each, then ``rounds``
    timed calls (ms per image). A candidate over twice as slow as the fastest in the first timed round
    sits out the rest (it cannot win). All candidates are exact, so the embeddings are the same whichever
    engine ran. Once every remaining candidate is timed, :func:`decide` picks, ``on_decided`` receives the
    :class:`EngineChoice` (the caller stores it), the other engines are released and later calls go
    straight to the chosen one. Calls are serialised while measuring (the timings stay comparable).
    """

    def __init__(
        self,
        engines: Mapping[EngineConfig, Callable[[torch.Tensor], torch.Tensor]],
        options: list[EngineConfig],
        expected: dict[str, object],
        on_decided: Callable[[EngineChoice], None] | None = None,
        rounds: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        self._engines = dict(engines)  # plain dict: the engines are not submodules of this wrapper
        self._options, self._expected, self._on_decided = options, expected, on_decided
        self._rounds, self._clock = max(1, PROBE_ROUNDS if rounds is None else rounds), clock
        self._active = list(options)
        self._calls = {c: 0 for c in options}
        self._samples: dict[EngineConfig, list[float]] = {c: [] for c in options}
        self._lock = threading.Lock()
        self._chosen: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.choice: EngineChoice | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chosen = self._chosen
        if chosen is not None:
            return chosen(x)
        with self._lock:
            if self._chosen is not None:  # decided while this call waited
                return self._chosen(x)
            config = min(self._active, key=lambda c: self._calls[c])
            t0 = self._clock()
            out = self._engines[config](x)
            self._record(config, (self._clock() - t0) * 1000 / max(1, int(x.shape[0])))
            return out

    def _record(self, config: EngineConfig, ms: float) -> None:
        self._calls[config] += 1
        if self._calls[config] > 1:  # the first call of each engine is its warm-up
            self._samples[config].append(ms)
        if all(len(self._samples[c]) == 1 for c in self._active) and len(self._active) > 1:
            fastest = min(self._samples[c][0] for c in self._active)
            self._active = [c for c in self._active if self._samples[c][0] <= 2 * fastest]
        if all(len(self._samples[c]) >= self._rounds for c in self._active):
            self._decide()

    def _decide(self) -> None:
        measured = {c.name: statistics.median(t) for c, t in self._samples.items() if t}
        chosen = decide(measured, self._options)
        self.choice = EngineChoice(chosen, measured, self._expected, time.strftime("%Y-%m-%d %H:%M"),
                                   "measured now", load_per_core())
        self._chosen = self._engines[chosen]
        self._engines = {chosen: self._chosen}  # release the other ONNX Runtime sessions
        log.info("image encoder engine for this machine: %s", self.choice.describe())
        if self._on_decided is not None:
            self._on_decided(self.choice)

    @property
    def decided(self) -> bool:
        return self._chosen is not None

    @property
    def chosen_engine(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The engine kept after measuring (``None`` while measuring)."""
        return self._chosen
