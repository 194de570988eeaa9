"""torch-ddp-cpu: the same SGD as one process, split over W = 2 ranks on 127.0.0.1, and every
fault (a rank that raises, dies or stops answering; a port in use; too many ranks; no backend)
as one line naming the cause, with no rank left running."""
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from impls import create
from impls.core import distributed
from impls.core.check import check_epoch, check_gradients, random_problem
from impls.core.errors import ConfigError, UnavailableError
from impls.core.spec import NetworkSpec
from impls.core.threads import usable_cpus

from background import Background

torch_ddp = pytest.importorskip("impls.torch_ddp", reason="needs torch")
dist = pytest.importorskip("torch.distributed")
if distributed.backend_unavailable_reason("gloo"):
    pytest.skip(distributed.backend_unavailable_reason("gloo"), allow_module_level=True)
two_cpus = pytest.mark.skipif(usable_cpus() < 2, reason="W = 2 ranks need 2 usable CPUs")

SPEC = NetworkSpec((20, 16, 10), "relu", "softmax_crossentropy", "float64")
BIN = Path(sys.executable).parent
#: torchrun's job (two processes that each import torch and run every check) starts when collection
#: ends and runs beside the other tests (tests/background.py); its test awaits it, last
TORCHRUN = Background("torchrun", BIN / "torchrun", "--standalone", "--nproc-per-node", "2", "--no-python",
                      BIN / "nnbench", "check", "torch-ddp-cpu", "--no-mnist")


def ddp(spec=SPEC, **options):
    net = torch_ddp.DataParallelNetwork(spec, **options)
    net.name = "torch-ddp-cpu"
    return net


@pytest.mark.parametrize("m,world", [(10, 2), (7, 2), (1, 2), (5, 3), (2, 5), (53, 4)])
def test_shares_cover_each_mini_batch_once(m, world):
    rows = [r for rank in range(world) for r in range(*torch_ddp.share(m, rank, world))]
    assert rows == list(range(m))
    sizes = [np.subtract(*torch_ddp.share(m, rank, world)[::-1]) for rank in range(world)]
    assert max(sizes) - min(sizes) <= 1


@two_cpus
@pytest.mark.parametrize("sync", ["flat", "ddp"])
@pytest.mark.parametrize("n,batch", [(53, 7), (51, 10), (21, 21)], ids=["odd-split", "tail-of-1", "fullbatch-odd"])
def test_epoch_at_w2_matches_the_reference(sync, n, batch):
    """7 = 3 + 4 per mini-batch; 51 at batch 10 ends with one example, which only rank 1 computes."""
    net, ref = ddp(world=2, sync=sync), create("reference", SPEC)
    params, X, y = random_problem(SPEC, seed=4, batch=n)
    order = np.random.default_rng(5).permutation(n)
    check_epoch(net, ref, params, X, y, order, batch, lr=0.5)
    assert net.threads()["ranks"] == 2


@two_cpus
@pytest.mark.parametrize("sync", ["flat", "ddp"])
def test_gradients_at_w2_float32(sync):
    spec = SPEC.with_dtype("float32")
    params, X, y = random_problem(spec, seed=2, batch=7)
    check_gradients(ddp(spec, world=2, sync=sync), create("reference", SPEC), params, X, y)


@two_cpus
def test_training_at_w2_follows_one_process():
    """Two epochs of the relu preset's network, batch 10, from one seed: the parameters of the
    2-rank run and of torch-fast-cpu (the same arithmetic in one process) agree in float64."""
    from impls.core.mnist import Dataset
    from impls.core.presets import PRESETS
    from impls.core.train import train
    import dataclasses
    from conftest import learnable
    preset = dataclasses.replace(PRESETS["relu"], sizes=(784, 16, 10), n_train=300, epochs=2)
    data: Dataset = learnable(300, 50)
    spec = preset.spec("float64")
    runs = [train(net, preset, data, seed=3) for net in (ddp(spec, world=2), create("torch-fast-cpu", spec))]
    assert [r.accuracy for r in runs[0].history] == [r.accuracy for r in runs[1].history]
    np.testing.assert_allclose([r.cost for r in runs[0].history], [r.cost for r in runs[1].history], rtol=1e-9)


# The tests above and the one below reuse one set of 2 ranks (distributed.ranks keeps them while they
# live); the faults after it stop their ranks, so each fault starts its own.
@two_cpus
def test_more_ranks_than_a_mini_batch_is_one_line():
    net = ddp(world=2)
    params, X, y = random_problem(SPEC, seed=1, batch=4)
    net.set_params(params)
    net.set_training_data(X, y)
    with pytest.raises(ConfigError, match="a mini-batch of 1 example cannot be shared by 2 ranks: choose world <= 1"):
        net.update_mini_batch(X[:1], y[:1], 0.1)
    with pytest.raises(ConfigError, match="cannot be shared by 2 ranks"):
        net.train_epoch(np.arange(4), 1, 0.1)


# -- faults: functions a rank runs (module level: they travel by name) ------------------------
def raise_on_rank_1(ctx):
    if ctx.rank == 1:
        raise ValueError("bad shard")
    dist.all_reduce(__import__("torch").ones(1))     # rank 0 waits in a collective for rank 1


def die_on_rank_1(ctx):
    if ctx.rank == 1:
        os._exit(7)
    dist.all_reduce(__import__("torch").ones(1))


def stall_on_rank_1(ctx):
    if ctx.rank == 1:
        time.sleep(20)
    dist.all_reduce(__import__("torch").ones(1))


def no_rank_left():
    children = [p for p in multiprocessing.active_children() if p.name.startswith("nnbench-rank-")]
    return not children


@two_cpus
@pytest.mark.parametrize("fn,message", [
    (raise_on_rank_1, r"^rank 1 of 2 raised ValueError: bad shard while running raise_on_rank_1; all 2 ranks were "
                      r"stopped$"),
    (die_on_rank_1, r"^rank 1 of 2 died \(exit code 7\) while running die_on_rank_1; all 2 ranks were stopped$"),
])
def test_a_rank_that_fails_stops_every_rank_naming_it(fn, message):
    ranks = distributed.ranks(2, "gloo")
    start = time.monotonic()
    with pytest.raises(distributed.RankError, match=message):
        ranks.run(fn)
    assert time.monotonic() - start < 10 and not ranks.alive and no_rank_left()


@two_cpus
def test_a_collective_times_out_instead_of_hanging():
    ranks = distributed.ranks(2, "gloo", timeout=1)
    start = time.monotonic()
    with pytest.raises(distributed.RankError, match=r"^rank 0 of 2 raised .*[Tt]imed? ?out") as info:
        ranks.run(stall_on_rank_1)
    assert time.monotonic() - start < 15 and no_rank_left(), str(info.value)
    distributed.shutdown()


@two_cpus
def test_a_network_whose_ranks_were_stopped_says_so():
    net = ddp(world=2)
    net.set_params(random_problem(SPEC, seed=1, batch=1)[0])
    net.get_params()
    net.feedforward(np.zeros((2, 20)))
    distributed.shutdown()
    assert no_rank_left()
    with pytest.raises(distributed.RankError, match="its ranks were stopped .* create it again"):
        net.feedforward(np.zeros((2, 20)))


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind((distributed.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        net = ddp(world=1, port=port)
        net.set_params(random_problem(SPEC, seed=1, batch=1)[0])
        with pytest.raises(ConfigError, match=rf"^port={port} on 127.0.0.1 cannot host .* in use; choose another"):
            net.feedforward(np.zeros((1, 20)))
    assert no_rank_left()


@pytest.mark.parametrize("options,message", [
    ({"world": usable_cpus() + 1}, rf"world={usable_cpus() + 1} ranks cannot run here: this process may use "
                                   rf"{usable_cpus()} CPU"),
    ({"world": 0}, "world=0: the number of ranks must be an integer >= 1"),
    ({"sync": "ring"}, "sync='ring': choose one of 'flat', 'ddp'"),
    ({"timeout": -1}, "timeout=-1: seconds a collective may wait, > 0"),
    ({"port": 70000}, "port=70000: choose a TCP port"),
])
def test_bad_options_are_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        ddp(**options)


def test_a_missing_backend_is_a_reason(monkeypatch):
    monkeypatch.setattr(dist, "is_gloo_available", lambda: False)
    assert "has no gloo backend" in distributed.backend_unavailable_reason("gloo")
    with pytest.raises(UnavailableError, match="DataParallelNetwork with gloo: this torch build .* has no gloo"):
        ddp()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the reason given without CUDA")
def test_cuda_without_gpus_is_unavailable_with_the_reason(capsys):
    from impls.core.cli import main
    assert main(["check", "torch-ddp-cuda", "--no-mnist"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nnbench: error: implementation 'torch-ddp-cuda' is unavailable: NCCL needs CUDA devices")
    assert len(err.splitlines()) == 1


@two_cpus
@pytest.mark.skipif(not ((BIN / "torchrun").exists() and (BIN / "nnbench").exists()),
                    reason="needs torchrun and nnbench installed beside this Python")
@pytest.mark.background(TORCHRUN)
def test_the_same_code_joins_a_torchrun_job():
    """torchrun starts 2 processes; each is one rank (RANK, WORLD_SIZE from torchrun) and the
    conformance checks pass with the mini-batches split between them."""
    proc = TORCHRUN.result(timeout=300)           # stdout and stderr together
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert proc.stdout.count("torch-ddp-cpu: all 32 checks passed") == 2      # one line per rank


@two_cpus
def test_scaling_study_runs_and_writes(tmp_path, mnist):
    from bench.studies.__main__ import main
    assert main(["scaling", "--impl", "torch-ddp-cpu", "--presets", "nielsen", "--syncs", "flat", "--batch-sizes",
                 "8", "16", "--largest-message", "4096", "--seconds", "0.002", "--repeats", "1",
                 "--out", str(tmp_path)]) == 0
    text = (tmp_path / "scaling.md").read_text()
    assert "alpha = " in text and "beta = " in text and "Predicted crossover: **m* = " in text
    assert [line.split("|")[4].strip() for line in text.splitlines() if line.startswith("| nielsen")] == ["1", "2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaling-crossover.png", "scaling-speedup.png",
                                                         "scaling-split.png", "scaling.md"]


def test_nnbench_check_passes_at_w1(capsys):
    """W = 2 is the default here, which the parametrized equivalence tests cover; one rank too."""
    from impls.core.cli import main
    assert main(["check", "impls.torch_ddp:cpu(world=1)", "--no-mnist"]) == 0
    assert "impls.torch_ddp:cpu(world=1): all 32 checks passed" in capsys.readouterr().out
