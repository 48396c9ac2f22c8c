"""Every bad input of the contract raises the exact exception type, before any kernel runs.

Each case changes one argument of a call that is otherwise valid
(``test_base_calls_are_valid``) and expects ``ValueError`` or ``TypeError``
exactly (not a subclass, such as NumPy's ``AxisError``, which would mean the
check was left to an accident inside a kernel) with a message naming the
argument. The ``guarded`` fixture replaces every backend core with a tripwire,
so a case that reaches a kernel fails with AssertionError instead.
"""
import contextlib
import importlib

import numpy as np
import pytest

import naive
from test_contract import OPS, data_names, make_arrays, run

# ------------------------------------------------------------------ harness


def _tripwire(core):
    def run_core(*args, **kwargs):
        raise AssertionError(f"the {core!r} core ran: validation let a bad input through")
    return run_core


@pytest.fixture
def guarded(impl, monkeypatch):
    """impl whose backend cores (see numbaconv/_api.py) all raise AssertionError."""
    functions = importlib.import_module(f"{impl.__name__}._functions")
    tripwires = {core: _tripwire(core) for core in functions._BACKEND._fields}
    monkeypatch.setattr(functions, "_BACKEND", functions._BACKEND._replace(**tripwires))
    return impl


@contextlib.contextmanager
def raises(exc, match):
    with pytest.raises(exc, match=match) as info:
        yield info
    assert info.type is exc, f"raised {info.type.__name__}, not exactly {exc.__name__}: {info.value}"


def ident(value):
    """A readable, space-free test id."""
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, str) and value.isidentifier():
        return value
    return repr(value).replace(" ", "")


RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 5, 6, 2))
W = RNG.normal(size=(3, 3, 2, 3))
Y = RNG.normal(size=(2, 3, 3, 3))  # conv2d(X, W, stride 2, padding 1)
XT = RNG.normal(size=(2, 3, 3, 3))  # conv2d_transpose input (C_out channels)
YT = RNG.normal(size=(2, 6, 6, 2))  # conv2d_transpose(XT, W, stride 2, padding 1, output_padding 1)
COLS = RNG.normal(size=(18, 18))  # im2col(X, 3, stride 2, padding 1)
POOLED = RNG.normal(size=(2, 3, 3, 2))  # max_pool2d(X, 3, stride 2, padding 1)
ARGMAX = RNG.integers(0, 30, size=(2, 3, 3, 2))
XL = RNG.normal(size=(2, 3, 4, 5))

BASE = {
    "conv2d": dict(x=X, w=W, b=np.zeros(3), stride=2, padding=1, dilation=1),
    "conv2d_backward": dict(dy=Y, x=X, w=W, stride=2, padding=1, dilation=1),
    "conv2d_transpose": dict(x=XT, w=W, b=np.zeros(2), stride=2, padding=1, output_padding=1,
                             dilation=1),
    "conv2d_transpose_backward": dict(dy=YT, x=XT, w=W, stride=2, padding=1, output_padding=1,
                                      dilation=1),
    "im2col": dict(x=X, kernel_size=3, stride=2, padding=1, dilation=1),
    "col2im": dict(cols=COLS, x_shape=X.shape, kernel_size=3, stride=2, padding=1, dilation=1),
    "max_pool2d": dict(x=X, pool_size=3, stride=2, padding=1),
    "max_pool2d_argmax": dict(x=X, pool_size=3, stride=2, padding=1),
    "max_pool2d_backward": dict(dy=POOLED, argmax=ARGMAX, x_shape=X.shape),
    "max_unpool2d": dict(y=POOLED, argmax=ARGMAX, x_shape=X.shape),
    "avg_pool2d": dict(x=X, pool_size=3, stride=2, padding=1),
    "avg_pool2d_backward": dict(dy=POOLED, x_shape=X.shape, pool_size=3, stride=2, padding=1),
    "adaptive_avg_pool2d": dict(x=X, output_size=(3, 4)),
    "adaptive_avg_pool2d_backward": dict(dy=POOLED, x_shape=X.shape),
    "lrn": dict(x=XL, depth_radius=2, bias=1.0, alpha=0.5, beta=0.75),
    "lrn_backward": dict(dy=XL, x=XL, depth_radius=2, bias=1.0, alpha=0.5, beta=0.75),
}
POSITIONAL = {
    "conv2d": ("x", "w", "b"), "conv2d_backward": ("dy", "x", "w"),
    "conv2d_transpose": ("x", "w", "b"), "conv2d_transpose_backward": ("dy", "x", "w"),
    "im2col": ("x", "kernel_size"), "col2im": ("cols", "x_shape", "kernel_size"),
    "max_pool2d": ("x", "pool_size"), "max_pool2d_argmax": ("x", "pool_size"),
    "max_pool2d_backward": ("dy", "argmax", "x_shape"),
    "max_unpool2d": ("y", "argmax", "x_shape"),
    "avg_pool2d": ("x", "pool_size"), "avg_pool2d_backward": ("dy", "x_shape", "pool_size"),
    "adaptive_avg_pool2d": ("x", "output_size"), "adaptive_avg_pool2d_backward": ("dy", "x_shape"),
    "lrn": ("x",), "lrn_backward": ("dy", "x"),
}
ALL_OPS = list(BASE)
CONV_OPS = ["conv2d", "conv2d_backward", "conv2d_transpose", "conv2d_transpose_backward"]
POOL_OPS = ["max_pool2d", "max_pool2d_argmax"]
AVG_OPS = ["avg_pool2d", "avg_pool2d_backward"]
WINDOW_POOL_OPS = POOL_OPS + AVG_OPS  # stride=None, padding smaller than the window, ceil_mode
STRIDED_OPS = CONV_OPS + ["im2col", "col2im"] + WINDOW_POOL_OPS
DILATED_OPS = CONV_OPS + ["im2col", "col2im"] + POOL_OPS
TRANSPOSE_OPS = ["conv2d_transpose", "conv2d_transpose_backward"]
LRN_OPS = ["lrn", "lrn_backward"]
ADAPTIVE_OPS = ["adaptive_avg_pool2d", "adaptive_avg_pool2d_backward"]


def call(impl, op, **changes):
    args = dict(BASE[op], **changes)
    positional = [args.pop(name) for name in POSITIONAL[op]]
    return getattr(impl, op)(*positional, **args)


def expect(impl, op, exc, match, **changes):
    with raises(exc, match):
        call(impl, op, **changes)


def test_base_calls_are_valid(impl):
    for op in ALL_OPS:
        call(impl, op)


@pytest.mark.parametrize("op", ALL_OPS)
def test_tripwire_catches_a_kernel_call(guarded, op):
    with pytest.raises(AssertionError, match="core ran"):
        call(guarded, op)


# --------------------------------------------------------------- data_format


@pytest.mark.parametrize("value", ["NCWH", "", "HWIO", "NHWC "], ids=ident)
@pytest.mark.parametrize("op", ALL_OPS)
def test_bad_data_format_string(guarded, op, value):
    expect(guarded, op, ValueError, "data_format", data_format=value)


@pytest.mark.parametrize("value", [1, None, b"NHWC", ("NHWC",)], ids=ident)
@pytest.mark.parametrize("op", ALL_OPS)
def test_data_format_not_a_string(guarded, op, value):
    expect(guarded, op, TypeError, "data_format", data_format=value)


def test_data_format_any_case(impl):
    np.testing.assert_array_equal(call(impl, "conv2d", data_format="nhwc"), call(impl, "conv2d"))
    nchw = call(impl, "conv2d", x=naive.to_nchw(X), w=naive.to_oihw(W), data_format="nChW")
    np.testing.assert_allclose(naive.to_nhwc(nchw), call(impl, "conv2d"), rtol=1e-13)


# ---------------------------------------------------------- stride, dilation

BAD_INTS = [
    (0, ValueError), (-1, ValueError), ((1, 0), ValueError), ((-2, 1), ValueError),
    (1.0, TypeError), (2.5, TypeError), ((2, 1.0), TypeError), ("2", TypeError), (None, TypeError),
    ((1, 2, 3), ValueError), ((1,), ValueError), ((), ValueError),
]


# stride=None is valid for pooling (stride = pool_size)
@pytest.mark.parametrize("op,value,exc", [(op, value, exc) for op in STRIDED_OPS for value, exc in BAD_INTS
                                          if not (op in WINDOW_POOL_OPS and value is None)], ids=ident)
def test_bad_stride(guarded, op, value, exc):
    expect(guarded, op, exc, "stride", stride=value)


@pytest.mark.parametrize("value,exc", BAD_INTS, ids=ident)
@pytest.mark.parametrize("op", DILATED_OPS)
def test_bad_dilation(guarded, op, value, exc):
    expect(guarded, op, exc, "dilation", dilation=value)


@pytest.mark.parametrize("op", STRIDED_OPS)
def test_numpy_integers_and_pairs_are_accepted(impl, op):
    changes = dict(stride=(np.int64(2), np.int32(2)))
    if op in DILATED_OPS:
        changes["dilation"] = [np.int8(1), 1]
    outs, refs = call(impl, op, **changes), call(impl, op)
    outs, refs = (outs, refs) if isinstance(outs, tuple) else ((outs,), (refs,))
    for a, b in zip(outs, refs):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------- padding

BAD_PADDING = [
    (-1, ValueError), ((1, -1), ValueError), (((0, -1), (0, 0)), ValueError),
    ("FULL", ValueError), ("", ValueError), ("SAMEE", ValueError),
    ((1, 2, 3), ValueError), (((1, 2), (3,)), ValueError), (((1, 2), 3), ValueError),
    ((1, (2, 3)), ValueError), (((1, 2), (3, 4), (5, 6)), ValueError), ((1,), ValueError),
    (1.5, TypeError), ((1, 0.5), TypeError), (None, TypeError), (((1, 2), (3, 4.0)), TypeError),
]


@pytest.mark.parametrize("value,exc", BAD_PADDING, ids=ident)
@pytest.mark.parametrize("op", STRIDED_OPS)
def test_bad_padding(guarded, op, value, exc):
    expect(guarded, op, exc, "padding", padding=value)


@pytest.mark.parametrize("padding", [2, 3, (0, 2), ((0, 3), (0, 0)), ((0, 0), (3, 1))], ids=ident)
@pytest.mark.parametrize("op", WINDOW_POOL_OPS)
def test_max_pool_padding_not_smaller_than_window(guarded, op, padding):
    # pool_size (3, 2) here: each side must be < 3 along H and < 2 along W
    pool = (3, 2) if padding != 3 else 3
    expect(guarded, op, ValueError, "padding", pool_size=pool, padding=padding)


@pytest.mark.parametrize("shape", [(1, 0, 5, 2), (1, 5, 0, 2)], ids=ident)
@pytest.mark.parametrize("op", POOL_OPS)
def test_max_pool_empty_plane(guarded, op, shape):
    # With padding the output would not be empty, but every window would be all padding.
    expect(guarded, op, ValueError, "x has an empty", x=np.zeros(shape), pool_size=3, padding=2)


@pytest.mark.parametrize("op", POOL_OPS + ["avg_pool2d"])
def test_max_pool_padding_just_below_window_is_accepted(impl, op):
    call(impl, op, pool_size=(3, 2), padding=((2, 2), (1, 1)), stride=1)


# ------------------------------------------------------------ empty output


@pytest.mark.parametrize("op,changes", [
    ("conv2d", dict(x=X[:, :2, :2], padding=0)),
    ("conv2d", dict(padding="VALID", x=X[:, :2])),
    ("conv2d", dict(dilation=3, padding=0)),
    ("conv2d", dict(x=X[:, :0])),
    ("conv2d_backward", dict(x=X[:, :2, :2], padding=0, dy=Y[:, :0, :0])),
    ("im2col", dict(kernel_size=7, padding=0)),
    ("im2col", dict(x=X[:, :, :0])),
    ("col2im", dict(x_shape=(2, 2, 6, 2), padding=0)),
    ("col2im", dict(x_shape=(2, 0, 6, 2))),
    ("max_pool2d", dict(pool_size=7, padding=0)),
    ("max_pool2d_argmax", dict(pool_size=(6, 2), padding=0, stride=1)),
    ("max_pool2d", dict(pool_size=3, dilation=(3, 1), padding=0, stride=1)),
    ("avg_pool2d", dict(pool_size=7, padding=0, ceil_mode=True)),
    ("avg_pool2d_backward", dict(pool_size=(6, 2), padding=0, stride=1)),
    ("conv2d_transpose", dict(x=XT[:, :1, :1], w=W[:1, :1], padding=1, output_padding=0)),
    ("conv2d_transpose", dict(x=XT[:, :0])),
    ("conv2d_transpose_backward", dict(x=XT[:, :1, :1], w=W[:1, :1], padding=1, output_padding=0,
                                       dy=YT[:, :0, :0])),
], ids=lambda v: v if isinstance(v, str) else "")
def test_output_smaller_than_one(guarded, op, changes):
    expect(guarded, op, ValueError, "output", **changes)


# ------------------------------------------------------- kernels and windows


@pytest.mark.parametrize("w_shape", [(0, 3, 2, 3), (3, 0, 2, 3), (0, 0, 2, 3)])
@pytest.mark.parametrize("op", CONV_OPS)
def test_zero_kernel_dimension(guarded, op, w_shape):
    expect(guarded, op, ValueError, r"\bw\b", w=np.ones(w_shape))


@pytest.mark.parametrize("op", CONV_OPS)
def test_zero_kernel_dimension_nchw(guarded, op):
    changes = {k: naive.to_nchw(v) for k, v in BASE[op].items() if k in ("x", "dy")}
    expect(guarded, op, ValueError, r"\bw\b", w=np.ones((3, 2, 3, 0)), data_format="NCHW", **changes)


@pytest.mark.parametrize("value,exc", [(0, ValueError), ((3, 0), ValueError), (-1, ValueError),
                                       (3.0, TypeError), ((3, 3, 3), ValueError), (None, TypeError)],
                         ids=ident)
@pytest.mark.parametrize("op", ["im2col", "col2im"])
def test_bad_kernel_size(guarded, op, value, exc):
    expect(guarded, op, exc, "kernel_size", kernel_size=value)


@pytest.mark.parametrize("value,exc", [(0, ValueError), ((0, 2), ValueError), (-2, ValueError),
                                       (2.0, TypeError), ((2, 2, 2), ValueError), (None, TypeError)],
                         ids=ident)
@pytest.mark.parametrize("op", WINDOW_POOL_OPS)
def test_bad_pool_size(guarded, op, value, exc):
    expect(guarded, op, exc, "pool_size", pool_size=value, padding=0)


# ---------------------------------------------------------------- dimensions


@pytest.mark.parametrize("shape", [(5, 6, 2), (1, 2, 5, 6, 2), (2,)], ids=ident)
@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward", "conv2d_transpose",
                                "conv2d_transpose_backward", "im2col", "max_pool2d",
                                "max_pool2d_argmax", "avg_pool2d", "adaptive_avg_pool2d", "lrn",
                                "lrn_backward"])
def test_x_wrong_ndim(guarded, op, shape):
    expect(guarded, op, ValueError, r"\bx\b", x=np.ones(shape))


def test_x_scalar(guarded):
    expect(guarded, "conv2d", ValueError, r"\bx\b", x=1.0)


@pytest.mark.parametrize("shape", [(3, 3, 2), (1, 3, 3, 2, 3), (3,)], ids=ident)
@pytest.mark.parametrize("op", CONV_OPS)
def test_w_wrong_ndim(guarded, op, shape):
    expect(guarded, op, ValueError, r"\bw\b", w=np.ones(shape))


@pytest.mark.parametrize("shape", [(3, 3, 3), (1, 2, 3, 3, 3)], ids=ident)
@pytest.mark.parametrize("op", ["conv2d_backward", "conv2d_transpose_backward", "lrn_backward",
                                "max_pool2d_backward", "avg_pool2d_backward",
                                "adaptive_avg_pool2d_backward"])
def test_dy_wrong_ndim(guarded, op, shape):
    expect(guarded, op, ValueError, r"\bdy\b", dy=np.ones(shape))


# ------------------------------------------------------------------ channels


@pytest.mark.parametrize("op,changes", [
    ("conv2d", dict(x=np.ones((2, 5, 6, 3)))),
    ("conv2d_backward", dict(x=np.ones((2, 5, 6, 1)))),
    ("conv2d_transpose", dict(x=np.ones((2, 3, 3, 2)))),
    ("conv2d_transpose_backward", dict(x=np.ones((2, 3, 3, 4)))),
])
def test_channel_mismatch_between_x_and_w(guarded, op, changes):
    expect(guarded, op, ValueError, "channels", **changes)


def test_channel_mismatch_nchw(guarded):
    # NCHW x with 2 channels against OIHW w expecting 3 input channels
    expect(guarded, "conv2d", ValueError, "channels", x=naive.to_nchw(X), w=np.ones((4, 3, 3, 3)),
           b=None, data_format="NCHW")


def test_nhwc_filters_with_nchw_data_are_refused(guarded):
    # Forgetting to convert HWIO filters to OIHW: channel check catches it.
    expect(guarded, "conv2d", ValueError, "channels", x=naive.to_nchw(X), data_format="NCHW", b=None)


@pytest.mark.parametrize("shape", [(4,), (2,), (1, 3), (3, 1), (), (0,)], ids=ident)
def test_bias_wrong_shape(guarded, shape):
    expect(guarded, "conv2d", ValueError, r"\bb\b", b=np.ones(shape))


@pytest.mark.parametrize("shape", [(3,), (1, 2), ()], ids=ident)
def test_transpose_bias_wrong_shape(guarded, shape):
    expect(guarded, "conv2d_transpose", ValueError, r"\bb\b", b=np.ones(shape))


# ------------------------------------------------------------------------ dy


@pytest.mark.parametrize("op,shape", [
    ("conv2d_backward", (2, 3, 3, 4)), ("conv2d_backward", (2, 4, 3, 3)),
    ("conv2d_backward", (1, 3, 3, 3)), ("conv2d_backward", (2, 3, 3, 2)),
    ("conv2d_transpose_backward", (2, 7, 6, 2)), ("conv2d_transpose_backward", (2, 6, 6, 3)),
    ("conv2d_transpose_backward", (3, 6, 6, 2)), ("conv2d_transpose_backward", (2, 5, 5, 2)),
    ("lrn_backward", (2, 3, 4, 4)), ("lrn_backward", (1, 3, 4, 5)), ("lrn_backward", (2, 4, 3, 5)),
], ids=ident)
def test_dy_wrong_shape(guarded, op, shape):
    expect(guarded, op, ValueError, r"\bdy\b", dy=np.ones(shape))


def test_conv2d_backward_dy_wrong_shape_nchw(guarded):
    expect(guarded, "conv2d_backward", ValueError, r"\bdy\b", dy=naive.to_nchw(Y)[:, :, :2],
           x=naive.to_nchw(X), w=naive.to_oihw(W), data_format="NCHW")


@pytest.mark.parametrize("dy_shape", [(1, 3, 3, 2), (2, 3, 3, 3)], ids=ident)
def test_pool_backward_dy_does_not_fit_x_shape(guarded, dy_shape):
    expect(guarded, "max_pool2d_backward", ValueError, r"\bdy\b", dy=np.ones(dy_shape),
           argmax=np.zeros(dy_shape, dtype=np.int64))


# ----------------------------------------------------------- output_padding


@pytest.mark.parametrize("changes", [
    dict(stride=2, dilation=1, output_padding=2),
    dict(stride=2, dilation=1, output_padding=(0, 2)),
    dict(stride=1, dilation=1, output_padding=1),
    dict(stride=2, dilation=3, output_padding=3),
    dict(stride=(1, 2), dilation=(2, 1), output_padding=(2, 1)),
], ids=ident)
@pytest.mark.parametrize("op", TRANSPOSE_OPS)
def test_output_padding_not_smaller_than_stride_or_dilation(guarded, op, changes):
    expect(guarded, op, ValueError, "output_padding", **changes)


@pytest.mark.parametrize("value,exc", [(-1, ValueError), ((1, -1), ValueError), (1.0, TypeError),
                                       ((1, 2, 3), ValueError), (None, TypeError)], ids=ident)
@pytest.mark.parametrize("op", TRANSPOSE_OPS)
def test_bad_output_padding(guarded, op, value, exc):
    expect(guarded, op, exc, "output_padding", output_padding=value)


@pytest.mark.parametrize("changes,out", [
    (dict(stride=1, dilation=2, output_padding=1, padding=0), 8),  # < dilation is enough
    (dict(stride=2, dilation=3, output_padding=2, padding=0), 13),
])
def test_output_padding_below_dilation_is_accepted(impl, changes, out):
    y = call(impl, "conv2d_transpose", **changes)
    assert y.shape[1] == out


# --------------------------------------------------------------------- col2im


@pytest.mark.parametrize("shape", [(17, 18), (18, 12), (36, 9), (18,), (1, 18, 18)], ids=ident)
def test_col2im_cols_wrong_shape(guarded, shape):
    expect(guarded, "col2im", ValueError, "cols", cols=np.ones(shape))


# --------------------------------------------------------------- x_shape


@pytest.mark.parametrize("value,exc", [
    ((2, 5, 6), ValueError), ((2, 5, 6, 2, 1), ValueError), (5, TypeError), (None, TypeError),
    ((2, 5, 6.0, 2), TypeError), ((2, -5, 6, 2), ValueError), ((2, 5, 6, "2"), TypeError),
], ids=ident)
@pytest.mark.parametrize("op", ["col2im", "max_pool2d_backward", "max_unpool2d", "avg_pool2d_backward",
                                "adaptive_avg_pool2d_backward"])
def test_bad_x_shape(guarded, op, value, exc):
    expect(guarded, op, exc, "x_shape", x_shape=value)


# -------------------------------------------------------------------- argmax


@pytest.mark.parametrize("shape", [(2, 3, 3, 1), (2, 3, 2, 2), (1, 3, 3, 2), (2, 3, 3), (2, 3, 3, 2, 1)],
                         ids=ident)
def test_argmax_wrong_shape(guarded, shape):
    expect(guarded, "max_pool2d_backward", ValueError, "argmax", argmax=np.zeros(shape, np.int64))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.bool_, np.complex128, object, str])
def test_argmax_not_integer(guarded, dtype):
    expect(guarded, "max_pool2d_backward", TypeError, "argmax", argmax=ARGMAX.astype(dtype))


@pytest.mark.parametrize("bad", [-1, 30, 31, 10**6, -(2**40)])
@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_argmax_outside_the_plane(guarded, bad, fmt):
    argmax = ARGMAX.copy()
    argmax[1, 2, 0, 1] = bad  # x_shape's plane is 5 * 6 = 30
    dy, x_shape = POOLED, X.shape
    if fmt == "NCHW":
        dy, argmax, x_shape = naive.to_nchw(dy), naive.to_nchw(argmax), naive.to_nchw(x_shape)
    expect(guarded, "max_pool2d_backward", ValueError, "argmax", dy=dy, argmax=argmax,
           x_shape=x_shape, data_format=fmt)


def test_argmax_edges_of_the_plane_are_accepted(impl):
    argmax = ARGMAX.copy()
    argmax[0, 0, 0, 0], argmax[1, 2, 2, 1] = 0, 29
    call(impl, "max_pool2d_backward", argmax=argmax)


# ------------------------------------------------ pooling beyond the seeds


@pytest.mark.parametrize("value", [1, 0, "True", None, np.array([True])], ids=ident)
@pytest.mark.parametrize("op,name", [(op, "ceil_mode") for op in WINDOW_POOL_OPS]
                         + [(op, "count_include_pad") for op in AVG_OPS], ids=ident)
def test_pool_flags_must_be_bools(guarded, op, name, value):
    expect(guarded, op, TypeError, name, **{name: value})


@pytest.mark.parametrize("op", POOL_OPS + ["avg_pool2d"])
def test_pool_flags_accept_numpy_bools(impl, op):
    np.testing.assert_array_equal(
        np.asarray(call(impl, op, ceil_mode=np.bool_(True))[0]), np.asarray(call(impl, op, ceil_mode=True)[0]))


@pytest.mark.parametrize("changes", [
    dict(x=X[:, :2], pool_size=2, dilation=3, padding=1, stride=1),  # taps -1 and 2 on 2 rows
    dict(x=X[:, :, :3], pool_size=(1, 2), dilation=(1, 4), padding=((0, 0), (1, 1)), stride=1),
    dict(x=X[:, :2], pool_size=2, dilation=3, padding=1, stride=1, data_format="NCHW"),
], ids=["rows", "columns", "nchw"])
@pytest.mark.parametrize("op", POOL_OPS)
def test_dilation_that_leaves_a_window_empty(guarded, op, changes):
    if changes.get("data_format") == "NCHW":
        changes = dict(changes, x=naive.to_nchw(changes["x"]))
    expect(guarded, op, ValueError, "none inside the input", **changes)


@pytest.mark.parametrize("op", POOL_OPS)
def test_dilated_window_with_an_input_cell_is_accepted(impl, op):
    # taps -1 and 2 on 3 rows: every window reaches row 2 (or more)
    call(impl, op, x=X[:, :3], pool_size=2, dilation=3, padding=1, stride=1)


@pytest.mark.parametrize("value,exc", [(0, ValueError), (-1, ValueError), ((2, 0), ValueError),
                                       ((0, 3), ValueError), (1.0, TypeError), ((2, 2.0), TypeError),
                                       ((2, 2, 2), ValueError), (None, TypeError), ("1", TypeError)],
                         ids=ident)
def test_bad_output_size(guarded, value, exc):
    expect(guarded, "adaptive_avg_pool2d", exc, "output_size", output_size=value)


@pytest.mark.parametrize("op,changes,name", [
    ("avg_pool2d", dict(x=np.zeros((2, 0, 6, 2)), padding=0, pool_size=1), r"\bx\b"),
    ("avg_pool2d_backward", dict(x_shape=(2, 5, 0, 2), padding=0, pool_size=1), "x_shape"),
    ("adaptive_avg_pool2d", dict(x=np.zeros((2, 5, 0, 2))), r"\bx\b"),
    ("adaptive_avg_pool2d_backward", dict(x_shape=(2, 0, 6, 2)), "x_shape"),
], ids=lambda v: v if isinstance(v, str) and v.isidentifier() else "")
def test_average_pooling_of_an_empty_plane(guarded, op, changes, name):
    expect(guarded, op, ValueError, name, **changes)


@pytest.mark.parametrize("shape", [(2, 3, 3, 2), (2, 2, 2, 2), (1, 3, 4, 2), (2, 3, 4, 1)], ids=ident)
def test_avg_pool_backward_dy_wrong_shape(guarded, shape):
    # The forward output for X is (2, 3, 4, 2) with pool 3 stride 2 padding 1 ceil_mode
    expect(guarded, "avg_pool2d_backward", ValueError, r"\bdy\b", dy=np.ones(shape), ceil_mode=True)


@pytest.mark.parametrize("shape", [(1, 3, 3, 2), (2, 3, 3, 3), (2, 0, 3, 2)], ids=ident)
def test_adaptive_backward_dy_does_not_fit_x_shape(guarded, shape):
    expect(guarded, "adaptive_avg_pool2d_backward", ValueError, r"\bdy\b", dy=np.ones(shape))


@pytest.mark.parametrize("bad", [-1, 30, 10**6])
@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_unpool_argmax_outside_the_plane(guarded, bad, fmt):
    argmax = ARGMAX.copy()
    argmax[0, 1, 2, 1] = bad  # x_shape's plane is 5 * 6 = 30
    y, x_shape = POOLED, X.shape
    if fmt == "NCHW":
        y, argmax, x_shape = naive.to_nchw(y), naive.to_nchw(argmax), naive.to_nchw(x_shape)
    expect(guarded, "max_unpool2d", ValueError, "argmax", y=y, argmax=argmax, x_shape=x_shape,
           data_format=fmt)


@pytest.mark.parametrize("changes,exc,name", [
    (dict(argmax=np.zeros((2, 3, 2, 2), np.int64)), ValueError, "argmax"),
    (dict(argmax=ARGMAX.astype(np.float64)), TypeError, "argmax"),
    (dict(y=np.ones((1, 3, 3, 2)), argmax=np.zeros((1, 3, 3, 2), np.int64)), ValueError, r"\by\b"),
    (dict(y=np.ones((3, 3, 2))), ValueError, r"\by\b"),
], ids=["argmax_shape", "argmax_float", "y_batch", "y_ndim"])
def test_unpool_bad_y_and_argmax(guarded, changes, exc, name):
    expect(guarded, "max_unpool2d", exc, name, **changes)


# ----------------------------------------------------------------------- LRN


@pytest.mark.parametrize("value,exc", [(-1, ValueError), (-10, ValueError), (1.0, TypeError),
                                       (2.5, TypeError), ("2", TypeError), (None, TypeError)],
                         ids=ident)
@pytest.mark.parametrize("op", LRN_OPS)
def test_bad_depth_radius(guarded, op, value, exc):
    expect(guarded, op, exc, "depth_radius", depth_radius=value)


@pytest.mark.parametrize("value", ["1", None, 1j, [1.0], np.ones(2)], ids=ident)
@pytest.mark.parametrize("name", ["bias", "alpha", "beta"])
@pytest.mark.parametrize("op", LRN_OPS)
def test_non_real_lrn_parameters(guarded, op, name, value):
    expect(guarded, op, TypeError, name, **{name: value})


@pytest.mark.parametrize("op", LRN_OPS)
def test_lrn_numpy_scalars_are_accepted(impl, op):
    changes = dict(depth_radius=np.int64(2), bias=np.float32(1.0), alpha=np.float64(0.5), beta=1)
    np.testing.assert_allclose(call(impl, op, **changes), call(impl, op, beta=1.0), rtol=1e-14)


# --------------------------------------------------- non-real array dtypes


def _bad_arrays(a):
    return {"complex": a + 1j, "object": a.astype(object), "str": a.astype(str),
            "bytes": a.astype("S8")}


@pytest.mark.parametrize("kind", ["complex", "object", "str", "bytes"])
@pytest.mark.parametrize("op,name", [(op, name) for op in OPS for name in data_names(op)],
                         ids=[f"{op}-{name}" for op in OPS for name in data_names(op)])
def test_non_real_arrays(guarded, op, name, kind):
    arrays = make_arrays(op, "NHWC", np.random.default_rng(1))
    arrays[name] = _bad_arrays(arrays[name])[kind]
    with raises(TypeError, rf"\b{name}\b"):
        run(guarded, op, "NHWC", arrays)


@pytest.mark.parametrize("op,name", [("conv2d", "x"), ("conv2d", "w"), ("lrn", "x"),
                                     ("max_pool2d", "x"), ("col2im", "cols")])
def test_ragged_lists(guarded, op, name):
    """A ragged nested list is not an array: a clear error naming the argument."""
    arrays = make_arrays(op, "NHWC", np.random.default_rng(2))
    ragged = arrays[name].tolist()
    ragged[0] = ragged[0][:-1]
    arrays[name] = ragged
    with raises(ValueError, rf"\b{name}\b"):
        run(guarded, op, "NHWC", arrays)
