"""The results renderer (bench/report/) on small synthetic pytest-benchmark JSON."""
import json
import re

import pytest

from bench import report


def timing(phase, impl, batch, median, *, status="passed", iqr_frac=0.02, rounds=20, spread_frac=None,
           examples=None, n_train=50_000, **extra):
    """One benchmark entry as the suites write it."""
    spread_frac = iqr_frac if spread_frac is None else spread_frac
    examples = examples or batch
    info = dict(phase=phase, impl=impl, batch=batch, examples=examples, n_train=n_train, status=status,
                preset="nielsen", examples_per_s=examples / median, gflops=1.0, pct_peak=0.5, **extra)
    return {"name": f"test_{phase}[{impl}-b{batch}]", "fullname": f"bench/x.py::test_{phase}[{impl}-b{batch}]",
            "group": f"{phase} batch={batch}", "params": {"impl": impl, "batch": batch}, "extra_info": info,
            "stats": {"median": median, "iqr": iqr_frac * median, "stddev": iqr_frac * median, "rounds": rounds,
                      "min": median * (1 - spread_frac / 2), "max": median * (1 + spread_frac / 2),
                      "mean": median, "data": [median] * rounds}}


def tta(impl, preset, finals, ttts, *, status="passed", target=0.945):
    seeds = [{"seed": i, "status": "reached" if t is not None else "missed", "epochs": 30,
              "final_accuracy": f, "time_to_target": t, "target_epoch": 5 if t else None,
              "train_seconds": 9.0, "curve": [[1.0, 0.9], [2.0, f]]} for i, (f, t) in enumerate(zip(finals, ttts))]
    reached = [t for t in ttts if t is not None]
    entry = timing("time-to-accuracy", impl, 10, 10.0, status=status)
    entry["params"] = {"preset_name": preset, "impl": impl, "seeds": list(range(len(finals)))}
    entry["extra_info"].update(preset=preset, target=target, epochs=30, n_train=50_000, to_target=False,
                               seeds=seeds, median_final_accuracy=sorted(finals)[len(finals) // 2],
                               median_time_to_target=sorted(reached)[len(reached) // 2] if reached else None,
                               reached=len(reached), stalled=len(finals) - len(reached))
    return entry


def run_json(benchmarks, outcomes=(), available=None):
    return {"benchmarks": benchmarks, "machine_info": {"node": "box", "nnbench": {"cpu": "TestCPU"}},
            "commit_info": {"id": "abc", "branch": "bench"}, "datetime": "2026-01-01T00:00:00",
            "nnbench": {"mode": "full", "preset": "nielsen", "command": "make bench", "pinned_threads": 2,
                        "gemm_peak_gflops": {"float32": 200.0, "float64": 100.0},
                        "available": available or {"reference": None, "numpy": None, "fast": None},
                        "outcomes": list(outcomes)}}


def render(tmp_path, data):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    return report.render(report.load(path))


def row(markdown: str, heading: str, impl: str) -> list[str]:
    """The cells of ``impl``'s row in the first table after ``heading``."""
    section = markdown[markdown.index(heading):]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == impl:
            return cells[1:]
    raise AssertionError(f"no row {impl!r} after {heading!r}")


def test_speedup_columns_against_reference_and_numpy(tmp_path):
    md = render(tmp_path, run_json([timing("forward", "reference", 10, 100e-6),
                                    timing("forward", "numpy", 10, 10e-6),
                                    timing("forward", "fast", 10, 5e-6)]))["forward.md"]
    assert row(md, "Speedup vs `reference`", "numpy") == ["10.00×"]
    assert row(md, "Speedup vs `reference`", "fast") == ["20.00×"]
    assert row(md, "Speedup vs `numpy`", "fast") == ["2.00×"]
    assert row(md, "Speedup vs `numpy`", "reference") == ["0.10×"]


def test_a_failed_run_is_never_a_speedup_baseline(tmp_path):
    md = render(tmp_path, run_json([timing("forward", "reference", 10, 100e-6, status="failed"),
                                    timing("forward", "numpy", 10, 10e-6),
                                    timing("forward", "fast", 10, 5e-6)]))["forward.md"]
    assert row(md, "**Time**", "reference") == [report.FAILED]
    assert row(md, "Speedup vs `reference`", "numpy") == ["—"]
    assert row(md, "Speedup vs `reference`", "fast") == ["—"]
    assert row(md, "Speedup vs `numpy`", "fast") == ["2.00×"]       # other baselines still apply


def test_a_failed_implementation_shows_failed_not_a_speedup(tmp_path):
    md = render(tmp_path, run_json([timing("forward", "reference", 10, 100e-6),
                                    timing("forward", "numpy", 10, 10e-6, status="failed")]))["forward.md"]
    assert row(md, "Speedup vs `reference`", "numpy") == [report.FAILED]
    assert row(md, "**GFLOP/s**", "numpy") == [report.FAILED]


def test_failure_before_timing_comes_from_the_outcomes(tmp_path):
    outcome = {"test": "bench/bench_forward.py::test_forward[fast-b10]", "status": "failed", "phase": "forward",
               "impl": "fast", "batch": 10, "message": "AssertionError: fast forward differs"}
    files = render(tmp_path, run_json([timing("forward", "reference", 10, 100e-6)], [outcome]))
    assert row(files["forward.md"], "**Time**", "fast") == [report.FAILED]
    assert "fast forward differs" in files["README.md"]
    assert "not saved as a `--benchmark-compare` baseline" in files["README.md"]


@pytest.mark.parametrize("iqr_frac,spread_frac,rounds,flagged", [
    (0.20, 0.20, 50, True),      # wide IQR
    (0.05, 0.90, 50, False),     # a few interrupted rounds out of many: IQR is what counts
    (0.00, 0.30, 3, True),       # few rounds: the range is judged
    (0.02, 0.05, 3, False),
])
def test_instability_flag(tmp_path, iqr_frac, spread_frac, rounds, flagged):
    md = render(tmp_path, run_json([timing("forward", "numpy", 10, 1e-3, iqr_frac=iqr_frac,
                                           spread_frac=spread_frac, rounds=rounds)]))["forward.md"]
    cell = row(md, "**Time**", "numpy")[0]
    assert cell.startswith("1 ms")
    assert ("⚠" in cell) == flagged


def test_timings_taken_while_other_processes_ran_are_marked(tmp_path):
    md = render(tmp_path, run_json([timing("forward", "numpy", 10, 1e-3, other_processes_cpu_share=0.4),
                                    timing("forward", "fast", 10, 1e-3, other_processes_cpu_share=0.01)]))
    assert row(md["forward.md"], "**Time**", "numpy") == ["1 ms ±2% ‡"]
    assert row(md["forward.md"], "**Time**", "fast") == ["1 ms ±2%"]


def test_epoch_on_a_prefix_is_scaled_to_a_full_epoch_and_marked(tmp_path):
    md = render(tmp_path, run_json([timing("epoch", "reference", 10, 0.3, examples=5_000, subset=True),
                                    timing("epoch", "numpy", 10, 0.3, examples=50_000)]))["epoch.md"]
    assert row(md, "**Time**", "reference") == ["3 s ±2% †"]
    assert row(md, "**Time**", "numpy") == ["300 ms ±2%"]
    assert row(md, "Speedup vs `reference`", "numpy") == ["10.00×"]   # per example, not per round


def test_time_to_accuracy_table_counts_stalls_and_shows_failures(tmp_path):
    skipped = {"test": "t[nielsen-reference]", "status": "skipped", "phase": "time-to-accuracy",
               "impl": "reference", "preset_name": "nielsen", "message": "the reference trains one seed"}
    failed = {"test": "t[nielsen-fast]", "status": "failed", "phase": "time-to-accuracy", "impl": "fast",
              "preset_name": "nielsen", "message": "median final accuracy 90.00% < target 94.5%"}
    files = render(tmp_path, run_json([tta("numpy", "nielsen", [0.95, 0.86, 0.948], [2.0, None, 3.0]),
                                       tta("fast", "nielsen", [0.90, 0.91, 0.86], [None, None, None],
                                           status="failed")], [skipped, failed]))
    md = files["time-to-accuracy.md"]
    numpy_row = row(md, "## nielsen", "numpy")
    assert numpy_row[0] == "passed"
    assert numpy_row[2] == "3 s"                                  # median over the seeds that reached it
    assert numpy_row[3] == "—"                                    # recorded without a FLOP floor
    assert numpy_row[4] == "2 s / never / 3 s"
    assert numpy_row[5] == "2/3 (1 stalled)"
    assert row(md, "## nielsen", "fast")[0].startswith(report.FAILED + ": median final accuracy 90.00%")
    assert "| reference " not in md                               # skipped: no row, the note says why
    assert "Note: the reference trains one seed" in md
    assert row(md, "final accuracy, median", "numpy")[:2] == ["94.80%", "95.00% / 86.00% / 94.80%"]
    assert row(files["README.md"], "## Headline", "fast")[-1] == report.FAILED
    assert row(files["README.md"], "## Headline", "numpy")[-1] == "3 s (2/3)"


def test_time_to_accuracy_table_shows_the_time_over_the_flop_floor(tmp_path):
    """× FLOP floor = median time to target / median floor (the seeds' FLOPs to target at the
    session's GEMM peak), as the suite records them."""
    entry = tta("numpy", "relu", [0.976, 0.977, 0.975], [1.2, 1.5, 1.8], target=0.975)
    entry["extra_info"].update(epoch_flops=19.2e9, peak_gflops=320.0, median_floor_seconds=0.42)
    md = render(tmp_path, run_json([entry]))["time-to-accuracy.md"]
    assert "× FLOP floor" in md
    assert row(md, "## relu", "numpy")[2:4] == ["1.5 s", "3.57×"]     # 1.5 s / 0.42 s


def test_machine_names_the_gpu_its_driver_and_its_own_gemm_peak(tmp_path):
    data = run_json([timing("epoch", "fast", 10, 1.0)])
    data["machine_info"]["nnbench"]["gpu"] = "NVIDIA H100 80GB HBM3 (79.2 GiB, ...), driver 580.159.04, CUDA 13.0"
    data["nnbench"]["gpu_gemm_peak_gflops"] = {"float32": 51000.0, "float64": 52000.0}
    readme = render(tmp_path, data)["README.md"]
    assert row(readme, "## Machine", "GPU")[0].startswith("NVIDIA H100 80GB HBM3") and "driver 580.159.04" in readme
    assert row(readme, "## Machine", "GPU GEMM peak")[0].startswith("SGEMM 51000 GFLOP/s, DGEMM 52000 GFLOP/s")
    assert "GPU GEMM peak" not in render(tmp_path, run_json([timing("epoch", "fast", 10, 1.0)]))["README.md"]


def test_implementations_left_out_of_the_run_get_no_rows(tmp_path):
    readme = render(tmp_path, run_json([timing("epoch", "fast", 10, 1.0)]))["README.md"]   # as with -k fast
    headline = readme[readme.index("## Headline"):]
    assert "| fast " in headline and "| numpy " not in headline and "| reference " not in headline


def test_writes_every_file_and_keeps_every_rounds_time(tmp_path):
    src = tmp_path / "run.json"
    src.write_text(json.dumps(run_json([timing("epoch", "numpy", 10, 0.3, examples=50_000),
                                        timing("epoch", "numpy", 128, 0.1, examples=50_000)])))
    assert report.main([str(src), "--out", str(tmp_path / "results")]) == 0
    out = tmp_path / "results"
    names = {p.name for p in out.iterdir()}
    assert {"README.md", "epoch.md", "benchmark.json"} <= names
    # nothing rendered that the run did not measure: an epoch-only run has no forward, backward or
    # time-to-accuracy page, nor a section for them
    assert not {"forward.md", "backward.md", "time-to-accuracy.md"} & names
    assert "## Forward pass" not in (out / "README.md").read_text()
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"
    saved = json.loads((out / "benchmark.json").read_text())
    assert saved["benchmarks"][0]["stats"]["data"] == [0.3] * 20          # every round, for `make compare`
    assert "[0.3, 0.3," in (out / "benchmark.json").read_text()          # on one line, not one per round
    assert saved["benchmarks"][0]["stats"]["median"] == 0.3
    assert "`make bench`" in (out / "README.md").read_text()


def test_a_rerender_removes_the_pages_of_phases_the_new_run_did_not_measure(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "forward.md").write_text("an older run's forward page")
    (out / "notes.txt").write_text("the user's own file")
    src = tmp_path / "run.json"
    src.write_text(json.dumps(run_json([timing("epoch", "numpy", 10, 0.3, examples=50_000)])))
    assert report.main([str(src), "--out", str(out)]) == 0
    assert not (out / "forward.md").exists() and (out / "notes.txt").exists()


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    ("{not json", "not a readable JSON file"),
    (json.dumps({"benchmarks": []}), "was not written by the suites in bench/"),
])
def test_bad_input_is_one_clear_error_and_results_stay_as_they_were(tmp_path, capsys, content, message):
    out = tmp_path / "results"
    out.mkdir()
    (out / "README.md").write_text("previous results")
    src = tmp_path / "run.json"
    if content is not None:
        src.write_text(content)
    assert report.main([str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench.report: error:") and message in err
    assert [p.name for p in out.iterdir()] == ["README.md"]
    assert (out / "README.md").read_text() == "previous results"


def quick_like_run():
    """What quick mode records: two epoch batch sizes, relu's time to accuracy only (the other presets
    skipped), an implementation that declines the network, and two unavailable ones."""
    skip = {"status": "skipped", "phase": "time-to-accuracy", "message": "quick mode trains relu only"}
    outcomes = [dict(skip, test=f"t[{p}-{i}]", impl=i, preset_name=p)
                for p in ("nielsen", "fullbatch") for i in ("reference", "numpy", "fast")]
    outcomes += [{"test": f"e[declines-b{b}]", "status": "skipped", "phase": "epoch", "impl": "declines", "batch": b,
                  "message": "cannot express this network"} for b in (10, 128, 1024)]
    return run_json([timing("epoch", "reference", 10, 4.0, examples=5_000, subset=True, iqr_frac=0.3),
                     timing("epoch", "numpy", 10, 0.30, examples=50_000),
                     timing("epoch", "fast", 10, 0.20, examples=50_000),
                     timing("epoch", "numpy", 128, 0.10, examples=50_000),
                     timing("epoch", "fast", 128, 0.12, examples=50_000),
                     tta("numpy", "relu", [0.976], [3.0], target=0.975),
                     tta("fast", "relu", [0.977], [1.5], target=0.975)], outcomes,
                    available={"reference": None, "numpy": None, "fast": None, "declines": None,
                               "gpu-a": "no CUDA device", "gpu-b": "no CUDA device"})


def test_the_page_opens_with_the_answer(tmp_path):
    readme = render(tmp_path, quick_like_run())["README.md"]
    assert readme.index("## Answer") < readme.index("## Headline") < readme.index("## Machine")
    # epoch b=10: fast 0.2 s, then numpy 0.3 s; the reference's ±30% makes no ratio here unstable
    assert row(readme, "## Answer", "epoch") == ["b=10", "`fast`", "200 ms", "1.50× (`numpy`)", "1.50×"]
    b128 = [line for line in readme.split("## Answer")[1].splitlines() if "| b=128 " in line][0]
    assert "`numpy`" in b128 and "1.20× (`fast`)" in b128 and "is numpy" in b128
    assert row(readme, "## Answer", "time to target: relu")[1:5] == ["`fast`", "1.5 s", "2.00× (`numpy`)", "2.00×"]


def test_an_unstable_or_shared_timing_marks_its_ratios(tmp_path):
    readme = render(tmp_path, run_json([timing("forward", "numpy", 10, 10e-6, iqr_frac=0.4),
                                        timing("forward", "fast", 10, 5e-6)]))["README.md"]
    assert row(readme, "## Answer", "forward")[3:] == ["2.00× ⚠ (`numpy`)", "2.00× ⚠"]
    readme = render(tmp_path, run_json([timing("forward", "numpy", 10, 10e-6),
                                        timing("forward", "fast", 10, 5e-6, other_processes_cpu_share=0.3)]))["README.md"]
    assert row(readme, "## Answer", "forward")[3:] == ["2.00× ‡ (`numpy`)", "2.00× ‡"]


def test_tables_list_the_fastest_first(tmp_path):
    files = render(tmp_path, quick_like_run())
    for text, heading in ((files["epoch.md"], "**Time**"), (files["README.md"], "## Headline")):
        table = next(b for b in text[text.index(heading):].split("\n\n") if b.startswith("|"))
        names = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
        assert names == ["fast", "numpy", "reference"], (heading, names)       # mean rank over b=10 and b=128
    tta_md = files["time-to-accuracy.md"]
    assert tta_md.index("| fast ") < tta_md.index("| numpy ")


def test_nothing_is_rendered_that_the_run_did_not_measure(tmp_path):
    files = render(tmp_path, quick_like_run())
    readme, tta_md = files["README.md"], files["time-to-accuracy.md"]
    assert "## nielsen" not in tta_md and "## fullbatch" not in tta_md and "not run" not in tta_md
    assert "Not run in this mode: `nielsen`, `fullbatch`." in tta_md
    headline = readme.split("## Headline")[1].split("\n\n")[2]
    assert "nielsen" not in headline and "fullbatch" not in headline and "to target: relu" in headline
    assert "| declines " not in readme and "| declines " not in files["epoch.md"]    # skipped only: the note says so
    assert "Skipped: `declines`: cannot express this network" in readme
    assert "b=1024" not in files["epoch.md"]                                         # a column of skips


def test_each_note_is_said_once(tmp_path):
    files = render(tmp_path, quick_like_run())
    readme = files["README.md"]
    assert readme.count("Not available here") == 1 and readme.count("`gpu-a`: no CUDA device") == 1
    assert readme.count("Skipped: `declines`") == 1 and readme.count("⚠ unstable") == 1
    assert readme.count("quick mode trains relu only") == 1
    assert files["epoch.md"].count("Not available here") == 1                      # each file stands alone
    assert files["memory.md"].count("high-water mark") <= 2


def test_every_line_fits_a_screen(tmp_path):
    """Prose is wrapped; a table row may run longer, and a long row of the machine table goes on in
    rows of its own."""
    data = quick_like_run()
    data["machine_info"]["nnbench"]["versions"] = {f"library{i}": "1.2.3" for i in range(30)}
    files = render(tmp_path, data)
    for name, text in files.items():
        for line in text.splitlines():
            assert line.startswith("|") or len(line) <= 100, (name, line)
            assert len(line) <= 160, (name, line)
    machine = files["README.md"].split("## Machine")[1]
    assert "| libraries | library0 1.2.3, library1 1.2.3," in machine and "|  | library" in machine
    assert "library29 1.2.3 |" in machine


def test_the_summary_says_how_long_the_run_took(tmp_path):
    data = quick_like_run()
    data["nnbench"]["wall_seconds"] = 1178.4
    assert "the run took 19 min 38 s" in render(tmp_path, data)["README.md"].split("## Answer")[0]
    assert "the run took" not in render(tmp_path, quick_like_run())["README.md"]     # not recorded: not said


def test_a_run_without_numpy_gets_no_column_of_dashes(tmp_path):
    readme = render(tmp_path, run_json([timing("epoch", "fast", 10, 0.2, examples=50_000),
                                        timing("epoch", "slow", 10, 0.4, examples=50_000)],
                                       available={"fast": None, "slow": None}))["README.md"]
    assert row(readme, "## Answer", "epoch") == ["b=10", "`fast`", "200 ms", "2.00× (`slow`)"]
    assert "faster than `numpy`" not in readme


# -- runs timed in interleaved trials (python -m bench.run): paired ratios with intervals ----------------
#: the machine's phase in each trial, shared by every implementation timed in it (3x slow in some)
MACHINE = [1.0, 1.0, 3.0, 1.0, 1.2, 1.0, 3.0, 1.0, 1.1, 1.0]


def with_trials(entry, noise=0.01, seed=0, machine=MACHINE):
    """``entry`` with one round per trial as the driver records it: its median times the trial's machine
    phase times a little noise of its own (``noise``: log-sd)."""
    import numpy as np
    wobble = np.exp(np.random.default_rng(seed).normal(0, noise, len(machine)))
    entry["extra_info"]["rounds"] = [
        {"trial": i, "process": 1, "seconds": entry["stats"]["median"] * m * float(w), "cpu": 1.0, "others": 0.0,
         "steal": 0.0, "clean": True} for i, (m, w) in enumerate(zip(machine, wobble))]
    return entry


def trials_run():
    """quick_like_run timed in trials: the reference's rounds spread widely trial to trial (its IQR says 2%),
    numpy's IQR at b=10 says 50% while its trials agree."""
    data = quick_like_run()
    noisy = {("epoch", "reference", 10): 0.4}
    for i, b in enumerate(data["benchmarks"]):
        info = b["extra_info"]
        if info["phase"] == "epoch":
            if info["impl"] == "reference":
                b["stats"]["iqr"] = 0.02 * b["stats"]["median"]
            if info["impl"] == "numpy" and info["batch"] == 10:
                b["stats"]["iqr"] = 0.5 * b["stats"]["median"]
            with_trials(b, noise=noisy.get((info["phase"], info["impl"], info["batch"]), 0.01), seed=i)
    data["nnbench"].update(schema=2, design="interleaved")
    return data


def test_the_answer_calls_two_a_tie_when_their_paired_interval_holds_one(tmp_path):
    """The faster by median may be the slower by pairs: noise is said to be noise."""
    numpy = with_trials(timing("epoch", "numpy", 10, 0.300), noise=0.03, seed=1)
    close = with_trials(timing("epoch", "fast", 10, 0.299), noise=0.03, seed=2)
    far = with_trials(timing("epoch", "fast", 10, 0.200), noise=0.01, seed=2)
    for name, fast, said in (("close", close, "(`numpy`, a tie)"), ("far", far, "(`numpy`)")):
        (tmp_path / name).mkdir()
        data = run_json([numpy, fast])
        data["nnbench"].update(schema=2, design="interleaved")
        answer = row(render(tmp_path / name, data)["README.md"], "## Answer", "epoch")
        assert answer[1] == "`fast`" and answer[3].endswith(said), answer


def test_a_timing_in_trials_is_marked_shared_only_when_none_of_its_rounds_was_clean(tmp_path):
    """Its figures come from its clean rounds alone; a clean 50 ms round may hold a clock tick of others'."""
    data = trials_run()
    numpy_b10 = next(b for b in data["benchmarks"] if b["extra_info"]["phase"] == "epoch"
                     and b["extra_info"]["impl"] == "numpy" and b["extra_info"]["batch"] == 10)
    numpy_b10["extra_info"]["other_processes_cpu_share"] = 0.2        # the rounds' median share
    (tmp_path / "clean").mkdir(), (tmp_path / "lost").mkdir()
    assert "‡" not in row(render(tmp_path / "clean", data)["epoch.md"], "**Time**", "numpy")[0]
    for r in numpy_b10["extra_info"]["rounds"]:
        r.update(clean=False, others=0.2)
    assert row(render(tmp_path / "lost", data)["epoch.md"], "**Time**", "numpy")[0].endswith("‡")


def test_a_run_with_trials_shows_paired_ratios_with_their_intervals(tmp_path):
    files = render(tmp_path, trials_run())
    readme, epoch = files["README.md"], files["epoch.md"]
    fastest = row(readme, "## Answer", "epoch")
    assert fastest[:3] == ["b=10", "`fast`", "200 ms"]
    # the machine's 3x phases hit both alike: the paired ratio is 1.5 with a narrow interval, no ⚠
    assert re.fullmatch(r"1\.[45]\d× \[1\.\d\d, 1\.\d\d\] \(`numpy`\)", fastest[3]), fastest
    assert re.fullmatch(r"1\.[45]\d× \[1\.\d\d, 1\.\d\d\]", fastest[4]), fastest
    assert re.fullmatch(r"1\.[45]\d× \[1\.\d\d, 1\.\d\d\]", row(epoch, "Speedup vs `numpy`", "fast")[0])
    # per example: the reference timed a tenth of the epoch; its widely spread trials make its ratios wide
    vs_reference = row(epoch, "Speedup vs `reference`", "numpy")[0]
    assert re.fullmatch(r"\d+\.\d\d× \[\d+\.\d\d, \d+\.\d\d\] ⚠", vs_reference), vs_reference
    for text in (readme, epoch):
        assert "interleaved trials" in text and "bootstrap interval over trials" in text
    assert "The ratios are of medians" not in readme


def test_with_trials_a_time_is_flagged_by_its_interval_not_its_iqr(tmp_path):
    steady = [1.0] * 10
    forward = render(tmp_path, run_json([
        with_trials(timing("forward", "reference", 10, 100e-6, iqr_frac=0.02), noise=0.4, machine=steady),
        with_trials(timing("forward", "numpy", 10, 10e-6, iqr_frac=0.5), noise=0.01, machine=steady)]))["forward.md"]
    reference, numpy = row(forward, "**Time**", "reference")[0], row(forward, "**Time**", "numpy")[0]
    assert reference.endswith("⚠")                                  # IQR 2%, trials ±40%
    assert "⚠" not in numpy and "±50%" not in numpy, numpy          # IQR 50%, trials agree
    assert "half-width of the median's 95% bootstrap interval" in forward


def test_a_run_without_trials_keeps_medians_and_the_iqr(tmp_path):
    files = render(tmp_path, quick_like_run())
    assert "The ratios are of medians" in files["README.md"] and "interleaved trials" not in files["README.md"]
    assert "[" not in row(files["epoch.md"], "Speedup vs `numpy`", "fast")[0]
    assert "±IQR: the interquartile range" in files["epoch.md"]


def test_a_round_that_is_not_a_round_is_one_clear_error(tmp_path, capsys):
    data = trials_run()
    data["benchmarks"][1]["extra_info"]["rounds"][2] = {"trial": "two", "seconds": 0.3}
    src = tmp_path / "run.json"
    src.write_text(json.dumps(data))
    assert report.main([str(src), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench.report: error:") and "is not {trial: int" in err and err.count("\n") == 1


def test_with_trials_a_time_without_a_clean_round_or_an_interval_is_flagged(tmp_path):
    lost = with_trials(timing("forward", "numpy", 10, 10e-6), machine=[1.0] * 4)
    for r in lost["extra_info"]["rounds"]:
        r["clean"] = False
    few = with_trials(timing("forward", "fast", 10, 5e-6), machine=[1.0] * 2)
    forward = render(tmp_path, run_json([lost, few]))["forward.md"]
    assert row(forward, "**Time**", "numpy") == ["10 µs ⚠ ‡"] and row(forward, "**Time**", "fast") == ["5 µs ⚠"]
    assert row(forward, "Speedup vs `numpy`", "fast") == ["2.00× ⚠"]          # no shared clean trial: medians, ⚠
