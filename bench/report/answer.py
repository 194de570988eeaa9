"""What a results page says first: per phase and batch size, the fastest implementation and how
much faster it is than the next one and than ``numpy``; and the order every table lists
implementations in, fastest first. Also the helpers that keep the Markdown readable in a terminal:
prose wrapped, tables compacted.

Speed is compared per example (``Timing.per_example``), so an epoch timed on a prefix of the
training set ranks with the whole epochs. A ratio comes from ``cells.ratio``: paired over trials with
its interval in a run with trials, of two medians otherwise (cells.py says how each is flagged).
"""
from __future__ import annotations

import re
import textwrap
from statistics import mean

from tabulate import tabulate

from ..harness.phases import BATCH_PHASES
from ..harness.timing import fmt_time
from .cells import paired, ratio, ratio_text
from .reading import Run, Timing

#: prose is wrapped at this many columns: Markdown joins the lines, a terminal and a diff show them whole
WRAP = 100
#: a key-value row longer than this is continued in rows of its own
LONG_ROW = 160
YARDSTICK = "numpy"
TTA = "time-to-accuracy"


def para(text: str) -> str:
    """One paragraph of prose wrapped at WRAP columns (never inside a word or a code span's word)."""
    return textwrap.fill(text, WRAP, break_long_words=False, break_on_hyphens=False)


def compact(table: str) -> str:
    """A Markdown table without tabulate's padding: each line only as long as its own cells, so one
    long cell (a library list) does not stretch every other line of the table. A two-column row
    longer than LONG_ROW goes on in rows of its own with an empty first cell, split after its "; "
    (then ", ") separators."""
    lines = []
    for line in table.splitlines():
        line = re.sub(r" {2,}\|", " |", re.sub(r"-{3,}", "---", line))
        cells = line.strip("|").split(" | ")
        if len(line) <= LONG_ROW or len(cells) != 2:
            lines.append(line)
            continue
        key = cells[0].strip()
        for i, piece in enumerate(_pieces(cells[1].strip(), WRAP)):
            lines.append(f"| {key if i == 0 else ''} | {piece} |")
    return "\n".join(lines) + ("\n" if table.endswith("\n") else "")


def _pieces(text: str, width: int, seps=("; ", ", ")) -> list[str]:
    """``text`` in pieces of at most ``width`` characters where its separators allow, each piece
    ending with the separator it was split after."""
    if len(text) <= width or not seps:
        return [text]
    sep, parts = seps[0], text.split(seps[0])
    parts = [p + sep.rstrip() for p in parts[:-1]] + parts[-1:]
    pieces = []
    for part in parts:
        for small in _pieces(part, width, seps[1:]):
            if pieces and len(pieces[-1]) + 1 + len(small) <= width:
                pieces[-1] += " " + small
            else:
                pieces.append(small)
    return pieces


def passed(run: Run, phase: str, batch) -> list[Timing]:
    """The passed timings of one phase and batch size, fastest first."""
    found = [t for t in run.timings if t.phase == phase and t.batch == batch and t.passed]
    return sorted(found, key=lambda t: t.per_example)


def speed_order(run: Run, phase: str, impls: list[str], columns) -> list[str]:
    """``impls`` fastest first: by mean rank over the batch sizes each was timed at, a tie by the mean
    of its time over the fastest's; those never timed (failed, skipped) last, in their given order."""
    ranks: dict[str, list[tuple[int, float]]] = {}
    for b in columns:
        ranked = passed(run, phase, b)
        for rank, t in enumerate(ranked):
            ranks.setdefault(t.impl, []).append((rank, t.per_example / ranked[0].per_example))
    def key(impl):
        return (False, *(mean(x) for x in zip(*ranks[impl]))) if impl in ranks else (True, 0, 0)
    return sorted(impls, key=key)


def timing_text(t: Timing) -> str:
    seconds = t.median * (t.extra.get("n_train") or t.examples) / t.examples if t.phase == "epoch" else t.median
    return fmt_time(seconds)


def answer_rows(run: Run, phases=BATCH_PHASES, batches=None) -> list[list[str]]:
    """[phase, batch, fastest, its time, × the next (which), × numpy] per phase and batch size timed."""
    rows = []
    for p in phases:
        cols = batches(run, p.name) if batches else sorted({t.batch for t in run.timings if t.phase == p.name})
        for b in cols:
            ranked = passed(run, p.name, b)
            if not ranked:
                continue
            best, nxt = ranked[0], (ranked[1] if len(ranked) > 1 else None)
            numpy = next((t for t in ranked if t.impl == YARDSTICK), None)
            if nxt is None:
                than_next = "—"
            else:
                r = paired(nxt, best)
                than_next = ratio_text(nxt, best, r) + f" (`{nxt.impl}`{', a tie' if tie(r) else ''})"
            rows.append([p.name, f"b={b}", f"`{best.impl}`", timing_text(best), than_next,
                         "is numpy" if best.impl == YARDSTICK else ratio(numpy, best)])
    return rows


def tie(r) -> bool:
    """Two implementations are not told apart: their paired ratio's interval holds 1 (the faster by
    median may be the slower by pairs). Without trials there is no interval, and no tie is claimed."""
    return r is not None and r.low is not None and r.high is not None and r.low <= 1 <= r.high


def tta_answer_rows(run: Run, presets: list[str]) -> list[list[str]]:
    """The same for time to accuracy: the shortest median time to each preset's target."""
    rows = []
    for preset in presets:
        ranked = sorted((t for t in run.timings if t.phase == TTA and t.params.get("preset_name") == preset
                         and t.passed and t.extra.get("median_time_to_target") is not None),
                        key=lambda t: t.extra["median_time_to_target"])
        if not ranked:
            continue
        best = ranked[0]
        seconds = {t.impl: t.extra["median_time_to_target"] for t in ranked}

        def times(impl):
            return f"{seconds[impl] / seconds[best.impl]:.2f}×" if impl in seconds else "—"
        nxt = ranked[1].impl if len(ranked) > 1 else None
        rows.append([f"time to target: {preset}", f"b={best.extra.get('batch', '?')}", f"`{best.impl}`",
                     f"{seconds[best.impl]:.3g} s", times(nxt) + (f" (`{nxt}`)" if nxt else "") if nxt else "—",
                     "is numpy" if best.impl == YARDSTICK else times(YARDSTICK)])
    return rows


def answer_table(rows: list[list[str]]) -> str:
    """The answer rows as a table; without ``numpy`` in the run (a GPU-only run), no column of dashes."""
    headers = ["phase", "batch", "fastest", "its time", "× faster than the next", f"× faster than `{YARDSTICK}`"]
    if all(r[-1] == "—" for r in rows):
        headers, rows = headers[:-1], [r[:-1] for r in rows]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n"


def duration(seconds) -> str:
    """A run's wall-clock time, as a person says it."""
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
