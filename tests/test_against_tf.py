"""numbaconv and numbaconv.reference against TensorFlow, over the grids of ``cases.py``.

TensorFlow runs in a worker subprocess (``oracles.py`` says why); each grid
goes to it in one batch on first use and the results are shared by both
implementations. Without tensorflow these tests fail, they do not skip.

Tolerances (``cases.assert_close``): float32 scaled to the reduction length,
float64 tight (TensorFlow computes in float64 too). TensorFlow's LRN exists
only in float32, so LRN is compared at float32 tolerance in both dtypes (the
inputs are float32 values). Max pooling selects, it does not add: its
forward and argmax must match exactly.
"""
import os
import sys

import numpy as np
import pytest

import oracles
from cases import (
    CONV_CASES, LRN_CASES, POOL_CASES, SEED_SHAPE_CASES, TRANSPOSE_CASES, assert_close, ids,
)

ARGMAX_CASES = [c for c in POOL_CASES if isinstance(c.padding, str)]  # TF's argmax: SAME/VALID only
AVG_CASES = ARGMAX_CASES  # TF's avg_pool: SAME/VALID only


@pytest.fixture(scope="session")
def oracle():
    yield oracles.session_oracle()
    oracles.close_session_oracle()


def conv_request(case):
    x, w, b, dy = case.inputs()
    return oracles.conv2d(x, w, b, dy, **case.kwargs())


def transpose_request(case):
    x, w, b, dy = case.inputs()
    kw = case.kwargs()
    del kw["output_padding"]  # the oracle takes the output plane instead
    return oracles.conv2d_transpose(x, w, b, dy, case.out_hw, **kw)


def pool_request(case):
    x, dy = case.inputs()
    return oracles.max_pool(x, dy, case.pool_size, **case.kwargs())


def avg_request(case):
    x, dy = case.inputs()
    return oracles.avg_pool(x, dy, case.pool_size, **case.kwargs())


def lrn_request(case):
    x, dy = case.inputs()
    return oracles.lrn(x, dy, **case.kwargs())


@pytest.fixture(scope="module")
def tf_conv(oracle):
    return oracles.Batch(oracle, CONV_CASES, conv_request)


@pytest.fixture(scope="module")
def tf_transpose(oracle):
    return oracles.Batch(oracle, TRANSPOSE_CASES, transpose_request)


@pytest.fixture(scope="module")
def tf_pool(oracle):
    return oracles.Batch(oracle, POOL_CASES, pool_request)


@pytest.fixture(scope="module")
def tf_avg(oracle):
    return oracles.Batch(oracle, AVG_CASES, avg_request)


@pytest.fixture(scope="module")
def tf_lrn(oracle):
    return oracles.Batch(oracle, LRN_CASES, lrn_request)


def check_conv_grads(got, expected, case):
    for name, value in zip(("dx", "dw", "db"), got):
        assert value.dtype == case.dtype, f"{name} dtype {value.dtype}"
        assert_close(value, expected[name], case.dtype, case.terms[name], name)


# ------------------------------------------------------------------ conv2d


@pytest.mark.tf
@pytest.mark.parametrize("case", CONV_CASES, ids=ids(CONV_CASES))
def test_conv2d(impl, case, tf_conv):
    x, w, b, _ = case.inputs()
    expected = tf_conv[case]
    y = impl.conv2d(x, w, b, **case.kwargs())
    assert y.dtype == case.dtype
    assert_close(y, expected["y"], case.dtype, case.terms["y"], "y")


@pytest.mark.tf
@pytest.mark.parametrize("case", CONV_CASES, ids=ids(CONV_CASES))
def test_conv2d_backward(impl, case, tf_conv):
    x, w, _, dy = case.inputs()
    expected = tf_conv[case]
    check_conv_grads(impl.conv2d_backward(dy, x, w, **case.kwargs()), expected, case)


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("case", SEED_SHAPE_CASES, ids=ids(SEED_SHAPE_CASES))
def test_conv2d_seed_shapes(impl, case, oracle):
    """The seeds' shape tests and the benchmark shape, forward and backward."""
    x, w, b, dy = case.inputs()
    expected = oracle.run_one(oracles.conv2d(x, w, b, dy, **case.kwargs()))
    y = impl.conv2d(x, w, b, **case.kwargs())
    assert y.dtype == case.dtype
    assert_close(y, expected["y"], case.dtype, case.terms["y"], "y")
    check_conv_grads(impl.conv2d_backward(dy, x, w, **case.kwargs()), expected, case)


# -------------------------------------------------------- conv2d_transpose


@pytest.mark.tf
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=ids(TRANSPOSE_CASES))
def test_conv2d_transpose(impl, case, tf_transpose):
    x, w, b, _ = case.inputs()
    expected = tf_transpose[case]
    y = impl.conv2d_transpose(x, w, b, **case.kwargs())
    assert y.dtype == case.dtype
    assert_close(y, expected["y"], case.dtype, case.terms["y"], "y")


@pytest.mark.tf
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=ids(TRANSPOSE_CASES))
def test_conv2d_transpose_backward(impl, case, tf_transpose):
    x, w, _, dy = case.inputs()
    expected = tf_transpose[case]
    check_conv_grads(impl.conv2d_transpose_backward(dy, x, w, **case.kwargs()), expected, case)


# ------------------------------------------------------------- max pooling


@pytest.mark.tf
@pytest.mark.parametrize("case", POOL_CASES, ids=ids(POOL_CASES))
def test_max_pool2d(impl, case, tf_pool):
    x, _ = case.inputs()
    expected = tf_pool[case]
    y = impl.max_pool2d(x, case.pool_size, **case.kwargs())
    assert y.dtype == case.dtype
    np.testing.assert_array_equal(y, expected["y"])


@pytest.mark.tf
@pytest.mark.parametrize("case", ARGMAX_CASES, ids=ids(ARGMAX_CASES))
def test_max_pool2d_argmax(impl, case, tf_pool):
    x, _ = case.inputs()
    expected = tf_pool[case]
    y, argmax = impl.max_pool2d_argmax(x, case.pool_size, **case.kwargs())
    assert argmax.dtype == np.int64
    np.testing.assert_array_equal(y, expected["y"])
    np.testing.assert_array_equal(argmax, expected["argmax"])


@pytest.mark.tf
@pytest.mark.parametrize("case", POOL_CASES, ids=ids(POOL_CASES))
def test_max_pool2d_backward(impl, case, tf_pool):
    x, dy = case.inputs()
    expected = tf_pool[case]
    _, argmax = impl.max_pool2d_argmax(x, case.pool_size, **case.kwargs())
    dx = impl.max_pool2d_backward(dy, argmax, x.shape, data_format=case.data_format)
    assert dx.dtype == case.dtype
    assert_close(dx, expected["dx"], case.dtype, case.overlap, "dx")


# ------------------------------------------------------------- avg pooling


@pytest.mark.tf
@pytest.mark.parametrize("case", AVG_CASES, ids=ids(AVG_CASES))
def test_avg_pool2d(impl, case, tf_avg):
    """TensorFlow's avg_pool never counts padding: count_include_pad=False, also with SAME."""
    x, _ = case.inputs()
    y = impl.avg_pool2d(x, case.pool_size, **case.kwargs())
    assert y.dtype == case.dtype
    assert_close(y, tf_avg[case]["y"], case.dtype, case.window, "y")


@pytest.mark.tf
@pytest.mark.parametrize("case", AVG_CASES, ids=ids(AVG_CASES))
def test_avg_pool2d_backward(impl, case, tf_avg):
    x, dy = case.inputs()
    dx = impl.avg_pool2d_backward(dy, x.shape, case.pool_size, **case.kwargs())
    assert dx.dtype == case.dtype
    assert_close(dx, tf_avg[case]["dx"], case.dtype, case.window, "dx")


# --------------------------------------------------------------------- LRN


@pytest.mark.tf
@pytest.mark.parametrize("case", LRN_CASES, ids=ids(LRN_CASES))
def test_lrn(impl, case, tf_lrn):
    x, _ = case.inputs()
    expected = tf_lrn[case]
    y = impl.lrn(x, **case.kwargs())
    assert y.dtype == case.dtype
    assert_close(y, expected["y"], np.float32, case.window, "y")


@pytest.mark.tf
@pytest.mark.parametrize("case", LRN_CASES, ids=ids(LRN_CASES))
def test_lrn_backward(impl, case, tf_lrn):
    x, dy = case.inputs()
    expected = tf_lrn[case]
    dx = impl.lrn_backward(dy, x, **case.kwargs())
    assert dx.dtype == case.dtype
    assert_close(dx, expected["dx"], np.float32, 2 * case.window, "dx")


# -------------------------------------------------------- the oracle itself


@pytest.mark.tf
def test_oracle_reports_tensorflow_errors_per_case(oracle):
    """A case TensorFlow rejects raises OracleError; the worker keeps serving."""
    x = np.ones((1, 4, 4, 2), np.float32)
    good = oracles.conv2d(x, np.ones((3, 3, 2, 1), np.float32), None, np.ones((1, 2, 2, 1), np.float32))
    bad = oracles.conv2d(x, np.ones((3, 3, 5, 1), np.float32), None, np.ones((1, 2, 2, 1), np.float32))
    ok, failed = oracle.run([good, bad])
    np.testing.assert_array_equal(ok["y"], np.full((1, 2, 2, 1), 18.0))
    assert isinstance(failed, oracles.OracleError)
    assert "Traceback" in str(failed)
    assert oracle.versions["tensorflow"]
    np.testing.assert_array_equal(oracle.run_one(good)["y"], ok["y"])


FAKE_WORKERS = {
    "exits": "raise SystemExit(3)",
    "hangs": "import time; time.sleep(60)",
}


def _fake_worker(tmp_path, source):
    path = tmp_path / "worker.py"
    path.write_text(source)
    return str(path)


def test_oracle_worker_that_dies_raises(tmp_path):
    oracle = oracles.TFOracle(worker=_fake_worker(tmp_path, FAKE_WORKERS["exits"]))
    with pytest.raises(oracles.OracleError, match="died"):
        oracle.run([])
    with pytest.raises(oracles.OracleError, match="died"):  # not started again
        oracle.run([])


def test_oracle_worker_that_hangs_times_out(tmp_path):
    oracle = oracles.TFOracle(worker=_fake_worker(tmp_path, FAKE_WORKERS["hangs"]), start_timeout=1.0)
    with pytest.raises(oracles.OracleError, match="timed out"):
        oracle.run([])
    assert oracle._proc is None  # killed, not left running


def test_oracle_restarts_a_worker_that_died_mid_request(tmp_path):
    """Crash while answering: that request fails, the next one gets a new worker."""
    starts = tmp_path / "starts"
    source = (
        "import os, sys\nsys.path.insert(0, {tests!r})\nimport tf_worker\n"
        "open({starts!r}, 'a').write('x')\n"
        "tf_worker._write_message(sys.stdout.buffer, {{'ok': True}})\n"
        "tf_worker._read_message(sys.stdin.buffer)\nos._exit(7)\n"
    ).format(tests=os.path.dirname(oracles.WORKER), starts=str(starts))
    oracle = oracles.TFOracle(worker=_fake_worker(tmp_path, source))
    for attempt in (1, 2):
        with pytest.raises(oracles.OracleError, match=r"died answering 0 case\(s\) \(exit code 7\)"):
            oracle.run([])
        assert starts.read_text() == "x" * attempt


def test_oracle_without_tensorflow_fails_every_time(tmp_path):
    """A failed tensorflow import is reported (not skipped) and not retried."""
    source = (
        "import sys\nsys.path.insert(0, {tests!r})\nimport tf_worker\n"
        "sys.modules['tensorflow'] = None  # makes 'import tensorflow' raise ImportError\n"
        "sys.exit(tf_worker.main())\n"
    ).format(tests=os.path.dirname(oracles.WORKER))
    oracle = oracles.TFOracle(worker=_fake_worker(tmp_path, source))
    for _ in range(2):
        with pytest.raises(oracles.OracleError, match="tensorflow is not importable"):
            oracle.run([])
    assert oracle._proc is None


def test_pytest_process_never_imports_tensorflow():
    assert "tensorflow" not in sys.modules
