# Quick start: `make bench` (the seed benchmark) and `make test` (the suite).
# Each target creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test test-boundscheck coverage lint bench bench-quick bench-under-load compare history history-smoke sweep example example-dask example-dask-quick example-njit example-njit-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test,tf,torch,example]"
	touch $@

$(VENV)/.lint-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[lint,dask]"
	touch $@

$(VENV)/.perf-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[perf]"
	@# PyTorch is an optional peer: the benchmark runs without it.
	$(BIN)/pip install -q "torch==2.13.0" || echo "PyTorch 2.13.0 not installable here: the benchmark runs without it"
	touch $@

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest

# The kernel suite on small shapes with Numba's bounds checks on: an
# out-of-bounds access fails a test instead of corrupting memory. A cache
# directory of its own, so no kernel compiled without the checks is reused.
test-boundscheck: $(VENV)/.test-installed
	NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$$(mktemp -d) $(BIN)/python -m pytest -q -m "not slow and not tf" tests/test_kernels_*.py

# The kernel tests with NUMBA_DISABLE_JIT=1 under coverage: kernel bodies run
# as Python, so a kernel branch no test reaches shows up in the report. One
# pytest worker per core (pytest-xdist; pytest-cov combines their data): on the
# 2-core Zen3 machine, 2 min 52 s. The tests that take minutes as Python are
# listed in tests/jit_only.txt and left out here (the suite runs them).
coverage: $(VENV)/.test-installed
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -n auto --cov --cov-report= -m "not slow and not tf and not jit_only" tests/test_kernels_*.py
	$(BIN)/python -m coverage report --include="numbaconv/_kernels/*,numbaconv/_fast/*"
	$(BIN)/python -m coverage report

# ruff (pyflakes, pycodestyle, isort, pydocstyle, bugbear, pyupgrade) and mypy,
# both configured in pyproject.toml.
lint: $(VENV)/.lint-installed
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.perf-installed
	$(BIN)/python perf/bench.py

bench-quick: $(VENV)/.perf-installed
	$(BIN)/python perf/bench.py --quick
	$(BIN)/python -m pytest -q perf/test_perf.py

# Slowdown under 1 and 3 busy neighbour processes, numbaconv vs PyTorch vs TensorFlow
# (~10 min; it loads every core: not while others are timing).
bench-under-load: $(VENV)/.perf-installed
	$(BIN)/python perf/under_load.py

# Regression check between two commits, timed interleaved in one run:
# `make compare A=main B=HEAD` (exit 1 on a slowdown beyond the measured noise).
A ?= HEAD~1
B ?= HEAD
compare: $(VENV)/.perf-installed
	$(BIN)/python perf/compare.py $(A) $(B)

# Performance history (perf/history/): every commit since perf/ landed (at most 10), or
# `make history REVS="A..B"`, at the quick sizes, interleaved, into the store
# perf/history/results.jsonl; rewrites the page perf/history/index.html.
REVS ?=
history: $(VENV)/.perf-installed
	$(BIN)/python -m perf.history run $(REVS)

# CI: the history tooling end to end on the last two commits (a throwaway store),
# the page opened in headless Chromium, the tooling's tests. Never fails on timing.
history-smoke: $(VENV)/.perf-installed
	tmp=$$(mktemp -d) && \
	$(BIN)/python -m perf.history run HEAD~1 HEAD --rounds 2 --runs 3 \
		--store $$tmp/results.jsonl --page $$tmp/index.html && \
	mkdir -p perf/results && \
	$(BIN)/python -m perf.history check-page $$tmp/index.html \
		--screenshot perf/results/history-smoke.png && \
	rm -rf $$tmp
	$(BIN)/python -m pytest -q -s perf/test_history.py

example: $(VENV)/.test-installed
	$(BIN)/python examples/train_digits.py

# The digits CNN on a LocalCluster of 1 and 2 worker processes (inference over
# a memory-mapped batch, one data-parallel training step checked against eager).
example-dask: $(VENV)/.test-installed
	$(BIN)/python examples/dask_digits.py

# The same, small and quick (CI): exits 1 if the results differ from eager.
example-dask-quick: $(VENV)/.test-installed
	$(BIN)/python examples/dask_digits.py --images 4096 --chunk 512 --repeats 1 --train-epochs 0

# The digits CNN's forward and backward pass as one @njit function over
# numbaconv.kernels, checked against the public API (exit 1 if they differ),
# and the speed of both.
example-njit: $(VENV)/.test-installed
	$(BIN)/python examples/njit_digits.py

# The same, a few SGD steps each (CI; under a minute with a warm cache).
example-njit-quick: $(VENV)/.test-installed
	$(BIN)/python examples/njit_digits.py --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .coverage

# The conv shape sweep (issue 8): 45 layer shapes of real networks, numbaconv
# against NumPy, TensorFlow and PyTorch (NCHW and channels_last).
sweep: $(VENV)/.perf-installed
	$(BIN)/python perf/sweep.py
