# nnbench: `make test` and `make bench` work from a fresh clone; the first run builds .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
IMPL   ?= numpy
PRESET ?= nielsen
PHASE  ?= epoch
SECONDS ?= 15
# Where `make profile` and `make study` write; empty: out/profiles/ and out/studies/ (ignored by git).
OUT    ?=
MODE   ?= quick
NAME   ?=
# Your own implementations for bench, bench-quick, compare and study, as [NAME=]module:Class
# specs separated by commas (README, "Benchmark your own implementation"); the module must be
# importable (PYTHONPATH). Installed packages' entry points need nothing here.
IMPLS  ?=
# `make compare` times the implementations of git revision REF beside today's, in the same
# interleaved trials (python -m bench.run --ref), and fails when a benchmark got slower by more than
# COMPARE_FAIL percent (default 3) by its paired rounds' interval (bench/harness/paired.py says the
# rule). REF empty: your uncommitted changes to impls/ against HEAD, else the last commit that changed
# impls/ against its parent. REF=saved: the older, weaker test against this machine's newest saved
# run, measured minutes or days ago (Mann-Whitney U on the rounds, bench/harness/compare.py; default
# COMPARE_FAIL 15, since an idle machine moved unchanged medians by up to ~10% between such runs).
REF    ?=
COMPARE_FAIL ?=
# compare runs each side's implementations in this many processes: a process's own layout moves all
# its rounds by a few percent, which trials inside one process cannot show; with two a side the
# interval resamples processes too (bench/harness/paired.py), and unchanged code stops looking slower.
COMPARE_PROCESSES ?= 2
# This machine's label (--bench-machine): its history folder .benchmarks/<label>/ and its folder
# under results/. Empty: the CPU model, logical CPUs and GPU (e.g. intel-xeon-2cpu).
MACHINE ?=
# bench, bench-quick and compare run each implementation in processes of its own (python -m bench.run),
# all at once, taking turns in interleaved trials: this many per implementation, each a member of
# every trial. One: the trials already interleave every implementation's rounds; two show how much
# a process's own state moves its rounds, at twice the time.
PROCESSES ?= 1
# bench, bench-quick and compare: only these implementations (comma-separated names); empty: all.
ONLY   ?=
ARGS   ?=
# gpu-run: its total seconds, the MNIST directory (default $$NNBENCH_DATA), DRY_RUN=1 for the CPU
BUDGET ?= 480
DATA   ?=
DRY_RUN ?=

# The recipes below take these from the environment, quoted ("$$IMPL"), never pasted into the
# shell's text: a spec such as mynet:MyNetwork(device="cuda") is one argument whatever it holds, and
# a ';' or '$(...)' in a value is text. ARGS is a list of arguments: bench/make_args.py splits it
# as a shell splits words (quotes group: ARGS='-k "forward or epoch"') and evaluates nothing.
export IMPL PRESET PHASE NAME OUT MODE MACHINE ONLY ARGS PROCESSES COMPARE_FAIL COMPARE_PROCESSES BUDGET DATA REF
WITH_ARGS = $(PY) -m bench.make_args

ifneq ($(IMPLS),)
export NNBENCH_IMPLS := $(IMPLS)
endif

.PHONY: setup setup-cuda test test-all train check bench bench-quick compare profile study gpu-run clean

TORCH  := 2.13.0
TRITON := 3.9.0
# Where `make setup-cuda` gets torch: empty for the default index, or the URL of PyTorch's index
# for one CUDA version.
TORCH_INDEX ?=

# torch is installed first and pinned: the CPU build, so the unpinned range in
# pyproject.toml is already satisfied and pip does not pull several GB of CUDA packages.
# Triton beside it, pinned: without a GPU its interpreter runs the triton-fused kernels on the
# CPU, which is how the tests check them (tests/test_triton_fused.py). Not in pyproject.toml: a
# CUDA build of torch requires the Triton release it was built with (`make setup-cuda`).
# pip byte-compiles what it installs one file at a time (torch alone has thousands): it installs
# without (--no-compile), then compileall does it on every CPU, so no run compiles a module on import.
# A file it cannot compile is passed over, as pip passes it over (torch ships one in Python 3.12 syntax).
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check --no-compile
COMPILE_ALL = $(PY) -c 'import compileall, sysconfig; compileall.compile_dir(sysconfig.get_path("purelib"), quiet=2, workers=0)'
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==$(TORCH) triton==$(TRITON)
	$(PIP) -e '.[dev,plots,jax,sklearn]'
	$(COMPILE_ALL)
	@touch $@

setup: $(STAMP)

# A machine with an NVIDIA GPU: a new .venv with a CUDA build of torch, which brings the Triton
# release it was built with, then nnbench as in `setup`. It stops, saying so, if that torch sees
# no GPU (a CPU build: set TORCH_INDEX). JAX stays the CPU build: for jax-cuda add a CUDA jaxlib
# (`pip install 'jax[cuda13]==0.10.2'`) where one exists. No GPU was at hand when this was
# written: untested.
setup-cuda:
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==$(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) -e '.[dev,plots,jax,sklearn]'
	$(COMPILE_ALL)
	$(PY) -c 'import torch, triton; assert torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA device: a CPU build? set TORCH_INDEX"; print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}, {torch.cuda.get_device_name()}")'
	@touch $(STAMP)

# The CI: every check. Its budget (issue 25): 6 minutes from a fresh clone on a 2-core machine,
# install included. The slowest tests are listed at the end, so a new slow one shows. test-all adds
# the `slow` tier (pyproject.toml's markers): full-length runs and torch.compile's extra compiles.
test: $(STAMP)
	$(WITH_ARGS) $(PY) -m pytest --durations=15

test-all: $(STAMP)
	$(WITH_ARGS) $(PY) -m pytest -m '' --durations=30

train: $(STAMP)
	$(WITH_ARGS) $(VENV)/bin/nnbench train --impl "$$IMPL" --preset "$$PRESET"

# The conformance checks of one implementation against the float64 reference (exit 0: it conforms).
check: $(STAMP)
	$(WITH_ARGS) $(VENV)/bin/nnbench check "$$IMPL"

# The pytest-benchmark suites in bench/ (mode full or quick), each implementation in PROCESSES
# processes of its own (python -m bench.run; ARGS go to every pytest process). A run that passed is
# saved, with every round's time, to the history in .benchmarks/<machine label>/ (the compare
# baseline); a failed one goes to .benchmarks/failed/ instead. Either way $(3)/<machine label>/ is
# rendered from the run's JSON, failures marked, then $(3)/README.md, every machine in $(3) side by
# side; make exits with the run's status; an interrupted run (status > 1) leaves them as they were.
# bench-quick renders into results/quick/ so it never replaces the full run's tables.
MACHINE_ARG = $(if $(MACHINE),"--machine=$$MACHINE") $(if $(ONLY),"--only=$$ONLY")
define run_bench
	@mkdir -p .benchmarks && rm -f .benchmarks/last-$(1).json
	@status=0; NNBENCH_COMMAND="$(2)" $(WITH_ARGS) $(PY) -m bench.run --mode=$(1) "--processes=$$PROCESSES" --save \
	    --json=.benchmarks/last-$(1).json $(MACHINE_ARG) -- || status=$$?; \
	if [ $$status -le 1 ]; then $(PY) -m bench.report .benchmarks/last-$(1).json --out '$(3)/{machine}' \
	    && $(PY) -m bench.report $(3) --out $(3) || status=$$?; \
	else echo "make: the benchmark run exited with status $$status: $(3) left as it was" >&2; fi; \
	exit $$status
endef

bench: $(STAMP)
	$(call run_bench,full,make bench,results)

bench-quick: $(STAMP)
	$(call run_bench,quick,make bench-quick,results/quick)

# The MODE (default quick) suites of today's implementations and REF's (above), in the same trials;
# saves nothing. Each benchmark: faster, slower, noise, or too few clean trials to decide.
compare: $(STAMP)
	$(WITH_ARGS) $(PY) -m bench.run "--mode=$$MODE" "--processes=$$COMPARE_PROCESSES" \
	    $(if $(filter saved,$(REF)),--compare,"--ref=$(if $(REF),$$REF,auto)") "--compare-fail=$${COMPARE_FAIL:-$(if $(filter saved,$(REF)),15,3)}" \
	    $(MACHINE_ARG) --

# py-spy flamegraph + speedscope profile of one implementation and phase, with a text report, into
# OUT (default out/profiles/, which git ignores; OUT=results/profiles to publish). IMPL is one
# argument whatever it holds (IMPL='mynet:MyNetwork(device="cpu")'); ARGS are split into options
# (ARGS=--split, ARGS="--batch 100 --native"). docs/profiling.md says what a profile can show.
profile: $(STAMP)
	$(WITH_ARGS) $(PY) -m bench.profiling --impl "$$IMPL" --preset "$$PRESET" --phase "$$PHASE" \
	    --seconds '$(subst ','\'',$(SECONDS))' $(if $(OUT),--out "$$OUT")

# One study over every available implementation, into OUT (default out/studies/, which git ignores;
# OUT=results/studies replaces the committed page). NAME empty: the list. docs/studies.md.
study: $(STAMP)
	NNBENCH_COMMAND='make study NAME=$(subst ','\'',$(NAME))$(if $(ARGS), ARGS="$(subst ','\'',$(ARGS))")$(if $(OUT), OUT=$(subst ','\'',$(OUT)))' \
	    $(WITH_ARGS) $(PY) -m bench.studies $(if $(NAME),"$$NAME",--list) $(if $(OUT),--out "$$OUT")

# Everything a GPU machine can tell us in one run (python -m bench.gpu_run; docs/gpu.md): facts, CUDA
# tests and checks, the fused Triton step's targets, the suites; every artefact flat in OUT. It runs
# with .venv's python where there is one, else the machine's own $(PYTHON) from this checkout
# (PYTHONPATH=.): it never builds .venv, since a GPU machine may have no network (there, where it
# can install, `make setup-cuda` first). DRY_RUN=1: the same steps on the CPU at smoke sizes.
# BUDGET: total seconds; DATA: the MNIST directory (default $$NNBENCH_DATA).
GPU_PY   = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-run:
	PYTHONPATH=.$(if $(PYTHONPATH),:$(PYTHONPATH)) NNBENCH_GPU_COMMAND="make gpu-run$(if $(filter 1,$(DRY_RUN)), DRY_RUN=1)" \
	    $(GPU_PY) -m bench.make_args $(GPU_PY) -m bench.gpu_run --out "$${OUT:-results/gpu-run}" --budget "$$BUDGET" \
	    $(if $(filter 1,$(DRY_RUN)),--dry-run) $(if $(DATA),--data "$$DATA") $(if $(MACHINE),"--machine=$$MACHINE")

# Keeps .benchmarks/: it is the comparison history `make compare` and --benchmark-compare read.
clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
