"""The Numba max-pool and LRN kernels against the NumPy reference, through the public API.

Pooling is compared exactly (a max and its index involve no rounding), on
tie-heavy inputs (small integers) and on inputs full of NaN and -inf, where
the contract fixes which position wins. The backward scatter is compared on
overlapping windows and on arbitrary argmax maps. LRN runs with a large
alpha (an off-by-one window changes the result by far more than rounding),
several radii including radius >= C, the special-cased betas and a generic
one. Also: batch 0 and zero channels, non-contiguous and read-only inputs,
bit-identical repeats, and 1 vs 2 threads.
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


def in_format(a, fmt):
    """NHWC test data as the caller of ``fmt`` passes it (NCHW: a C-contiguous copy)."""
    return a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def shape_in_format(shape, fmt):
    n, h, w, c = shape
    return shape if fmt == "NHWC" else (n, c, h, w)


def pad_id(padding):
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return f"pad{padding}"
    a, b = padding
    if isinstance(a, int):
        return f"pad{a}x{b}"
    return f"pad{a[0]}+{a[1]}x{b[0]}+{b[1]}"


def dims_id(v):
    if v is None:
        return "None"
    return str(v) if isinstance(v, int) else "x".join(map(str, v))


def assert_same_pool(x, fmt, pool, stride, padding):
    """Fast and reference agree exactly on y (both entry points) and argmax."""
    kw = dict(stride=stride, padding=padding, data_format=fmt)
    before = x.copy()
    y, argmax = fast.max_pool2d_argmax(x, pool, **kw)
    y_ref, argmax_ref = ref.max_pool2d_argmax(x, pool, **kw)
    assert y.dtype == y_ref.dtype and argmax.dtype == np.int64
    assert y.shape == y_ref.shape and argmax.shape == argmax_ref.shape
    np.testing.assert_array_equal(y, y_ref)  # NaN == NaN here
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_array_equal(fast.max_pool2d(x, pool, **kw), y_ref)
    np.testing.assert_array_equal(x, before)  # the input is not modified
    return y, argmax


def assert_same_pool_backward(dy, argmax, x_shape, fmt):
    """dx against the reference; float32 sums of overlaps may round differently."""
    dx = fast.max_pool2d_backward(dy, argmax, x_shape, data_format=fmt)
    dx_ref = ref.max_pool2d_backward(dy, argmax, x_shape, data_format=fmt)
    assert dx.shape == tuple(x_shape) and dx.dtype == dx_ref.dtype
    assert dx.flags.c_contiguous
    tol = 1e-6 if dx.dtype == np.float32 else 1e-14
    scale = np.abs(dy).sum() if dy.size else 0.0  # bounds any one sum
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol * scale)
    return dx


# ---------------------------------------------------------------- pool inputs


def tie_heavy(rng, shape, dtype):
    """Small integers: most windows hold several equal maxima."""
    return rng.integers(-2, 3, size=shape).astype(dtype)


def with_specials(rng, shape, dtype):
    """Small integers with NaN and -inf sprinkled in, plus all -inf and all NaN planes."""
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    u = rng.random(shape)
    x[u < 0.08] = np.nan
    x[(u >= 0.08) & (u < 0.3)] = -np.inf
    if shape[0] and shape[3] >= 2:
        x[0, :, :, 0] = -np.inf  # every window all -inf: argmax is its first real position
        x[-1, :, :, -1] = np.nan  # every window all NaN: the first NaN
    return x


KINDS = {"ties": tie_heavy, "specials": with_specials}

# (H, W, pool_size, stride, padding, N, C): odd and even planes, square and
# non-square windows, overlapping (stride < window) and gapped (stride >
# window) ones, SAME/VALID/int/pair/pairs padding, channel counts around the
# vector width.
POOL_GEOMETRIES = [
    (6, 8, 2, None, "VALID", 2, 3),
    (7, 5, 2, None, "SAME", 1, 16),
    (7, 6, 3, 1, 1, 3, 5),
    (5, 9, (3, 2), (1, 2), "SAME", 2, 17),
    (8, 7, (2, 3), (2, 1), ((0, 1), (2, 0)), 1, 1),
    (6, 6, 3, 2, (1, 2), 2, 8),
    (4, 5, 2, 3, 0, 3, 2),
    (1, 2, 3, 3, 2, 2, 4),  # windows larger than the input
    (9, 4, (4, 1), (2, 1), ((3, 0), (0, 0)), 1, 6),
]


def pool_params():
    for h, w, pool, stride, padding, n, c in POOL_GEOMETRIES:
        geometry_id = f"{h}x{w}-k{dims_id(pool)}-s{dims_id(stride)}-{pad_id(padding)}-n{n}-c{c}"
        for fmt in FORMATS:
            for dtype_id in DTYPES:
                for kind in KINDS:
                    yield pytest.param((n, h, w, c), pool, stride, padding, fmt, dtype_id, kind,
                                       id=f"{geometry_id}-{fmt.lower()}-{dtype_id}-{kind}")


@pytest.mark.parametrize("shape, pool, stride, padding, fmt, dtype_id, kind", list(pool_params()))
def test_max_pool_matches_reference(shape, pool, stride, padding, fmt, dtype_id, kind):
    rng = np.random.default_rng(sum(shape) * 7 + len(kind))
    x = in_format(KINDS[kind](rng, shape, DTYPES[dtype_id]), fmt)
    y, argmax = assert_same_pool(x, fmt, pool, stride, padding)
    dy = rng.standard_normal(y.shape).astype(DTYPES[dtype_id])
    assert_same_pool_backward(dy, argmax, x.shape, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(0, 5, 6, 3), (2, 5, 6, 0)], ids=["batch0", "channels0"])
def test_max_pool_empty_batch_and_channels(shape, fmt):
    x = in_format(np.ones(shape, np.float32), fmt)
    y, argmax = assert_same_pool(x, fmt, 2, 1, "SAME")
    assert y.shape == shape_in_format((shape[0], 5, 6, shape[3]), fmt)
    assert_same_pool_backward(np.ones(y.shape, np.float32), argmax, x.shape, fmt)


def test_max_pool_first_of_tied_maxima_wins_by_hand():
    # One 3x3 window holding 5 at (0, 2), (1, 0) and (2, 2): the first in
    # row-major order, (0, 2), wins and alone receives the gradient.
    x = np.array([[1, 0, 5], [5, 2, 0], [0, 1, 5]], np.float32).reshape(1, 3, 3, 1)
    y, argmax = fast.max_pool2d_argmax(x, 3)
    assert y.ravel().tolist() == [5.0] and argmax.ravel().tolist() == [2]
    dx = fast.max_pool2d_backward(np.full((1, 1, 1, 1), 7.0, np.float32), argmax, x.shape)
    assert dx.ravel().tolist() == [0, 0, 7, 0, 0, 0, 0, 0, 0]


def test_max_pool_nan_and_all_minus_inf_windows_by_hand():
    x = np.array([[-np.inf, -np.inf, 1, np.nan],
                  [-np.inf, -np.inf, np.nan, 3]], np.float64).reshape(1, 2, 4, 1)
    y, argmax = fast.max_pool2d_argmax(x, 2)
    assert y[0, 0, 0, 0] == -np.inf and argmax[0, 0, 0, 0] == 0  # a real position, not padding
    assert np.isnan(y[0, 0, 1, 0]) and argmax[0, 0, 1, 0] == 3  # the first NaN
    # Padding (-inf in the reference's picture) never wins, even over -inf input.
    x = np.full((1, 1, 2, 1), -np.inf)
    _, argmax = fast.max_pool2d_argmax(x, (1, 3), stride=1, padding=((0, 0), (2, 2)))
    assert argmax.ravel().tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("n, c", [(1, 1), (1, 40), (3, 17), (5, 4)], ids=lambda v: str(v))
def test_max_pool_backward_arbitrary_argmax(n, c, fmt):
    """Any in-plane index is routed (not only window members); repeats add up."""
    rng = np.random.default_rng(n * 100 + c)
    h, w, oh, ow = 5, 4, 3, 6
    argmax = rng.integers(0, h * w, size=(n, oh, ow, c))
    argmax[..., 0] = 7  # every dy entry of channel 0 lands on one element
    dy = rng.standard_normal((n, oh, ow, c)).astype(np.float32)
    dx = assert_same_pool_backward(in_format(dy, fmt), in_format(argmax, fmt),
                                   shape_in_format((n, h, w, c), fmt), fmt)
    dx_nhwc = dx if fmt == "NHWC" else dx.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(dx_nhwc[:, 1, 3, 0], dy[..., 0].sum(axis=(1, 2)), rtol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_pool_non_contiguous_and_read_only_inputs(fmt):
    rng = np.random.default_rng(3)
    big = tie_heavy(rng, (3, 14, 9, 10), np.float32)
    views = {
        "strided": in_format(big, fmt)[::2, :, ::2, 1:],
        "fortran": np.asfortranarray(in_format(big, fmt)),
    }
    read_only = in_format(big, fmt).copy()
    read_only.setflags(write=False)
    views["read_only"] = read_only
    for x in views.values():
        y, argmax = assert_same_pool(x, fmt, (3, 2), (2, 1), "SAME")
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dy_view = np.asfortranarray(dy)
        assert_same_pool_backward(dy_view, argmax, x.shape, fmt)


@pytest.mark.parametrize("c", [3, 8, 9])
def test_nchw_inputs_of_few_channels_are_copied_by_the_kernel(planes_to_pixels_calls, c):
    """NCHW pools, average pools and im2col read NHWC memory: x of at most PIXELS_COPY_MAX_IN channels is
    copied there by planes_to_pixels (its blocks of pixels and a ragged last one), wider x by NumPy. The
    pools of results of MIN_UNITS rows or more take x's planes as the channels of one image."""
    from numbaconv import _plan
    rng = np.random.default_rng(5)
    shape = (2, 33, 37, c)  # 1221 pixels: a whole block of PIXEL_BLOCK and a ragged one
    x = tie_heavy(rng, shape, np.float32)
    xc = in_format(x, "NCHW")
    assert_same_pool(xc, "NCHW", (3, 3), (2, 2), 1)
    np.testing.assert_array_equal(fast.avg_pool2d(xc, 2, data_format="NCHW"),
                                  ref.avg_pool2d(xc, 2, data_format="NCHW").astype(np.float32))
    np.testing.assert_array_equal(fast.im2col(xc, 3, padding=1, data_format="NCHW"),
                                  ref.im2col(xc, 3, padding=1, data_format="NCHW"))
    copied = c <= _plan.PIXELS_COPY_MAX_IN
    # (the max pools' and average pool's results have 17 and 16 rows)
    assert planes_to_pixels_calls == ([(1, 2 * c, 33 * 37)] * 3 + [(2, c, 33 * 37)] if copied else [])


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("extra", [-1, 0], ids=["below-MIN_UNITS-rows", "MIN_UNITS-rows"])
def test_nchw_pools_of_few_channels_take_the_planes_as_channels(planes_to_pixels_calls, c, extra):
    """An NCHW batch of few channels pools as one image of N * C channels, its planes, from MIN_UNITS result
    rows on: every pool and average pool's gradient, fresh results and out= buffers, against the reference."""
    from numbaconv import _plan
    rows = _plan.MIN_UNITS + extra
    rng = np.random.default_rng(rows + c)
    n, h, w = 3, 2 * rows + 1, 9  # (2x2 windows, stride 2: rows result rows, the last input row unread)
    x = in_format(with_specials(rng, (n, h, w, c), np.float32), "NCHW")
    y_shape = (n, c, rows, 4)
    # (fewer rows: an NHWC copy, by the same kernel where x is not NHWC memory already, c > 1)
    merged = [(1, n * c, h * w)] if extra >= 0 else [(n, c, h * w)] if c > 1 else []
    for name, args in (("max_pool2d", (2,)), ("avg_pool2d", (2,)), ("adaptive_avg_pool2d", ((rows, 4),))):
        planes_to_pixels_calls.clear()
        got = getattr(fast, name)(x, *args, data_format="NCHW")
        want = getattr(ref, name)(x, *args, data_format="NCHW").astype(np.float32)
        assert got.shape == y_shape and got.flags.c_contiguous
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)
        buffer = np.full(y_shape, 7.0, np.float32)
        assert getattr(fast, name)(x, *args, data_format="NCHW", out=buffer) is buffer
        np.testing.assert_array_equal(buffer, got)
        assert planes_to_pixels_calls == merged * 2
    planes_to_pixels_calls.clear()
    y, argmax = fast.max_pool2d_argmax(x, 2, data_format="NCHW")
    y_ref, argmax_ref = ref.max_pool2d_argmax(x, 2, data_format="NCHW")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    buffers = np.zeros(y_shape, np.float32), np.zeros(y_shape, np.int64)
    fast.max_pool2d_argmax(x, 2, data_format="NCHW", out=buffers)
    np.testing.assert_array_equal(buffers[0], y_ref)
    np.testing.assert_array_equal(buffers[1], argmax_ref)
    assert planes_to_pixels_calls == merged * 2
    # The average pools' gradients: dx has h >= MIN_UNITS rows, so dy's planes go as channels.
    dy = in_format(rng.standard_normal((n, rows, 4, c)).astype(np.float32), "NCHW")
    planes_to_pixels_calls.clear()
    np.testing.assert_allclose(fast.avg_pool2d_backward(dy, x.shape, 2, data_format="NCHW"),
                               ref.avg_pool2d_backward(dy, x.shape, 2, data_format="NCHW"), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fast.adaptive_avg_pool2d_backward(dy, x.shape, data_format="NCHW"),
                               ref.adaptive_avg_pool2d_backward(dy, x.shape, data_format="NCHW"), rtol=1e-6,
                               atol=1e-7)
    assert planes_to_pixels_calls == [(1, n * c, rows * 4)] * 2


# ------------------------------------------------------------------------ LRN

LRN_BETAS = (0.75, 0.5, 1.0, 0.6)  # the three special-cased and a generic one


def assert_same_lrn(x, dy, fmt, **kw):
    """lrn and lrn_backward against the reference, tolerances for the dtype."""
    before_x, before_dy = x.copy(), dy.copy()
    y = fast.lrn(x, data_format=fmt, **kw)
    y_ref = ref.lrn(x, data_format=fmt, **kw)
    dx = fast.lrn_backward(dy, x, data_format=fmt, **kw)
    dx_ref = ref.lrn_backward(dy, x, data_format=fmt, **kw)
    for got, want in ((y, y_ref), (dx, dx_ref)):
        assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
    f32 = y.dtype == np.float32
    # y: a few roundings per element. dx: a difference of two terms, so the
    # error is relative to the size of the terms (~|dy| / s ** beta), not of dx.
    np.testing.assert_allclose(y, y_ref, rtol=2e-5 if f32 else 1e-12, atol=0)
    scale = float(np.abs(dx_ref).max(initial=0.0) + np.abs(dy).max(initial=0.0))
    np.testing.assert_allclose(dx, dx_ref, rtol=0, atol=(2e-5 if f32 else 1e-12) * scale)
    np.testing.assert_array_equal(x, before_x)
    np.testing.assert_array_equal(dy, before_dy)
    return y, dx


def lrn_params():
    # (N, H, W, C): C around the vector width, 1, and larger than the radius.
    shapes = [(2, 3, 4, 7), (1, 2, 3, 16), (3, 2, 2, 1), (1, 3, 5, 40), (2, 1, 3, 2)]
    for shape in shapes:
        c = shape[3]
        for radius in sorted({0, 1, 2, 5, c + 3}):
            for fmt in FORMATS:
                for dtype_id in DTYPES:
                    yield pytest.param(
                        shape, radius, fmt, dtype_id,
                        id=f"n{shape[0]}-{shape[1]}x{shape[2]}-c{c}-r{radius}-{fmt.lower()}-{dtype_id}")


@pytest.mark.parametrize("beta", LRN_BETAS, ids=lambda b: f"beta{b}")
@pytest.mark.parametrize("shape, radius, fmt, dtype_id", list(lrn_params()))
def test_lrn_matches_reference(shape, radius, fmt, dtype_id, beta):
    dtype = DTYPES[dtype_id]
    rng = np.random.default_rng(shape[3] * 10 + radius)
    x = in_format(rng.standard_normal(shape).astype(dtype), fmt)
    dy = in_format(rng.standard_normal(shape).astype(dtype), fmt)
    # alpha = 0.5: a window one channel off changes y by ~10%, far above rounding.
    assert_same_lrn(x, dy, fmt, depth_radius=radius, bias=1.0, alpha=0.5, beta=beta)
    assert_same_lrn(x, dy, fmt, depth_radius=radius, bias=2.0, alpha=1e-4, beta=beta)


@pytest.mark.parametrize("fmt", FORMATS)
def test_lrn_window_is_exactly_radius_channels_by_hand(fmt):
    # One-hot x: y[c] = x[c] / (1 + alpha * x[c] ** 2) ** beta at the hot channel,
    # zero elsewhere; with x at channel 3 only channels 1..5 see it (radius 2).
    x = np.zeros((1, 1, 1, 8))
    x[..., 3] = 2.0
    dy = np.ones_like(x)
    y = fast.lrn(in_format(x, fmt), depth_radius=2, bias=1.0, alpha=0.5, beta=1.0, data_format=fmt)
    y = y if fmt == "NHWC" else y.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y.ravel(), [0, 0, 0, 2 / 3, 0, 0, 0, 0], rtol=1e-15)
    dx = fast.lrn_backward(in_format(dy, fmt), in_format(x, fmt), depth_radius=2, bias=1.0,
                           alpha=0.5, beta=1.0, data_format=fmt)
    dx = dx if fmt == "NHWC" else dx.transpose(0, 2, 3, 1)
    # dy = 1: dx[j] = 1 / s[j] - x[j] * sum(x[c] / s[c] ** 2 for c in j's window),
    # with s = 3 on channels 1..5 (they see x[3] = 2) and 1 elsewhere.
    np.testing.assert_allclose(dx.ravel(), [1, 1 / 3, 1 / 3, 1 / 3 - 4 / 9, 1 / 3, 1 / 3, 1, 1],
                               rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype_id", list(DTYPES))
def test_lrn_mixed_magnitudes_no_cancellation(fmt, dtype_id):
    """Huge and tiny channels side by side: a running add-and-subtract window
    sum loses the tiny ones in float32; the direct sum must not."""
    dtype = DTYPES[dtype_id]
    rng = np.random.default_rng(5)
    shape = (2, 3, 3, 24)
    x = rng.standard_normal(shape) * 1e-2
    x[..., :4] *= 1e5  # squares ~1e6 next to squares ~1e-4
    x = x.astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    assert_same_lrn(in_format(x, fmt), in_format(dy, fmt), fmt,
                    depth_radius=5, bias=1e-3, alpha=0.5, beta=0.75)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (2, 3, 4, 0)], ids=["batch0", "channels0"])
def test_lrn_empty_batch_and_channels(shape, fmt):
    x = in_format(np.ones(shape, np.float32), fmt)
    y, dx = assert_same_lrn(x, x, fmt, depth_radius=2)
    assert y.shape == dx.shape == x.shape


class _FilledScratch:
    """numpy, except that ``empty`` fills float arrays with ``fill`` and records them."""

    def __init__(self, fill):
        self.fill, self.made = fill, []

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, shape, dtype=float):
        a = np.empty(shape, dtype=dtype)
        if a.dtype.kind == "f":
            a.fill(self.fill)
            self.made.append(a)
        return a


# NCHW blocks of max(2048 // C, 64) pixels per sample: (2, 3, 4, 7) is one short
# block per sample, (1, 9, 10, 40) a full one and a short one. NHWC blocks of
# 2048 // C pixels of all samples: (2, 10, 15, 7) has a short last block.
@pytest.mark.parametrize("fmt, shape", [("NCHW", (2, 3, 4, 7)), ("NCHW", (1, 9, 10, 40)), ("NHWC", (2, 10, 15, 7))],
                         ids=["nchw-short", "nchw-full-and-short", "nhwc-short"])
def test_lrn_never_reads_unwritten_scratch(monkeypatch, fmt, shape):
    # The LRN kernel's body run as Python (its helpers compiled unless the JIT
    # is off), its np.empty scratch filled with NaN, huge or zero values: a
    # window sum over an entry the kernel did not write would show as NaN
    # left in the scratch, as a result depending on the fill, or (without the
    # JIT) as an overflow warning. The merged LRN kernel once left a short
    # NCHW block's scratch unwritten between its channel rows and summed it.
    import types

    from numbaconv._kernels import normalization as lrn_kernels

    kernel = lrn_kernels.local_response_norm
    body = getattr(kernel, "py_func", kernel)
    rng = np.random.default_rng(5)
    x = in_format(rng.standard_normal(shape).astype(np.float32), fmt)
    dy = in_format(rng.standard_normal(shape).astype(np.float32), fmt)
    kw = dict(depth_radius=2, bias=1.0, alpha=0.5, beta=0.75, data_format=fmt)
    results = []
    for fill in (np.nan, 3e38, -3e38, 0.0):
        scratch = _FilledScratch(fill)
        copy = types.FunctionType(body.__code__, {**vars(lrn_kernels), "np": scratch}, body.__name__,
                                  body.__defaults__, body.__closure__)
        monkeypatch.setattr(lrn_kernels, "local_response_norm", copy)
        results.append((fast.lrn(x, **kw), fast.lrn_backward(dy, x, **kw)))
        monkeypatch.undo()
        assert scratch.made and not any(np.isnan(a).any() for a in scratch.made), f"unwritten scratch (fill {fill})"
    for y, dx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])
    np.testing.assert_allclose(results[0][0], ref.lrn(x, **kw), rtol=2e-5, atol=0)
    dx_ref = ref.lrn_backward(dy, x, **kw)
    scale = float(np.abs(dx_ref).max() + np.abs(dy).max())
    np.testing.assert_allclose(results[0][1], dx_ref, rtol=0, atol=2e-5 * scale)


def test_lrn_huge_radius_and_non_contiguous_read_only_inputs():
    rng = np.random.default_rng(11)
    big = rng.standard_normal((2, 6, 5, 12)).astype(np.float32)
    read_only = big.copy()
    read_only.setflags(write=False)
    for fmt in FORMATS:
        for x in (in_format(big, fmt)[:, ::2, 1:], np.asfortranarray(in_format(big, fmt)), read_only):
            dy = np.asfortranarray(rng.standard_normal(x.shape).astype(np.float32))
            assert_same_lrn(x, dy, fmt, depth_radius=10 ** 30, alpha=0.5, beta=0.75)


# ------------------------------------------------------------ property tests


@st.composite
def pool_problems(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    padding = draw(st.one_of(
        st.sampled_from(["SAME", "VALID"]),
        st.tuples(st.tuples(st.integers(0, kh - 1), st.integers(0, kh - 1)),
                  st.tuples(st.integers(0, kw - 1), st.integers(0, kw - 1))),
    ))
    if padding == "VALID" and (h < kh or w < kw):
        padding = "SAME"
    shape = (draw(st.integers(0, 3)), h, w, draw(st.integers(1, 9)))
    if isinstance(padding, tuple):
        (t, b), (l, r) = padding
        if h + t + b < kh or w + l + r < kw:
            padding = "SAME"
    return shape, (kh, kw), stride, padding


@given(problem=pool_problems(), fmt=st.sampled_from(FORMATS), dtype_id=st.sampled_from(list(DTYPES)),
       kind=st.sampled_from(list(KINDS)), seed=st.integers(0, 2 ** 16))
def test_max_pool_property_matches_reference(problem, fmt, dtype_id, kind, seed):
    shape, pool, stride, padding = problem
    rng = np.random.default_rng(seed)
    x = in_format(KINDS[kind](rng, shape, DTYPES[dtype_id]), fmt)
    y, argmax = assert_same_pool(x, fmt, pool, stride, padding)
    dy = rng.standard_normal(y.shape).astype(DTYPES[dtype_id])
    assert_same_pool_backward(dy, argmax, x.shape, fmt)


@given(n=st.integers(0, 3), c=st.integers(1, 20), radius=st.integers(0, 25),
       beta=st.one_of(st.sampled_from(LRN_BETAS), st.floats(0.05, 2.0)),
       alpha=st.sampled_from([1e-4, 0.1, 0.5, 1.0]), bias=st.sampled_from([0.5, 1.0, 2.0]),
       fmt=st.sampled_from(FORMATS), dtype_id=st.sampled_from(list(DTYPES)),
       seed=st.integers(0, 2 ** 16))
def test_lrn_property_matches_reference(n, c, radius, beta, alpha, bias, fmt, dtype_id, seed):
    rng = np.random.default_rng(seed)
    shape = (n, 2, 3, c)
    x = in_format(rng.standard_normal(shape).astype(DTYPES[dtype_id]), fmt)
    dy = in_format(rng.standard_normal(shape).astype(DTYPES[dtype_id]), fmt)
    assert_same_lrn(x, dy, fmt, depth_radius=radius, bias=bias, alpha=alpha, beta=beta)


# ------------------------------------------------ repeatability and threads


def run_all_ops(fmt, dtype):
    """Every op once, with overlapping windows and a radius that spans blocks."""
    rng = np.random.default_rng(8)
    x = in_format(rng.standard_normal((3, 11, 10, 21)).astype(dtype), fmt)
    y, argmax = fast.max_pool2d_argmax(x, 3, stride=1, padding="SAME", data_format=fmt)
    dy = rng.standard_normal(y.shape).astype(dtype)
    return (
        y, argmax, fast.max_pool2d(x, 3, stride=1, padding="SAME", data_format=fmt),
        fast.max_pool2d_backward(dy, argmax, x.shape, data_format=fmt),
        fast.lrn(x, depth_radius=3, alpha=0.5, beta=0.75, data_format=fmt),
        fast.lrn_backward(x, x, depth_radius=3, alpha=0.5, beta=0.75, data_format=fmt),
    )


def assert_bit_identical(first, second):
    for a, b in zip(first, second, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype_id", list(DTYPES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_repeated_calls_are_bit_identical(fmt, dtype_id):
    assert_bit_identical(run_all_ops(fmt, DTYPES[dtype_id]), run_all_ops(fmt, DTYPES[dtype_id]))


@pytest.fixture
def restore_threads():
    threads = numba.get_num_threads()
    yield
    numba.set_num_threads(threads)


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_and_two_threads_give_identical_results(fmt, restore_threads):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba was started with a single thread (NUMBA_NUM_THREADS=1)")
    numba.set_num_threads(1)
    serial = run_all_ops(fmt, np.float32)
    numba.set_num_threads(2)
    assert_bit_identical(serial, run_all_ops(fmt, np.float32))
    # A batch of one, overlapping windows.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 8, 8, 64)).astype(np.float32)
    y, argmax = fast.max_pool2d_argmax(x, 3, stride=1, padding="SAME")
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        results.append([fast.max_pool2d_backward(y, argmax, x.shape)])
    assert_bit_identical(*results)


# ------------------------------------------------------------ large shapes


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_benchmark_shape_matches_reference(fmt):
    """The seed benchmark's shape: (128, 28, 28, 16) float32."""
    rng = np.random.default_rng(128)
    x = in_format(rng.standard_normal((128, 28, 28, 16)).astype(np.float32), fmt)
    y, argmax = assert_same_pool(x, fmt, 2, None, "VALID")
    assert_same_pool_backward(rng.standard_normal(y.shape).astype(np.float32), argmax, x.shape, fmt)
    dy = in_format(rng.standard_normal((128, 28, 28, 16)).astype(np.float32), fmt)
    for params in (dict(depth_radius=5, bias=1.0, alpha=1.0, beta=0.5),
                   dict(depth_radius=5, bias=1.0, alpha=1e-4, beta=0.75)):
        assert_same_lrn(x, dy, fmt, **params)


@pytest.mark.slow
def test_large_channels_and_radius_matches_reference():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 9, 9, 300)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    for fmt in FORMATS:
        assert_same_lrn(in_format(x, fmt), in_format(dy, fmt), fmt, depth_radius=40, alpha=0.5,
                        beta=0.75)
        y, argmax = assert_same_pool(in_format(x, fmt), fmt, 3, 2, "SAME")
        dy_pool = rng.standard_normal(y.shape).astype(np.float32)
        assert_same_pool_backward(dy_pool, argmax, in_format(x, fmt).shape, fmt)


def test_pool_kernels_mark_a_window_entirely_in_padding():
    # Validation never lets such a window through (each padding side is smaller
    # than the window); called directly, the kernels still stay in bounds and
    # mark it: -inf, and no position (-1) for the argmax.
    from numbaconv._kernels import pooling as kernels

    x = np.arange(2 * 3 * 3 * 2, dtype=np.float64).reshape(2, 3, 3, 2)
    kh = kw = sh = sw = 2
    dh = dw = 1
    pt, pl = 3, 0  # output row 0 covers padded rows -3 and -2: no input row
    shape = (2, 3, 1, 2)  # OH = (3 + 3 - 2) // 2 + 1, OW = (3 - 2) // 2 + 1
    y, y_only, argmax = np.empty(shape), np.empty(shape), np.empty(shape, np.int64)
    kernels.max_pool2d_nhwc(x, kh, kw, sh, sw, dh, dw, pt, pl, 1.0, y, argmax)
    kernels.max_pool2d_nhwc(x, kh, kw, sh, sw, dh, dw, pt, pl, 1.0, y_only, np.empty((0,) * 4, np.int64))
    assert np.all(y[:, 0] == -np.inf) and np.all(y_only[:, 0] == -np.inf)
    assert np.all(argmax[:, 0] == -1)
    # The other rows are ordinary windows, clipped to the input.
    for oh, rows in ((1, slice(0, 1)), (2, slice(1, 3))):
        expected = x[:, rows, 0:2, :].max(axis=(1, 2))
        np.testing.assert_array_equal(y[:, oh, 0], expected)
        np.testing.assert_array_equal(y_only[:, oh, 0], expected)
