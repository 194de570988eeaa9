"""`python -m bench.report` with several machines' runs: implementation x machine tables, speedups
relative to a chosen machine, each machine's description, a plot, and a folder of machines."""
import json
import re

import pytest

from bench import report

from test_bench_report import row, run_json, timing, tta


def machine_run(label, cpu, cpus, benchmarks, gpu=None, mode="full"):
    data = run_json(benchmarks, available={"reference": None, "numpy": None, "fast": None})
    data["machine_info"]["nnbench"] = {"cpu": cpu, "logical_cpus": cpus, "gpu": gpu}
    data["nnbench"].update(mode=mode, session="passed")
    if label:
        data["nnbench"]["machine"] = label
    return data


def laptop():
    return machine_run("laptop", "Intel(R) Core(TM) i7", 8, [
        timing("epoch", "numpy", 10, 0.4, examples=50_000), timing("epoch", "fast", 10, 0.2, examples=50_000),
        timing("forward", "numpy", 10, 2e-5), tta("numpy", "nielsen", [0.95], [3.0])])


def gpu_box():
    """A run from before labels: its label is made from the machine it described."""
    return machine_run(None, "Intel(R) Xeon(R) Processor", 16, [
        timing("epoch", "numpy", 10, 0.2, examples=50_000), timing("epoch", "fast", 10, 0.05, examples=50_000)],
        gpu="NVIDIA H100 80GB HBM3 (79.2 GiB, compute capability 9.0), driver 580", mode="quick")


GPU = "intel-xeon-16cpu-nvidia-h100-80gb-hbm3"


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def test_two_machines_side_by_side_with_speedups_relative_to_the_chosen_one(tmp_path):
    a, b = write(tmp_path / "a.json", laptop()), write(tmp_path / "b.json", gpu_box())
    out = tmp_path / "cmp"
    assert report.main([a, b, "--out", str(out), "--relative-to", "laptop"]) == 0
    text = (out / "README.md").read_text()
    epoch = text[text.index("## One training epoch"):text.index("## Each machine")]
    # numpy: laptop 0.4 s, GPU box 0.2 s; fast: 0.2 s and 0.05 s. Machines by key: A laptop, B the GPU box
    assert row(epoch, "### b=10", "numpy") == ["400 ms ±2%", "200 ms ±2%", "2.00×", "1.00×", "2.00×"]
    assert row(epoch, "### b=10", "fast") == ["200 ms ±2%", "50 ms ±2%", "4.00×", "2.00×", "8.00×"]
    assert "| B vs A " in epoch and GPU not in epoch                          # names abbreviated ...
    assert row(text, "## Machines", "A")[0] == "`laptop`" and row(text, "## Machines", "B")[0] == f"`{GPU}`"
    lines = epoch.splitlines()                                                # ... and fastest first on A
    assert [i for i, line in enumerate(lines) if line.startswith("| fast ")][0] < \
        [i for i, line in enumerate(lines) if line.startswith("| numpy ")][0]
    assert "NVIDIA H100 80GB HBM3" in text and "Intel(R) Core(TM) i7, 8 logical CPUs" in text   # each machine
    assert text.count("### A: `laptop`") == 1 and text.count(f"### B: `{GPU}`") == 1
    assert (out / "machines-epoch.png").read_bytes().startswith(b"\x89PNG")


def test_relative_to_an_unknown_machine_is_one_clear_error(tmp_path, capsys):
    a, b = write(tmp_path / "a.json", laptop()), write(tmp_path / "b.json", gpu_box())
    assert report.main([a, b, "--out", str(tmp_path / "cmp"), "--relative-to", "desktop"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench.report: error: --relative-to 'desktop': no run from that machine") and "laptop" in err
    assert not (tmp_path / "cmp").exists()


def test_two_runs_of_one_machine_are_refused(tmp_path, capsys):
    a, b = write(tmp_path / "a.json", laptop()), write(tmp_path / "b.json", laptop())
    assert report.main([a, b, "--out", str(tmp_path / "cmp")]) == 1
    assert "both from machine 'laptop'" in capsys.readouterr().err


def test_results_per_machine_folder_then_the_index(tmp_path):
    """What `make bench` does: the run into results/{machine}/, then results/README.md from every folder."""
    results = tmp_path / "results"
    (results / "studies").mkdir(parents=True)
    (results / "studies" / "README.md").write_text("studies")
    assert report.main([write(tmp_path / "a.json", laptop()), "--out", str(results / "{machine}")]) == 0
    assert report.main([write(tmp_path / "b.json", gpu_box()), "--out", str(results / "{machine}")]) == 0
    assert json.loads((results / GPU / "benchmark.json").read_text())["benchmarks"][0]["stats"]["data"]
    assert "`laptop`" in (results / "laptop" / "README.md").read_text()
    assert report.main([str(results), "--out", str(results)]) == 0
    text = (results / "README.md").read_text()
    assert "[`laptop`](laptop/)" in text and f"[`{GPU}`]({GPU}/)" in text
    assert "- [studies/](studies/)" in text
    assert f"    python -m bench.report {results} --out {results}\n" in text
    headline = text[text.index("## Headline"):text.index("## Forward")]
    assert row(headline, "## Headline", "fast")[:3] == ["A", "50 ms ±2%", ""]    # a row per machine, GPU box (A) first
    assert re.search(r"\| fast +\| B +\| 200 ms ±2%", headline)


def test_a_storage_folder_gives_each_machines_newest_passed_run(tmp_path):
    storage = tmp_path / "storage"
    write(storage / "laptop" / "0001_old.json", machine_run("laptop", "x", 8, [timing("epoch", "numpy", 10, 9.0)]))
    write(storage / "laptop" / "0002_new.json", laptop())
    write(storage / "failed" / "laptop" / "0003_failed.json", machine_run("laptop", "x", 8, []))
    write(storage / GPU / "0001_x.json", gpu_box())
    out = tmp_path / "cmp"
    assert report.main([str(storage), "--out", str(out), "--relative-to", "laptop"]) == 0
    text = (out / "README.md").read_text()
    assert row(text[text.index("## One training epoch"):], "### b=10", "numpy")[:2] == ["200 ms ±2%", "400 ms ±2%"]


@pytest.mark.parametrize("args,message", [
    (["{a}", "{b}", "--out", "{tmp}/results/{{machine}}"], "{machine} names one run's machine"),
    (["{a}", "--relative-to", "laptop"], "--relative-to compares machines"),
    (["{tmp}/empty"], "no machine's run in it"),
])
def test_bad_requests_are_one_clear_error(tmp_path, capsys, args, message):
    a, b = write(tmp_path / "a.json", laptop()), write(tmp_path / "b.json", gpu_box())
    (tmp_path / "empty").mkdir()
    argv = [x.format(a=a, b=b, tmp=tmp_path) for x in args]
    assert report.main(argv + ([] if "--out" in argv else ["--out", str(tmp_path / "out")])) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench.report: error:") and message in err and "Traceback" not in err


def test_the_headline_shows_each_machines_epoch_memory_or_that_its_run_predates_it(tmp_path):
    measured = laptop()
    for bench in measured["benchmarks"]:
        if bench["extra_info"]["phase"] == "epoch":
            bench["extra_info"]["memory"] = {"peak_rss": 3_000_000, "per_step": {}, "not_counted": None}
    a, b = write(tmp_path / "a.json", measured), write(tmp_path / "b.json", gpu_box())
    assert report.main([a, b, "--out", str(tmp_path / "cmp")]) == 0
    text = (tmp_path / "cmp" / "README.md").read_text()
    memory = text[text.index("Peak resident memory an epoch added"):text.index("## Forward")]
    assert "| epoch b=10 " in memory
    assert re.search(r"\| fast +\| A +\| 3 MB +\|", memory)                # A: the laptop
    assert re.search(r"\| fast +\| B +\| not recorded +\|", memory)


def test_the_page_opens_with_each_machines_fastest(tmp_path):
    a, b = write(tmp_path / "a.json", laptop()), write(tmp_path / "b.json", gpu_box())
    assert report.main([a, b, "--out", str(tmp_path / "cmp"), "--relative-to", "laptop"]) == 0
    text = (tmp_path / "cmp" / "README.md").read_text()
    assert text.index("## Answer") < text.index("## Headline")
    # epoch b=10: fast on both; laptop 0.2 s vs its numpy 0.4 s; GPU box 0.05 s vs 0.2 s
    assert row(text, "## Answer", "epoch") == ["b=10", "`fast` 200 ms; 2.00× next, 2.00× numpy",
                                                "`fast` 50 ms; 4.00× next, 4.00× numpy"]
    assert row(text, "## Answer", "forward") == ["b=10", "`numpy` 20 µs", ""]      # the GPU box ran no forward


def test_a_new_machine_is_rendered_beside_the_committed_ones(tmp_path, capsys):
    """`--with results/`: the run, and every machine in that folder (its own run of the same label replaced)."""
    results = tmp_path / "results"
    write(results / "laptop" / "benchmark.json", machine_run("laptop", "x", 8, [timing("epoch", "numpy", 10, 9.0)]))
    write(results / GPU / "benchmark.json", gpu_box())
    new = write(tmp_path / "new.json", machine_run("amd-epyc-2cpu", "AMD EPYC", 2, [timing("epoch", "numpy", 10, 0.3)]))
    out = tmp_path / "cmp"
    assert report.main([new, "--with", str(results), "--out", str(out)]) == 0
    text = (out / "README.md").read_text()
    assert "3 machines side by side" in text
    assert [row(text, "## Machines", k)[0] for k in "ABC"] == ["`amd-epyc-2cpu`", f"`{GPU}`", "`laptop`"]
    fresh = write(tmp_path / "laptop.json", laptop())                 # the machine's own new run wins
    assert report.main([fresh, "--with", str(results), "--out", str(out)]) == 0
    text = (out / "README.md").read_text()
    assert "2 machines side by side" in text and "9 s" not in text and "400 ms" in text
    capsys.readouterr()
    assert report.main([new, "--with", str(tmp_path / "nothing"), "--out", str(out)]) == 1
    assert "--with" in capsys.readouterr().err


def test_a_machine_timed_in_trials_pairs_its_own_ratios_and_not_those_across_machines(tmp_path):
    from test_bench_report import with_trials
    timed = laptop()
    for i, bench in enumerate(timed["benchmarks"]):
        if bench["extra_info"]["phase"] != "time-to-accuracy":
            with_trials(bench, seed=i)
    a, b = write(tmp_path / "a.json", timed), write(tmp_path / "b.json", gpu_box())
    assert report.main([a, b, "--out", str(tmp_path / "cmp"), "--relative-to", "laptop"]) == 0
    text = (tmp_path / "cmp" / "README.md").read_text()
    epoch = text[text.index("## One training epoch"):text.index("## Each machine")]
    fast = row(epoch, "### b=10", "fast")       # A's time, B's, B vs A, A vs numpy on A, B vs numpy on A
    assert fast[2:] == ["4.00×", fast[3], "8.00×"] and re.fullmatch(r"2\.0\d× \[\d\.\d\d, \d\.\d\d\]", fast[3])
    answer = row(text, "## Answer", "epoch")
    assert re.fullmatch(r"`fast` 200 ms; 2\.0\d× \[.*\] next, 2\.0\d× \[.*\] numpy", answer[1]), answer
    assert answer[2] == "`fast` 50 ms; 4.00× next, 4.00× numpy"                 # B has no trials: medians
    flat = " ".join(text.split())
    assert "On A: Ratios are paired" in flat and "On B: Ratios are of medians" in flat
    assert "Runs without: ±IQR" in flat
