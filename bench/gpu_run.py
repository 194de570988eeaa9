"""``python -m bench.gpu_run`` (``make gpu-run``): everything a GPU machine can tell us, in one run.

Steps, in order, each a child process with its own time budget (``bench/gpu/steps.py``): one
that runs out is cut and says so, one that fails is recorded, and the next runs either way.

1. ``facts``: GPU, driver, CUDA, library versions, MNIST, which implementations can run here
   and why not (``environment.json``).
2. ``tests``: the CUDA tests (``pytest -k "cuda or triton_fused"``: every test whose id names a
   CUDA implementation or device, and the fused kernels' tests, which run on the GPU where
   there is one), then ``check:NAME``: ``nnbench check`` for every available CUDA
   implementation: compile errors the interpreter cannot catch show here first.
3. ``fused``: the fused Triton step against its three targets (``bench/gpu/fused.py``).
4. ``suite:NAME``: the suites through ``python -m bench.run``, the CUDA implementations in full
   mode, then the CPU ones in quick mode, one implementation a step; put together as one
   machine's ``benchmark.json`` after each (``bench/gpu/outcome.py``).
5. The summary, printed last and written as ``summary.md`` and ``summary.json`` after every step.

Budget: each group of steps is guaranteed its share of ``--budget``; time a group leaves unused
passes to the next. Within a group a step may use what the group has left, less a reserve for
each step after it. Everything lands flat in ``--out``: seven files, none over 15 MiB (what a
device hands back; ``benchmark.json`` is gzipped where it would be larger). ``--dry-run``: the same steps on the CPU with CPU stand-ins at smoke sizes, the fused
kernels in Triton's interpreter; its machine label ends in ``-dry-run``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path

from bench.gpu import outcome, plan
from bench.gpu.steps import Step, run, skip

REPO = Path(__file__).resolve().parents[1]
#: the files a run writes into --out (and removes from there before it starts)
ARTEFACTS = ("summary.md", "summary.json", "environment.json", "tests.xml", "fused.json", "benchmark.json",
             "benchmark.json.gz", "steps.log")
#: each group's guaranteed share of the budget, in the order the groups run
SHARES = {"facts": 0.10, "tests": 0.14, "check": 0.14, "fused": 0.08, "suite-cuda": 0.44, "suite-cpu": 0.10}
#: within a group, the share of the budget kept back for each step still to come
RESERVE = 0.04


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.gpu_run", description=__doc__.splitlines()[0],
                                epilog="Groups: " + ", ".join(SHARES) + "; steps: facts, tests, check:NAME, fused, "
                                       "suite:NAME.")
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, smoke sizes (CI runs it)")
    p.add_argument("--out", type=Path, default=Path("results/gpu-run"), help="folder. Default: results/gpu-run")
    p.add_argument("--budget", type=_above_zero, default=480.0, help="total seconds for every step. Default: 480")
    p.add_argument("--step-budget", action="append", default=[], metavar="NAME=SECONDS",
                   help="a step's or group's budget instead of its share (0 skips it); repeatable")
    p.add_argument("--check", action="append", metavar="NAME",
                   help="check these implementations (repeatable). Default: every available CUDA one")
    p.add_argument("--processes", type=int, default=1, help="bench.run's processes per implementation. Default: 1")
    p.add_argument("--machine", help="the machine label (default: bench.run's, plus -dry-run in a dry run)")
    p.add_argument("--data", help="MNIST directory (default: NNBENCH_DATA, then nnbench's cache)")
    args = p.parse_args(argv)
    try:
        args.step_budget = {k: _seconds(v) for k, _, v in (s.partition("=") for s in args.step_budget)}
    except argparse.ArgumentTypeError as exc:
        p.error(f"--step-budget: {exc} (write NAME=SECONDS)")
    unknown = [k for k in args.step_budget if k not in SHARES and k.split(":")[0] not in ("check", "suite")
               and k not in ("facts", "tests", "fused")]
    if unknown:
        p.error(f"--step-budget: no step or group named {', '.join(unknown)}")
    if args.data:
        if not Path(args.data).is_dir():
            p.error(f"--data: {args.data} is not a directory")
        args.data = str(Path(args.data).resolve())
    if args.processes < 1:
        p.error("--processes must be 1 or more")
    if args.machine:
        from bench.harness.host import check_label
        try:
            check_label(args.machine)
        except ValueError as exc:
            p.error(f"--machine: {exc}")
    return args


def _seconds(text) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _above_zero(text) -> float:
    value = _seconds(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


class Run:
    """The run's clock, its budget groups and its summary, rewritten after every step."""

    def __init__(self, args, command: str):
        self.args, self.began = args, time.monotonic()
        self.out, self.log = args.out, args.out / "steps.log"
        self.env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                    "NNBENCH_COMMAND": command, **({"NNBENCH_DATA": args.data} if args.data else {})}
        self.summary = {"dry_run": args.dry_run, "machine": args.machine, "command": command, "budget": args.budget,
                        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "seconds": 0.0, "steps": [], "tests_k": plan.TESTS_K}

    def left(self) -> float:
        return self.args.budget - (time.monotonic() - self.began)

    def group(self, name: str, steps: list[Step], then=None) -> list[Step]:
        """Run a group's steps, each budgeted as the module's docstring says; ``then(step)`` after each."""
        later = sum(share for g, share in list(SHARES.items())[list(SHARES).index(name) + 1:])
        for i, step in enumerate(steps):
            group_left = self.left() - later * self.args.budget
            after = len(steps) - i - 1
            step.budget = max(group_left / (after + 1), group_left - after * RESERVE * self.args.budget)
            fixed = self.args.step_budget.get(step.name, self.args.step_budget.get(name))
            if fixed is not None:
                step.budget = fixed
            step.budget = max(0.0, min(step.budget, self.left()))
            step.env = {**self.env, **step.env}
            if step.status == "pending":
                if fixed == 0:
                    skip(step, f"--step-budget {step.name if step.name in self.args.step_budget else name}=0")
                else:
                    run(step, self.log)
            print(f"gpu-run: {step.name}: {step.status} ({step.seconds:.1f} s of {step.budget:.0f})"
                  + (f": {step.note}" if step.note else ""), flush=True)
            self.summary["steps"].append(step.record())
            if then:
                then(step)
            self.save()
        return steps

    def save(self):
        self.summary["seconds"] = time.monotonic() - self.began
        outcome.write(self.out / "summary.json", json.dumps(self.summary, indent=2, default=str))
        outcome.write(self.out / "summary.md", outcome.render(self.summary))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = os.environ.get("NNBENCH_GPU_COMMAND") or shlex.join(["python", "-m", "bench.gpu_run", *argv])
    args.out = args.out.resolve()
    os.chdir(REPO)                  # every step names its files from the checkout's root (pytest tests, bench)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ARTEFACTS:
            (args.out / name).unlink(missing_ok=True)
        (args.out / "steps.log").write_text("")
    except OSError as exc:
        print(f"gpu-run: error: cannot write into --out {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    r = Run(args, command)
    env_file = args.out / "environment.json"
    r.group("facts", [Step("facts", plan.python("-m", "bench.gpu.facts", str(env_file), *([args.data] if args.data else [])),
                           env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"})])
    facts = outcome.load_json(env_file) or {}
    status = facts.get("implementations") if isinstance(facts.get("implementations"), dict) else {}
    if "label" in facts:
        label = facts["label"]
    else:                  # the facts step died early: the same label, asked here (it imports no framework)
        from bench.harness.host import this_label
        label = this_label()
    args.machine = r.summary["machine"] = args.machine or (label[:72] + "-dry-run" if args.dry_run else label)
    r.summary["environment"] = environment(facts, status)
    r.summary["unavailable"] = {name: why for name, why in status.items() if why is not None}
    plan.run_all(r, args, status)
    r.save()
    print("\n" + outcome.render(r.summary))
    bad = [s["name"] for s in r.summary["steps"] if s["status"] in ("failed", "cut")]
    print(f"gpu-run: wrote {', '.join(n for n in ARTEFACTS if (args.out / n).exists())} into {args.out}/"
          + (f"; not passed: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def environment(facts: dict, status: dict) -> dict:
    """The summary's table of the environment, from ``environment.json``."""
    torch, jax = facts.get("torch", {}), facts.get("jax", {})
    gpus = facts.get("nvidia_smi", {}).get("gpus") or []
    return {
        "GPU": ", ".join(f"{g.get('name')} ({g.get('memory.total')}, driver {g.get('driver_version')})" for g in gpus)
               or facts.get("nvidia_smi", {}).get("error", "none"),
        "torch": f"{torch.get('version')} (CUDA {torch.get('cuda')}, sees a GPU: {torch.get('cuda_available')})"
                 if "version" in torch else torch.get("error"),
        "Triton": facts.get("triton", {}).get("version") or facts.get("triton", {}).get("error"),
        "JAX": f"{jax.get('version')} ({', '.join(jax.get('devices', []))})" if "version" in jax else jax.get("error"),
        "Numba": facts.get("numba", {}).get("version") or facts.get("numba", {}).get("error"),
        "Python": facts.get("python"),
        "MNIST": facts.get("mnist", {}).get("source") or facts.get("mnist", {}).get("error"),
        "implementations": ", ".join(n for n, why in status.items() if why is None) or "none",
    }


if __name__ == "__main__":
    sys.exit(main())
