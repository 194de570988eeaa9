"""Reading a benchmark run: pytest-benchmark's JSON with the suites' ``extra_info`` and the
plugin's ``nnbench`` section, as ``Run`` and ``Timing`` objects the tables and plots read."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..harness.host import check_label, label_of
from ..harness.phases import REFERENCE
from ..harness.record import Round, check_schema
from ..harness.timing import spread

#: implementations listed first in every table: the baselines the speedups are against
BASELINES = (REFERENCE, "numpy")


class ReportError(Exception):
    """The input cannot be rendered (missing, not JSON, not from these suites)."""


# -- reading ----------------------------------------------------------------------------------
@dataclass
class Timing:
    """One benchmark: pytest-benchmark's statistics plus the suite's extra_info."""
    name: str
    params: dict
    stats: dict
    extra: dict

    @property
    def phase(self): return self.extra.get("phase")
    @property
    def impl(self): return self.extra.get("impl") or self.params.get("impl")
    @property
    def batch(self): return self.extra.get("batch")
    @property
    def passed(self): return self.extra.get("status") == "passed"
    @property
    def median(self): return self.stats["median"]
    @property
    def examples(self): return self.extra.get("examples") or 1

    @property
    def rounds(self) -> list | None:
        """Every timed round with its trial (a run of ``python -m bench.run``), or None (plain pytest)."""
        rounds = self.extra.get("rounds")
        return rounds if isinstance(rounds, list) and rounds else None

    @property
    def per_example(self) -> float:
        """Median seconds per example: comparable across rounds of different sizes."""
        return self.median / self.examples

    @property
    def spread(self) -> dict:
        s = self.stats
        return spread(s["median"], s.get("iqr", 0.0), s.get("stddev", 0.0), s.get("rounds", 1),
                      s.get("min", s["median"]), s.get("max", s["median"]))


@dataclass
class Run:
    timings: list[Timing]
    meta: dict                       # the "nnbench" section: mode, command, outcomes, ...
    machine: dict
    commit: dict
    datetime: str
    impls: list[str] = field(default_factory=list)
    label: str = ""                  # the machine label (bench/harness/host.py)

    def outcome(self, phase, impl, **params) -> dict | None:
        for o in self.meta.get("outcomes", []):
            if o.get("phase") == phase and o.get("impl") == impl and all(o.get(k) == v for k, v in params.items()):
                return o
        return None

    def timing(self, phase, impl, **extra) -> Timing | None:
        for t in self.timings:
            if t.phase == phase and t.impl == impl and all(
                    t.extra.get(k, t.params.get(k)) == v for k, v in extra.items()):
                return t
        return None

    @property
    def available(self) -> list[str]:
        """Implementations that could run here and did: a run narrowed with ``-k`` (say to the
        CUDA ones) gets no empty rows for the rest."""
        ran = {t.impl for t in self.timings} | {o.get("impl") for o in self.meta.get("outcomes", [])}
        return [i for i in self.impls if not self.meta.get("available", {}).get(i) and i in ran]

    @property
    def trials(self) -> bool:
        """Timed in interleaved trials (rounds recorded with their trial): its ratios are paired."""
        return any(t.rounds for t in self.timings)

    @property
    def unavailable(self) -> dict[str, str]:
        return {i: r for i, r in self.meta.get("available", {}).items() if r}


def load(path) -> Run:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file (did the benchmark run write --benchmark-json?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ReportError(f"{path}: not pytest-benchmark JSON (no 'benchmarks' list)")
    if not isinstance(data.get("nnbench"), dict):
        raise ReportError(f"{path}: has no 'nnbench' section: it was not written by the suites in bench/")
    meta = data["nnbench"]
    _check_meta(path, meta)
    try:
        label = check_label(label_of(data))     # it names a folder: --out "results/{machine}"
    except ValueError as exc:
        raise ReportError(f"{path}: {exc}") from None
    timings = [_timing(path, i, b) for i, b in enumerate(data["benchmarks"])]
    timings = [t for t in timings if t is not None]
    impls = list(meta.get("available", {}))
    impls += sorted({t.impl for t in timings} - set(impls))
    impls.sort(key=lambda i: BASELINES.index(i) if i in BASELINES else len(BASELINES))
    return Run(timings, meta, data.get("machine_info", {}), data.get("commit_info", {}),
               data.get("datetime", "?"), impls, label)


def _check_meta(path, meta: dict) -> None:
    """The record's schema, and the parts of the ``nnbench`` section the tables iterate over, of the
    types they expect."""
    why = check_schema(meta)
    if why:
        raise ReportError(f"{path}: {why}")
    outcomes, available = meta.get("outcomes", []), meta.get("available", {})
    if not isinstance(outcomes, list) or not all(isinstance(o, dict) for o in outcomes):
        raise ReportError(f"{path}: nnbench.outcomes is a {type(outcomes).__name__}, not a list of test outcomes")
    if not isinstance(available, dict):
        raise ReportError(f"{path}: nnbench.available is a {type(available).__name__}, not a mapping of "
                          "implementation to reason")


def _timing(path, i: int, bench) -> Timing | None:
    """One benchmark of the JSON, or None for one never timed (no stats); anything the tables and
    the log-scale plots cannot show (no name, no median, a NaN or negative median) is refused."""
    if not isinstance(bench, dict):
        raise ReportError(f"{path}: benchmark {i} is a {type(bench).__name__}, not a benchmark")
    stats, name = bench.get("stats"), bench.get("name")
    if stats is None:
        return None
    if not isinstance(name, str) or not name:
        raise ReportError(f"{path}: benchmark {i} has no name")
    if not isinstance(stats, dict) or "median" not in stats:
        raise ReportError(f"{path}: benchmark {name} has no median")
    median = stats["median"]
    if isinstance(median, bool) or not isinstance(median, (int, float)) or not math.isfinite(median) or median < 0:
        raise ReportError(f"{path}: benchmark {name}: median {median!r} is not a measured time in seconds")
    for key in ("params", "extra_info"):
        if not isinstance(bench.get(key) or {}, dict):
            raise ReportError(f"{path}: benchmark {name}: {key} is a {type(bench[key]).__name__}, not a mapping")
    rounds = (bench.get("extra_info") or {}).get("rounds")
    if rounds is not None:
        why = (next(filter(None, map(Round.check, rounds)), None) if isinstance(rounds, list)
               else f"its rounds are a {type(rounds).__name__}, not a list")
        if why:
            raise ReportError(f"{path}: benchmark {name}: {why}")
    return Timing(name, bench.get("params") or {}, stats, bench.get("extra_info") or {})
