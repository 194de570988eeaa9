"""``nnbench``: list implementations and presets, check an implementation, train one on a preset.

Every failure a user can fix is one line on stderr and a non-zero exit status: 2 for a
command line argparse rejects (its usage convention), 1 for anything else nnbench can explain
(missing or corrupt data, divergence, an unavailable implementation), 3 for a missed target.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from tabulate import tabulate

from .argtypes import implementation, positive_float, positive_int, seed, thread_count
from .errors import NnbenchError
from .presets import DEFAULT_SEED, PRESETS
from .registry import registry
from .spec import DTYPES

EXIT_ERROR = 1
EXIT_USAGE = 2          # argparse's own, for a command line it rejects
EXIT_MISSED_TARGET = 3


def cmd_list(args) -> int:
    from .probe import listing
    rows = [(name, "yes" if reason is None else "no", reason or "", registry().entries[name].origin)
            for name, reason in listing(args.probe, limits(args), args.names).items()]
    print(tabulate(rows, headers=["implementation", "available", "reason", "registered by"]))
    if not args.probe:
        print("(read from each module without importing it: its packages are installed and, for a CUDA one, "
              "the kernel shows a GPU; `nnbench list --probe` imports each to ask it)")
    print()
    rows = [(p.name, "-".join(map(str, p.sizes)), p.hidden, p.output, p.batch_size or "full",
             p.lr, p.epochs, p.n_train, f"{p.target:.1%}") for p in PRESETS.values()]
    print(tabulate(rows, headers=["preset", "sizes", "hidden", "output/cost", "batch", "lr",
                                  "epochs", "train", "target"]))
    return 0


def limits(args):
    from .isolation import STEP_TIMEOUT, Limits
    return Limits(args.import_timeout, getattr(args, "timeout", STEP_TIMEOUT))


def cmd_check(args) -> int:
    from .conformance import nothing_verified
    from .isolation import supervise
    header = f"nnbench check {args.impl} ({registry().entries[args.impl].source}) against the float64 reference"
    lines = supervise(args.impl, "impls.core.jobs.check", {"name": args.impl, "data_dir": args.data,
                                                          "mnist": not args.no_mnist}, limits(args),
                      lambda kind, _: print(header, flush=True) if kind == "ready" else None)
    print(tabulate([(l.check, l.network, l.verdict, l.worst, l.allowed, l.note) for l in lines],
                   headers=["check", "network", "verdict", "worst |error|", "tolerance there", "note"]), flush=True)
    failed = [f"{l.check} ({l.network})" for l in lines if l.verdict == "FAIL"]
    skipped = sum(l.verdict == "skip" for l in lines)
    if failed:
        print(f"nnbench check: {args.impl} FAILED {len(failed)} of {len(lines)} checks: {'; '.join(failed)}",
              file=sys.stderr)
        return EXIT_ERROR
    why = nothing_verified(lines)
    if why:
        print(f"nnbench check: {args.impl} FAILED: {why}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{args.impl}: all {len(lines) - skipped} checks passed" + (f", {skipped} skipped" if skipped else ""))
    return 0


def cmd_train(args) -> int:
    from .isolation import supervise
    changes = {k: v for k, v in (("lr", args.lr), ("batch_size", args.batch_size)) if v is not None}
    result = supervise(args.impl, "impls.core.jobs.train",
                       {"impl": args.impl, "preset": args.preset, "changes": changes, "dtype": args.dtype,
                        "threads": args.threads, "data_dir": args.data, "seed": args.seed, "epochs": args.epochs},
                       limits(args))
    reached = result["reached"]
    print(f"final test accuracy {result['final_accuracy']:.2%}; target {result['target']:.1%} "
          f"{'met' if result['met'] else 'MISSED'}; training time {result['seconds']:.2f} s; "
          + (f"time to target {reached[1]:.2f} s (epoch {reached[0]})" if reached else "target never reached"))
    return 0 if result["met"] else EXIT_MISSED_TARGET


DATA_HELP = "used as named or refused; default: $NNBENCH_DATA, else the per-user cache"
IMPL_HELP = "a name from `nnbench list`, or your own as [NAME=]module:Class[(option=value, ...)]"


def add_timeouts(parser, step: str) -> None:
    """The limits of ``impls.core.isolation``: past one, the implementation's process is stopped
    and the command ends with one line naming the step (``step``: what --timeout bounds; none
    for a command that only imports)."""
    from .isolation import IMPORT_TIMEOUT, STEP_TIMEOUT
    if step:
        parser.add_argument("--timeout", type=positive_float, default=STEP_TIMEOUT, metavar="SECONDS",
                            help=f"the most {step} may take before it is stopped; default {STEP_TIMEOUT:g}")
    parser.add_argument("--import-timeout", type=positive_float, default=IMPORT_TIMEOUT, metavar="SECONDS",
                        help=f"the most importing an implementation may take; default {IMPORT_TIMEOUT:g}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="implementations (available here or why not) and presets")
    ls.add_argument("names", nargs="*", type=implementation, metavar="IMPL",
                    help="list only these (names, or your own as module:Class); default: every one registered")
    ls.add_argument("--probe", action="store_true",
                    help="import each implementation (in a child process, one at a time) and ask whether it runs here")
    add_timeouts(ls, "")
    ls.set_defaults(func=cmd_list)
    c = sub.add_parser("check", help="check an implementation against the float64 reference (exit 0: conforms)")
    c.add_argument("impl", type=implementation, help=IMPL_HELP)
    c.add_argument("--data", metavar="DIR", help=f"MNIST directory for the one-epoch sanity check ({DATA_HELP})")
    c.add_argument("--no-mnist", action="store_true", help="leave out the one-epoch check on real MNIST")
    add_timeouts(c, "one check (compiling included)")
    c.set_defaults(func=cmd_check)
    t = sub.add_parser("train", help="train one implementation on a preset, printing each epoch")
    t.add_argument("--impl", required=True, type=implementation, help=IMPL_HELP)
    t.add_argument("--preset", required=True, choices=list(PRESETS))
    t.add_argument("--epochs", type=positive_int, help="override the preset's epoch count")
    t.add_argument("--seed", type=seed, default=DEFAULT_SEED, help=f"a non-negative integer; default {DEFAULT_SEED}")
    t.add_argument("--data", metavar="DIR", help=f"directory holding the four MNIST IDX files, .gz or raw ({DATA_HELP})")
    t.add_argument("--threads", type=thread_count,
                   help="pin BLAS/OpenMP and the implementation's threads (1 to the CPUs this process may use)")
    t.add_argument("--lr", type=positive_float, help="override the preset's learning rate")
    t.add_argument("--batch-size", type=positive_int, help="override the preset's mini-batch size")
    t.add_argument("--dtype", choices=list(DTYPES), help="default: the implementation's own")
    add_timeouts(t, "one epoch, or compiling")
    t.set_defaults(func=cmd_train)
    return parser


#: NumPy's floating-point warnings ("overflow encountered in exp", ...) on the way to a divergence
#: would bury the one-line message that says so. NumPy attributes them to the line that called it,
#: so they are silenced by their message in nnbench's own implementations only; every other
#: warning, nnbench's own first (Numba finding no writable cache), is shown.
QUIET = [(r"(overflow|underflow|invalid value|divide by zero) encountered in", RuntimeWarning, r"impls\.")]


def show_warning(message, category, filename, lineno, file=None, line=None):
    """A warning as one line, like an error: what it says, not the source line that said it."""
    print(f"nnbench: warning: {message}", file=file or sys.stderr)


def quiet_warnings() -> None:
    """QUIET's filters and one-line warnings, here and in the implementation's child process."""
    for message, category, module in QUIET:
        warnings.filterwarnings("ignore", message, category, module)
    warnings.showwarning = show_warning


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():        # restores the filters and showwarning on the way out
            quiet_warnings()
            return args.func(args)
    except NnbenchError as exc:
        print(f"nnbench: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("nnbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `nnbench list | head`: the reader has gone. Point stdout at /dev/null so the
        # interpreter's final flush does not print a second traceback, and exit like `yes | head`.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
