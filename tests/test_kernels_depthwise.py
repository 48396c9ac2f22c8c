"""The depthwise kernels and the grouped driver against the NumPy reference, through the public API.

A hypothesis property test draws depthwise (``groups = C_in``, channel
multiplier 1-3) and grouped geometries (strides up to the kernel extent,
dilation, asymmetric padding, padding beyond the input, batch 0) with
small-integer data, so every sum is exact in float32: the kernels must
equal the reference bit for bit, forward, both gradients and the transposed
conv in both directions. Then: the same call twice is bit-identical, and so
are 1 and 2 threads for the depthwise kernels (their filter gradient sums
per-part partials whose number depends on the shape only); inputs are not
modified; read-only, strided and Fortran inputs.

Small shapes only: ``make test-boundscheck`` runs this file with Numba's
bounds checks on.
"""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numbaconv as fast
import numbaconv.reference as ref

FORMATS = ("NHWC", "NCHW")


def to_format(a, fmt):
    return a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def filters_to_format(w, fmt):
    return w if fmt == "NHWC" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


@st.composite
def geometries(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sh = draw(st.integers(1, dh * (kh - 1) + 1))
    sw = draw(st.integers(1, dw * (kw - 1) + 1))
    pt, pb, pl, pr = (draw(st.integers(0, 4)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pt - pb), 9))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pl - pr), 9))
    c_in = draw(st.integers(1, 6))
    depthwise = draw(st.booleans()) or c_in % 2
    groups = c_in if depthwise else 2
    per_group_out = draw(st.integers(1, 3))  # the channel multiplier when depthwise
    return dict(
        n=draw(st.integers(0, 3)), h=h, w=w, c_in=c_in, c_out=groups * per_group_out, groups=groups,
        k=(kh, kw), stride=(sh, sw), padding=((pt, pb), (pl, pr)), dilation=(dh, dw),
        fmt=draw(st.sampled_from(FORMATS)), dtype=draw(st.sampled_from([np.float32, np.float64])),
        seed=draw(st.integers(0, 2**16)),
    )


@given(geometries())
def test_property_exact_on_integer_data(g):
    rng = np.random.default_rng(g["seed"])
    dtype, fmt, groups = g["dtype"], g["fmt"], g["groups"]
    kh, kw = g["k"]
    x = to_format(rng.integers(-3, 4, (g["n"], g["h"], g["w"], g["c_in"])).astype(dtype), fmt)
    w = filters_to_format(rng.integers(-3, 4, (kh, kw, g["c_in"] // groups, g["c_out"])).astype(dtype), fmt)
    b = rng.integers(-3, 4, g["c_out"]).astype(dtype)
    geo = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"], groups=groups, data_format=fmt)
    copies = [x.copy(), w.copy(), b.copy()]

    y = fast.conv2d(x, w, b, **geo)
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_array_equal(y, ref.conv2d(x, w, b, **geo))
    dy = rng.integers(-3, 4, y.shape).astype(dtype)
    for got, want in zip(fast.conv2d_backward(dy, x, w, **geo), ref.conv2d_backward(dy, x, w, **geo)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)

    # The transposed conv maps y's plane back onto x's (output_padding < stride).
    (pt, pb), (pl, pr) = g["padding"]
    (sh, sw), (dh, dw) = g["stride"], g["dilation"]
    op = ((g["h"] + pt + pb - dh * (kh - 1) - 1) % sh, (g["w"] + pl + pr - dw * (kw - 1) - 1) % sw)
    tgeo = dict(geo, output_padding=op)
    bt = rng.integers(-3, 4, g["c_in"]).astype(dtype)
    t = fast.conv2d_transpose(dy, w, bt, **tgeo)
    assert t.shape == x.shape
    np.testing.assert_array_equal(t, ref.conv2d_transpose(dy, w, bt, **tgeo))
    for got, want in zip(fast.conv2d_transpose_backward(x, dy, w, **tgeo),
                         ref.conv2d_transpose_backward(x, dy, w, **tgeo)):
        np.testing.assert_array_equal(got, want)
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)


def depthwise_results(n=3, dtype=np.float32, multiplier=1, seed=2):
    """Every depthwise path on a shape where threads split the work (stride < kernel)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 13, 12, 5)).astype(dtype)
    w = rng.standard_normal((3, 4, 1, 5 * multiplier)).astype(dtype)
    b = rng.standard_normal(5 * multiplier).astype(dtype)
    geo = dict(stride=(2, 1), padding=((1, 2), (2, 1)), dilation=(1, 2), groups=5)
    y = fast.conv2d(x, w, b, **geo)
    dy = rng.standard_normal(y.shape).astype(dtype)
    return [y, *fast.conv2d_backward(dy, x, w, **geo),
            fast.conv2d_transpose(dy, w, b[:5], output_padding=(1, 0), **geo)]


@pytest.mark.parametrize("multiplier", [1, 3])
def test_same_call_twice_is_bit_identical(multiplier):
    for first, second in zip(depthwise_results(multiplier=multiplier),
                             depthwise_results(multiplier=multiplier)):
        assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("multiplier", [1, 2])
def test_one_and_two_threads_are_bit_identical(thread_counts, multiplier):
    """y, dx, dw and the transpose; db comes from the dense convolution's bias core (its partial
    count follows the thread count), so it is compared within float32 rounding only."""
    results = {}
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results[threads] = depthwise_results(n=4, multiplier=multiplier)
    (y1, dx1, dw1, db1, t1), (y2, dx2, dw2, db2, t2) = results.values()
    for one, two in ((y1, y2), (dx1, dx2), (dw1, dw2), (t1, t2)):
        assert one.tobytes() == two.tobytes()
    np.testing.assert_allclose(db1, db2, rtol=1e-5)


def test_depthwise_matches_reference_in_float32():
    """Random float32 data: the kernels' sums stay within float32 rounding of the float64 reference."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 11, 10, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 32)).astype(np.float32)
    dy = rng.standard_normal((3, 6, 5, 32)).astype(np.float32)
    geo = dict(stride=2, padding="SAME", groups=16)
    f64 = [a.astype(np.float64) for a in (dy, x, w)]
    np.testing.assert_allclose(fast.conv2d(x, w, **geo), ref.conv2d(*f64[1:], **geo), rtol=1e-5, atol=1e-5)
    for got, want in zip(fast.conv2d_backward(dy, x, w, **geo), ref.conv2d_backward(*f64, **geo)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_read_only_strided_and_fortran_inputs():
    rng = np.random.default_rng(11)
    big = rng.standard_normal((2, 14, 9, 8)).astype(np.float32)
    x = big[:, ::2, :, 1::2]  # a strided view with 4 channels
    w = rng.standard_normal((3, 3, 1, 8)).astype(np.float32)
    w.flags.writeable = False
    wg = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    x64 = x.astype(np.float64)
    for xi in (x, np.asfortranarray(x)):
        np.testing.assert_allclose(fast.conv2d(xi, w, padding=1, groups=4),
                                   ref.conv2d(x64, w.astype(np.float64), padding=1, groups=4), atol=1e-5)
        np.testing.assert_allclose(fast.conv2d(xi, wg, padding=1, groups=2),
                                   ref.conv2d(x64, wg.astype(np.float64), padding=1, groups=2), atol=1e-5)
    dy = rng.standard_normal((2, 7, 9, 8)).astype(np.float32)
    dy.flags.writeable = False
    for got, want in zip(fast.conv2d_backward(dy, x, w, padding=1, groups=4),
                         ref.conv2d_backward(dy.astype(np.float64), x64, w.astype(np.float64), padding=1,
                                             groups=4)):
        np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("groups, c_out", [(4, 8), (2, 6)])
def test_empty_batch(groups, c_out):
    x = np.zeros((0, 6, 5, 4), np.float32)
    w = np.ones((3, 2, 4 // groups, c_out), np.float32)
    y = fast.conv2d(x, w, np.ones(c_out, np.float32), stride=2, padding="SAME", groups=groups)
    assert y.shape == (0, 3, 3, c_out)
    dx, dw, db = fast.conv2d_backward(y, x, w, stride=2, padding="SAME", groups=groups)
    assert dx.shape == x.shape and dw.shape == w.shape and not dw.any() and not db.any()
    t = fast.conv2d_transpose(y, w, np.ones(4, np.float32), stride=2, padding=1, output_padding=1, groups=groups)
    assert t.shape[0] == 0 and t.shape[3] == 4
