"""A stand-in benchmark process for tests/test_trials.py: the real turns protocol (bench.harness.turns)
around a minimal benchmark fixture, so the driver (bench.harness.trials) can be tested in seconds,
without pytest, MNIST or any framework.

    python tests/trial_worker.py LOG GROUPS ROUND_SECONDS [BEHAVIOUR]

Times ``GROUPS`` (comma-separated) in order, each round a busy loop of ROUND_SECONDS; appends one line
per round to LOG: ``alt group start end`` (time.monotonic()). BEHAVIOUR: ``die-in-round`` exits
in its second round; ``hang`` never answers after its first round; ``skip-first`` skips the first
group (as an implementation that declines it); ``busy-neighbour`` starts a CPU hog beside its rounds
of the first trial, so they are not clean.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.harness import turns  # noqa: E402


class Stats:
    def __init__(self):
        self.data = []


class FakeBenchmark:
    """What turns.pedantic uses of pytest-benchmark's fixture: group, stats.stats.data, pedantic, extra_info."""

    def __init__(self, group):
        self.group, self.extra_info, self.has_error = group, {}, False
        self.stats = type("Meta", (), {})()
        self.stats.stats = Stats()

    def pedantic(self, target, args=(), setup=None, rounds=1):
        try:
            for _ in range(rounds):
                prepared = setup() if setup else None
                args_now = prepared[0] if prepared else args
                start = time.perf_counter()
                target(*args_now)
                self.stats.stats.data.append(time.perf_counter() - start)
        except Exception:
            self.has_error = True
            raise


def spin(seconds):
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def stranger(seconds):
    """A CPU hog that is not this process's descendant (forked twice, its parent gone): another
    tenant of the machine, as far as the round's judge can tell."""
    if os.fork() == 0:
        if os.fork() == 0:
            spin(seconds)
        os._exit(0)
    os.wait()
    time.sleep(0.02)


def main(log, groups, seconds, behaviour=""):
    alt = os.environ.get(turns.ALT_ENV, "?")
    turns.connect()
    groups = groups.split(",")
    if behaviour == "skip-first":
        groups = groups[1:]
    turns.announce(groups)
    for group in groups:
        bench, count = FakeBenchmark(group), [0]

        def round_(group=group, bench=bench):
            count[0] += 1
            if behaviour == "die-in-round" and count[0] == 2:
                os._exit(7)
            if behaviour == "hang" and count[0] == 2:
                time.sleep(3600)
            if behaviour == "busy-neighbour" and count[0] == 1:
                stranger(3 * float(seconds))
            start = time.monotonic()
            spin(float(seconds))
            end = time.monotonic()
            with open(log, "a") as fh:
                fh.write(f"{alt} {group} {start} {end}\n")
        turns.pedantic(bench, round_, rounds=50, seconds=float(seconds))
        with open(log + ".rounds", "a") as fh:
            fh.write(f"{alt} {group} {bench.extra_info['rounds']!r}\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
