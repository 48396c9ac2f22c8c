"""numbaconv.compat.cs231n: the course's layer API, its known values, every fast-layer name.

The course's checks are reproduced with the course's error measure
(``rel_error``) and levels; every expected value is either the course's
published ``correct_out``, an explicit loop written here, independent of
numbaconv, or ``numbaconv.reference``. The course's notebook itself, run
against a student's ``cs231n`` package, is in test_compat_notebook.py.
"""
import numpy as np
import pytest

import numbaconv.compat.cs231n as cs
import numbaconv.reference as ref
from numbaconv.compat.cs231n import (
    conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive,
    eval_numerical_gradient, eval_numerical_gradient_array, max_pool_backward_fast,
    max_pool_backward_naive, max_pool_forward_fast, max_pool_forward_naive, rel_error,
)

CONV = {"fast": (conv_forward_fast, conv_backward_fast),
        "naive": (conv_forward_naive, conv_backward_naive)}
POOL = {"fast": (max_pool_forward_fast, max_pool_backward_fast),
        "naive": (max_pool_forward_naive, max_pool_backward_naive)}


@pytest.fixture(params=["fast", "naive"])
def path(request):
    return request.param


# ------------------------------------------------- independent loop versions


def loop_conv(x, w, b, stride, pad):
    """out[n, f, i, j] = sum(padded x window * w[f]) + b[f], one output at a time."""
    n_, _, h, wd = x.shape
    f_, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - hh) // stride + 1, (wd + 2 * pad - ww) // stride + 1
    out = np.zeros((n_, f_, oh, ow))
    for n in range(n_):
        for f in range(f_):
            for i in range(oh):
                for j in range(ow):
                    window = xp[n, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def loop_pool(x, ph, pw, stride, dout=None):
    """Max of each window and, given dout, the gradient routed to the window's first maximum."""
    n_, c_, h, w = x.shape
    oh, ow = (h - ph) // stride + 1, (w - pw) // stride + 1
    out = np.zeros((n_, c_, oh, ow))
    dx = np.zeros(x.shape)
    for n in range(n_):
        for c in range(c_):
            for i in range(oh):
                for j in range(ow):
                    window = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    out[n, c, i, j] = window.max()
                    if dout is not None:
                        k = int(np.argmax(window))  # first maximum in row-major order
                        dx[n, c, i * stride + k // pw, j * stride + k % pw] += dout[n, c, i, j]
    return out, dx


def tie_free(rng, shape):
    """A shuffled linspace: entries far more than 2h apart, so no ties in a gradient check."""
    return rng.permutation(np.linspace(-1.0, 1.0, int(np.prod(shape)))).reshape(shape)


# ----------------------------------------------------- the course's known values

# cs231n's "Testing conv_forward_naive" cell (also in seed 002), printed to 8 decimals.
CONV_CORRECT_OUT = np.array([
    [[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
     [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
     [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
    [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
     [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
     [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]],
])

# cs231n's "Testing max_pool_forward_naive" cell, printed to 8 decimals.
POOL_CORRECT_OUT = np.array([
    [[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
     [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
     [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
    [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
     [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
     [[0.32631579, 0.34105263], [0.38526316, 0.4]]],
])

ROUNDING = 0.5e-8  # the published values have 8 decimals


def course_conv_input():
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    return x, w, b


def test_conv_forward_matches_the_course_correct_out(path):
    x, w, b = course_conv_input()
    out, _ = CONV[path][0](x, w, b, {"stride": 2, "pad": 1})
    assert out.dtype == np.float64 and out.shape == (2, 3, 2, 2)
    # The course prints ~2.2e-8; rounding to 8 decimals bounds it by 0.5e-8 / (2 * 0.0876) < 3e-8.
    assert rel_error(out, CONV_CORRECT_OUT) < 3e-8
    assert np.abs(out - CONV_CORRECT_OUT).max() <= ROUNDING
    np.testing.assert_allclose(out, loop_conv(x, w, b, 2, 1), rtol=1e-13, atol=1e-15)


def test_the_course_max_pool_correct_out_agrees_with_a_loop():
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    expected, _ = loop_pool(x, 2, 2, 2)
    assert np.abs(expected - POOL_CORRECT_OUT).max() <= ROUNDING


def test_max_pool_forward_matches_the_course_correct_out(path):
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = POOL[path][0](x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    assert out.dtype == np.float64
    assert np.abs(out - POOL_CORRECT_OUT).max() <= ROUNDING
    assert rel_error(out, POOL_CORRECT_OUT) < 1e-7  # the course: "on the order of e-8"
    np.testing.assert_array_equal(out, loop_pool(x, 2, 2, 2)[0])  # a max is exact


# --------------------------------------------------------- fast == naive == loop

CONV_GEOMETRIES = [
    # (x shape, w shape, stride, pad)
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
    ((2, 3, 7, 7), (4, 3, 3, 3), 2, 1),
    ((1, 2, 6, 9), (3, 2, 2, 4), 3, 2),  # non-square kernel, padding wider than needed
    ((2, 2, 6, 7), (3, 2, 3, 2), 2, 0),  # sizes the stride does not divide
    ((0, 3, 5, 5), (2, 3, 3, 3), 1, 1),  # empty batch
]


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_GEOMETRIES)
def test_conv_fast_naive_and_a_loop_agree(rng, x_shape, w_shape, stride, pad):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    conv_param = {"stride": stride, "pad": pad}
    out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    expected = loop_conv(x, w, b, stride, pad)
    assert out_fast.shape == out_naive.shape == expected.shape
    np.testing.assert_allclose(out_fast, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_naive, expected, rtol=1e-12, atol=1e-12)

    dout = rng.standard_normal(expected.shape)
    grads_fast = conv_backward_fast(dout, cache_fast)
    grads_naive = conv_backward_naive(dout, cache_naive)
    for g_fast, g_naive, like in zip(grads_fast, grads_naive, (x, w, b)):
        assert g_fast.shape == g_naive.shape == like.shape
        assert g_fast.dtype == g_naive.dtype == np.float64
        np.testing.assert_allclose(g_fast, g_naive, rtol=1e-12, atol=1e-12)


POOL_GEOMETRIES = [
    # (x shape, pool_height, pool_width, stride)
    ((2, 3, 8, 8), 2, 2, 2),
    ((2, 3, 7, 6), 3, 2, 1),  # overlapping windows: gradients add up
    ((1, 2, 9, 8), 3, 3, 2),  # overlapping, stride does not divide the width
    ((2, 2, 5, 5), 2, 2, 2),  # the last row/column is in no window
]


@pytest.mark.parametrize("x_shape, ph, pw, stride", POOL_GEOMETRIES)
def test_max_pool_fast_naive_and_a_loop_agree(rng, x_shape, ph, pw, stride):
    x = tie_free(rng, x_shape)
    pool_param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
    out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
    dout = rng.standard_normal(out_fast.shape)
    expected_out, expected_dx = loop_pool(x, ph, pw, stride, dout)
    np.testing.assert_array_equal(out_fast, expected_out)
    np.testing.assert_array_equal(out_naive, expected_out)
    for backward, cache in ((max_pool_backward_fast, cache_fast),
                            (max_pool_backward_naive, cache_naive)):
        np.testing.assert_allclose(backward(dout, cache), expected_dx, rtol=1e-14, atol=1e-14)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_only(path):
    """The documented difference from the course's reshape fast path (which feeds every tie)."""
    forward, backward = POOL[path]
    x = np.zeros((1, 1, 4, 4))
    out, cache = forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dout = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    dx = backward(dout, cache)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, ::2, ::2] = dout[0, 0]  # each window's top-left entry
    np.testing.assert_array_equal(dx, expected)


def test_results_keep_the_input_float_dtype_and_leave_inputs_alone(rng, path):
    forward, backward = CONV[path]
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 5, 5)).astype(dtype)
        w = rng.standard_normal((2, 3, 3, 3)).astype(dtype)
        b = rng.standard_normal(2).astype(dtype)
        copies = [a.copy() for a in (x, w, b)]
        out, cache = forward(x, w, b, {"stride": 1, "pad": 1})
        grads = backward(np.ones_like(out), cache)
        assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
        for a, c in zip((x, w, b), copies):
            np.testing.assert_array_equal(a, c)
        pooled, pool_cache = POOL[path][0](x, {"pool_height": 2, "pool_width": 2, "stride": 1})
        assert pooled.dtype == dtype
        assert POOL[path][1](np.ones_like(pooled), pool_cache).dtype == dtype
        np.testing.assert_array_equal(x, copies[0])


# ------------------------------------------------------------ gradient checks
# Float64, random upstream gradients, tie-free pooling input (the course's setup).
# Conv is linear in each argument, so the centered difference is exact up to
# round-off: the course expects "around 1e-8 or less"; over 20 seeds the worst
# measured here was 3.5e-8. Max pool: the course expects ~1e-12.


@pytest.mark.parametrize("x_shape, w_shape, conv_param", [
    ((2, 3, 5, 5), (4, 3, 3, 3), {"stride": 1, "pad": 1}),
    ((2, 3, 7, 7), (4, 3, 3, 3), {"stride": 2, "pad": 1}),
])
def test_conv_gradients_match_numerical_gradients(rng, path, x_shape, w_shape, conv_param):
    forward, backward = CONV[path]
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    out, cache = forward(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: forward(x, w, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: forward(x, w, b, conv_param)[0], b, dout)
    assert rel_error(dx, dx_num) < 1e-7
    assert rel_error(dw, dw_num) < 1e-7
    assert rel_error(db, db_num) < 1e-7


def test_conv_gradient_is_exactly_zero_where_no_window_reaches(rng, path):
    forward, backward = CONV[path]
    x, w, b = rng.standard_normal((2, 2, 6, 7)), rng.standard_normal((3, 2, 3, 2)), np.zeros(3)
    conv_param = {"stride": 2, "pad": 0}  # rows 5 and column 6 are in no window
    out, cache = forward(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)[0]
    assert np.all(dx[:, :, 5, :] == 0) and np.all(dx[:, :, :, 6] == 0)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, w, b, conv_param)[0], x, dout)
    np.testing.assert_allclose(dx, dx_num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("x_shape, pool_param", [
    ((2, 3, 8, 8), {"pool_height": 2, "pool_width": 2, "stride": 2}),
    ((2, 3, 7, 6), {"pool_height": 3, "pool_width": 2, "stride": 1}),
])
def test_max_pool_gradient_matches_numerical_gradient(rng, path, x_shape, pool_param):
    forward, backward = POOL[path]
    x = tie_free(rng, x_shape)
    out, cache = forward(x, pool_param)
    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, pool_param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-10


def test_eval_numerical_gradient_of_a_scalar_function(rng, capsys):
    x = rng.standard_normal((2, 3))
    target = rng.standard_normal((2, 3))
    grad = eval_numerical_gradient(lambda a: np.sum((a - target) ** 3), x, verbose=False)
    np.testing.assert_allclose(grad, 3 * (x - target) ** 2, rtol=1e-8)
    assert capsys.readouterr().out == ""
    eval_numerical_gradient(lambda a: float(np.sum(a)), x, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == x.size and lines[0].startswith("(0, 0)")


def test_numerical_gradients_restore_their_input(rng):
    x = rng.standard_normal((2, 2))
    before = x.copy()
    eval_numerical_gradient_array(lambda a: a * 2.0, x, np.ones((2, 2)))
    eval_numerical_gradient(lambda a: float(np.sum(a)), x, verbose=False)
    np.testing.assert_array_equal(x, before)


def test_rel_error_is_the_course_formula():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    assert rel_error(np.array([0.0]), np.array([1e-9])) == pytest.approx(0.1)  # the 1e-8 floor


# ------------------------------------------------------------------- caches


def test_conv_cache_is_the_course_tuple_and_either_backward_accepts_either_cache(rng):
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    b, conv_param = rng.standard_normal(4), {"stride": 1, "pad": 1}
    out, cache_fast = conv_forward_fast(x, w, b, conv_param)
    _, cache_naive = conv_forward_naive(x, w, b, conv_param)
    for cache in (cache_fast, cache_naive):
        assert isinstance(cache, tuple) and len(cache) == 4
        assert cache[0] is x and cache[1] is w and cache[2] is b and cache[3] is conv_param
    dout = rng.standard_normal(out.shape)
    expected = conv_backward_naive(dout, cache_naive)
    for got in (conv_backward_fast(dout, cache_naive), conv_backward_naive(dout, cache_fast)):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_pool_caches_round_trip_between_every_forward_and_every_backward(rng):
    x = tie_free(rng, (2, 3, 6, 6))
    pool_param = {"pool_height": 2, "pool_width": 3, "stride": 1}
    out, cache_fast = max_pool_forward_fast(x, pool_param)
    _, cache_im2col = cs.max_pool_forward_im2col(x, pool_param)
    _, cache_naive = max_pool_forward_naive(x, pool_param)
    assert len(cache_naive) == 2 and cache_naive[0] is x and cache_naive[1] is pool_param
    # The course's fast cache: (method, the cache of that method's forward).
    method, inner = cache_fast
    assert method == "im2col" and len(inner) == 3
    assert inner[0] is x and inner[1] is pool_param
    assert len(cache_im2col) == 3 and cache_im2col[0] is x and cache_im2col[1] is pool_param
    argmax = inner[2]
    assert argmax.dtype == np.int64 and argmax.shape == out.shape
    # argmax indexes the (H, W) plane of the same sample and channel.
    np.testing.assert_array_equal(
        np.take_along_axis(x.reshape(2, 3, 36), argmax.reshape(2, 3, 20), axis=2),
        out.reshape(2, 3, 20),  # (6 - 2 + 1) * (6 - 3 + 1) windows per plane
    )
    dout = rng.standard_normal(out.shape)
    expected = loop_pool(x, 2, 3, 1, dout)[1]
    backwards = (max_pool_backward_fast, cs.max_pool_backward_im2col,
                 cs.max_pool_backward_reshape, max_pool_backward_naive)
    for backward in backwards:
        for cache in (cache_fast, cache_im2col, cache_naive):
            np.testing.assert_allclose(backward(dout, cache), expected, rtol=1e-14, atol=1e-14)


def test_the_fast_pool_cache_names_the_course_path_it_stands_for():
    tiled = {"pool_height": 2, "pool_width": 2, "stride": 2}
    assert max_pool_forward_fast(np.ones((1, 2, 4, 6)), tiled)[1][0] == "reshape"
    for x_shape, pool_param in [
        ((1, 2, 5, 6), tiled),                                          # H not a multiple
        ((1, 2, 4, 6), {"pool_height": 2, "pool_width": 2, "stride": 1}),  # stride != size
        ((1, 2, 6, 6), {"pool_height": 3, "pool_width": 2, "stride": 3}),  # not square
        ((1, 2, 9, 9), {"pool_height": 3, "pool_width": 3, "stride": 2}),
    ]:
        assert max_pool_forward_fast(np.ones(x_shape), pool_param)[1][0] == "im2col", pool_param


def test_an_unknown_method_in_a_fast_pool_cache_is_named():
    x = np.ones((1, 1, 4, 4))
    _, (_, inner) = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match="unrecognized method 'strides'"):
        max_pool_backward_fast(np.ones((1, 1, 2, 2)), ("strides", inner))


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize("conv_param, key", [({"stride": 1}, "pad"), ({"pad": 1}, "stride")])
def test_a_missing_conv_param_key_is_named(conv_param, key):
    x, w, b = course_conv_input()
    with pytest.raises(KeyError, match=f"conv_param has no '{key}' key"):
        conv_forward_fast(x, w, b, conv_param)
    with pytest.raises(KeyError, match=f"conv_param has no '{key}' key"):
        conv_backward_fast(np.ones((2, 3, 2, 2)), (x, w, b, conv_param))


@pytest.mark.parametrize("key", ["pool_height", "pool_width", "stride"])
def test_a_missing_pool_param_key_is_named(path, key):
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    del pool_param[key]
    with pytest.raises(KeyError, match=f"pool_param has no '{key}' key"):
        POOL[path][0](np.ones((1, 1, 4, 4)), pool_param)


def test_params_must_be_dicts_and_caches_must_come_from_the_forward():
    x, w, b = course_conv_input()
    with pytest.raises(TypeError, match="conv_param must be a dict"):
        conv_forward_fast(x, w, b, (2, 1))
    with pytest.raises(TypeError, match="pool_param must be a dict"):
        max_pool_forward_fast(x, 2)
    with pytest.raises(ValueError, match=r"cache must be the cache that a conv forward \("):
        conv_backward_fast(np.ones((2, 3, 2, 2)), (x, w, b))
    with pytest.raises(ValueError, match=r"cache must be the cache that a max-pool forward \("):
        max_pool_backward_fast(np.ones((2, 3, 2, 2)), x)


def test_everything_else_is_validated_by_numbaconv(path):
    forward = CONV[path][0]
    x, w, b = course_conv_input()
    with pytest.raises(ValueError, match="channels"):
        forward(x, w[:, :2], b, {"stride": 2, "pad": 1})
    with pytest.raises(ValueError, match="b must have shape"):
        forward(x, w, b[:2], {"stride": 2, "pad": 1})
    with pytest.raises(ValueError, match="stride must be >= 1"):
        forward(x, w, b, {"stride": 0, "pad": 1})
    with pytest.raises(TypeError, match="pad"):
        forward(x, w, b, {"stride": 1, "pad": 1.5})
    with pytest.raises(ValueError, match="empty output"):
        POOL[path][0](x, {"pool_height": 5, "pool_width": 2, "stride": 2})
    _, cache = forward(x, w, b, {"stride": 2, "pad": 1})
    with pytest.raises(ValueError, match="dy has shape"):
        CONV[path][1](np.ones((2, 3, 3, 3)), cache)



# ------------------------------- every name of the course's fast_layers.py vs the reference


@pytest.mark.parametrize("path_name", ["fast", "strides", "im2col"])
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_GEOMETRIES)
def test_every_conv_path_matches_the_reference_with_its_own_cache(
        rng, path_name, x_shape, w_shape, stride, pad):
    forward = getattr(cs, f"conv_forward_{path_name}")
    backward = getattr(cs, f"conv_backward_{path_name}")
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    geometry = {"stride": stride, "padding": pad, "data_format": "NCHW"}
    out, cache = forward(x, w, b, {"stride": stride, "pad": pad})
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ref.conv2d(x, w, b, **geometry), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    for got, want in zip(grads, ref.conv2d_backward(dout, x, w, **geometry), strict=True):
        assert got.dtype == np.float64 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


TILED_POOL_GEOMETRIES = [
    # (x shape, pool_height, pool_width, stride): the course's reshape path
    ((2, 3, 8, 8), 2, 2, 2),
    ((1, 2, 9, 6), 3, 3, 3),
    ((2, 1, 4, 4), 4, 4, 4),  # one window per plane
]


@pytest.mark.parametrize("path_name, x_shape, ph, pw, stride", [
    *[("fast", *g) for g in POOL_GEOMETRIES + TILED_POOL_GEOMETRIES],
    *[("im2col", *g) for g in POOL_GEOMETRIES + TILED_POOL_GEOMETRIES],
    *[("reshape", *g) for g in TILED_POOL_GEOMETRIES],
])
def test_every_pool_path_matches_the_reference_with_its_own_cache(
        rng, path_name, x_shape, ph, pw, stride):
    forward = getattr(cs, f"max_pool_forward_{path_name}")
    backward = getattr(cs, f"max_pool_backward_{path_name}")
    x = tie_free(rng, x_shape)
    out, cache = forward(x, {"pool_height": ph, "pool_width": pw, "stride": stride})
    want, argmax = ref.max_pool2d_argmax(x, (ph, pw), stride=stride, data_format="NCHW")
    np.testing.assert_array_equal(out, want)  # a max is exact
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(
        backward(dout, cache), ref.max_pool2d_backward(dout, argmax, x.shape, data_format="NCHW"),
        rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("x_shape, pool_param", [
    ((1, 2, 5, 6), {"pool_height": 2, "pool_width": 2, "stride": 2}),  # H not a multiple
    ((1, 2, 4, 5), {"pool_height": 2, "pool_width": 2, "stride": 2}),  # W not a multiple
    ((1, 2, 4, 6), {"pool_height": 2, "pool_width": 2, "stride": 1}),  # stride != size
    ((1, 2, 6, 6), {"pool_height": 3, "pool_width": 2, "stride": 3}),  # not square
])
def test_the_reshape_pool_path_refuses_pools_that_do_not_tile_the_input(x_shape, pool_param):
    with pytest.raises(ValueError, match=r"max_pool_forward_reshape needs pool_height == "
                                         r"pool_width == stride.*x of shape \(1, 2, \d, \d\)"):
        cs.max_pool_forward_reshape(np.ones(x_shape), pool_param)
