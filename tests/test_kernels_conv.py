"""The Numba convolution and im2col/col2im kernels against the NumPy reference, through the public API.

A grid of geometries (batch 0-3, odd/even planes, kernels up to 5x8,
strides 1-3 incl. asymmetric, every padding form incl. SAME, asymmetric and
padding larger than the input, dilation 1-2, odd and even channel counts)
runs in both data formats and both dtypes. Expected values are the
reference evaluated in float64 on the same numbers; float32 results must
stay within a tolerance that grows with the reduction length, float64
results within a tight one.

A hypothesis property test draws geometries (strides smaller than kernels,
dilation, asymmetric padding) with small-integer data: every partial sum is
then exact in float32, so the kernels must match the reference *exactly*,
whatever order they sum in (an index bug cannot hide in a tolerance). It
also checks that conv2d_transpose is the adjoint of conv2d and col2im of
im2col.

Also: inputs are not modified, results are fresh; batch 0; read-only and
non-contiguous inputs; the same call twice is bit-identical; 1 vs 2 threads.
"""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numbaconv as fast
import numbaconv.reference as ref

DTYPES = {"f32": np.float32, "f64": np.float64}
FORMATS = ("NHWC", "NCHW")


# ---------------------------------------------------------------- helpers


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def pads(padding, h, w, kh, kw, stride, dilation):
    """(top, bottom, left, right), written out independently of numbaconv."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if padding == "VALID":
        return 0, 0, 0, 0
    if padding == "SAME":
        def same(size, k, s, d):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            return total // 2, total - total // 2
        return same(h, kh, sh, dh) + same(w, kw, sw, dw)
    if isinstance(padding, int):
        return (padding,) * 4
    a, b = padding
    return (a, a, b, b) if isinstance(a, int) else (*a, *b)


def out_size(size, k, s, d, before, after):
    return (size + before + after - d * (k - 1) - 1) // s + 1


def to_format(a, fmt):
    """NHWC test data as a caller of ``fmt`` passes it (NCHW: a C-contiguous copy)."""
    return a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def filters_to_format(w, fmt):
    return w if fmt == "NHWC" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def random_layer(n, h, w, ci, co, k, s, p, d, dtype):
    """(x, w, b, the three in float64, the reference's float64 forward) of a random layer: ``k`` is (kh, kw)."""
    rng = np.random.default_rng(n * h * w * ci * co)
    x = rng.standard_normal((n, h, w, ci)).astype(dtype)
    wt = rng.standard_normal(k + (ci, co)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    wide = [a.astype(np.float64) for a in (x, wt, b)]
    return x, wt, b, wide, ref.conv2d(*wide, stride=s, padding=p, dilation=d)


def tolerance(dtype, length):
    """assert_allclose's atol for a sum of ``length`` products of O(1) numbers.

    Rounding in a float32 sum grows about linearly with the number of terms
    for a sequential sum; the kernels sum in pieces, so this is generous by
    a factor but still far below the O(1) error of a wrong tap.
    """
    eps = np.finfo(dtype).eps
    return 8 * eps * max(length, 1) if dtype == np.float32 else 64 * eps * max(length, 1)


def assert_close(actual, expected, dtype, length):
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance(dtype, length))


def unchanged(arrays, copies):
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)


# ------------------------------------------------------------------ grid

# (n, h, w, c_in, c_out, (kh, kw), stride, padding, dilation)
CONV_CASES = [
    (1, 5, 5, 1, 1, (3, 3), 1, 0, 1),
    (2, 7, 8, 3, 16, (3, 3), 1, "SAME", 1),
    (3, 9, 10, 2, 5, (5, 8), 1, 0, 1),
    (2, 6, 9, 3, 4, (2, 3), 2, "SAME", 1),
    (1, 10, 11, 4, 3, (3, 3), 3, "VALID", 1),
    (2, 9, 8, 3, 2, (3, 2), (2, 3), ((1, 2), (0, 3)), 1),
    (2, 7, 7, 2, 3, (3, 3), 1, (1, 2), 2),
    (1, 5, 6, 3, 4, (3, 3), 2, "SAME", 2),
    (2, 4, 5, 2, 3, (3, 3), 1, 6, 1),  # padding larger than the input
    (1, 3, 2, 1, 2, (2, 2), (3, 1), ((5, 0), (0, 4)), (2, 1)),
    (0, 6, 6, 3, 4, (3, 3), 1, "SAME", 1),  # empty batch
    (3, 8, 8, 3, 1, (1, 1), 2, "VALID", 1),
    (2, 11, 6, 1, 6, (4, 4), 2, 1, 1),
    (1, 12, 13, 2, 3, (5, 3), 3, ((2, 0), (1, 1)), 2),
    (2, 6, 7, 3, 5, (1, 5), 1, "SAME", (1, 2)),
    (1, 8, 9, 5, 7, (5, 8), (1, 2), "SAME", 1),
    (3, 5, 4, 2, 2, (2, 1), (1, 3), ((0, 3), (2, 0)), (2, 1)),
]


def case_id(case):
    n, h, w, ci, co, (kh, kw), s, p, d = case
    if isinstance(p, str):
        pid = p
    elif isinstance(p, int):
        pid = f"pad{p}"
    elif isinstance(p[0], int):
        pid = f"pad{p[0]}x{p[1]}"
    else:
        pid = f"pad{p[0][0]}+{p[0][1]}x{p[1][0]}+{p[1][1]}"
    dims = lambda v: "x".join(map(str, pair(v)))  # noqa: E731
    return f"n{n}-{h}x{w}-k{kh}x{kw}-c{ci}to{co}-s{dims(s)}-{pid}-d{dims(d)}"


def conv_inputs(case, dtype, seed=0):
    n, h, w, ci, co, (kh, kw), s, p, d = case
    rng = np.random.default_rng(seed + 7919 * len(case_id(case)))
    x = rng.standard_normal((n, h, w, ci)).astype(dtype)
    wt = rng.standard_normal((kh, kw, ci, co)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    t, bo, l, r = pads(p, h, w, kh, kw, s, d)
    (sh, sw), (dh, dw) = pair(s), pair(d)
    oh, ow = out_size(h, kh, sh, dh, t, bo), out_size(w, kw, sw, dw, l, r)
    dy = rng.standard_normal((n, oh, ow, co)).astype(dtype)
    return x, wt, b, dy


GRID = [
    pytest.param(case, fmt, dt, id=f"{case_id(case)}-{fmt.lower()}-{dt_id}")
    for case in CONV_CASES for fmt in FORMATS for dt_id, dt in DTYPES.items()
]


def f64(*arrays):
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


@pytest.mark.parametrize("case, fmt, dtype", GRID)
def test_conv2d_matches_reference(case, fmt, dtype):
    x, w, b, _ = conv_inputs(case, dtype)
    _, _, _, ci, _, (kh, kw), s, p, d = case
    geo = dict(stride=s, padding=p, dilation=d, data_format=fmt)
    xf, wf = to_format(x, fmt), filters_to_format(w, fmt)
    copies = [xf.copy(), wf.copy(), b.copy()]
    for bias in (b, None):
        y = fast.conv2d(xf, wf, bias, **geo)
        expected = ref.conv2d(*f64(xf, wf, bias), **geo)
        assert_close(y, expected, dtype, kh * kw * ci)
        assert y.flags.c_contiguous and not np.shares_memory(y, xf)
    unchanged([xf, wf, b], copies)


@pytest.mark.parametrize("case, fmt, dtype", GRID)
def test_conv2d_backward_matches_reference(case, fmt, dtype):
    x, w, _, dy = conv_inputs(case, dtype)
    n, _, _, ci, co, (kh, kw), s, p, d = case
    geo = dict(stride=s, padding=p, dilation=d, data_format=fmt)
    xf, wf, dyf = to_format(x, fmt), filters_to_format(w, fmt), to_format(dy, fmt)
    copies = [xf.copy(), wf.copy(), dyf.copy()]
    dx, dw, db = fast.conv2d_backward(dyf, xf, wf, **geo)
    ex, ew, eb = ref.conv2d_backward(*f64(dyf, xf, wf), **geo)
    positions = n * dy.shape[1] * dy.shape[2]
    assert_close(dx, ex, dtype, kh * kw * co)
    assert_close(dw, ew, dtype, positions)
    assert_close(db, eb, dtype, positions)
    unchanged([xf, wf, dyf], copies)


def transpose_case(case):
    """The transposed conv that maps the forward conv's output plane back onto its input plane.

    Explicit padding: output_padding = the rows/columns the forward stride
    dropped (fewer than the stride), so the shape comes back exactly (rows that no tap reaches get
    only the bias). SAME: TensorFlow's rule, output = input * stride.
    """
    n, h, w, ci, co, (kh, kw), s, p, d = case
    (sh, sw), (dh, dw) = pair(s), pair(d)
    if isinstance(p, str) and p == "SAME":
        return p, 0
    t, bo, l, r = pads(p, h, w, kh, kw, s, d)
    oh, ow = out_size(h, kh, sh, dh, t, bo), out_size(w, kw, sw, dw, l, r)
    op = (h - ((oh - 1) * sh - t - bo + dh * (kh - 1) + 1), w - ((ow - 1) * sw - l - r + dw * (kw - 1) + 1))
    return ((t, bo), (l, r)), op


@pytest.mark.parametrize("case, fmt, dtype", GRID)
def test_conv2d_transpose_matches_reference(case, fmt, dtype):
    _, w, b, dy = conv_inputs(case, dtype)
    wb = np.resize(b, w.shape[2]).astype(dtype)  # the transpose's bias has C_in entries
    _, _, _, ci, co, (kh, kw), s, _, d = case
    padding, op = transpose_case(case)
    geo = dict(stride=s, padding=padding, output_padding=op, dilation=d, data_format=fmt)
    xf, wf = to_format(dy, fmt), filters_to_format(w, fmt)
    copies = [xf.copy(), wf.copy()]
    for bias in (wb, None):
        y = fast.conv2d_transpose(xf, wf, bias, **geo)
        expected = ref.conv2d_transpose(*f64(xf, wf, bias), **geo)
        assert_close(y, expected, dtype, kh * kw * co)
    unchanged([xf, wf], copies)


@pytest.mark.parametrize("case, fmt, dtype", GRID)
def test_conv2d_transpose_backward_matches_reference(case, fmt, dtype):
    x, w, _, dy = conv_inputs(case, dtype)
    n, h, wd, ci, co, (kh, kw), s, _, d = case
    padding, op = transpose_case(case)
    geo = dict(stride=s, padding=padding, output_padding=op, dilation=d, data_format=fmt)
    # The transposed conv's input is dy's plane; its output (and upstream gradient) x's shape.
    t_in = to_format(dy, fmt)
    t_out_shape = fast.conv2d_transpose(t_in, filters_to_format(w, fmt), **geo).shape
    upstream = np.random.default_rng(3).standard_normal(t_out_shape).astype(dtype)
    wf = filters_to_format(w, fmt)
    gx, gw, gb = fast.conv2d_transpose_backward(upstream, t_in, wf, **geo)
    ex, ew, eb = ref.conv2d_transpose_backward(*f64(upstream, t_in, wf), **geo)
    positions = int(np.prod(t_out_shape)) // max(ci, 1)
    assert_close(gx, ex, dtype, kh * kw * ci)
    assert_close(gw, ew, dtype, positions)
    assert_close(gb, eb, dtype, positions)


@pytest.mark.parametrize("case, fmt, dtype", GRID)
def test_im2col_col2im_match_reference(case, fmt, dtype):
    x, _, _, _ = conv_inputs(case, dtype)
    _, _, _, _, _, k, s, p, d = case
    geo = dict(stride=s, padding=p, dilation=d, data_format=fmt)
    xf = to_format(x, fmt)
    cols = fast.im2col(xf, k, **geo)
    expected_cols = ref.im2col(xf, k, **geo)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, expected_cols)  # a copy: exact
    upstream = np.random.default_rng(5).standard_normal(cols.shape).astype(dtype)
    back = fast.col2im(upstream, xf.shape, k, **geo)
    assert_close(back, ref.col2im(upstream.astype(np.float64), xf.shape, k, **geo), dtype,
                 k[0] * k[1])


# -------------------------------------------------------- edge behaviour


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_empty_batch_gives_empty_and_zero_results(dtype):
    x = np.zeros((0, 6, 5, 3), dtype)
    w = np.ones((3, 2, 3, 4), dtype)
    y = fast.conv2d(x, w, np.ones(4, dtype), stride=2, padding="SAME")
    assert y.shape == (0, 3, 3, 4) and y.dtype == dtype
    dx, dw, db = fast.conv2d_backward(y, x, w, stride=2, padding="SAME")
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (4,)
    assert not dw.any() and not db.any()
    t = fast.conv2d_transpose(y, w, np.ones(3, dtype), stride=2, padding=1, output_padding=1)
    assert t.shape[0] == 0 and t.shape[3] == 3
    assert fast.im2col(x, (3, 2), padding=1).shape == (0, 18)
    assert fast.col2im(np.zeros((0, 18), dtype), x.shape, (3, 2), padding=1).shape == x.shape


def test_read_only_and_non_contiguous_inputs():
    rng = np.random.default_rng(11)
    big = rng.standard_normal((2, 14, 9, 6)).astype(np.float32)
    x = big[:, ::2, :, 1::2]  # non-contiguous view, 3 channels
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    w_ro = w.copy()
    w_ro.flags.writeable = False
    x_fortran = np.asfortranarray(x)
    expected = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    for xi, wi in ((x, w_ro), (x_fortran, w)):
        assert_close(fast.conv2d(xi, wi, padding=1), expected, np.float32, 27)
    dy = rng.standard_normal(expected.shape).astype(np.float32)
    dy.flags.writeable = False
    for got, want in zip(fast.conv2d_backward(dy, x, w_ro, padding=1),
                         ref.conv2d_backward(*f64(dy, x, w), padding=1)):
        assert_close(got, want, np.float32, 2 * 7 * 9)


# ------------------------------------------------------------- properties


@st.composite
def geometries(draw):
    """Small convs with stride <= kernel extent, dilation and asymmetric padding."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sh = draw(st.integers(1, max(1, dh * (kh - 1) + 1)))
    sw = draw(st.integers(1, max(1, dw * (kw - 1) + 1)))
    pt, pb, pl, pr = (draw(st.integers(0, 3)) for _ in range(4))
    eff_h, eff_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = draw(st.integers(max(1, eff_h - pt - pb), 9))
    w = draw(st.integers(max(1, eff_w - pl - pr), 9))
    return dict(
        n=draw(st.integers(0, 3)), h=h, w=w, ci=draw(st.integers(1, 4)), co=draw(st.integers(1, 5)),
        k=(kh, kw), stride=(sh, sw), padding=((pt, pb), (pl, pr)), dilation=(dh, dw),
        fmt=draw(st.sampled_from(FORMATS)), dtype=draw(st.sampled_from(list(DTYPES.values()))),
        seed=draw(st.integers(0, 2**16)),
    )


@given(geometries())
def test_property_exact_on_integer_data(g):
    """Integer data make every sum exact: the kernels must equal the reference bit for bit."""
    rng = np.random.default_rng(g["seed"])
    dtype, fmt = g["dtype"], g["fmt"]
    kh, kw = g["k"]
    x = rng.integers(-3, 4, (g["n"], g["h"], g["w"], g["ci"])).astype(dtype)
    w = rng.integers(-3, 4, (kh, kw, g["ci"], g["co"])).astype(dtype)
    b = rng.integers(-3, 4, g["co"]).astype(dtype)
    geo = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"], data_format=fmt)
    xf, wf = to_format(x, fmt), filters_to_format(w, fmt)

    y = fast.conv2d(xf, wf, b, **geo)
    np.testing.assert_array_equal(y, ref.conv2d(xf, wf, b, **geo))
    dy = rng.integers(-3, 4, y.shape).astype(dtype)
    for got, want in zip(fast.conv2d_backward(dy, xf, wf, **geo), ref.conv2d_backward(dy, xf, wf, **geo)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)

    # conv2d_transpose with the same geometry maps y's plane back onto x's.
    (pt, pb), (pl, pr) = g["padding"]
    (sh, sw), (dh, dw) = g["stride"], g["dilation"]
    op = ((g["h"] + pt + pb - dh * (kh - 1) - 1) % sh, (g["w"] + pl + pr - dw * (kw - 1) - 1) % sw)
    tgeo = dict(geo, output_padding=op)  # op < stride: the transpose is valid
    bt = rng.integers(-3, 4, g["ci"]).astype(dtype)
    t = fast.conv2d_transpose(dy, wf, bt, **tgeo)
    np.testing.assert_array_equal(t, ref.conv2d_transpose(dy, wf, bt, **tgeo))
    # Adjointness, independently of the reference: <conv(x), dy> == <x, conv_T(dy)>.
    t0 = fast.conv2d_transpose(dy, wf, **tgeo)
    assert t0.shape == xf.shape
    assert np.vdot(fast.conv2d(xf, wf, **geo), dy) == np.vdot(xf, t0)

    cols = fast.im2col(xf, g["k"], **geo)
    np.testing.assert_array_equal(cols, ref.im2col(xf, g["k"], **geo))
    back = fast.col2im(cols, xf.shape, g["k"], **geo)
    np.testing.assert_array_equal(back, ref.col2im(cols, xf.shape, g["k"], **geo))
    assert np.vdot(cols, cols) == np.vdot(xf, back)  # col2im is im2col's adjoint


# ------------------------------------------------- determinism, threads


def all_conv_results(rng_seed=2, n=3, dtype=np.float32):
    """Every conv core on a shape where threads split the work (stride < kernel)."""
    rng = np.random.default_rng(rng_seed)
    x = rng.standard_normal((n, 13, 12, 3)).astype(dtype)
    w = rng.standard_normal((3, 4, 3, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    geo = dict(stride=(2, 1), padding=((1, 2), (2, 1)), dilation=(1, 2))
    y = fast.conv2d(x, w, b, **geo)
    dy = rng.standard_normal(y.shape).astype(dtype)
    cols = fast.im2col(x, (3, 4), **geo)
    return [y, *fast.conv2d_backward(dy, x, w, **geo),
            fast.conv2d_transpose(dy, w, b[:3], output_padding=(1, 0), **geo),
            cols, fast.col2im(cols, x.shape, (3, 4), **geo)]


def test_same_call_twice_is_bit_identical():
    for first, second in zip(all_conv_results(), all_conv_results()):
        np.testing.assert_array_equal(first, second)
        assert first.tobytes() == second.tobytes()


def test_one_and_two_threads_agree(thread_counts):
    """Bit for bit, dw and db included: their partial sums are split by the shape, not by the threads."""
    results = {}
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results[threads] = all_conv_results(n=4)
    for one, two in zip(*results.values()):
        assert one.tobytes() == two.tobytes()


# ------------------------------------------------------------------- large


@pytest.mark.slow
def test_seed_benchmark_shape():
    """The seed benchmark's shapes: (128, 28, 28, 3) x (3, 3, 3, 16), SAME, float32."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 28, 28, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 16)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    dy = rng.standard_normal((128, 28, 28, 16)).astype(np.float32)
    assert_close(fast.conv2d(x, w, b, padding="SAME"), ref.conv2d(*f64(x, w, b), padding="SAME"),
                 np.float32, 27)
    got = fast.conv2d_backward(dy, x, w, padding="SAME")
    want = ref.conv2d_backward(*f64(dy, x, w), padding="SAME")
    for g, e, length in zip(got, want, (144, 128 * 28 * 28, 128 * 28 * 28)):
        assert_close(g, e, np.float32, length)
