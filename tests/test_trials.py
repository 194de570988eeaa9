"""The interleaved trials' driver (bench/harness/trials.py) with stand-in benchmark processes
(tests/trial_worker.py, the real turns protocol): one process at a time, every member once per
trial in a random order, trials that end, a round that lost its CPU retried, and processes that
die or hang. Seconds, no framework; nothing here depends on how fast anything ran."""
import subprocess
import sys
from pathlib import Path

from bench.harness.cpu import SETTLE_MOST, quiet
from bench.harness.trials import Alternative, Budget, Driver
from bench.harness.turns import ALT_ENV
from bench.harness.turns import ENV as TURNS_ENV

WORKER = Path(__file__).with_name("trial_worker.py")


def _drive(tmp_path, workers, budget=Budget(3, 8, 0.0), timeout=60.0, groups="g1,g2", seconds=0.02):
    log, said = tmp_path / "rounds.log", []
    alts = [Alternative(name, name, [sys.executable, str(WORKER), str(log), groups, str(seconds), behaviour],
                        tmp_path / f"{name}.json", tmp_path / f"{name}.log",
                        env={ALT_ENV: name, TURNS_ENV: str(tmp_path / "turns.sock"), "PATH": "/usr/bin:/bin"})
            for name, behaviour in workers]
    record = Driver(alts, tmp_path / "turns.sock", budget, timeout, seed=1, pairs=lambda members: [],
                    say=said.append).run()
    rounds = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return record, rounds, alts, said


def test_one_process_at_a_time_every_member_once_per_trial_in_random_orders(tmp_path):
    record, rounds, alts, said = _drive(tmp_path, [("a", ""), ("b", ""), ("c", "")])
    spans = sorted((float(start), float(end)) for _, _, start, end in rounds)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), "two rounds overlapped"
    assert list(record) == ["g1", "g2"]
    for group, trials in record.items():
        assert 3 <= trials["trials"] <= 8
        assert all(sorted(order) == ["a", "b", "c"] for order in trials["orders"])
        timed = [r for r in rounds if r[1] == group]
        assert len(timed) == 3 * trials["trials"]            # every member once per trial
    orders = [tuple(o) for t in record.values() for o in t["orders"]]
    assert len(set(orders)) > 1, "the order is drawn afresh for every trial"
    assert all(a.proc.returncode == 0 and not a.timed_out for a in alts)
    ready = [line for line in said if "ready to time" in line]
    ended = [line for line in said if line not in ready]
    assert len(ready) == 3 and len(ended) == 2 and ended[0].startswith("nnbench: g1: 3 process(es)")


def test_a_member_that_skips_a_benchmark_is_not_waited_for(tmp_path):
    record, rounds, _, _ = _drive(tmp_path, [("a", ""), ("b", "skip-first")])
    assert all(order == ["a"] for order in record["g1"]["orders"])
    assert all(sorted(order) == ["a", "b"] for order in record["g2"]["orders"])


def test_a_process_that_dies_mid_trials_leaves_the_others_to_finish(tmp_path):
    record, rounds, alts, _ = _drive(tmp_path, [("a", ""), ("b", "die-in-round")])
    b = next(a for a in alts if a.alt == "b")
    assert b.proc.returncode == 7 and b.gone
    assert [r[1] for r in rounds if r[0] == "a"].count("g2") >= 3     # a went on to its next benchmark alone


def test_a_process_that_hangs_holding_the_machine_is_ended_at_the_timeout(tmp_path):
    record, rounds, alts, _ = _drive(tmp_path, [("a", ""), ("b", "hang")], timeout=3.0)
    b = next(a for a in alts if a.alt == "b")
    assert b.timed_out and b.proc.returncode is not None
    assert [r[1] for r in rounds if r[0] == "a"].count("g2") >= 3


def test_a_round_that_lost_its_cpu_is_recorded_unclean_and_costs_a_trial_more(tmp_path):
    record, _, _, _ = _drive(tmp_path, [("a", "busy-neighbour"), ("b", "")], groups="g1", seconds=0.1)
    kept = [line for line in (tmp_path / "rounds.log.rounds").read_text().splitlines() if line.startswith("a ")]
    first = eval(kept[0].split(" ", 2)[2])[0]               # noqa: S307 (our own repr of a list of dicts)
    assert first["clean"] is False and first["others"] > 0.05
    assert record["g1"]["trials"] >= 4 and record["g1"]["retried_rounds"] >= 1


SPINNER = """
import sys, threading
stop = threading.Event()
def spin():
    while not stop.is_set():
        pass
threading.Thread(target=spin).start()
print("spinning", flush=True)
sys.stdin.readline()
stop.set()
print("stopped", flush=True)
sys.stdin.readline()
"""


def test_the_next_turn_waits_while_the_last_process_still_has_a_thread_spinning():
    """As a BLAS pool busy-waits after its work, a thread spins while the process waits for its turn.
    Its CPU time shows only at the kernel's clock ticks, so the wait goes by the threads' states."""
    proc = subprocess.Popen([sys.executable, "-c", SPINNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "spinning\n"
        assert quiet(proc.pid) >= SETTLE_MOST                   # waited as long as it may, never longer
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "stopped\n"
        assert quiet(proc.pid) < SETTLE_MOST / 2               # the thread ended: idle at once
    finally:
        proc.kill()
        proc.wait()

