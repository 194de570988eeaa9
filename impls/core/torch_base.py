"""What the two PyTorch implementations share: device and dtype, host <-> device
conversion, thread counts, and the training set held on the device.

Both ``torch_idiomatic`` and ``torch_fast`` subclass ``TorchNetwork``; they differ only
in how a mini-batch is trained. ``triton_fused``, whose kernels take torch tensors, does too. Native arrays are tensors on ``self.device``; the
training set is converted once in ``set_training_data`` and each epoch indexes it
there, so an epoch's only host -> device transfer is its example order.

TF32 stays off: PyTorch's default float32 matmul precision is "highest" and nothing
here changes it, so CUDA float32 results meet the same tolerances as the CPU's.
"""
from __future__ import annotations

import subprocess

import numpy as np
import torch

from .base import Network
from .errors import UnavailableError

DEVICES = ("cpu", "cuda")

#: torch's intra-op threads on the CPU unless --threads says otherwise. A 10 x 784 matrix is
#: too small to split and OpenMP adds a fork/join per call, so at batch 10 one thread is
#: faster, at 32 they are close, and only at larger batches do more threads win -- with heavy
#: tails whenever another process holds a core. The presets train at batch 10 and 32, hence
#: one; the epoch-grid study (results/studies/epoch-grid.md) measures both counts at every
#: batch size on the machine it runs on.
DEFAULT_CPU_THREADS = 1


def device_unavailable_reason(device: str) -> str | None:
    """Why ``device`` cannot be used in this process, or None."""
    if device not in DEVICES:
        return f"unknown device {device!r}; choose one of {', '.join(DEVICES)}"
    if device == "cuda" and not torch.cuda.is_available():
        return f"no CUDA device (torch.cuda.is_available() is False; this torch build: {torch.__version__})"
    return None


def describe_cuda_device(index: int = 0) -> str | None:
    """The GPU, its driver and torch's CUDA in one line, for the record; None without one."""
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(index)
    return (f"{props.name} ({props.total_memory / 2**30:.1f} GiB, compute capability {props.major}.{props.minor}, "
            f"{props.multi_processor_count} SMs), driver {_nvidia_driver() or '?'}, "
            f"CUDA {torch.version.cuda} (torch {torch.__version__})")


def _nvidia_driver() -> str | None:
    # torch reports only the CUDA API version the driver supports, not the driver's own version.
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.split("\n", 1)[0].strip() or None


class TorchNetwork(Network):
    dtypes = ("float32", "float64")

    @classmethod
    def unavailable_reason(cls, device: str = "cpu", **options) -> str | None:
        return device_unavailable_reason(device)

    def __init__(self, spec, device: str = "cpu"):
        super().__init__(spec)
        reason = device_unavailable_reason(device)
        if reason:
            raise UnavailableError(f"{type(self).__name__} on {device}: {reason}")
        self.device = torch.device(device)
        self.dtype = getattr(torch, spec.dtype)
        if self.device.type == "cpu":
            torch.set_num_threads(DEFAULT_CPU_THREADS)

    # -- parameters: subclasses list their (W, b) tensors, canonical layout -------------
    def parameter_tensors(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def _set_params(self, params):
        # Copy into the existing tensors, never rebind them: an optimizer (idiomatic) or
        # a captured CUDA graph (fast) holds their addresses.
        with torch.no_grad():
            for (W, b), (tW, tb) in zip(params, self.parameter_tensors()):
                tW.copy_(torch.as_tensor(W))
                tb.copy_(torch.as_tensor(b))

    def get_params(self):
        return [(self.to_numpy(W), self.to_numpy(b)) for W, b in self.parameter_tensors()]

    # -- native arrays ---------------------------------------------------------------------
    def asarray(self, X):
        if not isinstance(X, torch.Tensor):
            X = np.asarray(X)
        return torch.as_tensor(X, dtype=self.dtype, device=self.device).contiguous()

    def aslabels(self, y):
        if not isinstance(y, torch.Tensor):
            y = np.asarray(y)
        return torch.as_tensor(y, dtype=torch.int64, device=self.device).contiguous()

    def to_numpy(self, a) -> np.ndarray:
        if isinstance(a, torch.Tensor):
            # np.array copies: a CPU tensor's .numpy() would alias memory a later step overwrites.
            return np.array(a.detach().cpu().numpy())
        return np.asarray(a)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def threads(self) -> dict:
        return {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
                "torch_device": str(self.device)}

    def set_threads(self, n: int) -> None:
        torch.set_num_threads(n)
