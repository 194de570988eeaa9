"""The machine a run or a study was measured on, as a Markdown table: what decides the speed."""
from __future__ import annotations

from tabulate import tabulate

from ..harness.timing import GPU_GEMM_N, OTHERS_WARN
from .reading import Run


def machine_rows(nn: dict) -> list[tuple[str, str]]:
    """The machine as ``bench.harness.host.describe()`` recorded it, as table rows."""
    # threadpoolctl reports no version/architecture for OpenMP runtimes: show what is known,
    # and the library file, which tells torch's bundled libgomp from the system one numba uses.
    blas = "; ".join(" ".join(str(b[k]) for k in ("internal_api", "version") if b.get(k))
                     + f" ({', '.join(str(b[k]) for k in ('library', 'threading_layer', 'architecture') if b.get(k))}"
                     + f", {b.get('num_threads')} threads)" for b in nn.get("blas", []))
    return [
        ("CPU", f"{nn.get('cpu')}, {nn.get('logical_cpus')} logical CPUs ({nn.get('usable_cpus')} usable)"),
        ("threads in force", ", ".join(f"{k}={v}" for k, v in nn.get("threads", {}).items())),
        ("BLAS/OpenMP pools", blas or "?"),
        ("GPU", nn.get("gpu") or "none"),
        ("system", f"{nn.get('system', '?')}, Python {nn.get('python', '?')}"),
        ("libraries", ", ".join(f"{k} {v}" for k, v in nn.get("versions", {}).items() if v)),
    ]


def machine_section(run: Run) -> str:
    m, meta = run.machine, run.meta
    peak, gpu_peak = meta.get("gemm_peak_gflops") or {}, meta.get("gpu_gemm_peak_gflops")
    others = meta.get("other_processes_cpu_share")
    commit = run.commit
    rows = [
        ("command", f"`{meta.get('command')}`"),
        ("mode", f"{meta.get('mode')} (network of the phase tables: `{meta.get('preset')}` preset)"),
        ("date (UTC)", run.datetime),
        ("commit", f"{commit.get('id', '?')[:12]} on {commit.get('branch', '?')}"
                   + (" (uncommitted changes)" if commit.get("dirty") else "")),
        ("machine", f"`{run.label}` (host {m.get('node')}; the label is set by `--bench-machine`)"),
        ("threads pinned", str(meta.get("pinned_threads"))),
        ("MNIST from", str(meta.get("data") or "not recorded")
                       + (f" ({meta['dataset_bytes'] / 1e6:.0f} MB in memory, held once)" if meta.get("dataset_bytes") else "")),
        *machine_rows(m.get("nnbench", {})),
        ("GEMM peak", _gemm_peaks(peak) + " (NumPy 2048² product, best of 5, pinned threads)" if peak
                      else "not measured"),
        *([("GPU GEMM peak", _gemm_peaks(gpu_peak) + f" (torch, {GPU_GEMM_N}² product, best of 5; the share of peak "
                                                      "of a CUDA implementation is of this)")] if gpu_peak else []),
        ("peak resident memory", _peak_rss(meta)),
        *([("processes", f"{meta['processes']} per implementation (`python -m bench.run`), interleaved; each "
                         "benchmark's rounds pooled from them")] if meta.get("processes") else []),
        ("other processes", "not measured" if others is None else
         f"{100 * others:.1f}% of the machine's CPU time during the run"
         + (" ⚠ they competed with the benchmarks" if others > OTHERS_WARN else "")),
    ]
    return tabulate(rows, headers=["", ""], tablefmt="github", disable_numparse=True) + "\n"


def _gemm_peaks(peak: dict) -> str:
    return ", ".join(f"{'SGEMM' if d == 'float32' else 'DGEMM'} {v:.0f} GFLOP/s" for d, v in peak.items())


def _peak_rss(meta: dict) -> str:
    peak, per = meta.get("peak_rss_session"), meta.get("peak_rss_processes") or {}
    if not peak:
        return "not measured"
    if not per:
        return (f"{peak / 1e9:.2f} GB: the whole session's highest resident memory (this process: libraries, "
                "dataset, every implementation in turn)")
    top = max(per, key=lambda k: per[k] or 0)
    return (f"{peak / 1e9:.2f} GB: the largest process's highest resident memory ({top}'s: its libraries, the "
            "dataset, its benchmarks in turn); each implementation's: "
            + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in sorted(per.items(), key=lambda kv: -(kv[1] or 0)) if v))
