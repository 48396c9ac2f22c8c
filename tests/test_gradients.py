"""Backward ops against float64 central differences, and the adjoint identities.

Every backward op is checked against the numerical gradient of its own forward
op, ``d/da sum(forward(a) * dy)``, with a random ``dy`` (an all-ones dy hides
index bugs), in float64 and away from kinks (pooling inputs are a shuffled
linspace, so no ties). Each case also checks the forward op against the loop
oracle in ``naive.py``, so forward and backward cannot agree on a shared bug.

The adjoint identities ``<im2col(x), c> == <x, col2im(c)>``,
``<conv2d(x, w), y> == <x, conv2d_transpose(y, w)>`` and those of average
pooling's backwards are checked on random arrays over random geometries
(hypothesis) and on listed edge cases; max_unpool2d against
max_pool2d_backward and as the adjoint of the argmax gather.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import naive

FORMATS = ["NHWC", "NCHW"]
STEP = 1e-5  # central-difference step: float64 round-off ~1e-16 * |L| / STEP stays ~1e-10
REL_TOL = 1e-7

# ``impl`` is a stateless module chosen by parameter, so sharing it across
# hypothesis examples is safe.
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def numerical_gradient(loss, a, step=STEP):
    """Central differences of the scalar ``loss`` with respect to every entry of ``a``."""
    a = np.array(a, dtype=np.float64)
    flat = a.reshape(-1)
    grad = np.zeros_like(flat)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + step
        plus = loss(a)
        flat[i] = old - step
        minus = loss(a)
        flat[i] = old
        grad[i] = (plus - minus) / (2 * step)
    return grad.reshape(a.shape)


def assert_gradient(analytic, numeric, name):
    """Max-abs error relative to the gradient's scale, ~1e-10 expected in float64."""
    assert analytic.shape == numeric.shape, name
    assert analytic.dtype == np.float64, name
    scale = np.abs(numeric).max()
    assert scale > 1e-3, f"{name}: a vanishing gradient checks nothing"
    rel = np.abs(analytic - numeric).max() / scale
    assert rel < REL_TOL, f"{name}: relative error {rel:.3g}"


def layout(fmt):
    """(data, filters) converters from NHWC/HWIO to the given format."""
    if fmt == "NHWC":
        return (lambda a: a), (lambda w: w)
    return naive.to_nchw, naive.to_oihw


# ------------------------------------------------------------------ conv2d

# (x NHWC shape, w HWIO shape, keyword arguments)
CONV_CASES = {
    "pad1": ((2, 5, 5, 2), (3, 3, 2, 3), dict(padding=1)),
    "stride2": ((2, 6, 5, 2), (3, 3, 2, 3), dict(stride=2, padding=1)),
    "dilation2": ((1, 7, 6, 2), (3, 3, 2, 3), dict(dilation=2, padding=2)),
    "asym_pad_mixed_stride": ((2, 6, 7, 2), (3, 2, 2, 3),
                              dict(stride=(2, 1), dilation=(1, 2), padding=((1, 0), (2, 1)))),
    "same_stride2": ((2, 6, 5, 2), (3, 3, 2, 3), dict(stride=2, padding="SAME")),
    "same_dilation2": ((1, 5, 6, 2), (2, 3, 2, 2), dict(dilation=2, padding="same")),
    "valid_rect_kernel": ((2, 5, 6, 3), (2, 3, 3, 2), dict(padding="VALID")),
    "pad_beyond_input": ((1, 2, 3, 2), (2, 2, 2, 2), dict(stride=2, padding=3)),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_backward_matches_numerical_gradient(impl, case, fmt):
    x_shape, w_shape, kw = CONV_CASES[case]
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    b = rng.normal(size=w_shape[3])
    y = naive.conv2d(x, w, b, **kw)
    dy = rng.normal(size=y.shape)
    data, filters = layout(fmt)
    xf, wf, dyf = data(x), filters(w), data(dy)

    np.testing.assert_allclose(impl.conv2d(xf, wf, b, data_format=fmt, **kw), data(y),
                               rtol=1e-12, atol=1e-12)
    dx, dw, db = impl.conv2d_backward(dyf, xf, wf, data_format=fmt, **kw)

    def loss(xa, wa, ba):
        return np.vdot(impl.conv2d(xa, wa, ba, data_format=fmt, **kw), dyf)

    assert_gradient(dx, numerical_gradient(lambda a: loss(a, wf, b), xf), "dx")
    assert_gradient(dw, numerical_gradient(lambda a: loss(xf, a, b), wf), "dw")
    assert_gradient(db, numerical_gradient(lambda a: loss(xf, wf, a), b), "db")


# --------------------------------------------------------- conv2d_transpose

# (x NHWC shape with the forward conv's C_out channels, w HWIO shape, keyword arguments)
TRANSPOSE_CASES = {
    "stride2_output_padding1": ((2, 3, 3, 3), (3, 3, 2, 3), dict(stride=2, padding=1, output_padding=1)),
    "stride2_k4": ((1, 3, 2, 2), (4, 4, 3, 2), dict(stride=2, padding=1)),
    "dilation2_output_padding1": ((2, 3, 4, 3), (3, 3, 2, 3), dict(dilation=2, output_padding=1)),
    "asym_pad_output_padding": ((1, 3, 3, 2), (3, 3, 2, 2),
                                dict(stride=(2, 3), padding=((0, 1), (1, 0)), output_padding=(1, 2))),
    "same_stride2": ((2, 3, 2, 3), (3, 3, 2, 3), dict(stride=2, padding="SAME")),
    "valid": ((2, 3, 3, 2), (2, 3, 3, 2), dict(padding="VALID")),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
def test_conv2d_transpose_backward_matches_numerical_gradient(impl, case, fmt):
    x_shape, w_shape, kw = TRANSPOSE_CASES[case]
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    b = rng.normal(size=w_shape[2])
    y = naive.conv2d_transpose(x, w, b, **kw)
    dy = rng.normal(size=y.shape)
    data, filters = layout(fmt)
    xf, wf, dyf = data(x), filters(w), data(dy)

    np.testing.assert_allclose(impl.conv2d_transpose(xf, wf, b, data_format=fmt, **kw), data(y),
                               rtol=1e-12, atol=1e-12)
    dx, dw, db = impl.conv2d_transpose_backward(dyf, xf, wf, data_format=fmt, **kw)

    def loss(xa, wa, ba):
        return np.vdot(impl.conv2d_transpose(xa, wa, ba, data_format=fmt, **kw), dyf)

    assert_gradient(dx, numerical_gradient(lambda a: loss(a, wf, b), xf), "dx")
    assert_gradient(dw, numerical_gradient(lambda a: loss(xf, a, b), wf), "dw")
    assert_gradient(db, numerical_gradient(lambda a: loss(xf, wf, a), b), "db")


# ---------------------------------------------------------------- max pool


def tie_free(shape, rng):
    """Distinct values 0.02 apart (>> STEP): no ties, no kink within a finite difference."""
    values = np.linspace(-1.0, 1.0, int(np.prod(shape)))
    return rng.permutation(values).reshape(shape)


# (x NHWC shape, pool_size, keyword arguments)
POOL_CASES = {
    "overlap_3s2_pad1": ((2, 7, 6, 2), 3, dict(stride=2, padding=1)),
    "overlap_rect_stride1": ((1, 5, 6, 3), (2, 3), dict(stride=(1, 2))),
    "same_3s2": ((2, 6, 5, 2), 3, dict(stride=2, padding="SAME")),
    "disjoint_default_stride": ((2, 6, 6, 2), 2, dict()),
    "asym_pad": ((1, 5, 5, 2), (3, 2), dict(stride=1, padding=((2, 0), (0, 1)))),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(POOL_CASES))
def test_max_pool2d_backward_matches_numerical_gradient(impl, case, fmt):
    x_shape, pool, kw = POOL_CASES[case]
    rng = np.random.default_rng(3)
    x = tie_free(x_shape, rng)
    y_naive, argmax_naive = naive.max_pool2d_argmax(x, pool, **kw)
    dy = rng.normal(size=y_naive.shape)
    data, _ = layout(fmt)
    xf, dyf = data(x), data(dy)

    y, argmax = impl.max_pool2d_argmax(xf, pool, data_format=fmt, **kw)
    np.testing.assert_array_equal(y, data(y_naive))
    np.testing.assert_array_equal(argmax, data(argmax_naive))
    dx = impl.max_pool2d_backward(dyf, argmax, xf.shape, data_format=fmt)
    numeric = numerical_gradient(
        lambda a: np.vdot(impl.max_pool2d(a, pool, data_format=fmt, **kw), dyf), xf)
    assert_gradient(dx, numeric, "dx")


# --------------------------------------------------------------------- LRN

# (depth_radius, bias, alpha, beta): a large alpha so a wrong window shows.
LRN_CASES = [
    (0, 1.0, 0.5, 0.75),
    (1, 1.0, 0.5, 0.75),
    (2, 2.0, 0.5, 0.5),
    (3, 1.0, 0.5, 1.0),
    (2, 1.5, 0.5, 0.6),
    (6, 1.0, 0.5, 0.75),  # window covers every channel (C = 7)
    (10, 1.0, 0.5, 0.75),  # depth_radius > C
    (5, 1.0, 1.0, 0.5),  # TensorFlow's defaults
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("params", LRN_CASES, ids=lambda p: "r{}_k{}_a{}_b{}".format(*p))
def test_lrn_backward_matches_numerical_gradient(impl, params, fmt):
    r, bias, alpha, beta = params
    kw = dict(depth_radius=r, bias=bias, alpha=alpha, beta=beta)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 2, 3, 7))
    dy = rng.normal(size=x.shape)
    data, _ = layout(fmt)
    xf, dyf = data(x), data(dy)

    np.testing.assert_allclose(impl.lrn(xf, data_format=fmt, **kw), data(naive.lrn(x, **kw)),
                               rtol=1e-12, atol=1e-14)
    dx = impl.lrn_backward(dyf, xf, data_format=fmt, **kw)
    np.testing.assert_allclose(dx, data(naive.lrn_backward(dy, x, **kw)), rtol=1e-10, atol=1e-12)
    numeric = numerical_gradient(lambda a: np.vdot(impl.lrn(a, data_format=fmt, **kw), dyf), xf)
    assert_gradient(dx, numeric, "dx")


# ---------------------------------------------------------- im2col / col2im

# (x NHWC shape, kernel_size, keyword arguments)
PATCH_CASES = {
    "k3_s1_pad1": ((2, 4, 5, 2), 3, dict(padding=1)),
    "k3_s2": ((1, 7, 6, 2), 3, dict(stride=2)),
    "rect_dilated_asym_pad": ((2, 5, 6, 2), (2, 3),
                              dict(stride=(1, 2), dilation=(2, 1), padding=((1, 0), (0, 2)))),
    "same_k3_s2": ((1, 6, 5, 3), 3, dict(stride=2, padding="SAME")),
    "gaps_k2_s3": ((1, 7, 8, 2), 2, dict(stride=3)),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(PATCH_CASES))
def test_col2im_is_the_gradient_of_im2col(impl, case, fmt):
    x_shape, k, kw = PATCH_CASES[case]
    rng = np.random.default_rng(5)
    x = rng.normal(size=x_shape)
    cols_naive = naive.im2col(x, k, **kw)
    c = rng.normal(size=cols_naive.shape)
    data, _ = layout(fmt)
    xf = data(x)

    np.testing.assert_array_equal(impl.im2col(xf, k, data_format=fmt, **kw), cols_naive)
    grad = impl.col2im(c, xf.shape, k, data_format=fmt, **kw)
    np.testing.assert_allclose(grad, data(naive.col2im(c, x_shape, k, **kw)), rtol=1e-12, atol=1e-12)
    numeric = numerical_gradient(lambda a: np.vdot(impl.im2col(a, k, data_format=fmt, **kw), c), xf)
    assert_gradient(grad, numeric, "col2im")


# --------------------------------------------------------- adjoint identities


@st.composite
def window_geometries(draw):
    """A random sliding-window geometry whose output is at least 1x1."""
    geo = {}
    for axis in ("h", "w"):
        k = draw(st.integers(1, 3))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2))
        before, after = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        span = d * (k - 1) + 1
        size = draw(st.integers(max(1, span - before - after), 8))
        geo[axis] = (size, k, s, d, before, after)
    return geo


def geometry_kwargs(geo):
    (h, kh, sh, dh, pt, pb), (w, kw, sw, dw, pl, pr) = geo["h"], geo["w"]
    return (h, w), (kh, kw), dict(stride=(sh, sw), dilation=(dh, dw), padding=((pt, pb), (pl, pr)))


def assert_inner_products_equal(a, b):
    scale = max(abs(a), abs(b), 1.0)
    assert abs(a - b) <= 1e-12 * scale * 10, (a, b)


@FIXTURE_OK
@given(geo=window_geometries(), fmt=st.sampled_from(FORMATS), seed=st.integers(0, 2**16))
def test_im2col_col2im_adjoint(impl, geo, fmt, seed):
    (h, w), k, kw = geometry_kwargs(geo)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, h, w, 2))
    data, _ = layout(fmt)
    xf = data(x)
    cols = impl.im2col(xf, k, data_format=fmt, **kw)
    c = rng.normal(size=cols.shape)
    back = impl.col2im(c, xf.shape, k, data_format=fmt, **kw)
    assert back.shape == xf.shape
    assert_inner_products_equal(np.vdot(cols, c), np.vdot(xf, back))


def conv_adjoint_check(impl, x, w, fmt, kw, output_padding):
    """<conv2d(x, w), y> == <x, conv2d_transpose(y, w)> for a random y."""
    rng = np.random.default_rng(7)
    y = impl.conv2d(x, w, data_format=fmt, **kw)
    r = rng.normal(size=y.shape)
    back = impl.conv2d_transpose(r, w, output_padding=output_padding, data_format=fmt, **kw)
    assert back.shape == x.shape
    assert_inner_products_equal(np.vdot(y, r), np.vdot(x, back))


@FIXTURE_OK
@given(geo=window_geometries(), fmt=st.sampled_from(FORMATS), seed=st.integers(0, 2**16))
def test_conv2d_conv2d_transpose_adjoint(impl, geo, fmt, seed):
    (h, w), k, kw = geometry_kwargs(geo)
    # The rows the forward conv never reaches come back as output_padding (< stride).
    output_padding = tuple(
        (size + before + after - d * (kk - 1) - 1) % s
        for size, kk, s, d, before, after in (geo["h"], geo["w"]))
    rng = np.random.default_rng(seed)
    data, filters = layout(fmt)
    x = data(rng.normal(size=(2, h, w, 3)))
    wt = filters(rng.normal(size=(*k, 3, 2)))
    conv_adjoint_check(impl, x, wt, fmt, kw, output_padding)


# Edge cases listed explicitly: (x NHWC shape, w HWIO shape, conv kwargs, output_padding)
ADJOINT_CASES = {
    "same_divisible_stride2": ((1, 6, 8, 2), (3, 3, 2, 2), dict(stride=2, padding="SAME"), 0),
    "same_stride1_even_kernel": ((1, 5, 4, 2), (2, 4, 2, 3), dict(padding="SAME"), 0),
    "valid_needs_output_padding": ((2, 6, 7, 1), (3, 3, 1, 2), dict(stride=2, padding="VALID"), (1, 0)),
    "dilation_output_padding": ((1, 9, 9, 2), (2, 2, 2, 2), dict(stride=3, dilation=2, padding=1), (2, 2)),
    "padding_beyond_input": ((1, 3, 3, 1), (2, 2, 1, 1), dict(stride=2, padding=3), (1, 1)),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(ADJOINT_CASES))
def test_conv2d_conv2d_transpose_adjoint_edge_cases(impl, case, fmt):
    x_shape, w_shape, kw, output_padding = ADJOINT_CASES[case]
    rng = np.random.default_rng(8)
    data, filters = layout(fmt)
    x, wt = data(rng.normal(size=x_shape)), filters(rng.normal(size=w_shape))
    conv_adjoint_check(impl, x, wt, fmt, kw, output_padding)


# ------------------------------------------------ pooling beyond the seeds

# (x NHWC shape, pool_size, keyword arguments)
MAX_POOL_OPTION_CASES = {
    "dilation2_pad1": ((2, 7, 6, 2), 2, dict(stride=1, padding=1, dilation=2)),
    "ceil_partial_last": ((2, 7, 7, 2), 3, dict(stride=2, padding=1, ceil_mode=True)),
    "dilation_rect_ceil": ((1, 8, 7, 2), (3, 2), dict(stride=(2, 1), dilation=(2, 3), ceil_mode=True)),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(MAX_POOL_OPTION_CASES))
def test_max_pool2d_options_backward_matches_numerical_gradient(impl, case, fmt):
    x_shape, pool, kw = MAX_POOL_OPTION_CASES[case]
    rng = np.random.default_rng(5)
    data, _ = layout(fmt)
    xf = data(tie_free(x_shape, rng))
    y, argmax = impl.max_pool2d_argmax(xf, pool, data_format=fmt, **kw)
    dyf = rng.normal(size=y.shape)
    dx = impl.max_pool2d_backward(dyf, argmax, xf.shape, data_format=fmt)
    numeric = numerical_gradient(
        lambda a: np.vdot(impl.max_pool2d(a, pool, data_format=fmt, **kw), dyf), xf)
    assert_gradient(dx, numeric, "dx")


# (x NHWC shape, pool_size, keyword arguments)
AVG_POOL_CASES = {
    "3s2_pad1_ceil_incpad": ((2, 6, 7, 2), 3, dict(stride=2, padding=1, ceil_mode=True, count_include_pad=True)),
    "3s2_pad1_ceil": ((2, 6, 7, 2), 3, dict(stride=2, padding=1, ceil_mode=True)),
    "same_rect": ((1, 5, 7, 3), (2, 3), dict(stride=(2, 1), padding="SAME")),
    "asym_pad_incpad": ((2, 5, 5, 2), (3, 2), dict(stride=1, padding=((2, 0), (0, 1)), count_include_pad=True)),
    "stride_gt_window": ((1, 7, 8, 2), 2, dict(stride=3, ceil_mode=True)),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(AVG_POOL_CASES))
def test_avg_pool2d_backward_matches_numerical_gradient(impl, case, fmt):
    x_shape, pool, kw = AVG_POOL_CASES[case]
    rng = np.random.default_rng(6)
    x = rng.normal(size=x_shape)
    y_naive = naive.avg_pool2d(x, pool, **kw)
    data, _ = layout(fmt)
    xf, dyf = data(x), data(rng.normal(size=y_naive.shape))
    np.testing.assert_allclose(impl.avg_pool2d(xf, pool, data_format=fmt, **kw), data(y_naive),
                               rtol=1e-13, atol=1e-14)
    dx = impl.avg_pool2d_backward(dyf, xf.shape, pool, data_format=fmt, **kw)
    numeric = numerical_gradient(lambda a: np.vdot(impl.avg_pool2d(a, pool, data_format=fmt, **kw), dyf), xf)
    assert_gradient(dx, numeric, "dx")


ADAPTIVE_CASES = {"global": ((2, 5, 4, 3), 1), "not_dividing": ((2, 7, 5, 2), (3, 2)),
                  "larger_than_input": ((1, 3, 2, 2), (4, 5))}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(ADAPTIVE_CASES))
def test_adaptive_avg_pool2d_backward_matches_numerical_gradient(impl, case, fmt):
    x_shape, output_size = ADAPTIVE_CASES[case]
    rng = np.random.default_rng(7)
    x = rng.normal(size=x_shape)
    y_naive = naive.adaptive_avg_pool2d(x, output_size)
    data, _ = layout(fmt)
    xf, dyf = data(x), data(rng.normal(size=y_naive.shape))
    np.testing.assert_allclose(impl.adaptive_avg_pool2d(xf, output_size, data_format=fmt), data(y_naive),
                               rtol=1e-13, atol=1e-14)
    dx = impl.adaptive_avg_pool2d_backward(dyf, xf.shape, data_format=fmt)
    numeric = numerical_gradient(
        lambda a: np.vdot(impl.adaptive_avg_pool2d(a, output_size, data_format=fmt), dyf), xf)
    assert_gradient(dx, numeric, "dx")


@st.composite
def avg_geometries(draw):
    """(x NHWC shape, pool, keyword arguments) valid under the contract."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pads = ((draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))),
            (draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1))))
    h = draw(st.integers(max(1, kh - pads[0][0] - pads[0][1]), 9))
    w = draw(st.integers(max(1, kw - pads[1][0] - pads[1][1]), 9))
    kw_args = dict(stride=(draw(st.integers(1, 4)), draw(st.integers(1, 4))), padding=pads,
                   ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()))
    return (draw(st.integers(1, 2)), h, w, draw(st.integers(1, 3))), (kh, kw), kw_args


@FIXTURE_OK
@given(geo=avg_geometries(), fmt=st.sampled_from(FORMATS), seed=st.integers(0, 2**16))
def test_avg_pool2d_backward_is_the_adjoint(impl, geo, fmt, seed):
    """<avg_pool2d(x), dy> == <x, avg_pool2d_backward(dy)> for random x and dy."""
    x_shape, pool, kw = geo
    rng = np.random.default_rng(seed)
    data, _ = layout(fmt)
    x = data(rng.normal(size=x_shape))
    y = impl.avg_pool2d(x, pool, data_format=fmt, **kw)
    dy = rng.normal(size=y.shape)
    assert_inner_products_equal(np.vdot(y, dy),
                                np.vdot(x, impl.avg_pool2d_backward(dy, x.shape, pool, data_format=fmt, **kw)))


@FIXTURE_OK
@given(x_shape=st.tuples(st.integers(1, 2), st.integers(1, 9), st.integers(1, 9), st.integers(1, 3)),
       output_size=st.tuples(st.integers(1, 10), st.integers(1, 10)), fmt=st.sampled_from(FORMATS),
       seed=st.integers(0, 2**16))
def test_adaptive_avg_pool2d_backward_is_the_adjoint(impl, x_shape, output_size, fmt, seed):
    rng = np.random.default_rng(seed)
    data, _ = layout(fmt)
    x = data(rng.normal(size=x_shape))
    y = impl.adaptive_avg_pool2d(x, output_size, data_format=fmt)
    dy = rng.normal(size=y.shape)
    assert_inner_products_equal(np.vdot(y, dy),
                                np.vdot(x, impl.adaptive_avg_pool2d_backward(dy, x.shape, data_format=fmt)))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(POOL_CASES) + list(MAX_POOL_OPTION_CASES))
def test_max_unpool2d_and_max_pool2d_backward(impl, case, fmt):
    """Both route values to argmax: backward sums entries sharing a cell, unpool keeps one.

    So unpool is the adjoint of the gather x -> x[argmax] where no cell is
    shared; with the forward's own maxima (shared cells hold equal values)
    unpool(y) * count == backward(y), count = backward(ones); and
    max_pool2d(unpool(y)) == y once the unpooled zeros cannot win.
    """
    x_shape, pool, kw = {**POOL_CASES, **MAX_POOL_OPTION_CASES}[case]
    x_shape = tuple(x_shape)
    rng = np.random.default_rng(8)
    data, _ = layout(fmt)
    x = data(tie_free(x_shape, rng) + 2.0)  # positive: the unpooled zeros never win
    y, argmax = impl.max_pool2d_argmax(x, pool, data_format=fmt, **kw)
    unpooled = impl.max_unpool2d(y, argmax, x.shape, data_format=fmt)
    count = impl.max_pool2d_backward(np.ones_like(y), argmax, x.shape, data_format=fmt)
    np.testing.assert_allclose(unpooled * count, impl.max_pool2d_backward(y, argmax, x.shape, data_format=fmt),
                               rtol=1e-15)
    np.testing.assert_array_equal(unpooled != 0, count != 0)
    np.testing.assert_array_equal(impl.max_pool2d(unpooled, pool, data_format=fmt, **kw), y)
    # The adjoint of the gather c -> c[argmax] where no two entries share a
    # cell: keep only the entry unpool writes, the last of each cell.
    a = argmax if fmt == "NHWC" else naive.to_nhwc(argmax)
    n, _, _, c = a.shape
    target = ((np.arange(n)[:, None, None, None] * (x_shape[1] * x_shape[2]) + a) * c + np.arange(c)).ravel()
    _, last_reversed = np.unique(target[::-1], return_index=True)
    keep = np.zeros(target.size, bool)
    keep[target.size - 1 - last_reversed] = True
    values = rng.normal(size=a.shape) * keep.reshape(a.shape)
    cotangent = rng.normal(size=x_shape)
    unpooled = impl.max_unpool2d(data(values), data(a), data(x_shape), data_format=fmt)
    assert_inner_products_equal(np.vdot(unpooled, data(cotangent)),
                                np.vdot(values.ravel(), cotangent.ravel()[target]))
