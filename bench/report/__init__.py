"""Render results/ from the pytest-benchmark JSON the suites in bench/suites/ write.

    python -m bench.report RUN.json [--out results]            one run: its machine's report
    python -m bench.report A.json B.json ... [--out DIR]       several machines side by side
    python -m bench.report results [--out results]             the same, one run per sub-folder
    python -m bench.report RUN.json --with results/ --out DIR  a new machine beside the committed ones

One run writes (through ``writing.write_all``: all or nothing):

    benchmark.json            the run, as pytest-benchmark wrote it, every round's time included
    <phase>.md                one per declared phase (bench/harness/phases.py), memory tables included
    memory.md                 every phase's memory tables, time to accuracy's peaks, the dataset's footprint
    README.md                 machine, command, headline table, every table, failures
    epoch-vs-batch.png  tta-<preset>.png      (needs matplotlib: the `plots` extra)

``{machine}`` in ``--out`` becomes the run's machine label (``results/{machine}``). Several runs,
one per machine label, write README.md and machines-epoch.png (``machines``): a folder given as a
run stands for the run in each of its sub-folders (``benchmark.json``, or the newest saved
``NNNN_*.json`` of a ``--benchmark-storage`` folder).

``reading`` loads a run; ``pages`` renders its Markdown from ``answer`` (the headline's ranking),
``tables`` (per phase), ``tta`` (time to accuracy) and ``cells`` (times and ratios with their
uncertainty, paired over trials where the run has them); ``plots`` the figures, ``writing`` the files. Tables come from pytest-benchmark's statistics and the suites' ``extra_info``; a run
that failed is shown as FAILED and is never the baseline of a speedup.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from . import side_by_side
from .plots import plot_names, plots
from .reading import ReportError, Run, Timing, load
from .pages import PHASE_PAGES, render
from .tables import FAILED
from .writing import write_all

__all__ = ["FAILED", "ReportError", "Run", "Timing", "build", "build_machines", "load", "main", "render", "write_all"]

MACHINE = "{machine}"


def dumps(data: dict) -> bytes:
    """The run as indented JSON, each benchmark's round times (``stats.data``) on one line."""
    rounds = []
    for bench in data.get("benchmarks", []):
        stats = bench.get("stats") or {}
        if isinstance(stats.get("data"), list):
            rounds.append(json.dumps(stats["data"]))
            stats["data"] = f"@@rounds{len(rounds) - 1}@@"
    text = json.dumps(data, indent=1)
    for i, line in enumerate(rounds):
        text = text.replace(f'"@@rounds{i}@@"', line, 1)
    return text.encode()


def build(json_path, out_dir) -> tuple[list[str], Run]:
    """Render everything for ``json_path`` into ``out_dir`` (``{machine}`` in it: the run's label);
    returns the file names written and the run."""
    run, data = load(json_path), json.loads(Path(json_path).read_text())
    files = {name: text.encode() for name, text in render(run, plot_names(run)).items()}
    files.update(plots(run))
    files["benchmark.json"] = dumps(data)
    out = Path(str(out_dir).replace(MACHINE, run.label))
    write_all(out, files)
    for stale in set(PHASE_PAGES) - set(files):      # a page of a phase this run did not measure: an older run's
        (out / stale).unlink(missing_ok=True)
    return sorted(files), run


def build_machines(sources, out_dir, relative_to=None, command=None, beside=()) -> tuple[list[str], list[Run]]:
    """Render the comparison of several machines' runs (files, or folders of one sub-folder per machine);
    ``beside``: folders of machines (``--with results/``) whose runs join them, except a machine already
    given, whose given run wins: a new machine's run rendered next to the committed ones."""
    from ..harness.host import this_label
    out_dir = Path(out_dir)
    paths, others = [], []
    for source in map(Path, sources):
        if source.is_dir():
            found, extra = side_by_side.machine_folders(source)
            if not found:
                raise ReportError(f"{source}: no machine's run in it (expected <machine>/benchmark.json or "
                                  "<machine>/NNNN_*.json)")
            paths += found
            others += extra if source.resolve() == out_dir.resolve() else []
        else:
            paths.append(source)
    runs = [load(p) for p in paths]
    for folder in map(Path, beside):
        if not folder.is_dir():
            raise ReportError(f"--with {folder}: not a folder of machines (such as results/)")
        if not (found := side_by_side.machine_folders(folder)[0]):
            raise ReportError(f"--with {folder}: no machine's run in it (expected <machine>/benchmark.json)")
        for path in found:
            if (run := load(path)).label not in {r.label for r in runs}:
                runs.append(run)
                paths.append(path)
    side_by_side.check_distinct(runs, [str(p) for p in paths])
    base = side_by_side.choose_base(runs, relative_to, this_label())
    links = {r.label: target for r, p in zip(runs, paths) if (target := side_by_side.link(p, out_dir))}
    files = side_by_side.render(runs, base, links, command or "python -m bench.report", others)
    write_all(out_dir, files)
    return sorted(files), runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", metavar="RUN",
                        help="pytest-benchmark JSON written by `pytest bench --benchmark-json=FILE` (or saved by "
                             "--benchmark-autosave); several, one per machine, or a folder with one sub-folder "
                             "per machine (results/, a --benchmark-storage folder): the machines side by side")
    parser.add_argument("--out", default="results",
                        help="directory to write into (default: results); {machine} in it becomes the run's "
                             "machine label (one run only)")
    parser.add_argument("--relative-to", metavar="MACHINE",
                        help="the machine label the speedups of a comparison are relative to (default: this "
                             "machine's if it is among them, else the first)")
    parser.add_argument("--with", dest="beside", action="append", default=[], metavar="DIR",
                        help="a folder of machines (such as results/) to render beside RUN: a machine not among "
                             "them is compared with the committed ones (repeatable)")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    several = len(args.json) > 1 or Path(args.json[0]).is_dir() or bool(args.beside)
    try:
        if several and MACHINE in args.out:
            raise ReportError(f"--out {args.out}: {MACHINE} names one run's machine; a comparison needs one folder")
        if not several and args.relative_to:
            raise ReportError("--relative-to compares machines: give several runs (or a folder of machines)")
        if several:
            command = shlex.join(["python", "-m", "bench.report", *(argv if argv is not None else sys.argv[1:])])
            names, runs = build_machines(args.json, args.out, args.relative_to, command, args.beside)
            print(f"bench.report: compared {', '.join(r.label for r in runs)}; wrote {', '.join(names)} "
                  f"into {args.out}/")
            return 0
        names, run = build(args.json[0], args.out)
    except ReportError as exc:
        print(f"bench.report: error: {exc}", file=sys.stderr)
        return 1
    print(f"bench.report: wrote {', '.join(names)} into {args.out.replace(MACHINE, run.label)}/")
    stop = run.meta.get("stopped")
    if stop:
        print(f"bench.report: the session stopped part-way ({stop.get('reason')}): {stop.get('tests_run')} of "
              f"{stop.get('tests_collected')} benchmarks ran; every file says so at its top", file=sys.stderr)
    return 0
