"""Paired ratios, their intervals and the paired compare verdict (bench/harness/paired.py) on
synthetic trials: no benchmark is run."""
import numpy as np
import pytest

from bench.harness import paired
from bench.harness.compare import FASTER, NOISE, SLOWER, UNDECIDED


def rounds(seconds, *, trials=None, clean=True, processes=1):
    """Rounds as the driver records them: ``seconds[i]`` timed in trial ``trials[i]`` (default i)."""
    trials = range(len(seconds)) if trials is None else trials
    return [{"trial": int(t), "process": p, "seconds": float(s), "cpu": 1.0, "others": 0.0, "steal": 0.0,
             "clean": clean} for t, s in zip(trials, seconds) for p in range(1, processes + 1)]


def noisy_pair(rng, shift, trials=15, noise=0.05, machine=0.3):
    """Two benchmarks timed in the same trials: a shared slow or fast phase of the machine per trial
    (``machine``, log-sd) times each round's own noise; ``a`` is ``shift`` times ``b``."""
    phase = np.exp(rng.normal(0, machine, trials))
    a = phase * shift * np.exp(rng.normal(0, noise, trials))
    b = phase * np.exp(rng.normal(0, noise, trials))
    return rounds(a), rounds(b)


def test_per_trial_takes_the_median_of_each_trials_clean_rounds():
    got = paired.per_trial(rounds([1.0, 3.0, 2.0], trials=[0, 0, 0]) + rounds([5.0], trials=[1])
                           + rounds([100.0], trials=[1], clean=False) + rounds([7.0], trials=[2], clean=False))
    assert got == {0: 2.0, 1: 5.0}          # trial 2 had no clean round: absent


def test_a_known_ten_percent_shift_is_found_with_an_interval_around_it():
    a, b = noisy_pair(np.random.default_rng(1), 1.10)
    r = paired.ratio(a, b)
    assert r.pairs == 15 and r.low < r.estimate < r.high
    assert 1.03 < r.low and r.high < 1.17 and abs(r.estimate - 1.10) < 0.04
    assert not r.wide
    assert paired.decide(a, b).verdict == SLOWER and paired.decide(b, a).verdict == FASTER


def test_identical_distributions_give_an_interval_containing_one():
    a, b = noisy_pair(np.random.default_rng(2), 1.0)
    r = paired.ratio(a, b)
    assert r.low < 1 < r.high
    assert paired.decide(a, b).verdict == NOISE


def test_pairing_cancels_a_shared_slow_trial_that_unpaired_medians_would_not():
    # the machine is three times slower in trials 0-4 (both timed there); a's retried rounds missed
    # most of them, so its median is of fast trials and b's of slow ones; every trial says a / b = 1.2
    machine = {t: 3.0 if t < 5 else 1.0 for t in range(9)}
    a = rounds([1.2 * machine[t] for t in (0, 1, 5, 6, 7, 8)], trials=[0, 1, 5, 6, 7, 8])
    b = rounds([machine[t] for t in range(9)])
    r = paired.ratio(a, b)
    assert r.pairs == 6 and r.estimate == pytest.approx(1.2)
    medians = np.median([x["seconds"] for x in a]) / np.median([x["seconds"] for x in b])
    assert abs(medians - 1.2) > 0.5


def test_unclean_rounds_are_not_paired():
    b = rounds([1.0] * 6)
    a = rounds([2.0] * 6) + rounds([50.0] * 6, clean=False)
    assert paired.ratio(a, b).estimate == pytest.approx(2.0)


def test_fewer_than_three_pairs_give_an_estimate_and_no_interval():
    r = paired.ratio(rounds([2.0, 2.2]), rounds([1.0, 1.0, 1.0]))
    assert r.pairs == 2 and r.low is None and r.half_width is None and r.wide
    assert paired.fmt_ratio(r) == f"{r.estimate:.2f}× ⚠"
    assert paired.decide(rounds([2.0, 2.2]), rounds([1.0, 1.0])).verdict == UNDECIDED
    assert paired.ratio(rounds([1.0], trials=[0]), rounds([1.0], trials=[1])) is None


def test_equal_ratios_fall_back_to_an_interval_of_no_width():
    r = paired.ratio(rounds([2.0] * 5), rounds([1.0] * 5))
    assert (r.estimate, r.low, r.high) == pytest.approx((2.0, 2.0, 2.0))
    assert paired.fmt_ratio(r) == "2.00× [2.00, 2.00]"


def test_the_interval_is_seeded_and_wide_past_ten_percent():
    rng = np.random.default_rng(3)
    a, b = noisy_pair(rng, 1.0, trials=5, noise=0.3)
    first, again = paired.ratio(a, b), paired.ratio(a, b)
    assert first == again and first.wide and first.half_width > paired.UNSTABLE
    assert paired.fmt_ratio(first).endswith("⚠") and "[" in paired.fmt_ratio(first)


def test_time_interval_is_the_median_over_trials():
    t = paired.time_interval(rounds([1.0, 1.1, 0.9, 1.05, 0.95]))
    assert t.estimate == pytest.approx(1.0) and t.low < 1.0 < t.high and t.pairs == 5
    assert paired.time_interval(rounds([1.0], clean=False)) is None


def test_several_processes_rounds_of_one_trial_are_one_value():
    r = paired.ratio(rounds([2.0] * 4, processes=2), rounds([1.0] * 4))
    assert r.pairs == 4 and r.estimate == pytest.approx(2.0)


def test_decide_false_alarms_on_unchanged_code_stay_within_the_argued_rate():
    """decide's docstring: on unchanged code a false "slower" needs the interval's lower end 3% above the
    truth, ~1e-3 per benchmark at the ±4% intervals trials reach (a run of 40 benchmarks: ~4%). 200
    unchanged benchmarks (5 runs of 40) must give at most 2; 40 slowed by 10% must be found in 80%."""
    rng = np.random.default_rng(22)
    unchanged = [paired.decide(*noisy_pair(rng, 1.0)) for _ in range(200)]
    slowed = [paired.decide(*noisy_pair(rng, 1.10)) for _ in range(40)]
    assert sum(v.regression for v in unchanged) <= 2
    assert sum(v.verdict == SLOWER for v in slowed) >= 32


def test_a_process_level_shift_widens_the_interval_instead_of_calling_a_change():
    """Unchanged code whose second head process runs 8% slower throughout (its memory layout, say):
    with two processes a side the interval resamples processes and covers 1; one process a side, the
    same shift would look like a change the trials cannot question."""
    import numpy as np
    rng = np.random.default_rng(3)

    def rounds(effects):
        return [{"trial": t, "process": p, "seconds": 0.1 * e * float(np.exp(rng.normal(0, 0.01))), "clean": True}
                for p, e in enumerate(effects, 1) for t in range(15)]
    two = paired.ratio(rounds([1.0, 1.08]), rounds([1.0, 0.99]))
    assert two.low <= 1.0 <= two.high
    one = paired.ratio(rounds([1.08]), rounds([1.0]))
    assert one.low > 1.03                                   # what one process a side would have said
