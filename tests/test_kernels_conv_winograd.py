"""The Winograd F(2x2, 3x3) strategy: its own shape classes, its rules, non-finite values, thread counts.

``numbaconv._kernels.winograd`` takes 3x3 stride-1 undilated forward calls
(and input-gradient phases) with at least ``WINOGRAD_MIN_IN`` input and
``WINOGRAD_MIN_OUT`` output channels and ``WINOGRAD_MIN_PIXELS`` outputs,
and their filter gradients from ``WINOGRAD_DW_MIN_PIXELS`` outputs on
planes of ``WINOGRAD_MIN_PLANE`` rows and columns; the
tests of its results force it on smaller calls. Its own corners: odd output sizes
(tiles that hang over the edge), padding of 0, 2 and asymmetric padding,
planes wider than one block of tiles, batch 1 (channels split across
units), C_out not a multiple of the 16-wide register tile, C_in beyond one
chunk of the reduction, NCHW memory; and the outputs that are not finite,
which it hands back to the direct method.
"""
import numba
import numpy as np
import pytest

import numbaconv as fast
import numbaconv.reference as ref
from numbaconv import _plan as plan
from numbaconv._kernels import convolution, filter_taps, patch_gemm, winograd

from numbaconv._fast.convolution import image
from test_kernels_conv import FORMATS, filters_to_format, to_format, tolerance

# (n, h, w, c_in, c_out, padding)
CASES = [
    (2, 8, 8, 16, 16, 1),
    (1, 7, 7, 32, 48, 1),  # batch 1, odd plane: channels split across units, edge tiles
    (3, 9, 11, 20, 33, ((0, 2), (2, 1))),  # asymmetric padding, C_out one past two tiles
    (2, 5, 6, 16, 17, 0),  # VALID: 3x4 outputs
    (1, 1, 1, 16, 16, 1),  # a single output
    (1, 3, 3, 16, 16, 2),  # padding beyond the kernel's reach on every side
    (1, 4, 140, 16, 16, 1),  # 70 tiles a row: two blocks of columns
    (5, 3, 3, 16, 16, 1),  # 2x2 tiles an image: units span images, rows of tiles that hang over
    (40, 4, 4, 16, 16, 0),  # 80 rows of tiles, blocks of 27 that end mid-image
    # Slow without the JIT (the coverage run): their products run as Python.
    pytest.param((1, 6, 6, 530, 18, 1), marks=pytest.mark.slow),  # C_in beyond one reduction chunk
    pytest.param((4, 12, 10, 24, 64, "SAME"), marks=pytest.mark.slow),
    # A plane of FILL_MIN_PLANE+ pixels: NCHW data gathered FILL_CHANNELS channels at a time
    # (25: a last group of one), odd sizes, asymmetric padding.
    pytest.param((1, 91, 93, 25, 24, ((1, 0), (2, 1))), marks=pytest.mark.slow),
    # Planes a whole number of 4 KB pages apart (32 x 32: 4 KB of float32, 8 of float64): gathered
    # FILL_CHANNELS channels at a time too (20: a last group of 4).
    pytest.param((1, 32, 32, 20, 24, 1), marks=pytest.mark.slow),
]


def case_id(case):
    n, h, w, ci, co, p = case
    return f"{n}x{h}x{w}x{ci}-{co}-p{p}".replace(" ", "")


def inputs(case, dtype, seed=0):
    n, h, w, ci, co, p = case
    rng = np.random.default_rng(seed + n * h * w * ci * co)
    x = rng.standard_normal((n, h, w, ci)).astype(dtype)
    wt = rng.standard_normal((3, 3, ci, co)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    dy = rng.standard_normal(ref.conv2d(x, wt, padding=p).shape).astype(dtype)
    return x, wt, b, dy


# Without the JIT (the coverage run) the kernels' arithmetic is NumPy
# scalars', which warn on inf - inf and on overflow; compiled, they do not.
NO_JIT_WARNINGS = pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning",
                                             "ignore:overflow:RuntimeWarning")


@pytest.fixture
def forced(monkeypatch):
    """Winograd on every 3x3 stride-1 undilated call, whatever its channels and size."""
    for name in ("WINOGRAD_MIN_IN", "WINOGRAD_MIN_OUT", "WINOGRAD_MIN_PIXELS", "WINOGRAD_DW_MIN_PIXELS",
                 "WINOGRAD_MIN_PLANE", "WINOGRAD_NARROW_MIN_PIXELS"):
        monkeypatch.setattr(plan, name, 0)


class Calls:
    """Counts the calls of the Winograd kernels and of the direct ones (patch GEMM, planes or taps)."""

    def __init__(self, monkeypatch):
        self.counts = {"winograd": 0, "direct": 0, "winograd_dw": 0, "direct_dw": 0}
        for module, name, key in ((winograd, "conv2d_winograd", "winograd"),
                                  (patch_gemm, "conv2d_patch_gemm", "direct"),
                                  (convolution, "conv2d_nhwc", "direct"),
                                  (winograd, "conv2d_backward_filter_winograd", "winograd_dw"),
                                  (patch_gemm, "conv2d_backward_filter_patch_gemm", "direct_dw"),
                                  (convolution, "conv2d_backward_filter_nhwc", "direct_dw"),
                                  (filter_taps, "conv2d_backward_filter_taps", "direct_dw")):
            monkeypatch.setattr(module, name, self.counting(key, getattr(module, name)))

    def counting(self, key, kernel):
        def call(*args):
            self.counts[key] += 1
            return kernel(*args)
        return call


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: t.__name__)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_winograd_matches_the_reference(case, dtype, fmt, forced, monkeypatch):
    calls = Calls(monkeypatch)
    x, w, b, dy = inputs(case, dtype)
    p = case[5]
    wide = [a.astype(np.float64) for a in (x, w, b, dy)]
    atol = tolerance(dtype, 9 * max(case[3], case[4]))
    want = ref.conv2d(*wide[:3], padding=p)
    X, W, DY = to_format(x, fmt), filters_to_format(w, fmt), to_format(dy, fmt)
    got = fast.conv2d(X, W, b, padding=p, data_format=fmt)
    assert got.dtype == dtype
    np.testing.assert_allclose(to_format(got, fmt) if fmt == "NHWC" else got.transpose(0, 2, 3, 1),
                               want, atol=atol, rtol=0)
    assert calls.counts["winograd"] == 1
    # The input gradient is a stride-1 3x3 correlation with the reversed, swapped filter.
    dx = fast.conv2d_backward_input(DY, W, X.shape, padding=p, data_format=fmt)
    dx_want = ref.conv2d_backward_input(wide[3], wide[1], x.shape, padding=p)
    np.testing.assert_allclose(dx if fmt == "NHWC" else dx.transpose(0, 2, 3, 1), dx_want,
                               atol=atol, rtol=0)
    assert calls.counts["winograd"] == 2
    dw = fast.conv2d_backward_filter(DY, X, W.shape, padding=p, data_format=fmt)
    dw_want = ref.conv2d_backward_filter(wide[3], wide[0], w.shape, padding=p)
    np.testing.assert_allclose(dw if fmt == "NHWC" else dw.transpose(2, 3, 1, 0), dw_want,
                               atol=tolerance(dtype, case[0] * case[1] * case[2]), rtol=0)
    assert calls.counts["winograd_dw"] == 1 and calls.counts["direct_dw"] == 0
    if not isinstance(p, str):
        up = fast.conv2d_transpose(DY, W, None, padding=p, data_format=fmt)
        up_want = ref.conv2d_transpose(wide[3], wide[1], None, padding=p)
        np.testing.assert_allclose(up if fmt == "NHWC" else up.transpose(0, 2, 3, 1), up_want,
                                   atol=atol, rtol=0)
    assert calls.counts["direct"] == 0



@NO_JIT_WARNINGS
@pytest.mark.parametrize("value", [None, np.inf])
def test_the_kernel_stores_into_any_memory_order(value):
    """The NCHW store (``_store_rows``) into a result whose rows are not runs of memory: (N, C, W, H) order.

    The public API hands it NCHW memory only (w step 1); the kernel takes
    any Image, and counts the non-finite outputs it stores there too.
    """
    rng = np.random.default_rng(11)
    n, h, w, c_in, c_out = 2, 9, 11, 24, 20  # odd planes: tiles that hang over the last row and column
    x = rng.standard_normal((n, h, w, c_in)).astype(np.float32)
    wt = rng.standard_normal((3, 3, c_in, c_out)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    if value is not None:
        x[1, 4, 5, 6] = value
    u = np.zeros((16,) + plan.panels_shape(c_in, c_out), np.float32)
    taps = np.arange(3, dtype=np.int64)
    steps = (3 * c_in * c_out, c_in * c_out, c_out, 1)
    winograd.transform_filters(wt.reshape(-1), steps, taps, taps, False, c_out, u)
    memory = np.full((n, c_out, w, h), 7.0, np.float32)  # [n, c, w, h]
    y = convolution.Image(memory.reshape(-1), n, h, w, c_out, c_out * w * h, 1, h, w * h)
    rows, cols, outs, units = plan.winograd_units(n, h, w, plan.padded_channels(c_out))
    bad = np.zeros(units, np.int64)
    winograd.conv2d_winograd(image(x, False), u, b, y, rows, cols, outs, 1, 1, bad)
    got = memory.transpose(0, 3, 2, 1)  # [n, h, w, c]
    want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), padding=1)
    if value is None:
        assert bad.sum() == 0
        np.testing.assert_allclose(got, want, atol=tolerance(np.float32, 9 * c_in), rtol=0)
    else:  # (the driver then recomputes the call directly)
        assert bad.sum() == np.count_nonzero(~np.isfinite(got)) > 0


# (n, c, h, w, cols, t0, oh, ow0, co0, channels): a row of tiles stored by _store_rows into NCHW
# memory: runs of STORE_RUN pixels of STORE_RUN channels as transposed blocks, the rest by scratch
# (the channels past the blocks', the tiles after them, tiles past the plane's last row and column).
STORE_ROWS = [
    (2, 40, 9, 37, 19, 3, 8, 0, 0, 40),  # 2 blocks, 3 tiles after (the last hangs over), 8 channels past; one row
    (1, 16, 4, 32, 16, 0, 2, 0, 0, 16),  # blocks only
    (1, 48, 5, 20, 10, 1, 4, 0, 8, 33),  # channels from 8: 2 blocks of 16 and one past; one block, 2 tiles after
    (2, 64, 3, 64, 12, 0, 0, 40, 0, 64),  # from column 40: one block, then 4 tiles by scratch
    (1, 17, 2, 15, 8, 0, 0, 0, 0, 17),  # narrower than a block: all by scratch
    (1, 32, 6, 49, 25, 2, 4, 0, 0, 32),  # 3 blocks, then a tile whose odd column is past the plane
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: t.__name__)
@pytest.mark.parametrize("n, c, h, w, cols, t0, oh, ow0, co0, channels", STORE_ROWS)
def test_the_nchw_store_of_a_row_of_tiles(n, c, h, w, cols, t0, oh, ow0, co0, channels, dtype):
    """y[n, co0 + q, oh + k // 2, ow0 + 2 t + k % 2] = m[4 + k, t0 + t, q] + bias[q] inside y, nothing else; and the
    count of stored values that are not finite."""
    rng = np.random.default_rng(c * w + cols)
    m = rng.standard_normal((16, t0 + cols + 8, 64)).astype(dtype)
    m[5, t0 + 1, 3], m[4, t0 + 2, 0], m[7, t0 + cols - 1, channels - 1] = np.inf, np.nan, -np.inf
    bias = rng.standard_normal(channels).astype(dtype)
    got = np.full((n, c, h, w), -7, dtype)
    img = convolution.Image(got.reshape(-1), n, h, w, c, c * h * w, w, 1, h * w)
    bad = winograd._store_rows(img, m, t0, cols, n - 1, oh, ow0, co0, bias)
    want = np.full((n, c, h, w), -7, dtype)
    for t in range(cols):
        for k in range(4):
            r, col = oh + k // 2, ow0 + 2 * t + k % 2
            if r < h and col < w:
                want[n - 1, co0:co0 + channels, r, col] = m[4 + k, t0 + t, :channels] + bias
    np.testing.assert_array_equal(got, want)  # (NaN where NaN)
    stored = want[n - 1, co0:co0 + channels, oh:oh + 2, ow0:ow0 + 2 * cols]
    assert bad == np.count_nonzero(~np.isfinite(stored)) > 0

# (kernel, stride, dilation, c_in, c_out, (n, h, w) of x, winograd?)
MIN_IN, MIN_OUT = plan.WINOGRAD_MIN_IN, plan.WINOGRAD_MIN_OUT
RULE = [
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (1, 8, 32), True),  # 256 outputs (WINOGRAD_MIN_PIXELS)
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (1, 8, 31), False),
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (1, 14, 14), False),  # 196: a batch-1 ResNet 14x14 layer goes direct
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (8, 7, 7), False),  # 392 on 7x7 planes (WINOGRAD_NARROW_MIN_PIXELS)
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (11, 7, 7), True),  # 539 on 7x7 planes
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (1, 7, 73), False),  # 511 on a 7-high plane
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (1, 8, 64), True),  # the filter gradient's 512 on an 8-high plane
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (1, 8, 63), True),  # 504: forward and input gradient only
    ((3, 3), 1, 1, MIN_IN, MIN_OUT, (2, 7, 40), True),  # 560 on 7-high planes: forward and input gradient
    ((3, 3), 1, 1, MIN_IN - 1, MIN_OUT, (2, 16, 16), False),
    ((3, 3), 1, 1, MIN_IN, MIN_OUT - 1, (2, 16, 16), False),
    ((3, 3), 2, 1, 64, 64, (4, 32, 32), False),  # stride 2: its input gradient's phases have 2 or 1 taps
    ((3, 3), 1, 2, 64, 64, (2, 16, 16), False),  # dilated
    ((3, 2), 1, 1, 64, 64, (2, 16, 16), False),
    ((5, 5), 1, 1, 64, 64, (2, 16, 16), False),
]


@pytest.mark.slow  # (64-channel layers: minutes without the JIT)
@pytest.mark.parametrize("k, s, d, c_in, c_out, size, expected", RULE)
def test_the_rule(k, s, d, c_in, c_out, size, expected, monkeypatch):
    calls = Calls(monkeypatch)
    rng = np.random.default_rng(c_in + c_out)
    x = rng.standard_normal(size + (c_in,))
    w = rng.standard_normal(k + (c_in, c_out))
    kw = dict(stride=s, dilation=d, padding=1)
    y = fast.conv2d(x, w, **kw)
    np.testing.assert_allclose(y, ref.conv2d(x, w, **kw), atol=tolerance(np.float64, 9 * c_in), rtol=0)
    assert (calls.counts["winograd"] == 1) == expected
    dy = rng.standard_normal(y.shape)
    fast.conv2d_backward_input(dy, w, x.shape, **kw)
    assert (calls.counts["winograd"] == 2) == expected
    dw = fast.conv2d_backward_filter(dy, x, w.shape, **kw)
    np.testing.assert_allclose(dw, ref.conv2d_backward_filter(dy, x, w.shape, **kw),
                               atol=tolerance(np.float64, y.size // c_out), rtol=0)
    enough = (y.shape[0] * y.shape[1] * y.shape[2] >= plan.WINOGRAD_DW_MIN_PIXELS
              and min(y.shape[1], y.shape[2]) >= plan.WINOGRAD_MIN_PLANE)
    assert calls.counts["winograd_dw"] == (expected and enough)


@NO_JIT_WARNINGS
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_inputs_give_the_direct_methods_answer(value, fmt, forced, monkeypatch):
    """The transforms would turn an inf into NaN; such calls are redone by a direct method."""
    calls = Calls(monkeypatch)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 7, 32)).astype(np.float32)
    w = rng.standard_normal((3, 3, 32, 16)).astype(np.float32)
    x[1, 2, 3, 4] = value
    got = fast.conv2d(to_format(x, fmt), filters_to_format(w, fmt), padding=1, data_format=fmt)
    got = got if fmt == "NHWC" else got.transpose(0, 2, 3, 1)
    want = ref.conv2d(x, w, padding=1)
    assert calls.counts["winograd"] == 1 and calls.counts["direct"] == 1
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    finite = np.isfinite(want)
    assert (~finite).any() and finite.any()
    np.testing.assert_allclose(got[finite], want[finite], atol=tolerance(np.float32, 9 * 32), rtol=0)
    # The filter gradient: inf in x (or in dy) reaches every dw entry some tap of it touches.
    dy = rng.standard_normal(want.shape).astype(np.float32)
    got = fast.conv2d_backward_filter(to_format(dy, fmt), to_format(x, fmt), filters_to_format(w, fmt).shape,
                                      padding=1, data_format=fmt)
    got = got if fmt == "NHWC" else got.transpose(2, 3, 1, 0)
    want = ref.conv2d_backward_filter(dy, x, w.shape, padding=1)
    assert calls.counts["winograd_dw"] == 1 and calls.counts["direct_dw"] == 1
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], atol=tolerance(np.float32, 2 * 6 * 7), rtol=0)


@NO_JIT_WARNINGS
def test_transforms_that_overflow_float32_are_redone_directly(forced, monkeypatch):
    """Values whose direct sum is finite but whose transformed tiles overflow float32."""
    calls = Calls(monkeypatch)
    # B^T d B adds up to four inputs: (d11 + d12 + d21 + d22) = 4.8e38 overflows.
    x = np.full((1, 4, 4, 16), 1.2e38, np.float32)
    w = np.full((3, 3, 16, 16), 1e-3, np.float32)
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    got = fast.conv2d(x, w, padding=1)
    assert np.isfinite(want).all() and calls.counts["winograd"] == 1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)
    assert calls.counts["direct"] == 1


def test_bit_identical_at_1_and_2_threads(thread_counts, forced):
    x, w, b, dy = inputs(CASES[2], np.float32)
    p = CASES[2][5]
    results = {}
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results[threads] = [fast.conv2d(x, w, b, padding=p), *fast.conv2d_backward(dy, x, w, padding=p)]
    for one, two in zip(*results.values()):
        assert one.tobytes() == two.tobytes()


@pytest.mark.slow
@pytest.mark.parametrize("n, hw, c_in, c_out", [(2, 28, 64, 64), (4, 14, 256, 192)])
def test_float32_error_is_no_larger_than_the_direct_kernels(n, hw, c_in, c_out, monkeypatch):
    """The README's accuracy claim: against a float64 reference, forward and both gradients."""
    rng = np.random.default_rng(c_in)
    x = rng.standard_normal((n, hw, hw, c_in)).astype(np.float32)
    w = (rng.standard_normal((3, 3, c_in, c_out)) / np.sqrt(9 * c_in)).astype(np.float32)
    dy = rng.standard_normal((n, hw, hw, c_out)).astype(np.float32)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    want = (ref.conv2d(x64, w64, padding=1), ref.conv2d_backward_input(dy64, w64, x.shape, padding=1),
            ref.conv2d_backward_filter(dy64, x64, w.shape, padding=1))
    errors = {}
    for strategy, min_in in (("winograd", plan.WINOGRAD_MIN_IN), ("direct", 10**9)):
        monkeypatch.setattr(plan, "WINOGRAD_MIN_IN", min_in)
        calls = Calls(monkeypatch)
        got = (fast.conv2d(x, w, padding=1), fast.conv2d_backward_input(dy, w, x.shape, padding=1),
               fast.conv2d_backward_filter(dy, x, w.shape, padding=1))
        assert calls.counts[strategy] == 2 and calls.counts[strategy + "_dw"] == 1
        errors[strategy] = [np.abs(g - e).max() / np.abs(e).max() for g, e in zip(got, want)]
    for wino, direct in zip(errors["winograd"], errors["direct"]):
        assert wino <= max(direct, 2e-6)


@pytest.mark.parametrize("n, oh, ow", [(2, 14, 14), (4, 14, 14), (8, 13, 13), (40, 4, 4), (1, 7, 140), (3, 9, 11)])
def test_units_share_the_rows_of_tiles_equally(n, oh, ow):
    """As few blocks of rows of tiles as WINOGRAD_TILES allows, and equal ones (none a small rest)."""
    rows, cols, outs, units = plan.winograd_units(n, oh, ow, 64)
    total, most = n * -(-oh // 2), max(1, plan.WINOGRAD_TILES // cols)
    blocks = -(-total // rows)
    assert rows * cols <= plan.WINOGRAD_TILES and blocks == -(-total // min(total, most))
    assert rows == -(-total // blocks)  # the last block is at most blocks - 1 rows short
    assert units == blocks * -(-(-(-ow // 2)) // cols) * -(-64 // outs)
