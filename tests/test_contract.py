"""The contract's edges (/work/shared/design/api.md), against naive.py or hand-computed values.

Max-pool ties, NaN and padding; SAME placement and the output-size formulas;
the dtype rules for every op; array-likes, views, read-only inputs, inputs
left untouched and fresh C-contiguous results; empty batches; LRN's PyTorch
mapping and window; the two seed bugs (002's col2im, 003's LRN window).

``OPS`` below (one small call of every public op) is shared with
test_validation.py.
"""
from typing import Callable, NamedTuple

import numpy as np
import pytest

import naive

FORMATS = ["NHWC", "NCHW"]


def in_format(a, fmt):
    """NHWC test data (or an NHWC shape tuple) in the given data format."""
    return a if fmt == "NHWC" else naive.to_nchw(a)


def from_format(a, fmt):
    return a if fmt == "NHWC" else naive.to_nhwc(a)


# ===================================================================== max pool


def pool_nhwc(impl, x, pool, fmt, **kw):
    """max_pool2d_argmax on NHWC data through the given format; results back in NHWC."""
    y, argmax = impl.max_pool2d_argmax(in_format(x, fmt), pool, data_format=fmt, **kw)
    return from_format(y, fmt), from_format(argmax, fmt)


def backward_nhwc(impl, dy, argmax, x_shape, fmt):
    dx = impl.max_pool2d_backward(in_format(dy, fmt), in_format(argmax, fmt),
                                  in_format(tuple(x_shape), fmt), data_format=fmt)
    return from_format(dx, fmt)


POOL_CONFIGS = {
    "2x2_disjoint": (2, dict()),
    "3x3_s2_pad1_overlap": (3, dict(stride=2, padding=1)),
    "2x3_s1_same": ((2, 3), dict(stride=1, padding="SAME")),
    "3x2_asym_pad": ((3, 2), dict(stride=(2, 1), padding=((2, 0), (0, 1)))),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_pool_tie_hand_case_first_max_alone_gets_gradient(impl, fmt):
    x = np.array([[1, 5, 2, 5], [5, 5, 0, 1]], dtype=np.float64).reshape(1, 2, 4, 1)
    y, argmax = pool_nhwc(impl, x, 2, fmt)
    np.testing.assert_array_equal(y.ravel(), [5, 5])
    np.testing.assert_array_equal(argmax.ravel(), [1, 3])  # (0, 1) and (0, 3): first in row-major
    dx = backward_nhwc(impl, np.array([0.7, -1.3]).reshape(1, 1, 2, 1), argmax, x.shape, fmt)
    np.testing.assert_array_equal(dx.reshape(2, 4), [[0, 0.7, 0, -1.3], [0, 0, 0, 0]])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("config", list(POOL_CONFIGS))
def test_max_pool_constant_input_first_position_wins(impl, config, fmt):
    pool, kw = POOL_CONFIGS[config]
    x = np.full((2, 5, 6, 2), 3.0)
    y, argmax = pool_nhwc(impl, x, pool, fmt, **kw)
    y_naive, argmax_naive = naive.max_pool2d_argmax(x, pool, **kw)
    np.testing.assert_array_equal(y, y_naive)
    np.testing.assert_array_equal(argmax, argmax_naive)
    dy = np.random.default_rng(0).normal(size=y.shape)
    dx = backward_nhwc(impl, dy, argmax, x.shape, fmt)
    np.testing.assert_allclose(dx, naive.max_pool2d_backward(dy, argmax_naive, x.shape),
                               rtol=1e-14, atol=0)
    if config == "2x2_disjoint":
        # Each window's top-left cell wins, and no other cell gets anything.
        rows, cols = np.meshgrid(np.arange(2) * 2, np.arange(3) * 2, indexing="ij")
        np.testing.assert_array_equal(argmax[0, :, :, 0], rows * 6 + cols)
        assert np.count_nonzero(dx) == dy.size
        np.testing.assert_array_equal(dx[:, 0:4:2, 0:6:2, :], dy)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("config", list(POOL_CONFIGS))
def test_max_pool_small_integer_ties_match_naive(impl, config, fmt):
    pool, kw = POOL_CONFIGS[config]
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(2, 6, 7, 3)).astype(np.float64)
    y, argmax = pool_nhwc(impl, x, pool, fmt, **kw)
    y_naive, argmax_naive = naive.max_pool2d_argmax(x, pool, **kw)
    np.testing.assert_array_equal(y, y_naive)
    np.testing.assert_array_equal(argmax, argmax_naive)
    dy = rng.normal(size=y.shape)
    np.testing.assert_allclose(backward_nhwc(impl, dy, argmax, x.shape, fmt),
                               naive.max_pool2d_backward(dy, argmax_naive, x.shape),
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_pool_nan_hand_case(impl, fmt):
    nan = np.nan
    x = np.array([[1, nan, 3, 4, 0, -1],
                  [nan, 2, 9, nan, 5, 2]]).reshape(1, 2, 6, 1)
    y, argmax = pool_nhwc(impl, x, 2, fmt)
    np.testing.assert_array_equal(y.ravel(), [nan, nan, 5])
    # The first NaN in row-major order: (0, 1) before (1, 0); (1, 3) even though 9 came first.
    np.testing.assert_array_equal(argmax.ravel(), [1, 9, 10])
    assert argmax.dtype == np.int64
    dx = backward_nhwc(impl, np.array([1.5, -2.0, 0.25]).reshape(1, 1, 3, 1), argmax, x.shape, fmt)
    expected = np.zeros(12)
    expected[[1, 9, 10]] = [1.5, -2.0, 0.25]
    np.testing.assert_array_equal(dx.ravel(), expected)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("config", list(POOL_CONFIGS))
def test_max_pool_nan_windows_match_naive(impl, config, fmt):
    pool, kw = POOL_CONFIGS[config]
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 7, 3))
    x[rng.random(x.shape) < 0.15] = np.nan
    x[0, 0, 0, 0] = -np.inf
    y, argmax = pool_nhwc(impl, x, pool, fmt, **kw)
    y_naive, argmax_naive = naive.max_pool2d_argmax(x, pool, **kw)
    assert np.isnan(y_naive).any() and not np.isnan(y_naive).all()
    np.testing.assert_array_equal(y, y_naive)
    np.testing.assert_array_equal(argmax, argmax_naive)


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_pool_padding_never_wins_hand_cases(impl, fmt):
    negative = np.array([[-4.0, -3.0], [-2.0, -1.0]]).reshape(1, 2, 2, 1)
    y, argmax = pool_nhwc(impl, negative, 2, fmt, stride=1, padding=1)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-4, -3, -3], [-2, -1, -1], [-2, -1, -1]])
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 1, 1], [2, 3, 3], [2, 3, 3]])

    minus_inf = np.full((1, 2, 2, 1), -np.inf)
    y, argmax = pool_nhwc(impl, minus_inf, 2, fmt, stride=1, padding=1)
    assert np.all(y == -np.inf)
    # The first position inside the input wins, never a padded one.
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]])
    dx = backward_nhwc(impl, np.ones((1, 3, 3, 1)), argmax, minus_inf.shape, fmt)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[4, 2], [2, 1]])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("config", ["3x3_s2_pad1_overlap", "2x3_s1_same", "3x2_asym_pad"])
@pytest.mark.parametrize("fill", ["negative", "minus_inf"])
def test_max_pool_padding_never_wins(impl, config, fill, fmt):
    pool, kw = POOL_CONFIGS[config]
    rng = np.random.default_rng(3)
    shape = (2, 5, 6, 2)
    x = -1.0 - rng.random(shape) if fill == "negative" else np.full(shape, -np.inf)
    y, argmax = pool_nhwc(impl, x, pool, fmt, **kw)
    y_naive, argmax_naive = naive.max_pool2d_argmax(x, pool, **kw)
    np.testing.assert_array_equal(y, y_naive)
    np.testing.assert_array_equal(argmax, argmax_naive)
    assert np.all(y < 0)
    plane = x.transpose(0, 3, 1, 2).reshape(2, 2, -1)
    won = np.take_along_axis(plane, argmax.transpose(0, 3, 1, 2).reshape(2, 2, -1), axis=2)
    np.testing.assert_array_equal(won, y.transpose(0, 3, 1, 2).reshape(2, 2, -1))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("config", list(POOL_CONFIGS))
def test_max_pool_argmax_is_flat_index_into_unpadded_plane(impl, config, fmt):
    pool, kw = POOL_CONFIGS[config]
    rng = np.random.default_rng(4)
    x_nhwc = rng.permutation(np.linspace(-1, 1, 2 * 5 * 7 * 3)).reshape(2, 5, 7, 3)
    x = in_format(x_nhwc, fmt)
    y, argmax = impl.max_pool2d_argmax(x, pool, data_format=fmt, **kw)
    assert argmax.dtype == np.int64
    assert argmax.shape == y.shape
    np.testing.assert_array_equal(y, impl.max_pool2d(x, pool, data_format=fmt, **kw))
    y_naive, argmax_naive = naive.max_pool2d_argmax(x_nhwc, pool, **kw)
    np.testing.assert_array_equal(from_format(argmax, fmt), argmax_naive)
    np.testing.assert_array_equal(from_format(y, fmt), y_naive)
    # h * W + w with W = 7 (not H = 5), per sample and channel
    plane = x_nhwc.transpose(0, 3, 1, 2).reshape(2, 3, 35)
    won = np.take_along_axis(plane, argmax_naive.transpose(0, 3, 1, 2).reshape(2, 3, -1), axis=2)
    np.testing.assert_array_equal(won, y_naive.transpose(0, 3, 1, 2).reshape(2, 3, -1))


def test_max_pool_argmax_hand_case_uses_width(impl):
    x = np.array([[0, 1, 2], [3, 9, 4]], dtype=np.float64).reshape(1, 2, 3, 1)
    y, argmax = impl.max_pool2d_argmax(x, (2, 3))
    assert y.item() == 9 and argmax.item() == 1 * 3 + 1


# ============================================================ SAME, output sizes


@pytest.mark.parametrize("fmt", FORMATS)
def test_conv2d_same_extra_row_and_column_at_bottom_right(impl, fmt):
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    w = np.ones((2, 2, 1, 1))
    wf = w if fmt == "NHWC" else naive.to_oihw(w)
    y = from_format(impl.conv2d(in_format(x, fmt), wf, padding="SAME", data_format=fmt), fmt)
    expected = [[10, 14, 18, 10],
                [26, 30, 34, 18],
                [42, 46, 50, 26],
                [25, 27, 29, 15]]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_pool_same_stride2_odd_and_even_sizes_hand_cases(impl, fmt):
    odd = np.arange(25, dtype=np.float64).reshape(1, 5, 5, 1)
    y, _ = pool_nhwc(impl, odd, 2, fmt, stride=2, padding="SAME")
    # rows/cols {0, 1}, {2, 3}, {4}: the padded cell is below/right of 4
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
    even = np.arange(36, dtype=np.float64).reshape(1, 6, 6, 1)
    y, _ = pool_nhwc(impl, even, 3, fmt, stride=2, padding="SAME")
    # rows/cols {0, 1, 2}, {2, 3, 4}, {4, 5}
    np.testing.assert_array_equal(y[0, :, :, 0], [[14, 16, 17], [26, 28, 29], [32, 34, 35]])


# (size, kernel, stride, dilation) -> (top, bottom), worked out by hand from the contract.
SAME_CASES = {
    (5, 3, 2, 1): (1, 1),
    (6, 3, 2, 1): (0, 1),
    (5, 2, 2, 1): (0, 1),
    (6, 4, 2, 1): (1, 1),
    (7, 4, 2, 1): (1, 2),
    (4, 4, 1, 1): (1, 2),
    (8, 3, 3, 1): (0, 1),
    (4, 1, 2, 1): (0, 0),
    (6, 3, 1, 2): (2, 2),
    (5, 2, 1, 3): (1, 2),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(SAME_CASES), ids=lambda c: "size{}_k{}_s{}_d{}".format(*c))
def test_same_padding_values(impl, case, fmt):
    size, k, s, d = case
    top, bottom = SAME_CASES[case]
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, size, size + 1, 2))
    w_pad = naive.same_padding(size + 1, k, s, d)  # width: the same rule, another size
    explicit = ((top, bottom), w_pad)
    w = rng.normal(size=(k, k, 2, 3))
    wf = w if fmt == "NHWC" else naive.to_oihw(w)
    kw = dict(stride=s, dilation=d)
    y = impl.conv2d(in_format(x, fmt), wf, padding="SAME", data_format=fmt, **kw)
    np.testing.assert_allclose(from_format(y, fmt), naive.conv2d(x, w, padding=explicit, **kw),
                               rtol=1e-12, atol=1e-12)
    cols = impl.im2col(in_format(x, fmt), k, padding="same", data_format=fmt, **kw)
    np.testing.assert_array_equal(cols, naive.im2col(x, k, padding=explicit, **kw))
    if d == 1:
        y, argmax = pool_nhwc(impl, x, k, fmt, stride=s, padding="Same")
        y_naive, argmax_naive = naive.max_pool2d_argmax(x, k, stride=s, padding=explicit)
        np.testing.assert_array_equal(y, y_naive)
        np.testing.assert_array_equal(argmax, argmax_naive)


# (size, kernel, stride, dilation, before, after)
OUT_SIZE_CASES = [
    (5, 3, 1, 1, 0, 0), (5, 3, 2, 1, 0, 0), (6, 3, 2, 1, 0, 0), (7, 2, 3, 1, 1, 0),
    (7, 3, 2, 2, 1, 2), (4, 2, 5, 1, 0, 1), (3, 4, 1, 1, 1, 0), (1, 1, 1, 1, 0, 0),
    (2, 2, 2, 1, 3, 3), (9, 3, 4, 3, 0, 2),
]


def expected_out(size, k, s, d, before, after):
    return (size + before + after - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("case", OUT_SIZE_CASES, ids=lambda c: "size{}_k{}_s{}_d{}_pad{}-{}".format(*c))
def test_output_size_formula(impl, case):
    size, k, s, d, before, after = case
    out = expected_out(*case)
    x = np.ones((2, size, 3, 2))
    kw = dict(stride=(s, 1), dilation=(d, 1), padding=((before, after), (0, 0)))
    y = impl.conv2d(x, np.ones((k, 1, 2, 3)), **kw)
    assert y.shape == (2, out, 3, 3)
    assert impl.im2col(x, (k, 1), **kw).shape == (2 * out * 3, k * 2)
    nchw = impl.conv2d(np.ones((2, 2, 3, size)), np.ones((3, 2, 1, k)), data_format="NCHW",
                       stride=(1, s), dilation=(1, d), padding=((0, 0), (before, after)))
    assert nchw.shape == (2, 3, 3, out)
    if d == 1 and max(before, after) < k:
        y = impl.max_pool2d(x, (k, 1), stride=(s, 1), padding=((before, after), (0, 0)))
        assert y.shape == (2, out, 3, 2)


# (size, kernel, stride, dilation, before, after, output_padding)
TRANSPOSE_SIZE_CASES = [
    (3, 3, 2, 1, 1, 1, 1), (3, 3, 2, 1, 1, 1, 0), (4, 4, 2, 1, 1, 1, 0), (2, 3, 3, 1, 0, 0, 2),
    (3, 2, 1, 2, 0, 1, 1), (5, 3, 2, 2, 2, 0, 1), (1, 1, 1, 1, 0, 0, 0), (2, 2, 4, 1, 1, 0, 3),
]


@pytest.mark.parametrize("case", TRANSPOSE_SIZE_CASES,
                         ids=lambda c: "size{}_k{}_s{}_d{}_pad{}-{}_op{}".format(*c))
def test_transpose_output_size_formula(impl, case):
    size, k, s, d, before, after, op = case
    out = (size - 1) * s - before - after + d * (k - 1) + 1 + op
    x = np.ones((2, size, 2, 3))
    w = np.ones((k, 1, 2, 3))
    kw = dict(stride=(s, 1), dilation=(d, 1), padding=((before, after), (0, 0)), output_padding=(op, 0))
    assert impl.conv2d_transpose(x, w, **kw).shape == (2, out, 2, 2)
    dx, dw, db = impl.conv2d_transpose_backward(np.ones((2, out, 2, 2)), x, w, **kw)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, (2,))
    if op < s:  # the forward conv of the same geometry maps the output back to the input size
        assert expected_out(out, k, s, d, before, after) == size


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size,k,s,d", [(3, 3, 2, 1), (4, 2, 2, 1), (3, 5, 2, 1), (2, 1, 3, 1),
                                        (3, 3, 1, 2), (2, 4, 3, 1), (3, 2, 2, 2)])
def test_transpose_same_output_is_input_times_stride(impl, size, k, s, d, fmt):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1, size, size + 1, 3))
    w = rng.normal(size=(k, k, 2, 3))
    wf = w if fmt == "NHWC" else naive.to_oihw(w)
    y = from_format(impl.conv2d_transpose(in_format(x, fmt), wf, stride=s, dilation=d,
                                          padding="SAME", data_format=fmt), fmt)
    assert y.shape == (1, size * s, (size + 1) * s, 2)
    np.testing.assert_allclose(y, naive.conv2d_transpose(x, w, stride=s, dilation=d, padding="SAME"),
                               rtol=1e-12, atol=1e-12)


# ================================================================ one call per op


class OpCase(NamedTuple):
    """One small call of a public op.

    arrays: argument name -> (kind, NHWC shape at batch size 2); kind is
    "data" (N, H, W, C), "filter" (HWIO), "vector", "cols" (rows scale with
    the batch) or "index" (argmax, laid out like data).
    call(impl, fmt, n, **arrays): the call; n is the batch size (for x_shape).
    batched: for each output, whether its first axis scales with the batch.
    """

    arrays: dict
    call: Callable
    batched: tuple


X, W = (2, 5, 6, 2), (3, 3, 2, 3)  # conv: stride 2, padding 1 -> (2, 3, 3, 3)
XT = (2, 3, 3, 3)  # transpose: stride 2, padding 1, output_padding 1 -> (2, 6, 6, 2)
CONV = dict(stride=2, padding=1)
TCONV = dict(stride=2, padding=1, output_padding=1)
POOL = dict(stride=2, padding=1)  # pool 3 on (5, 6) -> (3, 3)
LRN = dict(depth_radius=2, bias=1.0, alpha=0.5, beta=0.75)
# pool 3 on (5, 6) -> (3, 4): the last column window is partial and reaches past the padding
AVG = dict(stride=2, padding=1, ceil_mode=True, count_include_pad=True)
DILATED = dict(stride=1, padding=1, dilation=2, ceil_mode=True)  # pool 2 on (5, 6) -> (4, 5)


def shape_for(n, fmt):
    return in_format((n, 5, 6, 2), fmt)


OPS = {
    "conv2d": OpCase(
        {"x": ("data", X), "w": ("filter", W), "b": ("vector", (3,))},
        lambda m, fmt, n, x, w, b: m.conv2d(x, w, b, data_format=fmt, **CONV), (True,)),
    "conv2d_backward": OpCase(
        {"dy": ("data", (2, 3, 3, 3)), "x": ("data", X), "w": ("filter", W)},
        lambda m, fmt, n, dy, x, w: m.conv2d_backward(dy, x, w, data_format=fmt, **CONV),
        (True, False, False)),
    "conv2d_transpose": OpCase(
        {"x": ("data", XT), "w": ("filter", W), "b": ("vector", (2,))},
        lambda m, fmt, n, x, w, b: m.conv2d_transpose(x, w, b, data_format=fmt, **TCONV), (True,)),
    "conv2d_transpose_backward": OpCase(
        {"dy": ("data", (2, 6, 6, 2)), "x": ("data", XT), "w": ("filter", W)},
        lambda m, fmt, n, dy, x, w: m.conv2d_transpose_backward(dy, x, w, data_format=fmt, **TCONV),
        (True, False, False)),
    "im2col": OpCase(
        {"x": ("data", X)},
        lambda m, fmt, n, x: m.im2col(x, 3, data_format=fmt, **CONV), (True,)),
    "col2im": OpCase(
        {"cols": ("cols", (18, 18))},
        lambda m, fmt, n, cols: m.col2im(cols, shape_for(n, fmt), 3, data_format=fmt, **CONV),
        (True,)),
    "max_pool2d": OpCase(
        {"x": ("data", X)},
        lambda m, fmt, n, x: m.max_pool2d(x, 3, data_format=fmt, **POOL), (True,)),
    "max_pool2d_argmax": OpCase(
        {"x": ("data", X)},
        lambda m, fmt, n, x: m.max_pool2d_argmax(x, 3, data_format=fmt, **POOL), (True, True)),
    "max_pool2d_backward": OpCase(
        {"dy": ("data", (2, 3, 3, 2)), "argmax": ("index", (2, 3, 3, 2))},
        lambda m, fmt, n, dy, argmax: m.max_pool2d_backward(dy, argmax, shape_for(n, fmt),
                                                            data_format=fmt),
        (True,)),
    "max_pool2d_dilated": OpCase(
        {"x": ("data", X)},
        lambda m, fmt, n, x: m.max_pool2d_argmax(x, 2, data_format=fmt, **DILATED), (True, True)),
    "max_unpool2d": OpCase(
        {"y": ("data", (2, 3, 3, 2)), "argmax": ("index", (2, 3, 3, 2))},
        lambda m, fmt, n, y, argmax: m.max_unpool2d(y, argmax, shape_for(n, fmt), data_format=fmt),
        (True,)),
    "avg_pool2d": OpCase(
        {"x": ("data", X)},
        lambda m, fmt, n, x: m.avg_pool2d(x, 3, data_format=fmt, **AVG), (True,)),
    "avg_pool2d_backward": OpCase(
        {"dy": ("data", (2, 3, 4, 2))},
        lambda m, fmt, n, dy: m.avg_pool2d_backward(dy, shape_for(n, fmt), 3, data_format=fmt, **AVG),
        (True,)),
    "adaptive_avg_pool2d": OpCase(
        {"x": ("data", X)},
        lambda m, fmt, n, x: m.adaptive_avg_pool2d(x, (2, 4), data_format=fmt), (True,)),
    "adaptive_avg_pool2d_backward": OpCase(
        {"dy": ("data", (2, 2, 4, 2))},
        lambda m, fmt, n, dy: m.adaptive_avg_pool2d_backward(dy, shape_for(n, fmt), data_format=fmt),
        (True,)),
    "lrn": OpCase(
        {"x": ("data", (2, 3, 4, 5))},
        lambda m, fmt, n, x: m.lrn(x, data_format=fmt, **LRN), (True,)),
    "lrn_backward": OpCase(
        {"dy": ("data", (2, 3, 4, 5)), "x": ("data", (2, 3, 4, 5))},
        lambda m, fmt, n, dy, x: m.lrn_backward(dy, x, data_format=fmt, **LRN), (True,)),
}
DATA_KINDS = ("data", "filter", "vector", "cols")


def make_arrays(op, fmt, rng, n=2, integers=False):
    """Float64 arguments for OPS[op] (argmax int64) at batch size n, in the given format.

    With integers=True the values are small integers, so any dtype holds them exactly.
    """
    arrays = {}
    for name, (kind, shape) in OPS[op].arrays.items():
        if kind in ("data", "index"):
            shape = (n,) + shape[1:]
        elif kind == "cols":
            shape = (shape[0] * n // 2,) + shape[1:]
        if kind == "index":
            a = rng.integers(0, 30, size=shape)  # the (5, 6) plane of x_shape
        elif integers:
            a = rng.integers(-3, 4, size=shape).astype(np.float64)
        else:
            a = rng.normal(size=shape)
        if fmt == "NCHW" and kind in ("data", "index"):
            a = naive.to_nchw(a)
        elif fmt == "NCHW" and kind == "filter":
            a = naive.to_oihw(a)
        arrays[name] = a
    return arrays


def run(impl, op, fmt, arrays, n=2):
    """The op's outputs as a tuple."""
    out = OPS[op].call(impl, fmt, n, **arrays)
    return out if isinstance(out, tuple) else (out,)


def data_names(op):
    return [name for name, (kind, _) in OPS[op].arrays.items() if kind in DATA_KINDS]


# ====================================================================== dtypes

# The compute/result dtype of each input dtype (all data arrays of that dtype).
DTYPE_RULE = {
    np.float32: np.float32, np.float64: np.float64, np.float16: np.float32,
    np.bool_: np.float32, np.int8: np.float32, np.int16: np.float32, np.uint8: np.float32,
    np.uint16: np.float32, np.int32: np.float64, np.int64: np.float64,
}


def cast(a, dtype):
    """Small-integer float64 data as dtype, losslessly."""
    if dtype is np.bool_:
        return a > 0
    if np.issubdtype(dtype, np.unsignedinteger):
        return np.abs(a).astype(dtype)
    return a.astype(dtype)


def check_dtypes(impl, op, fmt, dtypes, expected):
    """Run op with the given dtype per data argument; check the result dtype and values."""
    arrays = make_arrays(op, fmt, np.random.default_rng(7), integers=True)
    typed = {k: cast(a, dtypes[k]) if k in dtypes else a for k, a in arrays.items()}
    wide = {k: a.astype(np.float64) if k in dtypes else a for k, a in typed.items()}
    outs, reference = run(impl, op, fmt, typed), run(impl, op, fmt, wide)
    for out, ref in zip(outs, reference):
        if ref.dtype.kind == "i":  # argmax
            assert out.dtype == np.int64
            np.testing.assert_array_equal(out, ref)
            continue
        assert out.dtype == expected, f"{op}: {out.dtype} != {np.dtype(expected)}"
        tol = 1e-6 if expected == np.float32 else 1e-13
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", list(DTYPE_RULE), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", list(OPS))
def test_dtype_rule_for_every_op(impl, op, dtype):
    dtypes = {name: dtype for name in data_names(op)}
    check_dtypes(impl, op, "NHWC", dtypes, DTYPE_RULE[dtype])


# (op, {argument: dtype} (the others float32), expected result dtype)
MIXED = [
    ("conv2d", {"b": np.float64}, np.float64),  # a float64 bias makes a float32 conv float64
    ("conv2d_transpose", {"b": np.float64}, np.float64),
    ("conv2d", {"x": np.float16}, np.float32),
    ("conv2d", {"w": np.int64}, np.float64),
    ("conv2d", {"x": np.int8, "w": np.uint8, "b": np.int16}, np.float32),
    ("conv2d", {"x": np.int16, "w": np.float16, "b": np.bool_}, np.float32),
    ("conv2d", {"x": np.int32, "w": np.float16, "b": np.float16}, np.float64),
    ("conv2d_backward", {"dy": np.float64}, np.float64),
    ("conv2d_backward", {"x": np.float64}, np.float64),
    ("conv2d_backward", {"w": np.int32}, np.float64),
    ("conv2d_transpose_backward", {"dy": np.float64}, np.float64),
    ("conv2d_transpose_backward", {"x": np.uint8}, np.float32),
    ("lrn_backward", {"dy": np.float64}, np.float64),
    ("lrn_backward", {"x": np.int64}, np.float64),
    ("lrn_backward", {"dy": np.float16, "x": np.int8}, np.float32),
]


@pytest.mark.parametrize("op,dtypes,expected", MIXED,
                         ids=[f"{op}-" + "-".join(f"{k}:{np.dtype(v).name}" for k, v in d.items())
                              for op, d, _ in MIXED])
def test_dtype_rule_mixed(impl, op, dtypes, expected):
    all_dtypes = {name: np.float32 for name in data_names(op)} | dtypes
    check_dtypes(impl, op, "NHWC", all_dtypes, expected)


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.uint8, np.int16])
@pytest.mark.parametrize("dy_dtype,expected", [(np.float32, np.float32), (np.float16, np.float32),
                                               (np.float64, np.float64), (np.int32, np.float64)])
def test_argmax_dtype_does_not_affect_pool_backward(impl, index_dtype, dy_dtype, expected):
    arrays = make_arrays("max_pool2d_backward", "NHWC", np.random.default_rng(8), integers=True)
    ref = run(impl, "max_pool2d_backward", "NHWC", arrays)[0]
    typed = dict(dy=cast(arrays["dy"], dy_dtype), argmax=arrays["argmax"].astype(index_dtype))
    dx = run(impl, "max_pool2d_backward", "NHWC", typed)[0]
    assert dx.dtype == expected
    np.testing.assert_array_equal(dx, ref)


@pytest.mark.parametrize("dtype", list(DTYPE_RULE), ids=lambda d: np.dtype(d).name)
def test_argmax_is_int64_for_every_input_dtype(impl, dtype):
    x = cast(np.random.default_rng(9).integers(-3, 4, size=(1, 4, 4, 2)).astype(np.float64), dtype)
    y, argmax = impl.max_pool2d_argmax(x, 2)
    assert argmax.dtype == np.int64 and y.dtype == DTYPE_RULE[dtype]


@pytest.mark.parametrize("kind", ["complex", "object", "str"])
@pytest.mark.parametrize("op", list(OPS))
def test_complex_object_string_arrays_raise_type_error(impl, op, kind):
    arrays = make_arrays(op, "NHWC", np.random.default_rng(10))
    first = data_names(op)[0]
    arrays[first] = {"complex": arrays[first] + 0j, "object": arrays[first].astype(object),
                     "str": arrays[first].astype(str)}[kind]
    with pytest.raises(TypeError):
        run(impl, op, "NHWC", arrays)


# ====================================================== array-likes and memory


def stepped_view(a):
    """The same values as a view with step-2 slices on every axis."""
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    view = big[(slice(None, None, 2),) * a.ndim]
    view[...] = a
    return view


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def read_only_view(a):
    view = stepped_view(a)
    view.flags.writeable = False
    return view


def channels_first_view(a):
    """A 4-D array as a view of channels-first memory, e.g. NHWC data converted from NCHW."""
    if a.ndim != 4:
        return stepped_view(a)
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)


TRANSFORMS = {
    "list": lambda a: a.tolist(),
    "channels_first_view": channels_first_view,
    "stepped_view": stepped_view,
    "negative_strides": lambda a: np.flip(np.flip(a).copy()),
    "fortran": np.asfortranarray,
    "read_only": read_only,
    "read_only_view": read_only_view,
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("op", list(OPS))
def test_array_likes_give_the_same_result(impl, op, transform, fmt):
    arrays = make_arrays(op, fmt, np.random.default_rng(11))
    changed = {k: TRANSFORMS[transform](a) for k, a in arrays.items()}
    if transform != "list":
        for a in changed.values():
            if a.ndim > 1 and transform != "read_only":
                assert not a.flags.c_contiguous
    outs = run(impl, op, fmt, changed)
    for out, ref in zip(outs, run(impl, op, fmt, arrays)):
        assert out.dtype == ref.dtype
        np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)
    if transform != "list":
        assert_fresh(outs, changed)


# Identity-like geometries, where returning (a view of) the input would be tempting.
SHORTCUTS = {
    "im2col_1x1": ({"x": (2, 3, 4, 2)}, lambda m, x: m.im2col(x, 1)),
    "col2im_1x1": ({"cols": (24, 2)}, lambda m, cols: m.col2im(cols, (2, 3, 4, 2), 1)),
    "max_pool_1x1": ({"x": (2, 3, 4, 2)}, lambda m, x: m.max_pool2d_argmax(x, 1)),
    "conv_1x1_identity": ({"x": (2, 3, 4, 2)},
                          lambda m, x: m.conv2d(x, np.eye(2).reshape(1, 1, 2, 2))),
    "conv_backward_1x1": ({"dy": (2, 3, 4, 2), "x": (2, 3, 4, 2)},
                          lambda m, dy, x: m.conv2d_backward(dy, x, np.eye(2).reshape(1, 1, 2, 2))),
    "transpose_1x1": ({"x": (2, 3, 4, 2)},
                      lambda m, x: m.conv2d_transpose(x, np.eye(2).reshape(1, 1, 2, 2))),
    "lrn_alpha0": ({"x": (2, 3, 4, 2)}, lambda m, x: m.lrn(x, alpha=0.0)),
    "lrn_backward_alpha0": ({"dy": (2, 3, 4, 2), "x": (2, 3, 4, 2)},
                            lambda m, dy, x: m.lrn_backward(dy, x, alpha=0.0)),
}


def assert_fresh(outs, inputs):
    for out in outs:
        assert type(out) is np.ndarray
        assert out.flags.c_contiguous
        assert out.flags.writeable
        for name, a in inputs.items():
            assert not np.shares_memory(out, a), f"the result is a view of {name}"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("op", list(OPS))
def test_inputs_untouched_results_fresh_and_contiguous(impl, op, fmt):
    arrays = make_arrays(op, fmt, np.random.default_rng(12))
    before = {k: a.copy() for k, a in arrays.items()}
    outs = run(impl, op, fmt, arrays)
    for k, a in arrays.items():
        np.testing.assert_array_equal(a, before[k], err_msg=f"{op} modified {k}")
    assert_fresh(outs, arrays)


@pytest.mark.parametrize("case", list(SHORTCUTS))
def test_identity_geometries_still_return_fresh_arrays(impl, case):
    shapes, call = SHORTCUTS[case]
    rng = np.random.default_rng(13)
    arrays = {k: rng.normal(size=s) for k, s in shapes.items()}
    before = {k: a.copy() for k, a in arrays.items()}
    out = call(impl, **arrays)
    outs = out if isinstance(out, tuple) else (out,)
    assert_fresh(outs, arrays)
    for out in outs:
        if out.dtype.kind == "f":
            out += 1.0  # writing into a result must not reach the inputs
    for k, a in arrays.items():
        np.testing.assert_array_equal(a, before[k])


# ================================================================= empty batch


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("op", list(OPS))
def test_empty_batch(impl, op, fmt):
    rng = np.random.default_rng(14)
    full = run(impl, op, fmt, make_arrays(op, fmt, rng), n=2)
    empty = run(impl, op, fmt, make_arrays(op, fmt, rng, n=0), n=0)
    assert len(empty) == len(full) == len(OPS[op].batched)
    for out, ref, batched in zip(empty, full, OPS[op].batched):
        assert out.dtype == ref.dtype
        if batched:
            assert out.shape == (0,) + ref.shape[1:]
        else:  # dw, db: zeros of the full shape
            assert out.shape == ref.shape
            np.testing.assert_array_equal(out, 0)


# ========================================================================= LRN


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_lrn_pytorch_mapping(impl, size, fmt):
    alpha, beta, k = 2.0, 0.75, 1.5
    x = np.random.default_rng(15).normal(size=(2, 2, 3, 9))
    y = impl.lrn(in_format(x, fmt), depth_radius=(size - 1) // 2, alpha=alpha / size, beta=beta,
                 bias=k, data_format=fmt)
    np.testing.assert_allclose(from_format(y, fmt), naive.lrn_pytorch(x, size, alpha, beta, k),
                               rtol=1e-12, atol=1e-14)


def lrn_one_short(x, depth_radius, bias, alpha, beta):
    """LRN whose window misses its last channel, [c - r, c + r - 1] (the classic off-by-one)."""
    channels = x.shape[3]
    y = np.empty_like(x)
    for c in range(channels):
        window = x[..., max(0, c - depth_radius):min(channels, c + depth_radius)]
        y[..., c] = x[..., c] / (bias + alpha * (window ** 2).sum(axis=-1)) ** beta
    return y


@pytest.mark.parametrize("depth_radius", [1, 2, 3])
def test_lrn_window_one_channel_short_would_fail(impl, depth_radius):
    kw = dict(depth_radius=depth_radius, bias=1.0, alpha=0.5, beta=0.75)
    x = np.random.default_rng(16).normal(size=(2, 2, 3, 8))
    y = impl.lrn(x, **kw)
    np.testing.assert_allclose(y, naive.lrn(x, **kw), rtol=1e-12, atol=1e-14)
    # With a large alpha the short window is far outside the tolerance above.
    assert np.abs(y - lrn_one_short(x, **kw)).max() > 1e-2
    dy = np.random.default_rng(17).normal(size=x.shape)
    np.testing.assert_allclose(impl.lrn_backward(dy, x, **kw), naive.lrn_backward(dy, x, **kw),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fmt", FORMATS)
def test_lrn_depth_radius_zero_is_elementwise(impl, fmt):
    x = np.random.default_rng(18).normal(size=(2, 3, 2, 4))
    y = impl.lrn(in_format(x, fmt), depth_radius=0, bias=2.0, alpha=0.5, beta=0.75, data_format=fmt)
    np.testing.assert_allclose(from_format(y, fmt), x / (2.0 + 0.5 * x * x) ** 0.75, rtol=1e-13)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("depth_radius", [4, 5, 6, 100])
def test_lrn_depth_radius_covering_all_channels(impl, depth_radius, fmt):
    x = np.random.default_rng(19).normal(size=(2, 3, 2, 5))
    kw = dict(depth_radius=depth_radius, bias=1.0, alpha=0.5, beta=0.75, data_format=fmt)
    y = impl.lrn(in_format(x, fmt), **kw)
    total = (x * x).sum(axis=3, keepdims=True)
    np.testing.assert_allclose(from_format(y, fmt), x / (1.0 + 0.5 * total) ** 0.75, rtol=1e-13)
    dy = np.random.default_rng(20).normal(size=x.shape)
    dx = impl.lrn_backward(in_format(dy, fmt), in_format(x, fmt), **kw)
    np.testing.assert_allclose(from_format(dx, fmt), naive.lrn_backward(dy, x, depth_radius, 1.0, 0.5, 0.75),
                               rtol=1e-10, atol=1e-12)


# ============================================================ the seed bugs
# Seed 002 (a cs231n-style notebook), re-typed as written: NCHW, columns in (c, kh, kw) order.


def zero_pad(X, pad):
    X_pad = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)), 'constant', constant_values=(0, 0))
    return X_pad


def im2col_sliding(image, f, pad=0, stride=1):
    M, C, h, w, = image.shape
    if pad > 0:
        image_pad = zero_pad(image, pad)
    else:
        image_pad = image

    h_new = int((h - f + 2*pad) / stride + 1)
    w_new = int((w - f + 2*pad) / stride + 1)

    output_vectors = np.zeros((M*h_new*w_new, f*f*C))

    itr = 0
    for m in range(M):
        for i in range(h_new):
            for j in range(w_new):
                start_i = stride * i
                end_i = stride * i + f
                start_j = stride * j
                end_j = stride * j + f
                output_vectors[itr, :] = image_pad[m, :, start_i:end_i, start_j:end_j].ravel()
                itr += 1
    return output_vectors


def col2img_sliding(cols, x_shape, f, pad=0, stride=1):
    N, C, H, W = x_shape
    H_padded, W_padded = H + 2 * pad, W + 2 * pad
    x_padded = np.zeros((N, C, H_padded, W_padded), dtype=cols.dtype)

    idx = 0
    for m in range(N):
        for i in range(0, H_padded - f + 1, stride):
            for j in range(0, W_padded - f + 1, stride):
                col = cols[idx, :]
                col = col.reshape((C, f, f))

                x_padded[m, :, i:i+stride, j:j+stride] = col[:, 0:stride, 0:stride]

                if stride < f:
                    if (j == W_padded - f) and (i == H_padded - f):
                        x_padded[m, :, i:i+f, j:j+f] = col
                    elif j == W_padded - f:
                        x_padded[m, :, i:i+stride, j+stride:] = col[:, 0:stride, stride:]
                    elif i == H_padded - f:
                        x_padded[m, :, i+stride:, j:j+stride] = col[:, stride:, 0:stride]
                idx += 1
    if pad > 0:
        return x_padded[:, :, pad:-pad, pad:-pad]
    else:
        return x_padded


def seed_columns_to_ours(cols, c, f):
    """(c, kh, kw) column order -> numbaconv's (kh, kw, c)."""
    return cols.reshape(-1, c, f, f).transpose(0, 2, 3, 1).reshape(cols.shape[0], -1)


@pytest.mark.parametrize("x_shape,f,pad,stride", [((2, 3, 5, 5), 3, 1, 1), ((1, 2, 7, 7), 3, 0, 2),
                                                  ((1, 2, 6, 6), 4, 1, 2)])
def test_seed_002_col2im_is_wrong_for_overlaps_and_ours_is_the_adjoint(impl, x_shape, f, pad, stride):
    rng = np.random.default_rng(21)
    x = rng.normal(size=x_shape)
    kw = dict(stride=stride, padding=pad, data_format="NCHW")
    seed_cols = im2col_sliding(x, f, pad, stride)
    # The seed's im2col agrees with ours up to the column order, so its cols are comparable.
    np.testing.assert_array_equal(seed_columns_to_ours(seed_cols, x_shape[1], f), impl.im2col(x, f, **kw))

    c = rng.normal(size=seed_cols.shape)
    seed_back = col2img_sliding(c, x_shape, f, pad, stride)
    ours = impl.col2im(seed_columns_to_ours(c, x_shape[1], f), x_shape, f, **kw)
    assert np.abs(ours - seed_back).max() > 0.1
    # Adjoint of the seed's own im2col: ours satisfies it, the seed's col2im does not.
    lhs = np.vdot(im2col_sliding(x, f, pad, stride), c)
    assert abs(lhs - np.vdot(x, ours)) < 1e-10 * max(1.0, abs(lhs))
    assert abs(lhs - np.vdot(x, seed_back)) > 1e-3


def test_seed_002_col2im_agrees_without_overlaps(impl):
    """stride == f: the seed's col2im is right, so the comparison above is like for like."""
    rng = np.random.default_rng(22)
    x_shape, f = (2, 3, 6, 4), 2
    c = rng.normal(size=(2 * 3 * 2, 3 * f * f))
    ours = impl.col2im(seed_columns_to_ours(c, 3, f), x_shape, f, stride=2, data_format="NCHW")
    np.testing.assert_allclose(ours, col2img_sliding(c, x_shape, f, 0, 2), rtol=0, atol=0)


# Seed 003, re-typed as written (NCHW; alpha is not divided by n).
def local_response_norm(n, alpha, beta, k, X):

    Y = np.empty(X.shape)
    for e in range(X.shape[0]):
        for i in range(X.shape[1]):
            for x in range(X.shape[2]):
                for y in range(X.shape[3]):
                    val = X[e, i, x, y]
                    ss = 0
                    for j in range(max(0, i-n//2),
                                   min(X.shape[1], i + n//2)):
                        ss += X[e, j, x, y]**2

                    den = (k + alpha * ss) ** beta
                    Y[e, i, x, y] = val / den

    return Y


def local_response_norm_fixed(n, alpha, beta, k, X):
    """Seed 003 with the window [i - n//2, i + n//2] its formula states."""
    Y = np.empty(X.shape)
    for e, i, x, y in np.ndindex(*X.shape):
        ss = sum(X[e, j, x, y] ** 2 for j in range(max(0, i - n // 2), min(X.shape[1], i + n // 2 + 1)))
        Y[e, i, x, y] = X[e, i, x, y] / (k + alpha * ss) ** beta
    return Y


@pytest.mark.parametrize("n", [3, 5])
def test_seed_003_lrn_window_is_one_short_and_ours_is_not(impl, n):
    alpha, beta, k = 0.5, 0.75, 1.0
    X = np.random.default_rng(23).normal(size=(2, 7, 3, 2))
    ours = impl.lrn(X, depth_radius=n // 2, bias=k, alpha=alpha, beta=beta, data_format="NCHW")
    np.testing.assert_allclose(ours, local_response_norm_fixed(n, alpha, beta, k, X), rtol=1e-12, atol=1e-14)
    assert np.abs(ours - local_response_norm(n, alpha, beta, k, X)).max() > 1e-2
