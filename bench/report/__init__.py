"""Render results/ from the pytest-benchmark JSON the suites in bench/suites/ write.

    python -m bench.report RUN.json [--out results]

Writes (through ``writing.write_all``: all or nothing):

    benchmark.json            the run, as pytest-benchmark wrote it (regenerate tables from it)
    <phase>.md                one per declared phase (bench/harness/phases.py)
    README.md                 machine, command, headline table, every table, failures
    epoch-vs-batch.png  tta-<preset>.png      (needs matplotlib: the `plots` extra)

``reading`` loads a run, ``tables`` renders Markdown, ``plots`` the figures, ``writing`` the
files. Tables come from pytest-benchmark's statistics and the suites' ``extra_info``; a run
that failed is shown as FAILED and is never the baseline of a speedup.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .plots import plot_names, plots
from .reading import ReportError, Run, Timing, load
from .tables import FAILED, render
from .writing import write_all

__all__ = ["FAILED", "ReportError", "Run", "Timing", "build", "load", "main", "render", "write_all"]


def build(json_path, out_dir) -> tuple[list[str], Run]:
    """Render everything for ``json_path`` into ``out_dir``; returns the file names written and the run."""
    run, data = load(json_path), json.loads(Path(json_path).read_text())
    for bench in data["benchmarks"]:
        bench.get("stats", {}).pop("data", None)     # every round's time: megabytes, and the stats hold it
    files = {name: text.encode() for name, text in render(run, plot_names(run)).items()}
    files.update(plots(run))
    files["benchmark.json"] = json.dumps(data, indent=1).encode()
    write_all(Path(out_dir), files)
    return sorted(files), run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("json", help="pytest-benchmark JSON written by `pytest bench --benchmark-json=FILE`")
    parser.add_argument("--out", default="results", help="directory to write into (default: results)")
    args = parser.parse_args(argv)
    try:
        names, run = build(args.json, args.out)
    except ReportError as exc:
        print(f"bench.report: error: {exc}", file=sys.stderr)
        return 1
    print(f"bench.report: wrote {', '.join(names)} into {args.out}/")
    stop = run.meta.get("stopped")
    if stop:
        print(f"bench.report: the session stopped part-way ({stop.get('reason')}): {stop.get('tests_run')} of "
              f"{stop.get('tests_collected')} benchmarks ran; every file says so at its top", file=sys.stderr)
    return 0


