"""Grouped and depthwise convolution, and the separate gradients, against PyTorch and TensorFlow.

The grid: groups in {1, 2, 4, C_in} with channel multipliers M = C_out / C_in
in 1..3, strides (incl. asymmetric), dilations, every padding form (SAME,
VALID, int, pair, asymmetric pairs), both data formats, float32 and float64.
Each case runs conv2d, conv2d_backward, conv2d_backward_input/_filter,
conv2d_transpose and conv2d_transpose_backward in both implementations.

Oracles (each in a worker subprocess, ``oracles.py``; never imported here):

- PyTorch 2.13: ``F.conv2d(groups=)`` and ``F.conv_transpose2d(groups=)``,
  forward and autograd, every case.
- TensorFlow: ``tf.nn.depthwise_conv2d`` (forward and gradients) on the
  depthwise cases it runs (equal strides along H and W; no dilation with a
  stride, which its CPU kernel refuses), and ``tf.nn.conv2d`` with grouped
  filters, forward only: TensorFlow 2.21 computes the grouped forward on CPU
  but refuses its gradients ("Gradients for grouped convolutions are not
  supported on CPU"; ``test_tensorflow_refuses_grouped_gradients`` checks
  that this is still so).

Also here: numerical gradients and adjoint identities of the grouped ops,
and the bad inputs (groups that do not divide, filters of the wrong shape
for the groups) refused by name before any kernel runs.
"""
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import oracles
from cases import assert_close, out_size, rng_for, same_pads

# --------------------------------------------------------------------- grid

# (n, h, w, c_in, (kh, kw), stride, padding, dilation)
GEOMETRIES = [
    (2, 7, 6, 4, (3, 3), 1, "SAME", 1),
    (2, 8, 9, 4, (3, 2), 2, "VALID", 1),
    (1, 9, 7, 4, (3, 3), 1, ((1, 2), (0, 1)), 2),
    (2, 6, 7, 4, (2, 3), (2, 1), 1, 1),
    (1, 10, 9, 8, (3, 3), 2, (1, 0), 1),
    (2, 5, 7, 4, (1, 1), 1, 0, 1),
    (1, 8, 8, 4, (3, 3), 2, "SAME", 1),
    (1, 7, 9, 4, (2, 2), 1, "SAME", (2, 1)),
    (0, 5, 5, 4, (3, 3), 1, 1, 1),  # empty batch
]
FORMATS = ("NHWC", "NCHW")
DTYPES = {"f32": np.float32, "f64": np.float64}


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pads(padding, h, w, kh, kw, stride, dilation):
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    if padding == "SAME":
        return same_pads(h, kh, sh, dh) + same_pads(w, kw, sw, dw)
    if padding == "VALID":
        return 0, 0, 0, 0
    if isinstance(padding, int):
        return (padding,) * 4
    a, b = padding
    return (a, a, b, b) if isinstance(a, int) else (*a, *b)


def _dims(v):
    a, b = _pair(v)
    return f"{a}" if a == b else f"{a}x{b}"


@dataclass(frozen=True)
class GroupCase:
    geometry: Any
    groups: int
    multiplier: int
    data_format: str
    dtype: Any

    @property
    def id(self):
        n, h, w, ci, (kh, kw), s, p, d = self.geometry
        pid = p if isinstance(p, str) else f"pad{p}".replace(" ", "")
        return (f"n{n}-{h}x{w}-k{kh}x{kw}-c{ci}to{ci * self.multiplier}-g{self.groups}-s{_dims(s)}-"
                f"{pid}-d{_dims(d)}-{self.data_format.lower()}-{'f32' if self.dtype == np.float32 else 'f64'}")

    @property
    def c_in(self):
        return self.geometry[3]

    @property
    def c_out(self):
        return self.c_in * self.multiplier

    @property
    def depthwise(self):
        return self.groups == self.c_in

    def kwargs(self):
        _, _, _, _, _, s, p, d = self.geometry
        return dict(stride=s, padding=p, dilation=d, groups=self.groups, data_format=self.data_format)

    def pads(self):
        _, h, w, _, (kh, kw), s, p, d = self.geometry
        return _pads(p, h, w, kh, kw, s, d)

    def out_hw(self):
        _, h, w, _, (kh, kw), s, _, d = self.geometry
        (sh, sw), (dh, dw) = _pair(s), _pair(d)
        t, b, l, r = self.pads()
        return out_size(h, kh, sh, dh, t, b), out_size(w, kw, sw, dw, l, r)

    def to_layout(self, a):
        return a if self.data_format == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))

    def inputs(self):
        """x, w, b, dy in the case's layout: data NHWC/NCHW, filters HWIO/OIHW."""
        n, h, w, ci, (kh, kw), _, _, _ = self.geometry
        rng = rng_for(self.id)
        oh, ow = self.out_hw()
        x = rng.standard_normal((n, h, w, ci))
        wt = rng.standard_normal((kh, kw, ci // self.groups, self.c_out))
        b = rng.standard_normal(self.c_out)
        dy = rng.standard_normal((n, oh, ow, self.c_out))
        if self.data_format == "NCHW":
            wt = np.ascontiguousarray(wt.transpose(3, 2, 0, 1))
        return tuple(a.astype(self.dtype) for a in (self.to_layout(x), wt, b, self.to_layout(dy)))

    def transpose_args(self):
        """The transposed conv mapping y's plane back onto x's: (padding, output_padding, pads, out_hw).

        SAME stays SAME (output = input * stride, TensorFlow's rule, with its
        own padding); explicit padding gets the output_padding that brings
        back x's plane.
        """
        _, h, w, _, (kh, kw), s, p, d = self.geometry
        (sh, sw), (dh, dw) = _pair(s), _pair(d)
        oh, ow = self.out_hw()
        if p == "SAME":
            th, tw = oh * sh, ow * sw
            return "SAME", 0, same_pads(th, kh, sh, dh) + same_pads(tw, kw, sw, dw), (th, tw)
        t, b, l, r = self.pads()
        op = (h - ((oh - 1) * sh - t - b + dh * (kh - 1) + 1), w - ((ow - 1) * sw - l - r + dw * (kw - 1) + 1))
        return ((t, b), (l, r)), op, (t, b, l, r), (h, w)

    def terms(self):
        """Reduction lengths for the float32 tolerance: forward/dx, and dw/db."""
        n, _, _, ci, (kh, kw), _, _, _ = self.geometry
        oh, ow = self.out_hw()
        return kh * kw * max(ci // self.groups, self.multiplier), max(n * oh * ow, 1)


def _groups_of(c_in):
    return sorted({1, 2, 4, c_in})


CASES = [
    GroupCase(geo, groups, multiplier, fmt, dtype)
    for i, geo in enumerate(GEOMETRIES)
    for groups in _groups_of(geo[3])
    for multiplier in (1, 2, 3)
    for fmt in FORMATS
    for dtype in DTYPES.values()
    # Every multiplier with every groups on the first geometries; one
    # multiplier per groups (cycling) on the rest, to keep the grid small.
    if i < 3 or multiplier == 1 + (i + groups) % 3
]
IDS = [c.id for c in CASES]


def tf_runs_depthwise(case):
    """TensorFlow's CPU depthwise kernel: equal strides, and no dilation with a stride."""
    _, _, _, _, _, s, _, d = case.geometry
    (sh, sw), (dh, dw) = _pair(s), _pair(d)
    return sh == sw and (sh == 1 or (dh, dw) == (1, 1)) and case.geometry[0] > 0


TF_DEPTHWISE = [c for c in CASES if c.depthwise and tf_runs_depthwise(c)]
TF_GROUPED = [c for c in CASES if 1 < c.groups < c.c_in and c.geometry[0] > 0]


# ------------------------------------------------------------------ oracles


@pytest.fixture(scope="module")
def torch_oracle():
    yield oracles.session_oracle(oracles.TorchOracle)
    oracles.close_session_oracle(oracles.TorchOracle)


@pytest.fixture(scope="module")
def tf_oracle():
    yield oracles.session_oracle()
    oracles.close_session_oracle()


def _torch_conv(case):
    x, w, b, dy = case.inputs()
    kw = case.kwargs()
    return oracles.torch_conv2d(x, w, b, dy, stride=kw["stride"], pads=case.pads(), dilation=kw["dilation"],
                                groups=case.groups, data_format=case.data_format)


def _transpose_inputs(case):
    """x (on y's plane), w, b (C_in), dy (on x's plane) of the transposed conv, in the case's layout."""
    _, w, _, dy = case.inputs()
    rng = rng_for("transpose-" + case.id)
    _, _, _, out_hw = case.transpose_args()
    n = case.geometry[0]
    upstream = case.to_layout(rng.standard_normal((n, *out_hw, case.c_in)).astype(case.dtype))
    return dy, w, rng.standard_normal(case.c_in).astype(case.dtype), upstream


def _torch_transpose(case):
    x, w, b, dy = _transpose_inputs(case)
    _, _, pads, out_hw = case.transpose_args()
    kw = case.kwargs()
    return oracles.torch_conv2d_transpose(x, w, b, dy, out_hw, stride=kw["stride"], pads=pads,
                                          dilation=kw["dilation"], groups=case.groups,
                                          data_format=case.data_format)


@pytest.fixture(scope="module")
def torch_conv(torch_oracle):
    return oracles.Batch(torch_oracle, CASES, _torch_conv)


@pytest.fixture(scope="module")
def torch_transpose(torch_oracle):
    return oracles.Batch(torch_oracle, CASES, _torch_transpose)


def _tf_depthwise(case):
    x, w, b, dy = case.inputs()
    kw = case.kwargs()
    del kw["groups"]
    return oracles.depthwise_conv2d(x, w, b, dy, **kw)


@pytest.fixture(scope="module")
def tf_depthwise(tf_oracle):
    return oracles.Batch(tf_oracle, TF_DEPTHWISE, _tf_depthwise)


def _tf_grouped(case):
    x, w, _, _ = case.inputs()
    kw = case.kwargs()
    del kw["groups"]
    return oracles.grouped_conv2d(x, w, **kw)


@pytest.fixture(scope="module")
def tf_grouped(tf_oracle):
    return oracles.Batch(tf_oracle, TF_GROUPED, _tf_grouped)


def check(got, expected, case, terms, name):
    assert got.dtype == case.dtype, f"{name} dtype {got.dtype}"
    assert_close(got, expected, case.dtype, terms, name)


# ------------------------------------------------------------ PyTorch grid


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_against_torch(impl, case, torch_conv):
    x, w, b, dy = case.inputs()
    expected = torch_conv[case]
    fwd_terms, red_terms = case.terms()
    check(impl.conv2d(x, w, b, **case.kwargs()), expected["y"], case, fwd_terms, "y")
    dx, dw, db = impl.conv2d_backward(dy, x, w, **case.kwargs())
    check(dx, expected["dx"], case, fwd_terms, "dx")
    check(dw, expected["dw"], case, red_terms, "dw")
    check(db, expected["db"], case, red_terms, "db")
    # The separate gradients are the same computation: bit-identical.
    np.testing.assert_array_equal(impl.conv2d_backward_input(dy, w, x.shape, **case.kwargs()), dx)
    np.testing.assert_array_equal(impl.conv2d_backward_filter(dy, x, w.shape, **case.kwargs()), dw)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_transpose_against_torch(impl, case, torch_transpose):
    x, w, b, dy = _transpose_inputs(case)
    padding, output_padding, _, _ = case.transpose_args()
    kw = dict(case.kwargs(), padding=padding, output_padding=output_padding)
    expected = torch_transpose[case]
    fwd_terms, red_terms = case.terms()
    check(impl.conv2d_transpose(x, w, b, **kw), expected["y"], case, fwd_terms, "y")
    dx, dw, db = impl.conv2d_transpose_backward(dy, x, w, **kw)
    check(dx, expected["dx"], case, fwd_terms, "dx")
    check(dw, expected["dw"], case, 4 * red_terms, "dw")
    check(db, expected["db"], case, 4 * red_terms, "db")


def test_torch_oracle_runs_conv_transpose2d_natively_on_symmetric_cases(torch_transpose):
    """The crop fallback of the worker must not be what every transposed case goes through."""
    native = [torch_transpose[c]["native"] for c in CASES if c.geometry[0] > 0]
    assert any(native) and not all(native)


def test_pytest_process_never_imports_torch():
    import sys
    assert "torch" not in sys.modules


# --------------------------------------------------------- TensorFlow grid


@pytest.mark.tf
@pytest.mark.parametrize("case", TF_DEPTHWISE, ids=[c.id for c in TF_DEPTHWISE])
def test_depthwise_against_tensorflow(impl, case, tf_depthwise):
    x, w, b, dy = case.inputs()
    expected = tf_depthwise[case]
    fwd_terms, red_terms = case.terms()
    check(impl.conv2d(x, w, b, **case.kwargs()), expected["y"], case, fwd_terms, "y")
    dx, dw, db = impl.conv2d_backward(dy, x, w, **case.kwargs())
    check(dx, expected["dx"], case, fwd_terms, "dx")
    check(dw, expected["dw"], case, red_terms, "dw")
    check(db, expected["db"], case, red_terms, "db")


@pytest.mark.tf
@pytest.mark.parametrize("case", TF_GROUPED, ids=[c.id for c in TF_GROUPED])
def test_grouped_forward_against_tensorflow(impl, case, tf_grouped):
    x, w, _, _ = case.inputs()
    check(impl.conv2d(x, w, **case.kwargs()), tf_grouped[case]["y"], case, case.terms()[0], "y")


@pytest.mark.tf
def test_tensorflow_refuses_grouped_gradients(tf_oracle):
    """Why the grouped gradients are compared with PyTorch only: TensorFlow's CPU kernels refuse them.

    If this starts failing, TensorFlow has gained them: compare against it too.
    """
    x = np.ones((1, 5, 5, 4), np.float32)
    w = np.ones((3, 3, 2, 4), np.float32)
    with pytest.raises(oracles.OracleError, match="grouped convolutions are not supported on CPU"):
        tf_oracle.run_one(oracles.grouped_conv2d(x, w, gradient=True))


# ------------------------------------------------- gradients and adjoints


SMALL = [  # (groups, multiplier, stride, padding, dilation, fmt)
    (2, 1, 1, "SAME", 1, "NHWC"),
    (4, 2, 2, ((1, 0), (2, 1)), 1, "NCHW"),
    (4, 3, 1, 1, 2, "NHWC"),
    (1, 2, (2, 1), "VALID", 1, "NCHW"),
]


def _small_inputs(groups, multiplier, fmt, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 6, 5, 4))
    w = rng.standard_normal((3, 2, 4 // groups, 4 * multiplier))
    if fmt == "NCHW":
        return x.transpose(0, 3, 1, 2).copy(), w.transpose(3, 2, 0, 1).copy(), rng
    return x, w, rng


def _numeric_grad(f, a, eps=1e-6):
    grad = np.zeros_like(a)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("groups, multiplier, stride, padding, dilation, fmt", SMALL)
def test_numerical_gradients(impl, groups, multiplier, stride, padding, dilation, fmt):
    x, w, rng = _small_inputs(groups, multiplier, fmt)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, data_format=fmt)
    b = rng.standard_normal(w.shape[0] if fmt == "NCHW" else w.shape[3])
    dy = rng.standard_normal(impl.conv2d(x, w, b, **kw).shape)

    def loss():
        return float(np.sum(impl.conv2d(x, w, b, **kw) * dy))

    dx, dw, db = impl.conv2d_backward(dy, x, w, **kw)
    for got, arr in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(got, _numeric_grad(loss, arr), rtol=1e-6, atol=1e-6)

    # The transposed conv's gradients, numerically too.
    t_in = impl.conv2d(x, w, **kw)
    bt = rng.standard_normal(x.shape[1] if fmt == "NCHW" else x.shape[3])
    tkw = dict(kw, padding="VALID" if padding == "SAME" else padding)
    up = rng.standard_normal(impl.conv2d_transpose(t_in, w, bt, **tkw).shape)

    def t_loss():
        return float(np.sum(impl.conv2d_transpose(t_in, w, bt, **tkw) * up))

    gx, gw, gb = impl.conv2d_transpose_backward(up, t_in, w, **tkw)
    for got, arr in ((gx, t_in), (gw, w), (gb, bt)):
        np.testing.assert_allclose(got, _numeric_grad(t_loss, arr), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("groups, multiplier, stride, padding, dilation, fmt", SMALL)
def test_adjoint_identities_exact_on_integers(impl, groups, multiplier, stride, padding, dilation, fmt):
    """<conv(x, w), dy> = <x, dx> = <w, dw>, and <conv_T(t, w), u> = <t, conv(u, w)>, exactly on integer data."""
    x, w, rng = _small_inputs(groups, multiplier, fmt, seed=1)
    x, w = np.round(3 * x), np.round(3 * w)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, data_format=fmt)
    y = impl.conv2d(x, w, **kw)
    dy = rng.integers(-3, 4, y.shape).astype(np.float64)
    inner = np.vdot(y, dy)
    assert np.vdot(x, impl.conv2d_backward_input(dy, w, x.shape, **kw)) == inner
    assert np.vdot(w, impl.conv2d_backward_filter(dy, x, w.shape, **kw)) == inner
    if padding != "SAME":
        t = impl.conv2d_transpose(dy, w, **kw)
        assert t.shape[0] == x.shape[0]
        u = rng.integers(-3, 4, t.shape).astype(np.float64)
        assert np.vdot(t, u) == np.vdot(dy, impl.conv2d(u, w, **kw))


def test_depthwise_is_tensorflows_filter_reshaped(impl):
    """TensorFlow's depthwise filter (KH, KW, C, M): output channel c * M + m reads channel c, written out."""
    rng = np.random.default_rng(4)
    x = rng.integers(-3, 4, (2, 5, 6, 3)).astype(np.float64)
    w_tf = rng.integers(-3, 4, (3, 3, 3, 2)).astype(np.float64)
    y = impl.conv2d(x, w_tf.reshape(3, 3, 1, 6), groups=3, padding=1)
    for c in range(3):
        for m in range(2):
            single = impl.conv2d(x[..., c:c + 1], w_tf[:, :, c:c + 1, m:m + 1], padding=1)
            np.testing.assert_array_equal(y[..., c * 2 + m], single[..., 0])


def test_groups_one_is_the_plain_conv(impl):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 6, 6, 4)), rng.standard_normal((3, 3, 4, 6))
    np.testing.assert_array_equal(impl.conv2d(x, w, groups=1), impl.conv2d(x, w))


def test_grouped_is_convs_of_channel_slices(impl):
    """Group i's outputs are the plain conv of group i's input channels by group i's filters."""
    rng = np.random.default_rng(6)
    x = rng.integers(-3, 4, (2, 6, 7, 6)).astype(np.float32)
    w = rng.integers(-3, 4, (3, 2, 3, 4)).astype(np.float32)
    y = impl.conv2d(x, w, groups=2, stride=(1, 2), padding="SAME")
    for g in range(2):
        part = impl.conv2d(x[..., 3 * g:3 * g + 3], w[..., 2 * g:2 * g + 2], stride=(1, 2), padding="SAME")
        np.testing.assert_array_equal(y[..., 2 * g:2 * g + 2], part)


def test_separate_gradients_dtypes_and_same_resolution(impl):
    """dx takes dy's and w's dtype, dw dy's and x's; SAME is resolved from x_shape / w_shape."""
    x = np.ones((1, 7, 5, 4), np.float32)
    w = np.ones((3, 3, 2, 4), np.float32)
    dy = np.ones((1, 4, 3, 4), np.float32)
    dx = impl.conv2d_backward_input(dy, w, x.shape, stride=2, padding="SAME", groups=2)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    dw = impl.conv2d_backward_filter(dy.astype(np.float64), x, w.shape, stride=2, padding="SAME", groups=2)
    assert dw.dtype == np.float64 and dw.shape == w.shape
    want = impl.conv2d_backward(dy, x, w, stride=2, padding="SAME", groups=2)
    np.testing.assert_array_equal(dx, want[0])
    np.testing.assert_allclose(dw, want[1])


# ---------------------------------------------------------------- bad input


BAD = [
    # (call, match)
    (lambda m: m.conv2d(np.ones((1, 5, 5, 6)), np.ones((3, 3, 2, 6)), groups=4),
     r"groups=4 must divide the channels of x=6"),
    (lambda m: m.conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 2, 8)), groups=4),
     r"holds 2 input channels per filter.*C_in // groups=1"),
    (lambda m: m.conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 2, 6)), groups=2.0), r"groups must be an int"),
    (lambda m: m.conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 2, 6)), groups=0), r"groups must be >= 1"),
    (lambda m: m.conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 1, 6)), groups=4), r"groups=4 must divide C_out=6"),
    (lambda m: m.conv2d(np.ones((1, 5, 4, 4)), np.ones((6, 2, 3, 3)), groups=2, data_format="NCHW"),
     r"groups=2 must divide the channels of x=5"),
    (lambda m: m.conv2d(np.ones((1, 4, 5, 5)), np.ones((6, 4, 3, 3)), groups=2, data_format="NCHW"),
     r"\(C_out, C_in // groups, KH, KW\) OIHW"),
    (lambda m: m.conv2d_transpose(np.ones((1, 5, 5, 6)), np.ones((3, 3, 2, 6)), groups=4),
     r"groups=4 must divide the channels of x=6"),
    (lambda m: m.conv2d_backward_input(np.ones((1, 3, 3, 6)), np.ones((3, 3, 2, 6)), (1, 5, 5, 6), groups=2),
     r"x_shape=6 with groups=2 needs C_in // groups=3"),
    (lambda m: m.conv2d_backward_input(np.ones((1, 3, 3, 6)), np.ones((3, 3, 3, 6)), (1, 5, 5), groups=2),
     r"x_shape must have 4 entries"),
    (lambda m: m.conv2d_backward_input(np.ones((1, 4, 3, 6)), np.ones((3, 3, 3, 6)), (1, 5, 5, 6), groups=2),
     r"dy has shape \(1, 4, 3, 6\) but the conv2d output has shape \(1, 3, 3, 6\)"),
    (lambda m: m.conv2d_backward_filter(np.ones((1, 3, 3, 6)), np.ones((1, 5, 5, 6)), (3, 3, 2, 6), groups=2),
     r"holds 2 input channels per filter"),
    (lambda m: m.conv2d_backward_filter(np.ones((1, 3, 3, 6)), np.ones((1, 5, 5, 6)), (3, 3, 3, 4), groups=2),
     r"dy has shape"),
    (lambda m: m.conv2d_backward_filter(np.ones((1, 3, 3, 6)), np.ones((1, 5, 5, 6)), (0, 3, 3, 6), groups=2),
     r"empty kernel window"),
    (lambda m: m.conv2d_backward_filter(np.ones((1, 3, 3, 6)), np.ones((1, 5, 5, 6)), (3, 3, 3.0, 6), groups=2),
     r"w_shape\[2\] must be an int"),
    (lambda m: m.conv2d_backward_filter(np.ones((1, 3, 3, 6)), np.ones((5, 5, 6)), (3, 3, 3, 6), groups=2),
     r"x must be 4-D"),
]


@pytest.mark.parametrize("call, match", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_refused_by_name(impl, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(impl)
