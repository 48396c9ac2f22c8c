"""The Numba kernels of the pooling family beyond the seeds against the NumPy reference.

Max pooling with dilation and ceil_mode, and max_unpool2d, are compared
exactly (selection, no rounding), on tie-heavy inputs and on inputs full of
NaN and -inf. Average pooling (fixed windows with ceil_mode and
count_include_pad, and adaptive bins) and its backward are compared at a
float tolerance: the reference multiplies by pooling matrices, the kernels
sum and then scale. Hypothesis draws the geometries; also batch 0 and zero
channels, bit-identical repeats, and 1 vs 2 threads. ``make
test-boundscheck`` runs this file with ``NUMBA_BOUNDSCHECK=1``.
"""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numbaconv as fast
import numbaconv.reference as ref
from test_kernels_pool_lrn import (
    DTYPES, FORMATS, KINDS, assert_bit_identical, assert_same_pool_backward, in_format, restore_threads,  # noqa: F401
)


def windows_reach_input(size, k, stride, dilation, before, after, ceil_mode):
    """The contract's output size and whether every window holds an input cell (written out here)."""
    span = size + before + after - dilation * (k - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    ok = out >= 1 and all(any(0 <= o * stride - before + i * dilation < size for i in range(k))
                          for o in range(out))
    return out, ok


@st.composite
def pool_problems(draw, with_dilation=True):
    """(shape, pool, stride, padding, dilation, ceil_mode) valid under the contract."""
    while True:
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if with_dilation else (1, 1)
        pt, pb = draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))
        pl, pr = draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1))
        ceil_mode = draw(st.booleans())
        oh, ok_h = windows_reach_input(h, kh, sh, dh, pt, pb, ceil_mode)
        ow, ok_w = windows_reach_input(w, kw, sw, dw, pl, pr, ceil_mode)
        if ok_h and ok_w:
            break
    shape = (draw(st.integers(0, 3)), h, w, draw(st.integers(1, 9)))
    return shape, (kh, kw), (sh, sw), ((pt, pb), (pl, pr)), (dh, dw), ceil_mode


def assert_same_max_pool(x, fmt, pool, **kw):
    y, argmax = fast.max_pool2d_argmax(x, pool, data_format=fmt, **kw)
    y_ref, argmax_ref = ref.max_pool2d_argmax(x, pool, data_format=fmt, **kw)
    assert y.dtype == y_ref.dtype and y.shape == y_ref.shape
    np.testing.assert_array_equal(y, y_ref)  # NaN == NaN here
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_array_equal(fast.max_pool2d(x, pool, data_format=fmt, **kw), y_ref)
    return y, argmax


def assert_same_unpool(y, argmax, x_shape, fmt):
    out = fast.max_unpool2d(y, argmax, x_shape, data_format=fmt)
    out_ref = ref.max_unpool2d(y, argmax, x_shape, data_format=fmt)
    assert out.shape == tuple(x_shape) and out.dtype == out_ref.dtype and out.flags.c_contiguous
    np.testing.assert_array_equal(out, out_ref)
    return out


def assert_close_avg(actual, expected, terms):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert actual.flags.c_contiguous
    eps = np.finfo(actual.dtype).eps
    scale = float(np.abs(expected).max(initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=8 * eps * max(terms, 1) * max(scale, 1.0))


def assert_same_avg(x, dy, fmt, pool, **kw):
    y = fast.avg_pool2d(x, pool, data_format=fmt, **kw)
    assert_close_avg(y, ref.avg_pool2d(x, pool, data_format=fmt, **kw), np.prod(pool))
    dx = fast.avg_pool2d_backward(dy, x.shape, pool, data_format=fmt, **kw)
    assert_close_avg(dx, ref.avg_pool2d_backward(dy, x.shape, pool, data_format=fmt, **kw), np.prod(pool) * 4)
    return y, dx


def assert_same_adaptive(x, dy, fmt, output_size):
    y = fast.adaptive_avg_pool2d(x, output_size, data_format=fmt)
    assert_close_avg(y, ref.adaptive_avg_pool2d(x, output_size, data_format=fmt), x.size)
    dx = fast.adaptive_avg_pool2d_backward(dy, x.shape, data_format=fmt)
    assert_close_avg(dx, ref.adaptive_avg_pool2d_backward(dy, x.shape, data_format=fmt), 4)
    return y, dx


def nhwc_plane(shape, fmt):
    return shape[1:3] if fmt == "NHWC" else shape[2:]


# ------------------------------------------------------------ property tests


@given(problem=pool_problems(), fmt=st.sampled_from(FORMATS), dtype_id=st.sampled_from(list(DTYPES)),
       kind=st.sampled_from(list(KINDS)), seed=st.integers(0, 2 ** 16))
def test_max_pool_dilation_ceil_mode_property(problem, fmt, dtype_id, kind, seed):
    shape, pool, stride, padding, dilation, ceil_mode = problem
    rng = np.random.default_rng(seed)
    x = in_format(KINDS[kind](rng, shape, DTYPES[dtype_id]), fmt)
    y, argmax = assert_same_max_pool(x, fmt, pool, stride=stride, padding=padding, dilation=dilation,
                                     ceil_mode=ceil_mode)
    dy = rng.standard_normal(y.shape).astype(DTYPES[dtype_id])
    assert_same_pool_backward(dy, argmax, x.shape, fmt)
    assert_same_unpool(y, argmax, x.shape, fmt)


@given(problem=pool_problems(with_dilation=False), fmt=st.sampled_from(FORMATS),
       dtype_id=st.sampled_from(list(DTYPES)), count_include_pad=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_avg_pool_property(problem, fmt, dtype_id, count_include_pad, seed):
    shape, pool, stride, padding, _, ceil_mode = problem
    rng = np.random.default_rng(seed)
    dtype = DTYPES[dtype_id]
    x = in_format(rng.standard_normal(shape).astype(dtype), fmt)
    kw = dict(stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    y = ref.avg_pool2d(x, pool, data_format=fmt, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_same_avg(x, dy, fmt, pool, **kw)


@given(n=st.integers(0, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 9),
       output_size=st.tuples(st.integers(1, 11), st.integers(1, 11)), fmt=st.sampled_from(FORMATS),
       dtype_id=st.sampled_from(list(DTYPES)), seed=st.integers(0, 2 ** 16))
def test_adaptive_avg_pool_property(n, h, w, c, output_size, fmt, dtype_id, seed):
    rng = np.random.default_rng(seed)
    dtype = DTYPES[dtype_id]
    x = in_format(rng.standard_normal((n, h, w, c)).astype(dtype), fmt)
    dy = in_format(rng.standard_normal((n, *output_size, c)).astype(dtype), fmt)
    assert_same_adaptive(x, dy, fmt, output_size)


# -------------------------------------------------------------- hand cases


@pytest.mark.parametrize("fmt", FORMATS)
def test_unpool_last_of_shared_positions_wins(fmt):
    # Overlapping 3x3/1 windows on constant input all pick their first
    # position; give each its own value to see which lands.
    rng = np.random.default_rng(0)
    x = in_format(np.zeros((2, 5, 5, 3), np.float32), fmt)
    y, argmax = fast.max_pool2d_argmax(x, 3, stride=1, data_format=fmt)
    values = in_format(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), fmt)
    out = assert_same_unpool(values, argmax, x.shape, fmt)
    out_nhwc = out if fmt == "NHWC" else out.transpose(0, 2, 3, 1)
    values_nhwc = values if fmt == "NHWC" else values.transpose(0, 2, 3, 1)
    # Window (i, j) picks cell (i, j): no sharing; now point every entry at cell 7.
    argmax_shared = np.full(argmax.shape, 7, np.int64)
    out = assert_same_unpool(values, argmax_shared, x.shape, fmt)
    out_nhwc = out if fmt == "NHWC" else out.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(out_nhwc[:, 1, 2, :], values_nhwc[:, 2, 2, :])  # the last, row-major
    assert np.count_nonzero(out_nhwc) == np.count_nonzero(values_nhwc[:, 2, 2, :])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(0, 5, 6, 3), (2, 5, 6, 0)], ids=["batch0", "channels0"])
def test_empty_batch_and_channels(shape, fmt):
    x = in_format(np.ones(shape, np.float32), fmt)
    y, argmax = assert_same_max_pool(x, fmt, 2, stride=2, dilation=2, ceil_mode=True)
    assert_same_unpool(y, argmax, x.shape, fmt)
    kw = dict(stride=2, ceil_mode=True, padding=1)
    y = ref.avg_pool2d(x, 2, data_format=fmt, **kw)
    assert y.shape[0] == shape[0]
    assert_same_avg(x, y, fmt, 2, **kw)
    out_size = (2, 2)
    dy = in_format(np.ones((shape[0], *out_size, shape[3]), np.float32), fmt)
    assert_same_adaptive(x, dy, fmt, out_size)


def test_avg_pool_nan_and_inf_propagate_to_their_windows_only():
    x = np.zeros((1, 4, 4, 2))
    x[0, 0, 0, 0], x[0, 3, 3, 1] = np.nan, np.inf
    y = fast.avg_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and np.isinf(y[0, 1, 1, 1])
    assert np.count_nonzero(~np.isfinite(y)) == 2
    np.testing.assert_array_equal(y, ref.avg_pool2d(x, 2))


# ------------------------------------------------ repeatability and threads


def run_all_ops(fmt, dtype):
    rng = np.random.default_rng(8)
    x = in_format(rng.standard_normal((3, 11, 10, 21)).astype(dtype), fmt)
    y, argmax = fast.max_pool2d_argmax(x, 3, stride=2, padding=1, dilation=2, ceil_mode=True,
                                       data_format=fmt)
    avg = fast.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True,
                          data_format=fmt)
    adaptive = fast.adaptive_avg_pool2d(x, (4, 3), data_format=fmt)
    return (
        y, argmax, fast.max_unpool2d(y, argmax, x.shape, data_format=fmt), avg,
        fast.avg_pool2d_backward(avg, x.shape, 3, stride=2, padding=1, ceil_mode=True,
                                 count_include_pad=True, data_format=fmt),
        adaptive, fast.adaptive_avg_pool2d_backward(adaptive, x.shape, data_format=fmt),
    )


@pytest.mark.parametrize("dtype_id", list(DTYPES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_repeated_calls_are_bit_identical(fmt, dtype_id):
    assert_bit_identical(run_all_ops(fmt, DTYPES[dtype_id]), run_all_ops(fmt, DTYPES[dtype_id]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_and_two_threads_give_identical_results(fmt, restore_threads):  # noqa: F811
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba was started with a single thread (NUMBA_NUM_THREADS=1)")
    numba.set_num_threads(1)
    serial = run_all_ops(fmt, np.float32)
    numba.set_num_threads(2)
    assert_bit_identical(serial, run_all_ops(fmt, np.float32))


# ------------------------------------------------------------ large shapes


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_benchmark_shapes_match_reference(fmt):
    """The benchmark's shapes: avg pool on (128, 28, 28, 16), global pooling on (128, 7, 7, 512)."""
    rng = np.random.default_rng(128)
    x = in_format(rng.standard_normal((128, 28, 28, 16)).astype(np.float32), fmt)
    for pool, kw in ((2, {}), (3, dict(stride=2, padding=1))):
        y = ref.avg_pool2d(x, pool, data_format=fmt, **kw)
        assert_same_avg(x, rng.standard_normal(y.shape).astype(np.float32), fmt, pool, **kw)
    x = in_format(rng.standard_normal((128, 7, 7, 512)).astype(np.float32), fmt)
    dy = in_format(rng.standard_normal((128, 1, 1, 512)).astype(np.float32), fmt)
    assert_same_adaptive(x, dy, fmt, 1)
