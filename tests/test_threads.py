"""Thread counts (impls/core/threads.py): one rule, at most the CPUs this process may use, refused
with one message wherever threads are pinned and by every command line that takes a count."""
import argparse

import pytest

from impls.core import threads
from impls.core.argtypes import thread_count
from impls.core.errors import ConfigError
from impls.core.presets import PRESETS
from impls.core.registry import default_dtype
from impls.core.testing import create_or_skip
from impls.core.train import pin_threads

from conftest import impl_params

TOO_MANY = threads.usable_cpus() + 1
MESSAGE = f"{TOO_MANY} threads cannot run here: this process may use {threads.usable_cpus()} CPU"


@pytest.mark.parametrize("impl", impl_params())
def test_every_implementation_refuses_more_threads_than_cpus_alike(impl):
    """Before: torch ran 999 threads on 2 CPUs (an epoch hundreds of times slower), NumPy capped
    OpenBLAS at 64 without a word, and only Numba refused, in its own words."""
    net = create_or_skip(impl, PRESETS["nielsen"].spec(default_dtype(impl)))
    before = threads.info(net)
    with pytest.raises(ConfigError) as info:
        pin_threads(net, TOO_MANY)
    assert str(info.value).startswith(MESSAGE), info.value
    assert threads.info(net) == before                     # refused before any pool was touched


def test_the_blas_pin_and_the_command_lines_apply_the_same_rule():
    with pytest.raises(ConfigError, match=f"^{MESSAGE}"):
        threads.pin(TOO_MANY)
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{MESSAGE}"):
        thread_count(str(TOO_MANY))
    assert thread_count(str(threads.usable_cpus())) == threads.usable_cpus()
