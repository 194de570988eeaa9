"""``python -m bench.studies NAME``: run one study and write NAME.md (and its plots) into ``--out``:
out/studies/ by default, which git ignores, so running a study never changes the checkout;
``--out results/studies`` (``make study OUT=results/studies``) replaces the committed page."""
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
from impls.core.errors import ConfigError, NnbenchError, UnsupportedError
from impls.core.registry import available
from impls.core.threads import usable_cpus
from impls.core.train import build

from ..harness.host import describe
from ..report.host_table import machine_rows
from ..report.writing import write_all
from . import studies, user_failure

PROG = "python -m bench.studies"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = "out/studies"


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

    def check_batches(self, batches, preset, phase: str = "epoch") -> None:
        """Refuse a batch size the data cannot fill (a forward batch comes from the test images),
        before anything is built or timed: it would be cut short and mislabelled."""
        limit, what = (10_000, "the 10,000 test images") if phase == "forward" else (
            preset.n_train, f"preset {preset.name}'s {preset.n_train:,} training examples")
        too_big = [b for b in batches if b > limit]
        if too_big:
            raise ConfigError(f"--batch-sizes {too_big[0]}: a {phase} batch comes from {what}")

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
        p.add_argument("--out", default=DEFAULT_OUT,
                       help=f"directory (default: {DEFAULT_OUT}, ignored by git; results/studies publishes)")
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
        status = available(args.impl)          # only those asked for are imported (None: all)
        chosen = args.impl or list(status)
        impls = [name for name in chosen if status[name] is None]
        unavailable = {name: status[name] for name in chosen if status[name]}
        if not impls:
            raise ConfigError("no implementation asked for is available here: "
                              + "; ".join(f"{name} ({why})" for name, why in unavailable.items()))
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
    except Exception as exc:       # noqa: BLE001 -- an implementation's own code: one line, not a traceback
        print(f"{PROG}: error: {user_failure(exc)}; nothing written", file=sys.stderr)
        return 1
    command = os.environ.get("NNBENCH_COMMAND") or f"{PROG} {shlex.join(argv)}"
    note = "".join(f"\nSkipped: `{name}`: {why}\n" for name, why in ctx.skipped.items())
    note += ("\nNot available here: " + "; ".join(f"`{name}` ({why})" for name, why in unavailable.items()) + ".\n"
            if unavailable else "")
    files = {f"{study.name}.md": (header(study, command) + output.markdown + note).encode(), **output.plots}
    try:
        write_all(Path(args.out), files)
    except OSError as exc:
        print(f"{PROG}: error: writing {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{PROG}: wrote {', '.join(sorted(files))} into {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
