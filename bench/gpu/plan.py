"""The GPU run's steps after ``facts``, built from what the facts found: which implementations
are CUDA ones (their names end in ``-cuda``) and which of them can run here. In a dry run the
CPU stand-ins of ``bench.gpu_run.DRY`` take their places."""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from . import outcome
from .steps import Step, skip

#: a dry run's checks of Triton's interpreter leave out the epoch on real MNIST: thousands of
#: times slower there than compiled (minutes); tests/test_triton_fused.py does the same
INTERPRETER = "impls.triton_fused:interpreted"
#: the CUDA suites' order: the rows never measured on a GPU first, the costliest compile last
CUDA_ORDER = ("triton-fused-cuda", "torch-fast-cuda", "jax-cuda", "torch-idiomatic-cuda", "torch-compile-cuda")
#: every test whose id names a CUDA implementation or device, and the fused kernels' tests (on
#: the GPU where there is one, else in the interpreter)
TESTS_K = "cuda or triton_fused"
#: the dry run's CPU stand-ins: (checks, suites in the CUDA role, suites in the CPU role)
DRY = (("torch-fast-cpu", INTERPRETER), ("torch-fast-cpu",), ("numpy",))


def python(*args) -> list[str]:
    return [sys.executable, *args]


def run_all(r, args, status: dict) -> None:
    ready = [n for n, why in status.items() if why is None]
    cuda = [n for n in CUDA_ORDER if n in ready] + [n for n in ready if n.endswith("-cuda") and n not in CUDA_ORDER]
    cpu = [n for n in ready if not n.endswith("-cuda")]
    if not status and not args.dry_run:     # the facts step left no list: try every CUDA one, each says why not
        cuda, cpu = list(CUDA_ORDER), []
    checks = list(cuda)
    if args.dry_run:
        checks, cuda, cpu = list(DRY[0]), list(DRY[1]), list(DRY[2])
    interpret = {"TRITON_INTERPRET": "1"} if args.dry_run else {}
    data = ["--data", args.data] if args.data else []
    out = args.out

    xml = out / "tests.xml"
    # JAX takes most of the GPU's memory when it starts unless told not to; these tests put
    # torch, Triton and JAX in one process.
    r.group("tests", [Step("tests", python("-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "-k", TESTS_K,
                                           f"--junitxml={xml}"), env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"})])
    r.summary["tests"] = outcome.junit_counts(xml)

    steps = [Step(f"check:{n}", python("-m", "impls.core.cli", "check", n, *(["--no-mnist"] if n == INTERPRETER else data)),
                  env=interpret if n == INTERPRETER else {}) for n in (args.check or checks)]
    r.group("check", steps or [skip(Step("check", [], 0), "no CUDA implementation can run here (see the facts)")])

    fused = Step("fused", python("-m", "bench.gpu.fused", str(out / "fused.json"), *(["--dry-run"] * args.dry_run), *data),
                 env=interpret)
    why = None if args.dry_run or not status else status.get("triton-fused-cuda", "not registered")
    r.group("fused", [skip(fused, f"triton-fused-cuda cannot run here: {why}") if why else fused])
    r.summary["fused"] = outcome.load_json(out / "fused.json")

    tmp = Path(tempfile.mkdtemp(prefix="nnbench-gpu-run-"))
    parts, lost = [], []
    try:
        for group, mode, names in (("suite-cuda", "smoke" if args.dry_run else "full", cuda),
                                   ("suite-cpu", "smoke" if args.dry_run else "quick", cpu)):
            steps = [Step(f"suite:{n}", python("-m", "bench.run", f"--mode={mode}", f"--processes={args.processes}",
                                               f"--only={n}", f"--json={tmp / n}.json", f"--machine={args.machine}"))
                     for n in names]

            def after(step, mode=mode):
                name = step.name.split(":", 1)[1]
                part = outcome.load_json(tmp / f"{name}.json")
                if part:
                    parts.append((name, mode, part))
                else:
                    lost.append((name, f"the GPU run's step {step.name} left no run: {step.status}, {step.note}"))
                run = outcome.combine(parts, lost, status, r.summary["command"]) if parts else None
                written = outcome.write_run(out, run) if run else None
                r.summary["benchmark"] = {"file": written.name if written else None,
                                          "benchmarks": len(run["benchmarks"]) if run else 0,
                                          "mode": run["nnbench"]["mode"] if run else "none",
                                          "session": run["nnbench"]["session"] if run else "none",
                                          "lost": [n for n, _ in lost]}
            r.group(group, steps or [skip(Step(group, [], 0), f"no implementation for {group} can run here")],
                    then=after if steps else None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
