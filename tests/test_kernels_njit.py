"""numbaconv.kernels called from users' own @njit code, against the public API.

Two user-style programs per family call every kernel: one serial ``@njit``
function calling the self-parallel flavour, and one ``@njit(parallel=True)``
function with a ``prange`` over the batch calling the ``*_serial`` flavour on
one sample at a time (gradients of the filters and the bias summed over the
samples afterwards). Both run on a grid of geometries (both conv strategies,
stride beyond the kernel, asymmetric padding, dilation, 1x1, batch 1, odd
sizes, output padding; pooling with dilation, ceil_mode and
count_include_pad) and must give the public API's results: to rounding for
the self-parallel flavour (the same kernels and plan, but compiled again
inside the user's function, where the compiler may order a sum's roundings
otherwise: float64 outputs a last bit apart on one CI machine, none on
others), to float tolerance for the per-sample sums. Results that involve no
arithmetic (max pooling, argmax, unpooling, im2col) are compared exactly. The prange programs run in float64 only: each
flavour and dtype is a compilation of its own, and the suite's time is
mostly compile time.

Also: no kernel allocates its result (the caller's buffers are written, and
nothing else), the serial twins contain no parallel region, the
``output_shape_*`` helpers agree with the public API, importing numbaconv
does not import ``numbaconv.kernels``, importing that compiles nothing, and a
cached user function calling the kernels runs in a new process (numba#9938).
"""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from numba import prange

import numbaconv as nc
from numbaconv import kernels as K

DTYPES = (np.float32, np.float64)

# (n, h, w, c_in, c_out, kh, kw, (sh, sw), (top, bottom, left, right), (dh, dw), (oph, opw))
CONV_CASES = [
    (2, 7, 8, 3, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), (0, 0)),  # planes
    (3, 9, 7, 2, 4, 3, 2, (2, 3), (1, 2, 0, 2), (1, 1), (1, 2)),  # asymmetric, output padding
    (2, 8, 8, 16, 24, 3, 3, (2, 2), (1, 0, 1, 0), (1, 1), (1, 0)),  # patch GEMM
    (1, 10, 9, 8, 32, 3, 3, (1, 2), (2, 2, 2, 1), (2, 1), (0, 1)),  # patch GEMM, dilation, batch 1
    (2, 6, 6, 4, 3, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), (0, 0)),  # 1x1
    (2, 11, 9, 3, 4, 2, 2, (3, 4), (0, 1, 1, 0), (1, 1), (2, 0)),  # stride beyond the kernel
    (1, 5, 7, 70, 17, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), (0, 0)),  # patches, odd C_out, padding > 1
    (2, 16, 18, 24, 24, 3, 3, (1, 1), (1, 1, 0, 2), (1, 1), (0, 0)),  # Winograd (forward, both gradients)
    (2, 16, 16, 64, 32, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), (0, 0)),  # 1x1 filter gradient as dw^T
    (2, 31, 32, 64, 32, 1, 1, (2, 2), (0, 1, 0, 0), (1, 1), (0, 1)),  # the same, strided
    (40, 3, 1, 32, 16, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), (0, 0)),  # 1x1 on small planes: merged images
    (2, 5, 6, 200, 3, 3, 3, (1, 2), (1, 1, 2, 0), (2, 1), (0, 1)),  # dots: few channels, long kernel rows
    (2, 4, 4, 3, 256, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), (0, 0)),  # the input gradient by dots
    (3, 4, 4, 160, 1, 4, 4, (1, 1), (0, 0, 0, 0), (1, 1), (0, 0)),  # 4x4 into 1: all of it by dots
]
# (pool_h, pool_w, (sh, sw), (top, bottom, left, right), (dh, dw), ceil_mode, count_include_pad)
POOL_CASES = [
    (2, 2, (2, 2), (0, 0, 0, 0), (1, 1), False, False),
    (3, 2, (2, 1), (1, 1, 0, 1), (1, 1), True, True),
    (3, 3, (1, 1), (1, 1, 1, 1), (1, 1), False, True),
    (2, 3, (3, 2), (1, 0, 1, 1), (2, 1), True, False),  # dilation (max pool only)
]
ADAPTIVE_OUT = [(1, 1), (3, 4), (5, 4)]


def conv_case_id(case):
    n, h, w, ci, co, kh, kw, s, p, d, op = case
    return f"{n}x{h}x{w}x{ci}-{kh}x{kw}x{co}-s{s[0]}{s[1]}-p{''.join(map(str, p))}-d{d[0]}{d[1]}"


def pool_case_id(case):
    kh, kw, s, p, d, ceil, cip = case
    return f"{kh}x{kw}-s{s[0]}{s[1]}-p{''.join(map(str, p))}-d{d[0]}{d[1]}-c{int(ceil)}{int(cip)}"


def tolerance(dtype, length):
    return (1e-5 if dtype == np.float32 else 1e-12) * max(length, 1)


ROUNDING_ULPS = 64  # of the largest result: a wrong tap or index is off by O(1) of it


def assert_equal_to_rounding(got, want):
    """got == want but for the last bits of float results (integer results: exactly).

    The same kernels compiled into another function may round sums in another
    order (the compiler re-optimizes the inlined code, fastmath ``reassoc`` and
    ``contract``); see the module docstring.
    """
    assert got.shape == want.shape and got.dtype == want.dtype
    if not np.issubdtype(want.dtype, np.floating):
        np.testing.assert_array_equal(got, want)
        return
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])  # the same NaN and inf
    scale = float(np.abs(want[finite]).max(initial=1.0))
    np.testing.assert_allclose(got[finite], want[finite], rtol=0,
                               atol=ROUNDING_ULPS * np.finfo(want.dtype).eps * scale)


# ------------------------------------------------------------ user programs


@numba.njit
def user_conv(x, w, b, bt, dy, xt, sh, sw, pt, pb, pl, pr, dh, dw, oph, opw):
    """A user's serial function: every conv kernel, its own allocations from the shape helpers."""
    y = np.empty(K.output_shape_conv2d(x.shape, w.shape, sh, sw, pt, pb, pl, pr, dh, dw), x.dtype)
    K.conv2d(x, w, b, y, sh, sw, pt, pl, dh, dw)
    dx, dw_, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    K.conv2d_backward_input(dy, w, dx, sh, sw, pt, pl, dh, dw)
    K.conv2d_backward_filter(dy, x, dw_, sh, sw, pt, pl, dh, dw)
    K.conv2d_backward_bias(dy, db)
    t_shape = K.output_shape_conv2d_transpose(xt.shape, w.shape, sh, sw, pt, pb, pl, pr, dh, dw,
                                              oph, opw)
    t = np.empty(t_shape, x.dtype)
    K.conv2d_transpose(xt, w, bt, t, sh, sw, pt, pl, dh, dw)
    cols = np.empty(K.output_shape_im2col(x.shape, w.shape[0], w.shape[1], sh, sw, pt, pb, pl, pr,
                                          dh, dw), x.dtype)
    K.im2col(x, cols, w.shape[0], w.shape[1], sh, sw, pt, pb, pl, pr, dh, dw)
    back = np.empty_like(x)
    K.col2im(cols, back, w.shape[0], w.shape[1], sh, sw, pt, pb, pl, pr, dh, dw)
    return y, dx, dw_, db, t, cols, back


@numba.njit(parallel=True)
def user_conv_prange(x, w, b, bt, dy, xt, sh, sw, pt, pb, pl, pr, dh, dw, oph, opw):
    """A user's parallel function: prange over the batch, the serial kernels on one sample each."""
    n = x.shape[0]
    y = np.empty(K.output_shape_conv2d(x.shape, w.shape, sh, sw, pt, pb, pl, pr, dh, dw), x.dtype)
    dx = np.empty_like(x)
    dw_parts = np.empty((n,) + w.shape, x.dtype)
    db_parts = np.empty((n, b.shape[0]), x.dtype)
    t = np.empty(K.output_shape_conv2d_transpose(xt.shape, w.shape, sh, sw, pt, pb, pl, pr, dh, dw,
                                                 oph, opw), x.dtype)
    cols_shape = K.output_shape_im2col(x[:1].shape, w.shape[0], w.shape[1], sh, sw, pt, pb, pl, pr,
                                       dh, dw)
    cols = np.empty((n * cols_shape[0], cols_shape[1]), x.dtype)
    back = np.empty_like(x)
    rows = cols_shape[0]
    for i in prange(n):
        K.conv2d_serial(x[i:i + 1], w, b, y[i:i + 1], sh, sw, pt, pl, dh, dw)
        K.conv2d_backward_input_serial(dy[i:i + 1], w, dx[i:i + 1], sh, sw, pt, pl, dh, dw)
        K.conv2d_backward_filter_serial(dy[i:i + 1], x[i:i + 1], dw_parts[i], sh, sw, pt, pl, dh, dw)
        K.conv2d_backward_bias_serial(dy[i:i + 1], db_parts[i])
        K.conv2d_transpose_serial(xt[i:i + 1], w, bt, t[i:i + 1], sh, sw, pt, pl, dh, dw)
        K.im2col_serial(x[i:i + 1], cols[i * rows:(i + 1) * rows], w.shape[0], w.shape[1], sh, sw,
                        pt, pb, pl, pr, dh, dw)
        K.col2im_serial(cols[i * rows:(i + 1) * rows], back[i:i + 1], w.shape[0], w.shape[1], sh, sw,
                        pt, pb, pl, pr, dh, dw)
    return y, dx, dw_parts.sum(axis=0), db_parts.sum(axis=0), t, cols, back


@numba.njit
def user_pool(x, dy_max, dy_avg, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, ceil_mode, cip):
    """Max pooling (dilated), its backward and unpool, average pooling and its backward."""
    shape = K.output_shape_pool2d(x.shape, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, ceil_mode)
    y, y2, argmax = np.empty(shape, x.dtype), np.empty(shape, x.dtype), np.empty(shape, np.int64)
    K.max_pool2d(x, y, kh, kw, sh, sw, pt, pl, dh, dw)
    K.max_pool2d_argmax(x, y2, argmax, kh, kw, sh, sw, pt, pl, dh, dw)
    dx, unpooled = np.empty_like(x), np.empty_like(x)
    K.max_pool2d_backward(dy_max, argmax, dx)
    K.max_unpool2d(y2, argmax, unpooled)
    avg = np.empty(K.output_shape_pool2d(x.shape, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1, ceil_mode),
                   x.dtype)
    K.avg_pool2d(x, avg, kh, kw, sh, sw, pt, pb, pl, pr, cip)
    davg = np.empty_like(x)
    K.avg_pool2d_backward(dy_avg, davg, kh, kw, sh, sw, pt, pb, pl, pr, cip)
    return y, y2, argmax, dx, unpooled, avg, davg


@numba.njit(parallel=True)
def user_pool_prange(x, dy_max, dy_avg, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, ceil_mode, cip):
    shape = K.output_shape_pool2d(x.shape, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, ceil_mode)
    y, y2, argmax = np.empty(shape, x.dtype), np.empty(shape, x.dtype), np.empty(shape, np.int64)
    dx, unpooled, davg = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    avg = np.empty(K.output_shape_pool2d(x.shape, kh, kw, sh, sw, pt, pb, pl, pr, 1, 1, ceil_mode),
                   x.dtype)
    for i in prange(x.shape[0]):
        s = slice(i, i + 1)
        K.max_pool2d_serial(x[s], y[s], kh, kw, sh, sw, pt, pl, dh, dw)
        K.max_pool2d_argmax_serial(x[s], y2[s], argmax[s], kh, kw, sh, sw, pt, pl, dh, dw)
        K.max_pool2d_backward_serial(dy_max[s], argmax[s], dx[s])
        K.max_unpool2d_serial(y2[s], argmax[s], unpooled[s])
        K.avg_pool2d_serial(x[s], avg[s], kh, kw, sh, sw, pt, pb, pl, pr, cip)
        K.avg_pool2d_backward_serial(dy_avg[s], davg[s], kh, kw, sh, sw, pt, pb, pl, pr, cip)
    return y, y2, argmax, dx, unpooled, avg, davg


@numba.njit
def user_adaptive_lrn(x, dy_adaptive, dy_lrn, radius, bias, alpha, beta):
    y = np.empty((x.shape[0], dy_adaptive.shape[1], dy_adaptive.shape[2], x.shape[3]), x.dtype)
    K.adaptive_avg_pool2d(x, y)
    dx = np.empty_like(x)
    K.adaptive_avg_pool2d_backward(dy_adaptive, dx)
    z, dz = np.empty_like(x), np.empty_like(x)
    K.lrn(x, z, radius, bias, alpha, beta)
    K.lrn_backward(dy_lrn, x, dz, radius, bias, alpha, beta)
    return y, dx, z, dz


@numba.njit(parallel=True)
def user_adaptive_lrn_prange(x, dy_adaptive, dy_lrn, radius, bias, alpha, beta):
    y = np.empty((x.shape[0], dy_adaptive.shape[1], dy_adaptive.shape[2], x.shape[3]), x.dtype)
    dx, z, dz = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    for i in prange(x.shape[0]):
        s = slice(i, i + 1)
        K.adaptive_avg_pool2d_serial(x[s], y[s])
        K.adaptive_avg_pool2d_backward_serial(dy_adaptive[s], dx[s])
        K.lrn_serial(x[s], z[s], radius, bias, alpha, beta)
        K.lrn_backward_serial(dy_lrn[s], x[s], dz[s], radius, bias, alpha, beta)
    return y, dx, z, dz


# ---------------------------------------------------------------- expected


def public_conv(x, w, b, bt, dy, xt, s, p, d, op):
    padding = ((p[0], p[1]), (p[2], p[3]))
    kw = dict(stride=s, padding=padding, dilation=d)
    y = nc.conv2d(x, w, b, **kw)
    dx, dw, db = nc.conv2d_backward(dy, x, w, **kw)
    tr = nc.conv2d_transpose(xt, w, bt, output_padding=op, **kw)
    cols = nc.im2col(x, w.shape[:2], **kw)
    back = nc.col2im(cols, x.shape, w.shape[:2], **kw)
    return y, dx, dw, db, tr, cols, back


def conv_inputs(case, dtype, rng):
    n, h, w_, ci, co, kh, kw, s, p, d, op = case
    x = rng.standard_normal((n, h, w_, ci)).astype(dtype)
    w = rng.standard_normal((kh, kw, ci, co)).astype(dtype)
    b, bt = rng.standard_normal(co).astype(dtype), rng.standard_normal(ci).astype(dtype)
    y_shape = nc.conv2d(x, w, stride=s, padding=((p[0], p[1]), (p[2], p[3])), dilation=d).shape
    dy = rng.standard_normal(y_shape).astype(dtype)
    xt = rng.standard_normal((n,) + y_shape[1:3] + (co,)).astype(dtype)
    return x, w, b, bt, dy, xt


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_case_id)
def test_conv_kernels_in_user_njit_code_equal_the_public_api(case, dtype, rng):
    n, h, w_, ci, co, kh, kw, s, p, d, op = case
    x, w, b, bt, dy, xt = conv_inputs(case, dtype, rng)
    expected = public_conv(x, w, b, bt, dy, xt, s, p, d, op)
    args = (x, w, b, bt, dy, xt, *s, *p, *d, *op)
    # The self-parallel flavour runs the public API's own kernels and plan.
    got = user_conv(*args)
    for out, want in zip(got, expected, strict=True):
        assert_equal_to_rounding(out, want)
    np.testing.assert_array_equal(got[5], expected[5])  # im2col: copies, exactly
    if dtype == np.float32:
        return  # (the serial flavour's per-dtype compile is left to float64: suite time)
    # Per sample, with the gradients of w and b summed over samples afterwards.
    for got, want in zip(user_conv_prange(*args), expected, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(dtype, n * h * w_ * ci * kh * kw))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("pool", POOL_CASES, ids=pool_case_id)
def test_pool_kernels_in_user_njit_code_equal_the_public_api(pool, dtype, rng):
    kh, kw, s, p, d, ceil_mode, cip = pool
    # Tie-free values: the argmax is unique.
    x = rng.permutation(np.linspace(-3, 3, 3 * 9 * 8 * 5)).reshape(3, 9, 8, 5).astype(dtype)
    padding = ((p[0], p[1]), (p[2], p[3]))
    opts = dict(stride=s, padding=padding, ceil_mode=ceil_mode)
    y, argmax = nc.max_pool2d_argmax(x, (kh, kw), dilation=d, **opts)
    avg = nc.avg_pool2d(x, (kh, kw), count_include_pad=cip, **opts)
    dy_max = rng.standard_normal(y.shape).astype(dtype)
    dy_avg = rng.standard_normal(avg.shape).astype(dtype)
    expected = (nc.max_pool2d(x, (kh, kw), dilation=d, **opts), y, argmax,
                nc.max_pool2d_backward(dy_max, argmax, x.shape), nc.max_unpool2d(y, argmax, x.shape),
                avg, nc.avg_pool2d_backward(dy_avg, x.shape, (kh, kw), count_include_pad=cip, **opts))
    args = (x, dy_max, dy_avg, kh, kw, *s, *p, *d, ceil_mode, cip)
    programs = (user_pool,) if dtype == np.float32 else (user_pool, user_pool_prange)
    for program in programs:  # one sample per call changes no sum here
        got = program(*args)
        for out, want in zip(got, expected, strict=True):
            assert_equal_to_rounding(out, want)
        for i in (0, 1, 2, 4):  # max pooling, its argmax and unpooling: copies, exactly
            np.testing.assert_array_equal(got[i], expected[i])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("out_size", ADAPTIVE_OUT, ids=str)
def test_adaptive_pool_and_lrn_kernels_in_user_njit_code_equal_the_public_api(out_size, dtype, rng):
    x = rng.standard_normal((2, 7, 9, 6)).astype(dtype)
    y = nc.adaptive_avg_pool2d(x, out_size)
    dy_adaptive = rng.standard_normal(y.shape).astype(dtype)
    dy_lrn = rng.standard_normal(x.shape).astype(dtype)
    lrn_args = dict(depth_radius=2, bias=1.5, alpha=0.7, beta=0.75)
    expected = (y, nc.adaptive_avg_pool2d_backward(dy_adaptive, x.shape), nc.lrn(x, **lrn_args),
                nc.lrn_backward(dy_lrn, x, **lrn_args))
    args = (x, dy_adaptive, dy_lrn, 2, 1.5, 0.7, 0.75)
    for got, want in zip(user_adaptive_lrn(*args), expected, strict=True):
        assert_equal_to_rounding(got, want)
    if dtype == np.float32:
        return
    # Per sample, the LRN's vector loops split the pixels differently (their
    # scalar remainders may round a last bit apart).
    got = user_adaptive_lrn_prange(*args)
    for i, want in enumerate(expected):
        if i < 2:
            assert_equal_to_rounding(got[i], want)
        else:
            assert got[i].dtype == want.dtype
            np.testing.assert_allclose(got[i], want, rtol=tolerance(dtype, 8), atol=0)


def test_float32_lrn_beyond_float32s_range_is_recomputed_like_the_public_api():
    # Window sums of squares overflow float32: the public API redoes those
    # blocks in float64, and so must the nopython flavour.
    x = np.full((1, 2, 3, 4), 3e19, np.float32)
    x[0, 0, 0] = [1, 2, 3, 4]
    with np.errstate(over="ignore"):  # the float32 overflow itself (NumPy warns without the JIT)
        want = nc.lrn(x, depth_radius=1, alpha=1e-3, beta=0.75)
        got = np.empty_like(x)
        K.lrn(x, got, 1, 1.0, 1e-3, 0.75)
    assert_equal_to_rounding(got, want)
    assert np.isfinite(got).all()


# ------------------------------------------------------------ no allocation


@numba.njit
def call_every_kernel(x, w, b, bt, y, dx, dw, db, t, cols, back, p, p2, argmax, pdx, unpooled, avg,
                      davg, ad, dad, z, dz):
    K.conv2d(x, w, b, y, 1, 1, 1, 1, 1, 1)
    K.conv2d_backward_input(y, w, dx, 1, 1, 1, 1, 1, 1)
    K.conv2d_backward_filter(y, x, dw, 1, 1, 1, 1, 1, 1)
    K.conv2d_backward_bias(y, db)
    K.conv2d_transpose(y, w, bt, t, 1, 1, 1, 1, 1, 1)
    K.im2col(x, cols, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1)
    K.col2im(cols, back, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1)
    K.max_pool2d(x, p, 2, 2, 2, 2, 0, 0, 1, 1)
    K.max_pool2d_argmax(x, p2, argmax, 2, 2, 2, 2, 0, 0, 1, 1)
    K.max_pool2d_backward(p2, argmax, pdx)
    K.max_unpool2d(p2, argmax, unpooled)
    K.avg_pool2d(x, avg, 2, 2, 2, 2, 0, 0, 0, 0, False)
    K.avg_pool2d_backward(avg, davg, 2, 2, 2, 2, 0, 0, 0, 0, False)
    K.adaptive_avg_pool2d(x, ad)
    K.adaptive_avg_pool2d_backward(ad, dad)
    K.lrn(x, z, 1, 1.0, 1.0, 0.5)
    K.lrn_backward(x, x, dz, 1, 1.0, 1.0, 0.5)


def test_no_kernel_allocates_its_result(rng):
    # Buffers full of NaN (-1 for argmax): every element must be overwritten
    # with the public API's value, so the kernels wrote into these very arrays.
    x = rng.standard_normal((2, 6, 6, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    b, bt = rng.standard_normal(4), rng.standard_normal(3)
    y = nc.conv2d(x, w, b, padding=1)
    dx, dw, db = nc.conv2d_backward(y, x, w, padding=1)
    cols = nc.im2col(x, 3, padding=1)
    p, argmax = nc.max_pool2d_argmax(x, 2)
    avg, ad = nc.avg_pool2d(x, 2), nc.adaptive_avg_pool2d(x, 4)
    expected = [y, dx, dw, db, nc.conv2d_transpose(y, w, bt, padding=1), cols,
                nc.col2im(cols, x.shape, 3, padding=1), p, p, argmax,
                nc.max_pool2d_backward(p, argmax, x.shape), nc.max_unpool2d(p, argmax, x.shape),
                avg, nc.avg_pool2d_backward(avg, x.shape, 2), ad,
                nc.adaptive_avg_pool2d_backward(ad, x.shape), nc.lrn(x, depth_radius=1),
                nc.lrn_backward(x, x, depth_radius=1)]
    buffers = [np.full_like(e, -1 if e.dtype == np.int64 else np.nan) for e in expected]
    call_every_kernel(x, w, b, bt, *buffers)
    for buf, want in zip(buffers, expected, strict=True):
        assert_equal_to_rounding(buf, want)  # (a NaN left in a buffer fails: want is finite)


# ----------------------------------------------------------------- helpers


@pytest.mark.parametrize("case", CONV_CASES, ids=conv_case_id)
def test_output_shape_helpers_agree_with_the_public_api(case):
    n, h, w_, ci, co, kh, kw, s, p, d, op = case
    x_shape, w_shape = (n, h, w_, ci), (kh, kw, ci, co)
    x, w = np.zeros(x_shape), np.zeros(w_shape)
    padding = ((p[0], p[1]), (p[2], p[3]))
    y = nc.conv2d(x, w, stride=s, padding=padding, dilation=d)
    assert K.output_shape_conv2d(x_shape, w_shape, *s, *p, *d) == y.shape
    xt_shape = y.shape[:3] + (co,)
    t = nc.conv2d_transpose(np.zeros(xt_shape), w, stride=s, padding=padding, dilation=d,
                            output_padding=op)
    assert K.output_shape_conv2d_transpose(xt_shape, w_shape, *s, *p, *d, *op) == t.shape
    assert K.output_shape_im2col(x_shape, kh, kw, *s, *p, *d) == nc.im2col(
        x, (kh, kw), stride=s, padding=padding, dilation=d).shape
    for ceil_mode in (False, True):
        pool = nc.max_pool2d(x, (kh, kw), stride=s, padding=0, dilation=d, ceil_mode=ceil_mode)
        assert K.output_shape_pool2d(x_shape, kh, kw, *s, 0, 0, 0, 0, *d, ceil_mode) == pool.shape


def test_same_padding_is_tensorflows_rule():
    # out = ceil(7 / 2) = 4, total = (4 - 1) * 2 + 3 - 7 = 2; an odd total puts the extra cell after.
    assert K.same_padding(7, 3, 2, 1) == (1, 1)
    assert K.same_padding(6, 3, 2, 1) == (0, 1)
    assert K.same_padding(5, 1, 1, 1) == (0, 0)


# ------------------------------------------------------------------ flavours


def reachable_kernels(dispatcher):
    """Every Numba dispatcher a kernel's source calls, transitively (by global name)."""
    seen, todo = {}, [dispatcher]
    while todo:
        d = todo.pop()
        if id(d) in seen:
            continue
        seen[id(d)] = d
        fn = d.py_func
        todo.extend(value for name in fn.__code__.co_names
                    if isinstance(value := fn.__globals__.get(name), numba.core.dispatcher.Dispatcher))
    return list(seen.values())


def is_parallel(dispatcher):
    # A dict of parfor options (numbaconv._numba._explicit_prange), or False.
    return dispatcher.targetoptions.get("parallel", False) is not False


@pytest.mark.parametrize("name", [n for n in K.__all__ if n.endswith("_serial")])
def test_the_serial_flavour_reaches_no_parallel_code_and_the_parallel_one_does(name):
    if numba.config.DISABLE_JIT:
        pytest.skip("plain Python functions without the JIT: no flavours")
    serial = reachable_kernels(getattr(K, name))
    parallel = reachable_kernels(getattr(K, name.removesuffix("_serial")))
    assert not [d.py_func.__qualname__ for d in serial if is_parallel(d)]
    assert [d for d in parallel if is_parallel(d)]
    assert len(serial) == len(parallel)  # the same functions, twinned


def run_python(code, **env):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=900, env={**os.environ, **env},
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    return result.stdout


def test_importing_the_kernels_compiles_nothing_and_numbaconv_does_not_import_them():
    out = run_python("""
        import sys
        import numbaconv
        print("IMPORTED", "numbaconv.kernels" in sys.modules)
        import numbaconv.kernels as K
        print("COMPILED", [name for name in K.__all__ if getattr(K, name).signatures])
    """, NUMBA_DISABLE_JIT="0")
    assert "IMPORTED False" in out
    assert "COMPILED []" in out


def test_a_cached_user_function_calling_the_kernels_runs_in_a_new_process(tmp_path):
    # numba#9938: serial code loaded from the cache that calls parallel
    # kernels crashed on its first parallel region (no thread pool yet).
    (tmp_path / "user_module.py").write_text(textwrap.dedent("""
        import numba, numpy as np
        from numbaconv import kernels as K

        @numba.njit(cache=True)
        def forward(x, w, b):
            y = np.empty(K.output_shape_conv2d(x.shape, w.shape, 1, 1, 0, 0, 0, 0, 1, 1), x.dtype)
            K.conv2d(x, w, b, y, 1, 1, 0, 0, 1, 1)
            return y
    """))
    code = f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np, numbaconv as nc, user_module
        x, w = np.ones((2, 5, 5, 3), np.float32), np.ones((3, 3, 3, 4), np.float32)
        y = user_module.forward(x, w, np.zeros(4, np.float32))
        print("SAME", np.array_equal(y, nc.conv2d(x, w)), "HITS", sum(user_module.forward.stats.cache_hits.values()))
    """
    env = dict(NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_DISABLE_JIT="0")
    assert "SAME True HITS 0" in run_python(code, **env)
    assert "SAME True HITS 1" in run_python(code, **env)  # loaded from the cache, and runs
