"""``nnbench``: list implementations and presets, train one implementation on a preset.

Every failure a user can fix (bad arguments, missing or corrupt data, divergence,
an unavailable implementation) is one line on stderr and a non-zero exit status.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings

from tabulate import tabulate

from . import REGISTRY, available, create, default_dtype
from .errors import NnbenchError
from .presets import DEFAULT_SEED, PRESETS, get_preset

EXIT_ERROR = 1
EXIT_MISSED_TARGET = 3


def cmd_list(args) -> int:
    rows = [(name, "yes" if reason is None else "no", reason or "") for name, reason in available().items()]
    print(tabulate(rows, headers=["implementation", "available", "reason"]))
    print()
    rows = [(p.name, "-".join(map(str, p.sizes)), p.hidden, p.output, p.batch_size or "full",
             p.lr, p.epochs, p.n_train, f"{p.target:.1%}") for p in PRESETS.values()]
    print(tabulate(rows, headers=["preset", "sizes", "hidden", "output/cost", "batch", "lr",
                                  "epochs", "train", "target"]))
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def cmd_train(args) -> int:
    from . import threads
    from .train import load_dataset, train

    preset = get_preset(args.preset)
    changes = {k: v for k, v in (("lr", args.lr), ("batch_size", args.batch_size)) if v is not None}
    preset = dataclasses.replace(preset, **changes)
    net = create(args.impl, preset.spec(args.dtype or default_dtype(args.impl)))
    if args.threads:
        threads.pin(args.threads)
        net.set_threads(args.threads)
    data = load_dataset(args.data)
    print(f"{net.name} on {preset.name} (seed {args.seed}, batch {preset.batch_size or 'full'}, "
          f"lr {preset.lr}, dtype {net.spec.dtype})")
    print("threads: " + ", ".join(f"{k}={v}" for k, v in threads.info(net).items()))
    print(f"{'epoch':>5} {'seconds':>9} {'cost':>10} {'test acc':>9}")

    def show(r):
        print(f"{r.epoch:>5} {r.seconds:>9.3f} {r.cost:>10.5f} {r.accuracy:>9.2%}", flush=True)

    result = train(net, preset, data, seed=args.seed, epochs=args.epochs, on_epoch=show)
    reached = result.time_to_target
    print(f"final test accuracy {result.final_accuracy:.2%}; target {preset.target:.1%} "
          f"{'met' if result.met_target else 'MISSED'}; training time {result.train_seconds:.2f} s; "
          + (f"time to target {reached[1]:.2f} s (epoch {reached[0]})" if reached else "target never reached"))
    return 0 if result.met_target else EXIT_MISSED_TARGET


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="implementations (available here or why not) and presets").set_defaults(func=cmd_list)
    t = sub.add_parser("train", help="train one implementation on a preset, printing each epoch")
    t.add_argument("--impl", required=True, choices=list(REGISTRY))
    t.add_argument("--preset", required=True, choices=list(PRESETS))
    t.add_argument("--epochs", type=positive_int, help="override the preset's epoch count")
    t.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"default {DEFAULT_SEED}")
    t.add_argument("--data", metavar="DIR", help="directory holding the four MNIST IDX files (.gz or raw)")
    t.add_argument("--threads", type=positive_int, help="pin BLAS/OpenMP and the implementation's threads")
    t.add_argument("--lr", type=positive_float, help="override the preset's learning rate")
    t.add_argument("--batch-size", type=positive_int, help="override the preset's mini-batch size")
    t.add_argument("--dtype", choices=["float32", "float64"], help="default: the implementation's own")
    t.set_defaults(func=cmd_train)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            # Overflow warnings on the way to a NaN would bury the one-line divergence message.
            warnings.simplefilter("ignore", RuntimeWarning)
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
