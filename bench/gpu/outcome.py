"""What the GPU run's steps leave, put together: the suites' runs as one machine's
``benchmark.json``, the tests' counts, and the summary (``summary.json`` and ``summary.md``).

``python -m bench.run`` runs one mode; the GPU run times the CUDA implementations in full mode
and the CPU ones in quick mode, one ``bench.run`` per implementation (so a step cut at its
budget loses one implementation, not the run). Their runs are concatenated here into one run of
the same format, which ``python -m bench.report`` renders like any other: its ``mode`` names
which implementations ran in which mode, and an implementation whose step was cut or died is an
outcome saying so.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tabulate import tabulate

from ..harness.timing import fmt_time

_SESSION = ("passed", "failed", "interrupted")


def combine(parts: list[tuple[str, str, dict]], lost: list[tuple[str, str]], available: dict, command: str) -> dict:
    """One run from ``parts`` [(implementation, mode, bench.run's run)]; ``lost`` [(implementation,
    why)] are the implementations whose step left no run; ``available``: every registered
    implementation -> why it cannot run here (None: it can), in the registry's order."""
    first = parts[0][2]
    run = {k: v for k, v in first.items() if k not in ("benchmarks", "nnbench")}
    run["benchmarks"] = [b for _, _, part in parts for b in part["benchmarks"]]
    threads = run["machine_info"].get("nnbench", {}).get("threads")
    for _, _, part in parts[1:]:
        if threads is not None:
            threads.update(part["machine_info"].get("nnbench", {}).get("threads", {}))
    metas = [part["nnbench"] for _, _, part in parts]
    modes: dict[str, list[str]] = {}
    for impl, mode, _ in parts:
        modes.setdefault(mode, []).append(impl)
    outcomes = [o for m in metas for o in m["outcomes"]]
    outcomes += [{"test": f"{impl}: its suites", "status": "skipped", "impl": impl, "phase": None, "message": why}
                 for impl, why in lost]
    rss = {k: v for m in metas for k, v in (m.get("peak_rss_processes") or {}).items()}
    run["nnbench"] = {
        **metas[0],
        "mode": ", ".join(f"{mode} ({', '.join(impls)})" for mode, impls in modes.items()),
        "modes": {impl: mode for impl, mode, _ in parts},
        "command": command,
        "gemm_peak_gflops": next((m["gemm_peak_gflops"] for m in metas if m.get("gemm_peak_gflops")), None),
        "gpu_gemm_peak_gflops": next((m["gpu_gemm_peak_gflops"] for m in metas if m.get("gpu_gemm_peak_gflops")),
                                     None),
        "other_processes_cpu_share": max((m["other_processes_cpu_share"] for m in metas
                                          if m.get("other_processes_cpu_share") is not None), default=None),
        "available": dict(available),
        "sources": {k: v for m in metas for k, v in m.get("sources", {}).items()},
        "built_in": list(dict.fromkeys(n for m in metas for n in m.get("built_in", []))),
        "peak_rss_processes": rss,
        "peak_rss_session": max((v for v in rss.values() if v), default=None),
        "session": max((m["session"] for m in metas), key=_SESSION.index),
        "stopped": next((m["stopped"] for m in metas if m.get("stopped")), None),
        "outcomes": outcomes,
        "wall_seconds": sum(m.get("wall_seconds") or 0 for m in metas),
    }
    return run


#: what a device hands back at most per file, with room to spare
FILE_LIMIT = 15 * 2 ** 20


def write_run(out: Path, run: dict) -> Path:
    """``benchmark.json``, compact; gzipped as ``benchmark.json.gz`` where it would pass ``FILE_LIMIT``
    (a GPU's microsecond benchmarks keep tens of thousands of rounds each: ``gunzip -k`` before
    rendering). The other name is removed, so only the latest run is there."""
    import gzip
    text = json.dumps(run, separators=(",", ":")).encode()
    plain, packed = out / "benchmark.json", out / "benchmark.json.gz"
    if len(text) > FILE_LIMIT:
        tmp = packed.with_name(packed.name + ".tmp")
        tmp.write_bytes(gzip.compress(text, compresslevel=6))
        tmp.replace(packed)
        plain.unlink(missing_ok=True)
        return packed
    write(plain, text.decode())
    packed.unlink(missing_ok=True)
    return plain


def junit_counts(path: Path) -> dict | None:
    """passed/failed/errors/skipped of a pytest ``--junitxml`` file, and the failing tests' ids;
    None if there is no readable file (the step died before pytest wrote it)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    count["passed"] = count["tests"] - count["failures"] - count["errors"] - count["skipped"]
    count["failed_tests"] = [f"{case.get('classname')}::{case.get('name')}" for case in root.iter("testcase")
                             if case.find("failure") is not None or case.find("error") is not None]
    return count


def write(path: Path, text: str) -> None:
    """Whole or not at all: a cut run must never leave half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def render(summary: dict) -> str:
    """The summary as Markdown: what ran, how each step ended, the checks, the fused step's targets."""
    dry = summary["dry_run"]
    lines = [f"# GPU run{' (DRY RUN on the CPU)' if dry else ''}: {summary['machine']}", ""]
    if dry:
        lines += ["A dry run: the CPU implementations stand in for the CUDA ones, at smoke sizes, the fused "
                  "Triton kernels in Triton's interpreter. It proves the run's code paths; none of its "
                  "figures is a GPU measurement.", ""]
    env = summary.get("environment") or {}
    lines += [tabulate([(k, v) for k, v in env.items()], headers=["", ""], tablefmt="github",
                       disable_numparse=True), ""]
    lines += [f"- `{name}` cannot run here: {why}" for name, why in (summary.get("unavailable") or {}).items()]
    lines += ["", f"Command `{summary['command']}`, started {summary['started']} UTC; total budget "
              f"{summary['budget']:.0f} s, used {summary['seconds']:.0f} s.", "", "## Steps", ""]
    rows = [(s["name"], s["status"], f"{s['seconds']:.1f}", f"{s['budget']:.0f}", s["note"]) for s in summary["steps"]]
    lines += [tabulate(rows, headers=["step", "status", "seconds", "budget (s)", "note"], tablefmt="github",
                       disable_numparse=True), ""]
    tests = summary.get("tests")
    if tests:
        lines += [f"Tests (`-k {summary['tests_k']}`): {tests['passed']} passed, {tests['failures']} failed, "
                  f"{tests['errors']} errors, {tests['skipped']} skipped"
                  + "".join(f"\n- failed: `{t}`" for t in tests["failed_tests"]), ""]
    bench = summary.get("benchmark")
    if bench:
        lines += [f"Suites: {bench['benchmarks']} benchmarks in `{bench['file']}` ({bench['mode']}); session "
                  f"{bench['session']}" + (f"; no run from {', '.join(bench['lost'])}" if bench["lost"] else ""), ""]
    lines += _targets(summary.get("fused"))
    return "\n".join(lines) + "\n"


def _targets(fused: dict | None) -> list[str]:
    lines = ["## The fused Triton step against its targets", ""]
    if not fused:
        return lines + ["Not measured (the step did not run or wrote nothing).", ""]
    rows = []
    for t in fused["targets"]:
        figure = t.get("figure")
        shown = ("—" if figure is None else f"{figure:.3g}x" if t["unit"] == "x" else fmt_time(figure))
        target = f"≤ {t['target']:g}x" if t["unit"] == "x" else f"≤ {fmt_time(t['target'])}"
        verdict = "error" if "error" in t else "met" if t["met"] else "missed"
        rows.append((t["what"], shown, target, verdict, t.get("bound") or t.get("error", "")))
    return lines + [f"`{fused['impl']}`" + (" (interpreter, smoke sizes)" if fused["dry_run"] else "") + ":", "",
                    tabulate(rows, headers=["target", "measured", "target", "verdict", "what bounds it"],
                             tablefmt="github", disable_numparse=True), ""]


def load_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
