"""``python -m bench.studies NAME``: run one study and write results/studies/NAME.md."""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from impls.core.argtypes import implementation, thread_count
from impls.core.errors import NnbenchError, UnsupportedError
from impls.core.registry import available
from impls.core.threads import usable_cpus
from impls.core.train import build

from ..harness.machine import describe
from ..report.machine import machine_rows
from ..report.writing import write_all
from . import studies

PROG = "python -m bench.studies"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Context:
    """What every study gets: its options, the data (loaded once), the implementations to run
    and the ones left out with the reason, and a progress printer."""
    args: argparse.Namespace
    data: object
    impls: list[str]
    unavailable: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)     # implementation -> why it declined a network

    def log(self, *parts) -> None:
        print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)

    def build_all(self, preset, threads: int | None = None) -> dict:
        """Every implementation ready for ``preset`` through the one setup path; one that declines
        the network is left out and the study's file says why."""
        ready = {}
        for name in self.impls:
            try:
                ready[name] = build(name, preset, self.data, threads=threads)
            except UnsupportedError as exc:
                self.skipped[name] = str(exc)
        return ready


def build_parser(all_studies) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the studies and exit")
    sub = parser.add_subparsers(dest="study", metavar="NAME")
    for study in all_studies.values():
        p = sub.add_parser(study.name, help=study.summary, description=study.title)
        p.add_argument("--impl", action="append", type=implementation, metavar="IMPL",
                       help="run only these (repeatable): names from `nnbench list` or your own "
                            "[NAME=]module:Class; default: every available implementation")
        p.add_argument("--data", metavar="DIR", help="MNIST directory (default: NNBENCH_DATA, then the cache)")
        p.add_argument("--out", default="results/studies", help="directory (default: results/studies)")
        p.add_argument("--threads", type=thread_count, nargs="+",
                       help=f"thread counts to pin (default: 1 and all {usable_cpus()} usable CPUs)")
        study.add_arguments(p)
    return parser


def header(study, command: str) -> str:
    commit = _git("rev-parse", "--short=12", "HEAD") or "?"
    # results/ is left out: a study run after another has rewritten its files, which says nothing of the code
    dirty = " (uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                                             ":(exclude)results") else ""
    rows = [("command", f"`{command}`"), ("date (UTC)", datetime.datetime.now(datetime.timezone.utc)
                                          .isoformat(timespec="seconds")),
            ("commit", commit + dirty), *machine_rows(describe())]
    return (f"# {study.title}\n\nWritten by `{PROG} {study.name}`; every number below was measured by the "
            "command in this table, on this machine, in one run.\n\n"
            + tabulate(rows, headers=["", ""], tablefmt="github", disable_numparse=True) + "\n\n")


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    all_studies = studies()
    try:
        args = build_parser(all_studies).parse_args(argv)
        if args.list or not args.study:
            print(tabulate([(s.name, s.summary) for s in all_studies.values()], headers=["study", "what it measures"]))
            return 0
        study = all_studies[args.study]
        status = available()
        chosen = args.impl or list(status)
        impls = [name for name in chosen if status[name] is None]
        unavailable = {name: status[name] for name in chosen if status[name]}
        from impls.core.mnist import load_dataset
        ctx = Context(args, load_dataset(args.data), impls, unavailable)
        ctx.log(f"{study.name}: {', '.join(impls)}" + (f" (unavailable: {', '.join(unavailable)})" if unavailable else ""))
        output = study.run(ctx)
    except NnbenchError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return 130
    command = os.environ.get("NNBENCH_COMMAND") or f"{PROG} {shlex.join(argv)}"
    note = "".join(f"\nSkipped: `{name}`: {why}\n" for name, why in ctx.skipped.items())
    note += ("\nNot available here: " + "; ".join(f"`{name}` ({why})" for name, why in unavailable.items()) + ".\n"
            if unavailable else "")
    files = {f"{study.name}.md": (header(study, command) + output.markdown + note).encode(), **output.plots}
    write_all(Path(args.out), files)
    print(f"{PROG}: wrote {', '.join(sorted(files))} into {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
