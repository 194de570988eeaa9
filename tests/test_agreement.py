"""bench.report.agreement: do two runs' "vs numpy" ratios agree? Synthetic runs in trials (the report
tests' builders): a second run whose machine was slower throughout agrees (the ratios are paired); one
whose implementation changed does not; runs without trials are refused with one line."""
import copy
import json

from bench.report import agreement
from bench.report.reading import load

from test_bench_report import trials_run, with_trials


def _runs(tmp_path, change=1.0, machine_slower=1.0):
    first = trials_run()
    for i, b in enumerate(first["benchmarks"]):
        with_trials(b, noise=0.01, seed=i)
    second = copy.deepcopy(first)
    for i, b in enumerate(second["benchmarks"]):
        b["stats"]["median"] *= machine_slower * (change if b["extra_info"]["impl"] == "reference" else 1.0)
        with_trials(b, noise=0.01, seed=100 + i)
    paths = []
    for name, data in (("first", first), ("second", second)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
        paths.append(tmp_path / f"{name}.json")
    return paths


def test_a_slower_machine_throughout_leaves_the_ratios_agreeing(tmp_path):
    first, second = _runs(tmp_path, machine_slower=1.4)
    page = agreement.render(load(first), load(second))
    n = len(agreement.ratios(load(first)))
    assert n > 0 and f"**{n} of {n} ratios (100%) agree within ±10%" in page


def test_a_changed_implementation_is_seen_as_disagreeing(tmp_path):
    first, second = _runs(tmp_path, change=1.5)
    page = agreement.render(load(first), load(second))
    rows = [line for line in page.splitlines() if "`reference`" in line]
    assert rows and all("**no**" in line for line in rows)


def test_runs_without_trials_are_refused_with_one_line(tmp_path, capsys):
    from test_bench_report import quick_like_run
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(quick_like_run()))
    assert agreement.main([str(plain), str(plain)]) == 1
    assert "both runs must be timed in trials" in capsys.readouterr().err


def test_a_run_of_a_newer_record_schema_is_refused_with_one_line(tmp_path, capsys):
    from bench import report
    data = trials_run()
    data["nnbench"]["schema"] = 99
    src = tmp_path / "run.json"
    src.write_text(json.dumps(data))
    assert report.main([str(src), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "written by a newer nnbench (record schema 99" in err and err.count("\n") == 1
