"""What decides the speed of this code, on this host, for the record beside every benchmark and study:
CPU, cores, thread pools, BLAS, library versions, GPU. Asking imports nothing new (no torch)."""
from __future__ import annotations

import functools
import glob
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys

#: packages whose versions are recorded (absent ones are left out)
PACKAGES = ("numpy", "numba", "llvmlite", "torch", "jax", "jaxlib", "scikit-learn", "threadpoolctl",
            "pytest-benchmark", "nnbench")


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu() -> str | None:
    if "torch" not in sys.modules:     # asking must not import torch
        return None
    from impls.core.torch_base import describe_cuda_device
    try:
        return describe_cuda_device()
    except Exception:                  # noqa: BLE001 -- a broken driver is "no GPU" for the record
        return None


def describe() -> dict:
    from threadpoolctl import threadpool_info

    from impls.core.threads import info, usable_cpus
    return {
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "threads": info(),
        "blas": [{k: pool.get(k) for k in ("internal_api", "version", "threading_layer", "architecture",
                                           "num_threads")} | {"library": os.path.basename(pool["filepath"])}
                 for pool in threadpool_info()],
        "versions": {p: v for p in PACKAGES if (v := version(p))},
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "gpu": gpu(),
    }


# -- the machine label: which history a run joins and which column it is in a comparison --------
#: what a user-given label may be: it names a folder (.benchmarks/<label>/, results/<label>/)
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
#: not a label: pytest-benchmark's folder for diverted sessions (plugin.py) and results/'s own folders
RESERVED_LABELS = ("failed", "quick", "studies", "profiles")
_CPU_NOISE = re.compile(r"\((?:R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|@.*$|\bwith\b.*$", re.IGNORECASE)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def gpu_name() -> str | None:
    """The first NVIDIA GPU's model, without importing torch: the driver's /proc entry, else
    ``nvidia-smi``; prefixed "2x " and so on when there are several. None without one."""
    names = []
    for info in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
        try:
            with open(info) as fh:
                names += [line.split(":", 1)[1].strip() for line in fh if line.startswith("Model:")]
        except OSError:
            pass
    if not names and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout
            names = [line.strip() for line in out.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            names = []
    if not names:
        return None
    return (f"{len(names)}x " if len(names) > 1 else "") + names[0]


def default_label(cpu: str | None, cpus: int | None, gpu: str | None) -> str:
    """``<cpu model>-<N>cpu[-<gpu model>]`` as a folder name, e.g. ``intel-xeon-2cpu`` or
    ``intel-xeon-16cpu-nvidia-h100-80gb-hbm3``: trademarks, "CPU"/"Processor" and the clock are
    dropped from the model; ``gpu`` may be ``describe()``'s text (what follows " (" is dropped)."""
    model = slug(_CPU_NOISE.sub(" ", cpu or "")) or slug(platform.machine()) or "cpu"
    label = f"{model}-{cpus or '?'}cpu".replace("?", "unknown")
    if gpu:
        label += "-" + slug(gpu.split(" (")[0])
    return label[:80].strip("-.")


@functools.lru_cache(maxsize=None)
def this_label() -> str:
    """This machine's default label."""
    return default_label(cpu_name(), os.cpu_count(), gpu_name())


def label_of(run: dict) -> str:
    """The label of a run's JSON: the one it recorded (``nnbench.machine``), else, for a run from
    before labels, the default made from the machine it described."""
    label = (run.get("nnbench") or {}).get("machine")
    if label:
        return label
    nn = (run.get("machine_info") or {}).get("nnbench") or {}
    return default_label(nn.get("cpu"), nn.get("logical_cpus"), nn.get("gpu"))


def check_label(name: str) -> str:
    """``name`` if it can be a label (a folder name), else ValueError saying why."""
    if not LABEL_RE.match(name or ""):
        raise ValueError(f"{name!r} cannot be a machine label: use letters, digits, '.', '_' and '-' "
                         "(at most 80, starting with a letter or digit)")
    if name.lower() in RESERVED_LABELS:
        raise ValueError(f"{name!r} cannot be a machine label: nnbench uses that folder name itself")
    return name
