"""A fixture that mounts a small tmpfs for a test (a full disk, a read-only folder: what a write must
survive), unmounted after it. Root can mount (CI runs as root); elsewhere, or where the sandbox
refuses, the test skips saying so, and the same cases are covered by injecting the error."""
import subprocess

import pytest


@pytest.fixture
def mounted():
    """``mounted(folder, options) -> folder``: a tmpfs there, e.g. options ``"size=64k"`` or ``"ro"``."""
    done = []

    def mount(folder, options):
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"{options},size=64k" if "size" not in options
                               else options, "tmpfs", str(folder)], capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({(proc.stderr or proc.stdout).strip() or proc.returncode}): "
                        "the injected-error tests cover the same case")
        done.append(folder)
        return folder

    try:
        yield mount
    finally:
        for folder in reversed(done):
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
