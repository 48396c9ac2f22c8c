# Quick start: `make bench` (the seed benchmark) and `make test` (the suite).
# Each target creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test test-boundscheck bench bench-quick bench-under-load compare example clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test,example]"
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

example: $(VENV)/.test-installed
	$(BIN)/python examples/train_digits.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
