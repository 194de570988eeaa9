"""Render results/ from the pytest-benchmark JSON the suites in bench/ write.

    python -m bench.report RUN.json [--out results]

Writes, each to a temporary name renamed into place only once everything rendered (so
results/ never holds a half-written file, and a failed render leaves it as it was):

    benchmark.json            the run, as pytest-benchmark wrote it (regenerate tables from it)
    forward.md backward.md epoch.md time-to-accuracy.md
    README.md                 machine, command, headline table, every table, failures
    epoch-vs-batch.png  tta-<preset>.png      (needs matplotlib: the `plots` extra)

Tables come from pytest-benchmark's statistics and the suites' ``extra_info``; a run that
failed is shown as FAILED and is never the baseline of a speedup.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from .harness import FEW_ROUNDS, GPU_GEMM_N, OTHERS_WARN, REFERENCE, UNSTABLE, spread

PHASES = ("forward", "backward", "epoch")
TTA = "time-to-accuracy"
HEADLINE_BATCHES = (10, 128)
FAILED = "**FAILED**"


class ReportError(Exception):
    """The input cannot be rendered (missing, not JSON, not from these suites)."""


# -- reading ----------------------------------------------------------------------------------
@dataclass
class Timing:
    """One benchmark: pytest-benchmark's statistics plus the suite's extra_info."""
    name: str
    params: dict
    stats: dict
    extra: dict

    @property
    def phase(self): return self.extra.get("phase")
    @property
    def impl(self): return self.extra.get("impl") or self.params.get("impl")
    @property
    def batch(self): return self.extra.get("batch")
    @property
    def passed(self): return self.extra.get("status") == "passed"
    @property
    def median(self): return self.stats["median"]
    @property
    def examples(self): return self.extra.get("examples") or 1

    @property
    def per_example(self) -> float:
        """Median seconds per example: comparable across rounds of different sizes."""
        return self.median / self.examples

    @property
    def spread(self) -> dict:
        s = self.stats
        return spread(s["median"], s.get("iqr", 0.0), s.get("stddev", 0.0), s.get("rounds", 1),
                      s.get("min", s["median"]), s.get("max", s["median"]))


@dataclass
class Run:
    timings: list[Timing]
    meta: dict                       # the "nnbench" section: mode, command, outcomes, ...
    machine: dict
    commit: dict
    datetime: str
    impls: list[str] = field(default_factory=list)

    def outcome(self, phase, impl, **params) -> dict | None:
        for o in self.meta.get("outcomes", []):
            if o.get("phase") == phase and o.get("impl") == impl and all(o.get(k) == v for k, v in params.items()):
                return o
        return None

    def timing(self, phase, impl, **extra) -> Timing | None:
        for t in self.timings:
            if t.phase == phase and t.impl == impl and all(
                    t.extra.get(k, t.params.get(k)) == v for k, v in extra.items()):
                return t
        return None

    @property
    def available(self) -> list[str]:
        """Implementations that could run here and did: a run narrowed with ``-k`` (say to the
        CUDA ones) gets no empty rows for the rest."""
        ran = {t.impl for t in self.timings} | {o.get("impl") for o in self.meta.get("outcomes", [])}
        return [i for i in self.impls if not self.meta.get("available", {}).get(i) and i in ran]

    @property
    def unavailable(self) -> dict[str, str]:
        return {i: r for i, r in self.meta.get("available", {}).items() if r}


def load(path) -> Run:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file (did the benchmark run write --benchmark-json?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ReportError(f"{path}: not pytest-benchmark JSON (no 'benchmarks' list)")
    if not isinstance(data.get("nnbench"), dict):
        raise ReportError(f"{path}: has no 'nnbench' section: it was not written by the suites in bench/")
    timings = [Timing(b["name"], b.get("params") or {}, b["stats"], b.get("extra_info") or {})
               for b in data["benchmarks"] if b.get("stats")]
    meta = data["nnbench"]
    impls = list(meta.get("available", {}))
    impls += sorted({t.impl for t in timings} - set(impls))
    return Run(timings, meta, data.get("machine_info", {}), data.get("commit_info", {}),
               data.get("datetime", "?"), impls)


# -- formatting ---------------------------------------------------------------------------------
def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def fmt_spread(t: Timing) -> str:
    """" ±IQR%", then ⚠ when the spread is large and ‡ when other processes shared the CPUs."""
    s = t.spread
    if s["iqr_frac"] is None:
        return ""
    text = f" ±{100 * s['iqr_frac']:.0f}%" + (" ⚠" if s["unstable"] else "")
    return text + " ‡" if (t.extra.get("other_processes_cpu_share") or 0) > OTHERS_WARN else text


def batch_label(b) -> str:
    return f"b={b}"


def missing_cell(run: Run, phase: str, impl: str, **params) -> str:
    """What a table shows where there is no passed timing."""
    outcome = run.outcome(phase, impl, **params)
    if outcome and outcome["status"] == "failed":
        return FAILED
    if outcome and outcome["status"] == "skipped":
        return "skipped"
    return ""


def batches(run: Run, phase: str) -> list[int]:
    found = {t.batch for t in run.timings if t.phase == phase}
    found |= {o.get("batch") for o in run.meta.get("outcomes", []) if o.get("phase") == phase}
    return sorted(b for b in found if isinstance(b, int))


def epoch_seconds(t: Timing) -> float:
    """Seconds per epoch of the preset's training set (scaled up from a prefix if one was timed)."""
    return t.median * (t.extra.get("n_train") or t.examples) / t.examples


def phase_tables(run: Run, phase: str) -> str:
    """Time, throughput, speedups and GFLOP/s for one phase: implementations x batch sizes."""
    cols = batches(run, phase)
    if not cols:
        return f"No {phase} benchmarks in this run.\n"
    rows = [i for i in run.available]
    headers = ["implementation"] + [batch_label(b) for b in cols]

    def table(cell):
        body = []
        for impl in rows:
            cells = []
            for b in cols:
                t = run.timing(phase, impl, batch=b)
                if t is None or not t.passed:
                    cells.append(FAILED if t is not None else missing_cell(run, phase, impl, batch=b))
                else:
                    cells.append(cell(t, b))
            body.append([impl] + cells)
        return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)

    def time_cell(t, b):
        if phase == "epoch":
            mark = " †" if t.extra.get("subset") or t.examples < (t.extra.get("n_train") or 0) else ""
            return fmt_time(epoch_seconds(t)) + fmt_spread(t) + mark
        return fmt_time(t.median) + fmt_spread(t)

    def speedup_cell(base_name):
        def cell(t, b):
            base = run.timing(phase, base_name, batch=b)
            if base is None or not base.passed:
                return "—"
            return f"{base.per_example / t.per_example:.2f}×"
        return cell

    def gflops_cell(t, b):
        if "gflops" not in t.extra:
            return "—"
        return f"{t.extra['gflops']:.3g} ({t.extra['pct_peak']:.2g}%)"

    what = {"forward": "median time per call", "backward": "median time per call",
            "epoch": "median seconds per epoch of the preset's training set"}[phase]
    parts = [f"**Time** ({what}, ±IQR as % of the median; ⚠ = unstable, read with care: IQR (with "
             f"under {FEW_ROUNDS} rounds, max − min) above {UNSTABLE:.0%} of the median; ‡ = other "
             f"processes took over {OTHERS_WARN:.0%} of the CPUs during this benchmark: not trustworthy"
             + ("; † = timed on a prefix of the training set and scaled to the full epoch: "
                "examples/s is what was measured" if phase == "epoch" else "") + ")\n",
             table(time_cell),
             "\n**Throughput** (examples per second)\n",
             table(lambda t, b: f"{t.extra['examples_per_s']:,.0f}" if "examples_per_s" in t.extra else "—"),
             f"\n**Speedup vs `{REFERENCE}`** (its time per example / this one's; — where the baseline "
             "failed or did not run)\n",
             table(speedup_cell(REFERENCE)),
             "\n**Speedup vs `numpy`**\n",
             table(speedup_cell("numpy")),
             "\n**GFLOP/s** (matrix-product FLOPs of the phase / median time; in brackets the share of "
             "this machine's GEMM peak for the implementation's dtype, on its device: the GPU's for CUDA)\n",
             table(gflops_cell)]
    return "\n".join(parts) + "\n" + not_available(run)


def not_available(run: Run) -> str:
    if not run.unavailable:
        return ""
    return "\nNot available here: " + "; ".join(f"`{i}` ({r})" for i, r in run.unavailable.items()) + ".\n"


def tta_presets(run: Run) -> list[str]:
    names = [t.params.get("preset_name") for t in run.timings if t.phase == TTA]
    names += [o.get("preset_name") for o in run.meta.get("outcomes", []) if o.get("phase") == TTA]
    return list(dict.fromkeys(n for n in names if n))


def tta_table(run: Run, preset: str) -> str:
    headers = ["implementation", "status", "seeds", "time to target, median", "per seed",
               "final accuracy, median", "per seed", "reached target", "whole run per seed"]
    body, about = [], None
    for impl in run.available:
        t = run.timing(TTA, impl, preset_name=preset)
        outcome = run.outcome(TTA, impl, preset_name=preset) or {}
        if t is None:
            status = (f"{FAILED}: {outcome.get('message', '')}" if outcome.get("status") == "failed"
                      else "not run (see note)" if outcome.get("status") == "skipped" else "")
            if status:
                body.append([impl, status] + [""] * (len(headers) - 2))
            continue
        e = t.extra
        about = about or e
        seeds = e.get("seeds", [])
        status = "passed" if t.passed else f"{FAILED}: {outcome.get('message') or 'see failures'}"
        ttt = [fmt_s(s["time_to_target"]) if s["time_to_target"] is not None else "never" for s in seeds]
        acc = [fmt_acc(s["final_accuracy"]) + ("" if s["status"] in ("reached", "missed") else f" ({s['status'][:8]})")
               for s in seeds]
        median_ttt = e.get("median_time_to_target")
        body.append([impl, status, ", ".join(str(s["seed"]) for s in seeds),
                     fmt_s(median_ttt) if median_ttt is not None else "never",
                     " / ".join(ttt), fmt_acc(e.get("median_final_accuracy")), " / ".join(acc),
                     f"{e.get('reached', 0)}/{len(seeds)}" + (f" ({e['stalled']} stalled)" if e.get("stalled") else ""),
                     fmt_s(t.median) + fmt_spread(t)])
    text = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) if body else "No runs."
    if about:
        stop = ("each seed stops at its first epoch at/above target, so final accuracy is the accuracy there"
                if about.get("to_target") else f"every seed trains all {about.get('epochs')} epochs")
        text = (f"`{about.get('preset')}`: target {fmt_acc(about.get('target'))} on the median final test "
                f"accuracy; batch {about.get('batch')}, {about.get('n_train'):,} training examples, at most "
                f"{about.get('epochs')} epochs; {stop}. Time to target = training seconds (evaluation "
                "excluded) summed to the first epoch at/above target; a seed that never reaches it is "
                "stalled. Whole run = pytest-benchmark's round: training plus per-epoch evaluation.\n\n" + text)
    return text + "\n"


def fmt_s(seconds) -> str:
    return "—" if seconds is None else f"{seconds:.3g} s" if seconds < 100 else f"{seconds:.0f} s"


def fmt_acc(fraction) -> str:
    return "—" if fraction is None else f"{100 * fraction:.2f}%"


def headline(run: Run) -> str:
    headers = ["implementation"] + [f"epoch {batch_label(b)}" for b in HEADLINE_BATCHES]
    presets = tta_presets(run)
    headers += [f"time to target: {p}" for p in presets]
    body = []
    for impl in run.available:
        row = [impl]
        for b in HEADLINE_BATCHES:
            t = run.timing("epoch", impl, batch=b)
            row.append(fmt_time(epoch_seconds(t)) + fmt_spread(t) if t and t.passed
                       else FAILED if t else missing_cell(run, "epoch", impl, batch=b))
        for p in presets:
            t = run.timing(TTA, impl, preset_name=p)
            if t and t.passed:
                m = t.extra.get("median_time_to_target")
                row.append(f"{fmt_s(m)} ({t.extra.get('reached')}/{len(t.extra.get('seeds', []))} seeds)")
            else:
                outcome = run.outcome(TTA, impl, preset_name=p) or {}
                row.append(FAILED if t or outcome.get("status") == "failed"
                           else "not run" if outcome.get("status") == "skipped" else "")
        body.append(row)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) + "\n"


def machine_section(run: Run) -> str:
    m, meta = run.machine, run.meta
    nn = m.get("nnbench", {})
    # threadpoolctl reports no version/architecture for OpenMP runtimes: show what is known,
    # and the library file, which tells torch's bundled libgomp from the system one numba uses.
    blas = "; ".join(" ".join(str(b[k]) for k in ("internal_api", "version") if b.get(k))
                     + f" ({', '.join(str(b[k]) for k in ('library', 'threading_layer', 'architecture') if b.get(k))}"
                     + f", {b.get('num_threads')} threads)" for b in nn.get("blas", []))
    versions = ", ".join(f"{k} {v}" for k, v in nn.get("versions", {}).items() if v)
    peak, gpu_peak = meta.get("gemm_peak_gflops") or {}, meta.get("gpu_gemm_peak_gflops")
    others = meta.get("other_processes_cpu_share")
    commit = run.commit
    rows = [
        ("command", f"`{meta.get('command')}`"),
        ("mode", f"{meta.get('mode')} (network of the phase tables: `{meta.get('preset')}` preset)"),
        ("date (UTC)", run.datetime),
        ("commit", f"{commit.get('id', '?')[:12]} on {commit.get('branch', '?')}"
                   + (" (uncommitted changes)" if commit.get("dirty") else "")),
        ("machine", f"{m.get('node')} — {m.get('system')} {m.get('release')} {m.get('machine')}"),
        ("CPU", f"{nn.get('cpu') or m.get('processor')}, {nn.get('logical_cpus')} logical CPUs "
                f"({nn.get('usable_cpus')} usable)"),
        ("threads", f"pinned to {meta.get('pinned_threads')}; in force: "
                    + ", ".join(f"{k}={v}" for k, v in nn.get("threads", {}).items())),
        ("BLAS/OpenMP pools", blas or "?"),
        ("GEMM peak", _gemm_peaks(peak) + " (NumPy 2048² product, best of 5, pinned threads)" if peak
                      else "not measured"),
        ("GPU", nn.get("gpu") or "none"),
        *([("GPU GEMM peak", _gemm_peaks(gpu_peak) + f" (torch, {GPU_GEMM_N}² product, best of 5; the share of peak "
                                                      "of a CUDA implementation is of this)")] if gpu_peak else []),
        ("Python", f"{m.get('python_implementation')} {m.get('python_version')}"),
        ("libraries", versions),
        ("other processes", "not measured" if others is None else
         f"{100 * others:.1f}% of the machine's CPU time during the run"
         + (" ⚠ they competed with the benchmarks" if others > OTHERS_WARN else "")),
    ]
    return tabulate(rows, headers=["", ""], tablefmt="github", disable_numparse=True) + "\n"


def _gemm_peaks(peak: dict) -> str:
    return ", ".join(f"{'SGEMM' if d == 'float32' else 'DGEMM'} {v:.0f} GFLOP/s" for d, v in peak.items())


def failures(run: Run) -> str:
    failed = [o for o in run.meta.get("outcomes", []) if o.get("status") == "failed"]
    if not failed:
        return ""
    lines = "\n".join(f"- `{o['test']}`: {o.get('message') or '(no message)'}" for o in failed)
    return (f"## Failures\n\nThis session failed, so it was not saved as a `--benchmark-compare` "
            f"baseline.\n\n{lines}\n")


def tta_section(run: Run, level: str) -> str:
    """Every preset's table under its own heading at ``level`` (e.g. "##"), then the notes."""
    body = "\n".join(f"{level} {p}\n\n{tta_table(run, p)}" for p in tta_presets(run)) or "No runs.\n"
    notes = [o.get("message", "") for o in run.meta.get("outcomes", [])
             if o.get("phase") == TTA and o.get("status") == "skipped" and o.get("impl") not in run.unavailable]
    return body + "".join(f"\nNote: {n}\n" for n in dict.fromkeys(notes)) + not_available(run)


TITLES = {"forward": "Forward pass (`feedforward`)",
          "backward": "Backward (`backprop`: cost and gradients of one mini-batch)",
          "epoch": "One training epoch (`train_epoch`)",
          TTA: "Time to accuracy"}


def render(run: Run) -> dict[str, str]:
    """Every Markdown file, as text."""
    files = {f"{p}.md": f"# {TITLES[p]}\n\n{phase_tables(run, p)}" for p in PHASES}
    files[f"{TTA}.md"] = f"# {TITLES[TTA]}\n\n{tta_section(run, '##')}"
    plots = "".join(f"![{name}]({name})\n\n" for name in plot_names(run))
    files["README.md"] = "\n".join([
        "# Results", "",
        f"Written by `python -m bench.report` from [benchmark.json](benchmark.json), produced by "
        f"`{run.meta.get('command')}`. Regenerate the tables from it with "
        "`python -m bench.report results/benchmark.json`.", "",
        "## Machine", "", machine_section(run),
        "## Headline", "",
        "Epoch time (seconds per epoch of the preset's training set, ±IQR; ⚠ unstable, ‡ other processes "
        "shared the CPUs) and median training seconds to the preset's target, with the seeds that reached it.",
        "", headline(run),
        failures(run),
        *(f"## {TITLES[p]}\n\n{phase_tables(run, p)}" for p in PHASES),
        f"## {TITLES[TTA]}\n\n{tta_section(run, '###')}",
        "## Plots", "", plots or "No plots (install the `plots` extra: matplotlib).\n",
    ])
    return files


# -- plots ----------------------------------------------------------------------------------------
def plot_names(run: Run) -> list[str]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    names = ["epoch-vs-batch.png"] if any(t.phase == "epoch" and t.passed for t in run.timings) else []
    return names + [f"tta-{p}.png" for p in tta_presets(run)
                    if any(t.phase == TTA and t.params.get("preset_name") == p for t in run.timings)]


def plots(run: Run) -> dict[str, bytes]:
    names = plot_names(run)
    if not names:
        return {}
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
    plain = FuncFormatter(lambda x, _: f"{x:g}")      # 0.3, 10, 1024 rather than 3x10^-1 on log axes
    nn = run.machine.get("nnbench", {})
    gpu = (nn.get("gpu") or "").split(" (")[0]     # the name, without memory and driver
    where = (f"{gpu} + " if gpu else "") + f"{nn.get('cpu') or run.machine.get('node')}, " \
            f"{run.meta.get('pinned_threads')} threads"
    out = {}
    for name in names:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        if name == "epoch-vs-batch.png":
            for impl in run.available:
                points = sorted((t.batch, epoch_seconds(t)) for t in run.timings
                                if t.phase == "epoch" and t.impl == impl and t.passed)
                if points:
                    ax.plot(*zip(*points), marker="o", label=impl)
            ax.set_xscale("log")
            ax.set_xticks(sorted({t.batch for t in run.timings if t.phase == "epoch"}))
            ax.set(yscale="log", xlabel="mini-batch size",
                   ylabel="seconds per epoch", title=f"Epoch time vs batch size ({run.meta.get('preset')}; {where})")
        else:
            preset = name[len("tta-"):-len(".png")]
            colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
            target = None
            for impl in run.available:
                t = run.timing(TTA, impl, preset_name=preset)
                if t is None:
                    continue
                color, target = next(colors), t.extra.get("target")
                for i, seed in enumerate(t.extra.get("seeds", [])):
                    if seed["curve"]:
                        seconds, acc = zip(*seed["curve"])
                        ax.plot(seconds, [100 * a for a in acc], color=color, marker=".",
                                label=impl if i == 0 else None, alpha=0.8)
            if target:
                ax.axhline(100 * target, color="grey", linestyle="--", label=f"target {100 * target:.1f}%")
            ax.set(xscale="log", xlabel="cumulative training seconds", ylabel="test accuracy (%)",
                   title=f"Test accuracy vs training time: {preset} ({where})")
        ax.xaxis.set_major_formatter(plain)
        ax.yaxis.set_major_formatter(plain)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        out[name] = buffer.getvalue()
    return out


# -- writing ---------------------------------------------------------------------------------------
def write_all(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temporary name in out_dir, then rename each into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for name, content in files.items():
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            staged.append((tmp, out_dir / name))
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    for tmp, final in staged:
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)


def build(json_path, out_dir) -> list[str]:
    """Render everything for ``json_path`` into ``out_dir``; returns the file names written."""
    run, data = load(json_path), json.loads(Path(json_path).read_text())
    for bench in data["benchmarks"]:
        bench.get("stats", {}).pop("data", None)     # every round's time: megabytes, and the stats hold it
    files = {name: text.encode() for name, text in render(run).items()}
    files.update(plots(run))
    files["benchmark.json"] = json.dumps(data, indent=1).encode()
    write_all(Path(out_dir), files)
    return sorted(files)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("json", help="pytest-benchmark JSON written by `pytest bench --benchmark-json=FILE`")
    parser.add_argument("--out", default="results", help="directory to write into (default: results)")
    args = parser.parse_args(argv)
    try:
        names = build(args.json, args.out)
    except ReportError as exc:
        print(f"bench.report: error: {exc}", file=sys.stderr)
        return 1
    print(f"bench.report: wrote {', '.join(names)} into {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
