"""The seed notebooks' worked examples, to exact equality in float32 and float64.

Seed 001 (conv forward) and seed 000 (conv backward with col2im, dY of ones)
work ten small integer cases: X = arange, W = const - arange, b = 10, 100, ...
Where a seed prints the expected array it is asserted here as that literal;
where it only prints "Matched? True" against TensorFlow, the expectation
comes from ``direct_conv`` / ``direct_conv_backward``: plain loops over
Python ints, written for this file (not the reference). Every value is an
integer well below 2**24, so float32 is exact whatever the summation order.

The seeds are the notebooks numbaconv started from (numbered 000 to 004);
they are not in this repository. Every value a test takes from them is
written out here or in ``cases.py``, and a comment naming a seed only says
where a case came from.

Data arrives in NHWC as in the seeds; each test also runs in NCHW (the same
arrays transposed), for both implementations (the ``impl`` fixture).
"""
import functools

import numpy as np
import pytest

from cases import hwio_to, nhwc_to

DTYPES = [np.float32, np.float64]
FORMATS = ["NHWC", "NCHW"]


def seq(*shape):
    return np.arange(np.prod(shape), dtype=np.int64).reshape(shape)


# ----------------------------------------------------- obviously-correct loops


def direct_conv(x, w, b, stride, pads):
    """y[n, i, j, f] = b[f] + sum x[n, i*s + p, j*s + q, c] * w[p, q, c, f] over the
    window, positions outside x (padding) skipped. NHWC/HWIO, Python ints."""
    n_, h, wd, ci = x.shape
    kh, kw, _, co = w.shape
    t, bot, l, r = pads
    oh, ow = (h + t + bot - kh) // stride + 1, (wd + l + r - kw) // stride + 1
    y = np.zeros((n_, oh, ow, co), dtype=object)
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for f in range(co):
                    acc = int(b[f]) if b is not None else 0
                    for p in range(kh):
                        for q in range(kw):
                            hh, ww = i * stride - t + p, j * stride - l + q
                            if 0 <= hh < h and 0 <= ww < wd:
                                for c in range(ci):
                                    acc += int(x[n, hh, ww, c]) * int(w[p, q, c, f])
                    y[n, i, j, f] = acc
    return y


def direct_conv_backward(dy, x, w, stride, pads):
    """dx, dw, db of sum(y * dy) by the same loops, each product added where it came from."""
    n_, h, wd, ci = x.shape
    kh, kw, _, co = w.shape
    t, _, l, _ = pads
    _, oh, ow, _ = dy.shape
    dx = np.zeros(x.shape, dtype=object)
    dw = np.zeros(w.shape, dtype=object)
    db = np.zeros(co, dtype=object)
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for f in range(co):
                    g = int(dy[n, i, j, f])
                    db[f] += g
                    for p in range(kh):
                        for q in range(kw):
                            hh, ww = i * stride - t + p, j * stride - l + q
                            if 0 <= hh < h and 0 <= ww < wd:
                                for c in range(ci):
                                    dx[n, hh, ww, c] += g * int(w[p, q, c, f])
                                    dw[p, q, c, f] += int(x[n, hh, ww, c]) * g
    return dx, dw, db


# ------------------------------------------------------------------ the cases

X44, X77 = seq(1, 4, 4, 1), seq(1, 7, 7, 1)
W33 = (12 - seq(3, 3)).reshape(3, 3, 1, 1)
X443 = seq(1, 4, 4, 3)
W333 = (30 - seq(3, 3, 3)).reshape(3, 3, 3, 1)
W3334 = 120 - seq(3, 3, 3, 4)
B4 = np.array([10, 100, 1000, 10000])


class Seed:
    """One worked example: NHWC x, HWIO w, optional bias, stride, the paddings
    that express the seed's P (TensorFlow's 'SAME' and the explicit int), and
    the literals the seeds print (or None)."""

    def __init__(self, name, x, w, b, stride, paddings, pads, y=None, dx=None, dw=None, db=None):
        self.name, self.x, self.w, self.b, self.stride = name, x, w, b, stride
        self.paddings, self.pads = paddings, pads
        self.y, self.dx, self.dw, self.db = y, dx, dw, db


def plane(rows):
    """A printed 2-D array as (1, H, W, 1)."""
    return np.array(rows)[None, :, :, None]


def kernel(rows):
    """A printed 3x3 filter as HWIO (3, 3, 1, 1)."""
    return np.array(rows)[:, :, None, None]


def channels_last(*planes):
    """Printed per-channel (2, 2) planes (the seeds print Y.transpose(2, 0, 1)) as (1, H, W, C)."""
    return np.stack([np.array(p) for p in planes], axis=-1)[None]


SEEDS = [
    Seed("1-basic", X44, W33, None, 1, ["VALID", 0], (0, 0, 0, 0),
         y=plane([[282, 354], [570, 642]]),
         dx=plane([[12, 23, 21, 10], [21, 40, 36, 17], [15, 28, 24, 11], [6, 11, 9, 4]]),
         dw=kernel([[10, 14, 18], [26, 30, 34], [42, 46, 50]])),
    Seed("2-padding", X44, W33, None, 1, ["SAME", 1], (1, 1, 1, 1),
         y=plane([[47, 95, 134, 113], [153, 282, 354, 282], [333, 570, 642, 486], [365, 605, 662, 487]]),
         dx=plane([[40, 57, 57, 36], [51, 72, 72, 45], [51, 72, 72, 45], [28, 39, 39, 24]]),
         dw=kernel([[45, 66, 54], [84, 120, 96], [81, 114, 90]])),
    Seed("3-stride", X77, W33, None, 2, ["VALID", 0], (0, 0, 0, 0),
         y=plane([[444, 588, 732], [1452, 1596, 1740], [2460, 2604, 2748]]),
         dx=plane([[12, 11, 22, 11, 22, 11, 10], [9, 8, 16, 8, 16, 8, 7],
                   [18, 16, 32, 16, 32, 16, 14], [9, 8, 16, 8, 16, 8, 7],
                   [18, 16, 32, 16, 32, 16, 14], [9, 8, 16, 8, 16, 8, 7],
                   [6, 5, 10, 5, 10, 5, 4]]),
         dw=kernel([[144, 153, 162], [207, 216, 225], [270, 279, 288]])),
    # Seed 000 runs this one through TensorFlow's SAME: with 7x7, k=3, S=2 that is P=1.
    Seed("4-padding-stride", X77, W33, None, 2, ["SAME", 1], (1, 1, 1, 1),
         y=plane([[74, 179, 257, 230], [567, 1020, 1164, 909],
                  [1197, 2028, 2172, 1623], [1382, 2273, 2387, 1738]]),
         dx=plane([[8, 16, 8, 16, 8, 16, 8], [16, 32, 16, 32, 16, 32, 16]] * 3
                  + [[8, 16, 8, 16, 8, 16, 8]]),
         dw=kernel([[216, 288, 216], [288, 384, 288], [216, 288, 216]])),
    Seed("5-channels", X443, W333, None, 1, ["VALID", 0], (0, 0, 0, 0),
         y=plane([[5220, 6597], [10728, 12105]])),
    Seed("6-channels-bias", X443, W333, np.array([10]), 1, ["VALID", 0], (0, 0, 0, 0),
         y=plane([[5230, 6607], [10738, 12115]])),
    Seed("7-filters", X443, W3334, None, 1, ["VALID", 0], (0, 0, 0, 0),
         y=channels_last([[20880, 26388], [42912, 48420]], [[20448, 25875], [42156, 47583]],
                         [[20016, 25362], [41400, 46746]], [[19584, 24849], [40644, 45909]])),
    Seed("8-filters-bias", X443, W3334, B4, 1, ["VALID", 0], (0, 0, 0, 0),
         y=channels_last([[20890, 26398], [42922, 48430]], [[20548, 25975], [42256, 47683]],
                         [[21016, 26362], [42400, 47746]], [[29584, 34849], [50644, 55909]]),
         db=[4, 4, 4, 4]),
    Seed("9-minibatch", seq(3, 4, 4, 3), W3334, B4, 1, ["VALID", 0], (0, 0, 0, 0)),
    Seed("10-rgb-minibatch-stride-padding", seq(3, 7, 7, 3), W3334, B4, 2, ["SAME", 1], (1, 1, 1, 1)),
]

SEED_IDS = [s.name for s in SEEDS]
# The seeds' TF losses sum(Y) (printed "L (tf)") where they print one.
SEED_LOSSES = {"4-padding-stride": 19200, "5-channels": 34650}


@functools.lru_cache(maxsize=None)
def expected_forward(seed):
    loops = direct_conv(seed.x, seed.w, seed.b, seed.stride, seed.pads)
    if seed.y is not None:  # the literal, and the loops agree with it
        np.testing.assert_array_equal(loops, seed.y)
        return seed.y
    return loops


@functools.lru_cache(maxsize=None)
def expected_backward(seed):
    dy = np.ones((seed.x.shape[0], *direct_conv(seed.x, seed.w, None, seed.stride, seed.pads).shape[1:]),
                 dtype=np.int64)
    dx, dw, db = direct_conv_backward(dy, seed.x, seed.w, seed.stride, seed.pads)
    for literal, loops in ((seed.dx, dx), (seed.dw, dw), (seed.db, db)):
        if literal is not None:
            np.testing.assert_array_equal(loops, literal)
    return dy, dx, dw, db


def as_float(a, dtype):
    return np.asarray(a, dtype=np.float64).astype(dtype)


def assert_exact(actual, expected, dtype, name):
    assert actual.dtype == dtype, f"{name}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    np.testing.assert_array_equal(actual, as_float(expected, dtype), err_msg=name)


# ----------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", SEEDS, ids=SEED_IDS)
def test_direct_loops_match_seed_literals(seed):
    """The loops used below reproduce every array the seeds print."""
    expected_forward(seed)
    expected_backward(seed)
    if seed.name in SEED_LOSSES:
        assert expected_forward(seed).sum() == SEED_LOSSES[seed.name]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("seed", SEEDS, ids=SEED_IDS)
def test_seed_forward(impl, seed, dtype, fmt):
    expected = expected_forward(seed)
    x, w = nhwc_to(as_float(seed.x, dtype), fmt), hwio_to(as_float(seed.w, dtype), fmt)
    b = None if seed.b is None else as_float(seed.b, dtype)
    for padding in seed.paddings:
        y = impl.conv2d(x, w, b, stride=seed.stride, padding=padding, data_format=fmt)
        assert_exact(y, nhwc_to(np.asarray(expected, np.float64), fmt), dtype, f"y, padding={padding!r}")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("seed", SEEDS, ids=SEED_IDS)
def test_seed_backward(impl, seed, dtype, fmt):
    """Seed 000: dX, dW, db with dY of ones."""
    dy, dx, dw, db = expected_backward(seed)
    x, w = nhwc_to(as_float(seed.x, dtype), fmt), hwio_to(as_float(seed.w, dtype), fmt)
    dy = nhwc_to(as_float(dy, dtype), fmt)
    for padding in seed.paddings:
        got = impl.conv2d_backward(dy, x, w, stride=seed.stride, padding=padding, data_format=fmt)
        what = f"padding={padding!r}"
        assert_exact(got[0], nhwc_to(np.asarray(dx, np.float64), fmt), dtype, f"dx, {what}")
        assert_exact(got[1], hwio_to(np.asarray(dw, np.float64), fmt), dtype, f"dw, {what}")
        assert_exact(got[2], db, dtype, f"db, {what}")


SINGLE_CHANNEL = [s for s in SEEDS if s.dx is not None]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("seed", SINGLE_CHANNEL, ids=[s.name for s in SINGLE_CHANNEL])
def test_seed_dx_is_the_transposed_conv_of_dy(impl, seed, dtype):
    """conv2d_transpose(dY of ones, W) with the seed's explicit P gives the printed dX."""
    dy = np.ones((1, *seed.y.shape[1:3], 1), dtype)
    dx = impl.conv2d_transpose(dy, as_float(seed.w, dtype), stride=seed.stride, padding=seed.paddings[1])
    assert_exact(dx, seed.dx, dtype, "conv2d_transpose")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("seed", SINGLE_CHANNEL, ids=[s.name for s in SINGLE_CHANNEL])
def test_seed_col2im_route(impl, seed, dtype):
    """Seed 000's own route: dW = X_col.T @ dY_col and dX = col2im(dY_col @ W_col.T)."""
    x, w = as_float(seed.x, dtype), as_float(seed.w, dtype)
    kwargs = {"stride": seed.stride, "padding": seed.paddings[1]}
    x_col = impl.im2col(x, (3, 3), **kwargs)
    dy_col = np.ones((x_col.shape[0], 1), dtype)
    assert_exact((x_col.T @ dy_col).reshape(3, 3, 1, 1), seed.dw, dtype, "dW = X_col.T @ dY_col")
    dx = impl.col2im(dy_col @ w.reshape(1, 9), x.shape, (3, 3), **kwargs)
    assert_exact(dx, seed.dx, dtype, "dX = col2im(dY_col @ W_col.T)")
