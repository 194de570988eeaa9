"""Several processes' pytest-benchmark runs of the same suites as one run (``python -m bench.run``):
which implementations there are (asked of a child process), which process runs what, and how their
JSONs are merged. Kept free of pytest so tests can feed it synthetic runs."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from .children import supervise
from .timing import rates

_SEVERITY = {"skipped": 0, "passed": 1, "failed": 2}


def plan(status: dict, only: str | None, processes: int, broken=()) -> list[tuple[list[str], int]]:
    """(implementations, process number) for each process, in the order they run: every available
    implementation alone, once per pass; the unavailable ones together in the first pass (they skip);
    the ``broken`` ones (``survey``) in none: their failure is recorded without a process."""
    wanted = [n for n in status if (not only or n in only.split(",")) and n not in broken]
    unknown = sorted(set((only or "").split(",")) - set(status) - {""})
    if unknown:
        raise ValueError(f"--only: no implementation named {', '.join(unknown)} (registered: {', '.join(status)})")
    ready = [n for n in wanted if status[n] is None]
    skipped = [n for n in wanted if status[n] is not None]
    return ([([n], k) for k in range(1, processes + 1) for n in ready]
            + ([(skipped, 1)] if skipped else []))


def died(code: int) -> str:
    """Why a benchmark process left no results, from its exit status (negative: the signal)."""
    import signal
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (f"the benchmark process died of {name}"
                + (" (the kernel's out-of-memory killer sends it)" if name == "SIGKILL" else "")
                + (": it crashed" if name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE") else ""))
    return (f"the benchmark process exited with status {code} and wrote no results (did the implementation "
            "call sys.exit or os._exit?)")


#: the registry's reason for an implementation whose framework is not installed: a clean skip
MISSING_PACKAGE = "needs the Python package"


def survey(specs, among=None, trying=lambda name: None) -> tuple[dict, dict, list]:
    """Every registered implementation (``specs`` registered first; only those of ``among`` asked,
    the others never imported) -> why it cannot run here (None: it can); apart, the user's
    implementations whose code is broken: an import that raised or exited, no Network class, an
    ``unavailable_reason`` that raised. Those are failures of the run, not skips: a missing package
    or GPU is a reason to skip, a bug is not. (nnbench's own implementations keep their reasons as
    skips: a framework broken by its install is the machine's.) Third, every registered name.
    ``trying(name)`` is called before each import, so a process that an import ends (``os._exit``,
    a segfault) can still say which one it was."""
    from impls.core.registry import built_in, names, register, registry
    for spec in specs:
        register(spec, "--impl")
    status, broken = {}, {}
    for name in names():
        if among and name not in among:
            continue
        trying(name)
        try:
            cls, _, why = registry().load(name)
        except SystemExit as exc:           # a module that runs sys.exit(main()) on import
            cls, why = None, f"importing {registry().entries[name].target} called sys.exit({exc.code!r})"
        status[name] = why
        if why and not built_in(name) and (cls is None and not why.startswith(MISSING_PACKAGE)
                                           or ".unavailable_reason raised" in why):
            broken[name] = why
    return status, broken, names()


def merge(parts: list[dict], processes: int, status: dict | None = None) -> dict:
    """One run from the parts: each benchmark's rounds pooled over its processes (stats recomputed
    by pytest-benchmark's own ``Stats``), each process's median and peaks kept beside them.
    ``status``: every implementation's availability, in the registry's order (the report's)."""
    from pytest_benchmark.stats import Stats
    first = parts[0]
    run = {k: v for k, v in first.items() if k not in ("benchmarks", "nnbench")}
    info = run["machine_info"].get("nnbench", {})
    for part in parts[1:]:                 # thread pools of every process's libraries
        info.get("threads", {}).update(part["machine_info"].get("nnbench", {}).get("threads", {}))
        seen = {b["library"] for b in info.get("blas", [])}
        info.setdefault("blas", []).extend(b for b in part["machine_info"].get("nnbench", {}).get("blas", [])
                                           if b["library"] not in seen)
    merged: dict[str, dict] = {}
    for part in parts:
        for bench in part["benchmarks"]:
            examples = bench["extra_info"].get("examples")
            # the process's own GEMM peak too: a whole process slower than its twin shows there as well
            # when the machine, not the code, was slower at the time
            one = {"median": bench["stats"]["median"], "rounds": bench["stats"]["rounds"], "examples": examples,
                   "peak_rss_session": part["nnbench"].get("peak_rss_session"),
                   "gemm_peak_gflops": part["nnbench"].get("gemm_peak_gflops")}
            if bench["fullname"] not in merged:
                merged[bench["fullname"]] = {**bench, "extra_info": {**bench["extra_info"], "processes": [],
                                                                     "rounds": []}}
                merged[bench["fullname"]]["_data"] = []
            into = merged[bench["fullname"]]
            into["extra_info"]["processes"].append(one)
            into["extra_info"]["rounds"] += bench["extra_info"].get("rounds", [])   # each names its process
            # An epoch whose estimate passes 4 s is timed on a tenth of the set: near that line one
            # process may time a tenth and the other all of it. Rounds are pooled per example, in
            # the first process's unit (each process's own median and examples are kept above).
            scale = (into["extra_info"].get("examples") or 1) / (examples or 1)
            into["_data"] += [t * scale for t in bench["stats"]["data"]]
            if bench["extra_info"].get("status") == "failed":
                into["extra_info"].update(status="failed", failure=bench["extra_info"].get("failure"))
            share = bench["extra_info"].get("other_processes_cpu_share")   # the report marks the worst
            if share is not None and share > (into["extra_info"].get("other_processes_cpu_share") or 0):
                into["extra_info"]["other_processes_cpu_share"] = share
    for bench in merged.values():
        if not bench["extra_info"]["rounds"]:       # parts from processes that timed without turns
            del bench["extra_info"]["rounds"]
        stats = Stats()
        for seconds in bench.pop("_data"):
            stats.update(seconds)
        # a pytest-benchmark save to the letter ("iterations" too): `pytest bench --benchmark-compare`
        # reads this history; data are per iteration, so the first process's count stands for all
        bench["stats"] = {**stats.as_dict(), "data": stats.data, "iterations": bench["stats"].get("iterations", 1)}
        if stats:
            bench["extra_info"].update(rates(bench["extra_info"], stats))
    run["benchmarks"] = list(merged.values())
    outcomes: dict[str, dict] = {}
    for part in parts:
        for o in part["nnbench"]["outcomes"]:
            if o["test"] not in outcomes or _SEVERITY[o["status"]] > _SEVERITY[outcomes[o["test"]]["status"]]:
                outcomes[o["test"]] = o
    peaks = [p["nnbench"]["gemm_peak_gflops"] for p in parts if p["nnbench"].get("gemm_peak_gflops")]
    rss: dict[str, float | None] = {}     # implementation(s) -> the highest peak of their processes
    for p in parts:
        key, peak = ",".join(sorted({o["impl"] for o in p["nnbench"]["outcomes"] if "impl" in o})), \
            p["nnbench"].get("peak_rss_session")
        rss[key] = max(peak or 0, rss.get(key) or 0) or None
    run["nnbench"] = {
        **first["nnbench"],
        "outcomes": list(outcomes.values()),
        "processes": processes,
        # each process measures the GEMM peak once; the median is the run's
        "gemm_peak_gflops": ({d: statistics.median(p[d] for p in peaks) for d in peaks[0]} if peaks else None),
        "peak_rss_session": max((v for v in rss.values() if v), default=None),
        "peak_rss_processes": rss,
        "session": max((p["nnbench"]["session"] for p in parts), key=("passed", "failed", "interrupted").index),
        "sources": {k: v for p in parts for k, v in p["nnbench"]["sources"].items()},
        "built_in": list(dict.fromkeys(n for p in parts for n in p["nnbench"]["built_in"])),
    }
    if status is not None:
        ran = {n for p in parts for n in p["nnbench"]["available"]}
        run["nnbench"]["available"] = {n: why for n, why in status.items() if n in ran}
    return run


def implementations(specs, only, tmp: Path, timeout: float) -> tuple[dict[str, str | None], dict[str, str]]:
    """(name -> why it cannot run here, None if it can; name -> why the user's code is broken),
    asked of a child process so that this one never imports a framework: it stays small while the
    benchmarks run. With --only only those are imported (the others: "not asked for"). The answer
    comes back in a file, not on stdout, which an implementation's module may print to on import;
    the file of the name being imported says which one ended the child, if one does. A failure
    raises SystemExit with one line."""
    answer, trying, errors = tmp / "implementations.json", tmp / "importing.txt", tmp / "implementations.stderr"
    code = ("import json, sys\nfrom pathlib import Path\nfrom impls.core.errors import NnbenchError\n"
            "from bench.harness.processes import survey\n"
            "try:\n    found = survey(sys.argv[4:], set(filter(None, sys.argv[3].split(','))), "
            "Path(sys.argv[2]).write_text)\n"
            "except NnbenchError as exc:\n    sys.exit(f'nnbench: {exc}')\n"
            "Path(sys.argv[1]).write_text(json.dumps(found))\n")
    with open(errors, "w") as err:
        try:
            status = supervise([sys.executable, "-c", code, str(answer), str(trying), only or "", *specs], timeout,
                               stdout=subprocess.DEVNULL, stderr=err)
        except subprocess.TimeoutExpired:
            status = None
    if answer.exists():
        found, broken, registered = json.loads(answer.read_text())
        return {name: found.get(name, "not asked for (--only)") for name in registered}, broken
    name = trying.read_text() if trying.exists() else None
    how = (f"did not finish within --timeout {timeout:g} s" if status is None
           else died(status).replace("the benchmark process", "it").replace(" and wrote no results", ""))
    lines = errors.read_text(errors="replace").strip().splitlines()
    if status is not None and lines and lines[-1].startswith("nnbench: "):
        raise SystemExit(lines[-1])
    raise SystemExit(f"nnbench: cannot list the implementations: the process importing them {how}"
                     + (f" while importing {name!r}" if name else "") + (f" ({lines[-1]})" if lines else ""))
