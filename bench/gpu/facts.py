"""``python -m bench.gpu.facts OUT.json``: what this machine has, before anything is timed.

The GPU and driver (``nvidia-smi``), torch with its CUDA and cuDNN, Triton, JAX with its devices
and default float32 matmul precision, Numba with its CUDA target, Python; the machine as every
benchmark records it (``bench.harness.host.describe``) and its label; MNIST; and every
registered implementation with the reason it cannot run here. A library that is missing or fails
to import is a fact like any other: it is written down, never raised.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

LIBRARIES = ("torch", "triton", "jax", "jaxlib", "numba", "numpy", "scipy", "pytest", "pytest-benchmark",
             "tabulate", "matplotlib", "threadpoolctl", "scikit-learn", "cupy-cuda13x")


def nvidia_smi() -> dict:
    if not shutil.which("nvidia-smi"):
        return {"error": "nvidia-smi is not on the PATH"}
    query = "name,driver_version,memory.total,compute_cap,clocks.max.sm,clocks.max.mem,power.limit"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"nvidia-smi failed: {exc}"}
    return {"gpus": [dict(zip(query.split(","), (v.strip() for v in line.split(","))))
                     for line in out.splitlines() if line.strip()]}


def _guarded(fn) -> dict:
    try:
        return fn()
    except Exception as exc:          # noqa: BLE001 -- a broken library is a fact to record
        return {"error": f"{type(exc).__name__}: {exc}"}


def torch_facts() -> dict:
    import torch
    out = {"version": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "float32_matmul_precision": torch.get_float32_matmul_precision()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out.update(device=props.name, capability=f"{props.major}.{props.minor}", sms=props.multi_processor_count,
                   memory_gib=round(props.total_memory / 2 ** 30, 1), device_count=torch.cuda.device_count())
    return out


def jax_facts() -> dict:
    import jax
    return {"version": jax.__version__, "backend": jax.default_backend(),
            "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
            "default_matmul_precision": str(jax.config.jax_default_matmul_precision)}


def numba_facts() -> dict:
    import numba
    out = {"version": numba.__version__}
    try:
        from numba import cuda
        out["cuda_available"] = bool(cuda.is_available())
    except Exception as exc:          # noqa: BLE001
        out["cuda_available"] = f"{type(exc).__name__}: {exc}"
    return out


def triton_facts() -> dict:
    import triton
    return {"version": triton.__version__, "interpret": os.environ.get("TRITON_INTERPRET", "")}


def data_facts(data: str | None) -> dict:
    from impls.core.mnist import load_dataset
    dataset = load_dataset(data)
    return {"source": str(dataset.source), "train": len(dataset.X_train), "test": len(dataset.X_test)}


def gather(out: Path, data: str | None = None) -> dict:
    """Every fact, the file rewritten after each: what the run needs most (the label, which
    implementations can run) comes first, so a step cut half-way still leaves it."""
    from bench.harness.host import describe, this_label, version
    from impls.core.registry import available
    sections = {
        "python": lambda: f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "label": this_label,
        "implementations": lambda: _guarded(available),
        "nvidia_smi": nvidia_smi,
        "versions": lambda: {name: version(name) for name in LIBRARIES},
        "torch": lambda: _guarded(torch_facts),
        "triton": lambda: _guarded(triton_facts),
        "jax": lambda: _guarded(jax_facts),
        "numba": lambda: _guarded(numba_facts),
        "mnist": lambda: _guarded(lambda: data_facts(data)),
        "machine": lambda: _guarded(describe),     # after torch is imported: describe() then names the GPU
    }
    facts = {}
    for key, fn in sections.items():
        facts[key] = fn()
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(facts, indent=2, default=str))
        tmp.replace(out)
    return facts


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m bench.gpu.facts OUT.json [MNIST_DIR]", file=sys.stderr)
        return 2
    facts = gather(Path(args[0]), args[1] if len(args) == 2 else None)
    impls = facts["implementations"]
    ready = [n for n, why in impls.items() if why is None] if "error" not in impls else []
    print(f"{facts['label']}: {facts['python']}; GPU {facts['torch'].get('device', 'none')}; "
          f"available: {', '.join(ready) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
