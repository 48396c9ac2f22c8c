"""The pooling layer family against PyTorch (forward and autograd), in a worker subprocess.

PyTorch runs in ``torch_worker.py`` (``oracles.py`` says why it never runs in
the pytest process); each grid of ``cases.py`` goes to it in one batch on
first use. Without torch these tests fail, they do not skip.

Max pooling selects, so y and argmax must match exactly (inputs are
tie-free); gradients sum at most ``overlap`` terms. Average pooling is
compared at a tolerance scaled to the window size in float32, tight in
float64 (PyTorch computes in float64 too).
"""
import sys

import numpy as np
import pytest

import oracles
from cases import ADAPTIVE_CASES, AVG_POOL_CASES, MAX_POOL_OPT_CASES, assert_close, ids, pair

UNPOOL_CASES = [c for c in MAX_POOL_OPT_CASES if pair(c.dilation) == (1, 1)]  # PyTorch's unpool has no dilation


@pytest.fixture(scope="session")
def oracle():
    yield oracles.session_oracle(oracles.TorchOracle)
    oracles.close_session_oracle(oracles.TorchOracle)


def max_request(case):
    x, dy = case.inputs()
    kw = case.max_kwargs()
    return oracles.torch_max_pool(x, dy, case.pool_size, **kw)


def unpool_request(case):
    """Unpool the case's own pooled maxima (from numbaconv.reference, checked in test_max_pool2d)."""
    import numbaconv.reference as ref
    x, _ = case.inputs()
    y, argmax = ref.max_pool2d_argmax(x, case.pool_size, **case.max_kwargs())
    hw = x.shape[1:3] if case.data_format == "NHWC" else x.shape[2:]
    return oracles.torch_max_unpool(y, argmax, hw, case.pool_size, stride=case.stride,
                                    padding=case.padding, data_format=case.data_format)


def avg_request(case):
    x, dy = case.inputs()
    kw = case.avg_kwargs()
    return oracles.torch_avg_pool(x, dy, case.pool_size, **kw)


def adaptive_request(case):
    x, dy = case.inputs()
    return oracles.torch_adaptive_avg_pool(x, dy, case.output_size, data_format=case.data_format)


@pytest.fixture(scope="module")
def torch_max(oracle):
    return oracles.Batch(oracle, MAX_POOL_OPT_CASES, max_request)


@pytest.fixture(scope="module")
def torch_unpool(oracle):
    return oracles.Batch(oracle, UNPOOL_CASES, unpool_request)


@pytest.fixture(scope="module")
def torch_avg(oracle):
    return oracles.Batch(oracle, AVG_POOL_CASES, avg_request)


@pytest.fixture(scope="module")
def torch_adaptive(oracle):
    return oracles.Batch(oracle, ADAPTIVE_CASES, adaptive_request)


def overlap(case):
    (kh, kw), (sh, sw), (dh, dw) = pair(case.pool_size), pair(case.stride), pair(case.dilation)
    return -(-((kh - 1) * dh + 1) // sh) * -(-((kw - 1) * dw + 1) // sw)


# ------------------------------------------------------------- max pooling


@pytest.mark.torch
@pytest.mark.parametrize("case", MAX_POOL_OPT_CASES, ids=ids(MAX_POOL_OPT_CASES))
def test_max_pool2d(impl, case, torch_max):
    x, _ = case.inputs()
    expected = torch_max[case]
    y, argmax = impl.max_pool2d_argmax(x, case.pool_size, **case.max_kwargs())
    assert y.dtype == case.dtype and argmax.dtype == np.int64
    np.testing.assert_array_equal(y, expected["y"])
    np.testing.assert_array_equal(argmax, expected["argmax"])
    np.testing.assert_array_equal(impl.max_pool2d(x, case.pool_size, **case.max_kwargs()), y)


@pytest.mark.torch
@pytest.mark.parametrize("case", MAX_POOL_OPT_CASES, ids=ids(MAX_POOL_OPT_CASES))
def test_max_pool2d_backward(impl, case, torch_max):
    x, dy = case.inputs()
    expected = torch_max[case]
    _, argmax = impl.max_pool2d_argmax(x, case.pool_size, **case.max_kwargs())
    dx = impl.max_pool2d_backward(dy, argmax, x.shape, data_format=case.data_format)
    assert dx.dtype == case.dtype
    assert_close(dx, expected["dx"], case.dtype, overlap(case), "dx")


@pytest.mark.torch
@pytest.mark.parametrize("case", UNPOOL_CASES, ids=ids(UNPOOL_CASES))
def test_max_unpool2d(impl, case, torch_unpool):
    x, _ = case.inputs()
    expected = torch_unpool[case]
    y, argmax = impl.max_pool2d_argmax(x, case.pool_size, **case.max_kwargs())
    unpooled = impl.max_unpool2d(y, argmax, x.shape, data_format=case.data_format)
    assert unpooled.dtype == case.dtype
    np.testing.assert_array_equal(unpooled, expected["x"])


# ------------------------------------------------------------- avg pooling


@pytest.mark.torch
@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=ids(AVG_POOL_CASES))
def test_avg_pool2d(impl, case, torch_avg):
    x, _ = case.inputs()
    y = impl.avg_pool2d(x, case.pool_size, **case.avg_kwargs())
    assert y.dtype == case.dtype
    assert_close(y, torch_avg[case]["y"], case.dtype, case.window, "y")


@pytest.mark.torch
@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=ids(AVG_POOL_CASES))
def test_avg_pool2d_backward(impl, case, torch_avg):
    x, dy = case.inputs()
    dx = impl.avg_pool2d_backward(dy, x.shape, case.pool_size, **case.avg_kwargs())
    assert dx.dtype == case.dtype
    assert_close(dx, torch_avg[case]["dx"], case.dtype, case.window, "dx")


@pytest.mark.torch
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=ids(ADAPTIVE_CASES))
def test_adaptive_avg_pool2d(impl, case, torch_adaptive):
    x, _ = case.inputs()
    y = impl.adaptive_avg_pool2d(x, case.output_size, data_format=case.data_format)
    assert y.dtype == case.dtype
    assert_close(y, torch_adaptive[case]["y"], case.dtype, case.window, "y")


@pytest.mark.torch
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=ids(ADAPTIVE_CASES))
def test_adaptive_avg_pool2d_backward(impl, case, torch_adaptive):
    x, dy = case.inputs()
    dx = impl.adaptive_avg_pool2d_backward(dy, x.shape, data_format=case.data_format)
    assert dx.dtype == case.dtype
    assert_close(dx, torch_adaptive[case]["dx"], case.dtype, case.window, "dx")


# --------------------------------------------------------- the oracle itself


@pytest.mark.torch
def test_oracle_reports_torch_errors_per_case(oracle):
    """A case PyTorch rejects (padding over half the window) raises OracleError; the worker keeps serving."""
    x, dy = np.ones((1, 4, 4, 1)), np.ones((1, 2, 2, 1))
    good = oracles.torch_avg_pool(x, dy, 2, stride=2)
    bad = oracles.torch_avg_pool(x, dy, 2, stride=2, padding=2)
    ok, failed = oracle.run([good, bad])
    np.testing.assert_array_equal(ok["y"], np.ones((1, 2, 2, 1)))
    assert isinstance(failed, oracles.OracleError) and "Traceback" in str(failed)
    assert oracle.versions["torch"]


def test_pytest_process_never_imports_torch():
    assert "torch" not in sys.modules
