"""What decides the speed of this code, for the record beside every benchmark and study:
CPU, cores, thread pools, BLAS, library versions, GPU. Asking imports nothing new (no torch)."""
from __future__ import annotations

import importlib.metadata
import os
import platform
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
