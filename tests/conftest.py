"""Fixtures shared by the whole suite.

``impl`` runs a test once against the Numba kernels (``numbaconv``) and once
against the NumPy reference (``numbaconv.reference``): the contract holds for
both.
"""
import os
from pathlib import Path

# Every direct kernel call (numbaconv._numba.direct) checks that its arguments
# type as the overload its key holds: set before numbaconv is imported, and
# inherited by the suite's subprocesses.
os.environ["NUMBACONV_CHECK_DIRECT_CALLS"] = "1"

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import numbaconv  # noqa: E402
import numbaconv.reference  # noqa: E402

# First calls compile kernels (seconds), so no per-example deadline.
settings.register_profile("numbaconv", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("numbaconv")

IMPLS = {"numba": numbaconv, "reference": numbaconv.reference}


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def impl(request):
    """The implementation under test: numbaconv or numbaconv.reference."""
    return IMPLS[request.param]


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


@pytest.fixture
def thread_counts():
    """1 and 2 Numba threads, for tests that compare results across thread counts.

    Fails (rather than skips) where Numba has a single thread: those tests
    would prove nothing. The caller's thread count is restored afterwards.
    """
    before = numba.get_num_threads()
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.fail("comparing thread counts needs 2 Numba threads (NUMBA_NUM_THREADS >= 2)")
    yield 1, 2
    numba.set_num_threads(before)


# Node ids the coverage pass leaves out (minutes as Python): see the file's header.
JIT_ONLY = Path(__file__).with_name("jit_only.txt")


def pytest_collection_modifyitems(config, items):
    listed = {line.strip() for line in JIT_ONLY.read_text().splitlines() if line.strip()[:1] not in ("", "#")}
    for item in items:
        if item.nodeid in listed:
            item.add_marker(pytest.mark.jit_only)


@pytest.fixture
def planes_to_pixels_calls(monkeypatch):
    """The source shapes of the test's planes_to_pixels calls (NCHW memory copied to NHWC memory by that kernel)."""
    from numbaconv._kernels import convolution
    seen = []
    kernel = convolution.planes_to_pixels

    def call(src, dst):
        seen.append(src.shape)
        return kernel(src, dst)
    monkeypatch.setattr(convolution, "planes_to_pixels", call)
    return seen
