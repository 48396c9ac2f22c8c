"""Both convolution strategies on every shape class, and the rule that chooses between them.

``numbaconv._fast.convolution`` has four strategies: "planes" (vectorized
over output positions; narrow layers), "patch GEMM" (register-tiled products
over gathered patches; wide layers, large kernels, small planes), "dots"
(dot products of kernel rows read in place; few output channels on small
planes) and "Winograd" (3x3 stride-1 layers with enough channels; see
``test_kernels_conv_winograd``), chosen per call from the shape. The input gradient and the transpose run the forward
kernels on the stride phases of their output; the filter gradient has a
plane kernel, a patch kernel and a taps kernel (x read in place) of its own.

Here each strategy is forced (through the rule's constants) on the narrow
grid of ``test_kernels_conv`` and on wide shapes (channel counts that are
not multiples of the 16-wide panels or of a two-panel register tile,
pixel counts that are not multiples of its rows, outputs summed in place, tiles that skip the
kernel rows on padding, batch-1 small planes that split the channels
across work units, stride phases that no tap reaches, padding larger than
the kernel), in both layouts, against the reference in float64. The rule's
boundaries are checked with real calls on both sides, and every output, dw
and db included, must be bit-identical at 1 and 2 threads.
"""
import numba
import numpy as np
import pytest

import numbaconv as fast
import numbaconv.reference as ref
from numbaconv import _plan as drivers
from numbaconv._fast._memory import aligned_empty
from numbaconv._numba import prefetch
from numbaconv._kernels import convolution as plane_kernels
from numbaconv._kernels import dots
from numbaconv._kernels import filter_taps
from numbaconv._kernels import patch_gemm

from test_kernels_conv import (CONV_CASES, FORMATS, case_id, conv_inputs, filters_to_format,
                               to_format, tolerance)

# (n, h, w, c_in, c_out, (kh, kw), stride, padding, dilation)
WIDE_CASES = [
    (2, 9, 8, 24, 40, (3, 3), 1, 1, 1),
    (1, 7, 7, 64, 48, (3, 3), 1, "SAME", 1),  # batch 1, small plane: channels split across units
    (2, 11, 9, 16, 32, (7, 7), 1, 3, 1),  # large kernel on a small plane
    (2, 10, 12, 20, 17, (3, 3), 2, "SAME", 1),  # C_out one past a tile
    (1, 13, 11, 18, 33, (3, 3), (2, 3), ((2, 1), (0, 3)), (2, 1)),
    (2, 8, 8, 70, 16, (1, 1), 2, 0, 1),  # 1x1, stride 2
    (1, 9, 9, 16, 20, (3, 3), 2, 1, 2),  # stride and dilation share a factor: phases without taps
    (1, 6, 5, 8, 24, (3, 3), 3, 4, 1),  # padding beyond the kernel (negative input-gradient padding)
    (3, 5, 6, 33, 19, (2, 4), (3, 1), (1, 2), (1, 3)),
    (1, 3, 4, 600, 5, (2, 2), 1, 0, 1),  # K beyond one chunk (read in place: each kernel row beyond one)
    (1, 6, 5, 40, 80, (3, 3), 1, 1, 1),  # 5 panels: two-panel tiles and a one-panel tile, split across units
    # Padded rows, units of every channel of NHWC rows (8+ units): each output row's tiles sum into
    # y (row by row), ...
    (8, 3, 13, 8, 64, (3, 3), 1, 1, 1),  # ... and its last OW % PIX pixels go through the buffer
    (8, 2, 16, 200, 32, (3, 3), 1, 1, 1),  # ... over two chunks of a kernel row (3 x 200 values)
    (8, 2, 133, 3, 32, (3, 3), 1, 1, 1),  # ... units of one row (OW > 128)
    # Units that own whole NHWC rows of every channel (C_out a multiple of 16, 8+ units) ...
    (9, 5, 7, 20, 32, (3, 3), 1, 1, 1),  # ... of fewer than IN_PLACE_MIN_PIXELS pixels: the buffer
    (9, 3, 5, 600, 16, (1, 1), 1, 0, 1),  # ... likewise, over two chunks of the reduction
    # ... of 128+ pixels: the products go to the output in place, all but the last pixels past a
    # multiple of PIX (gathered patches, or padded rows row by row), ...
    (8, 12, 12, 20, 32, (3, 3), 1, 1, 1),
    (8, 12, 11, 600, 16, (1, 1), 1, 0, 1),  # ... over two chunks of the reduction (x read in place)
    # ... or padded rows in place (16 channels, OW not a multiple of PIX or below it): a tile's
    # pixels past a row's outputs land on the next row's first ones, stored again after (the seed's
    # layer, narrower; 2 of 15 pixels a row past the outputs; 4 of 10) ...
    (4, 28, 13, 3, 16, (3, 3), 1, 1, 1),
    (2, 24, 6, 3, 16, (5, 5), 1, 2, 1),
    (2, 30, 5, 3, 16, (7, 7), 1, 3, 1),  # ... but not 6 of 11: past the next row, the buffer
    # ... and where row by row would compute as many pixels as the padded rows (round_up(OW, PIX)
    # = OW + KW - 1, on this machine's tiles), the last unit of each image too short to map: row by row
    (3, 29, 3 * patch_gemm.PIX - 2, 3, 16, (3, 3), 1, 1, 1),
    # Gathered tiles skip the kernel rows on padding: whole tiles with no tap inside x, ...
    (2, 4, 9, 16, 16, (3, 3), 1, 5, 1),
    (9, 6, 7, 8, 32, (5, 3), (2, 1), (4, 1), (2, 1)),  # ... strided and dilated rows
]

NO_TAPS = dict(TAPS_MIN_IN=10**9, TAPS_MIN_IN_SHORT=10**9)  # the filter gradient never by taps
NO_DOTS = dict(DOTS_MAX_OUT=-1)  # no forward call by dots
STRATEGIES = {
    # Forward, input gradient and transpose on planes; the filter gradient on planes.
    "planes": dict(PATCH_MIN_K=10**9, PATCH_MIN_K_1X1=10**9, PATCH_MIN_K_SHORT=10**9,
                   DW_PATCH_MIN_OUT=10**9,
                   WINOGRAD_MIN_IN=10**9, **NO_TAPS, **NO_DOTS),
    # Everything on the patch GEMM, its patches gathered.
    "patches": dict(PATCH_MIN_K=0, PATCH_MIN_OUT=0, PATCH_MIN_WORK=0, PADDED_ROWS_WASTE=-1,
                    DW_PATCH_MIN_OUT=0, DW_PATCH_MAX_LENGTH=10**18, WINOGRAD_MIN_IN=10**9, **NO_TAPS,
                    **NO_DOTS),
    # The same, with every stride-1 undilated forward call (or input-gradient phase) reading
    # padded rows of x in place.
    "padded rows": dict(PATCH_MIN_K=0, PATCH_MIN_OUT=0, PATCH_MIN_WORK=0, PADDED_ROWS_WASTE=10**9,
                        DW_PATCH_MIN_OUT=0, DW_PATCH_MAX_LENGTH=10**18, WINOGRAD_MIN_IN=10**9,
                        **NO_TAPS, **NO_DOTS),
    # Every 3x3 stride-1 undilated forward (or input-gradient phase) and filter gradient on Winograd,
    # whatever the channels.
    "winograd": dict(WINOGRAD_MIN_IN=0, WINOGRAD_MIN_OUT=0, WINOGRAD_MIN_PIXELS=0,
                     WINOGRAD_DW_MIN_PIXELS=0, WINOGRAD_MIN_PLANE=0, WINOGRAD_NARROW_MIN_PIXELS=0,
                     **NO_TAPS, **NO_DOTS),
    # Every filter gradient of more than one tap by taps, x read in place (the rest as the rule).
    "taps": dict(TAPS_MIN_IN=0, TAPS_MAX_IN=10**9, TAPS_LARGE_KERNEL=0, TAPS_MAX_PLANE_W=10**18,
                 WINOGRAD_MIN_IN=10**9, **NO_DOTS),
    # Every forward call (and input-gradient phase) undilated along w by dots, kernel rows read in
    # place, and with it the input gradient, the transpose and the filter gradient.
    "dots": dict(DOTS_MAX_OUT=10**9, DOTS_MAX_PLANE=10**18, DOTS_MIN_RUN=0, PATCH_MIN_K=10**9,
                 PATCH_MIN_K_1X1=10**9, WINOGRAD_MIN_IN=10**9),
}


# Forced on every shape, the dots run each output's lanes in Python without the JIT (the coverage
# pass): minutes per shape. Their coverage there comes from the rule's boundary test below.
SLOW_WITHOUT_JIT = {"dots"}


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.slow) if name in SLOW_WITHOUT_JIT else name
                        for name in STRATEGIES])
def strategy(request, monkeypatch):
    for name, value in STRATEGIES[request.param].items():
        monkeypatch.setattr(drivers, name, value)
    return request.param


def f64_case(case, fmt):
    x, w, b, dy = conv_inputs(case, np.float64)
    return to_format(x, fmt), filters_to_format(w, fmt), b, to_format(dy, fmt)


def reduction(case):
    n, h, w, ci, co, (kh, kw), *_ = case
    return max(kh * kw * max(ci, co), n * h * w)


def check_all_ops(case, fmt):
    """conv2d, its backward, the transpose and its backward against the reference (float64)."""
    x, w, b, dy = f64_case(case, fmt)
    s, p, d = case[6:9]
    kw = dict(stride=s, padding=p, dilation=d, data_format=fmt)
    atol = tolerance(np.float64, reduction(case))
    np.testing.assert_allclose(fast.conv2d(x, w, b, **kw), ref.conv2d(x, w, b, **kw), atol=atol, rtol=0)
    for got, want in zip(fast.conv2d_backward(dy, x, w, **kw), ref.conv2d_backward(dy, x, w, **kw)):
        np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    if isinstance(p, str):
        return  # the transpose with SAME/VALID is its own rule; test_kernels_conv covers it
    up = ref.conv2d_transpose(dy, w, None, **kw)
    np.testing.assert_allclose(fast.conv2d_transpose(dy, w, None, **kw), up, atol=atol, rtol=0)
    d_up = np.random.default_rng(1).standard_normal(up.shape)  # the transpose's output gradient
    for got, want in zip(fast.conv2d_transpose_backward(d_up, dy, w, **kw),
                         ref.conv2d_transpose_backward(d_up, dy, w, **kw)):
        np.testing.assert_allclose(got, want, atol=atol, rtol=0)


@pytest.mark.parametrize("n_out", [16, 32, 48, 64, 80])
@pytest.mark.parametrize(("k_len", "segments"), [(1, 1), (27, 1), (70, 1), (9, 3)])
@pytest.mark.parametrize("start", ["add", "zero", "bias", "bias-streamed", "bias-rows", "bias-rows-streamed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k_major", [False, True], ids=["panels", "k-major"])
def test_the_register_tile_products_over_every_count_of_panels(n_out, k_len, segments, start, dtype, k_major):
    check_tile_products(n_out, k_len, segments, start, dtype, k_major, a_columns=False)


@pytest.mark.parametrize("n_out", [16, 48, 64])
@pytest.mark.parametrize(("k_len", "segments"), [(70, 1), (9, 3)])
@pytest.mark.parametrize("start", ["add", "zero"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k_major", [False, True], ids=["panels", "k-major"])
def test_the_register_tile_products_of_a_read_by_columns(n_out, k_len, segments, start, dtype, k_major):
    check_tile_products(n_out, k_len, segments, start, dtype, k_major, a_columns=True)


def check_tile_products(n_out, k_len, segments, start, dtype, k_major, a_columns):
    """``_tile_products`` against NumPy: one-panel and two-panel tiles, segments, a block of B past its start.

    Every count of 16-channel panels from 1 to 5 (two-panel tiles and a
    last one-panel tile where the machine's float32 tile has two; float64
    has one), the filters' block starting one panel in (``q_b``), A read
    at an offset with rows overlapping as the padded-rows read has them
    (``segments`` > 1), into a block of columns of ``out`` (``o_col``):
    the columns around it keep their values. The sums start at ``out``
    (``add``), at zero, or at the bias: a value per column, or per row
    (``bias_rows``, the W @ X route's); with the bias, also stored past
    the caches (``stream``: rows of ``out`` 64-byte aligned from
    ``o_col``). B in panels, or k-major (an HWIO filter read in place:
    ``b[k, j, i]``). A's values along a row one apart, or (``a_columns``,
    the NHWC 1x1 filter gradient's x read in place) its rows one apart and
    its columns ``a_k``.
    """
    rng = np.random.default_rng(n_out + k_len)
    pix, out_w = patch_gemm.PIX, patch_gemm.OUT
    n_pix = 3 * pix
    a_row, a_k, a_start, seg_step = (1, n_pix + 2, 7, 11) if a_columns else (k_len + 5, 1, 7, 11)
    seg_k = k_len if segments > 1 else 0
    a = rng.standard_normal(a_start + (segments - 1) * seg_step + n_pix * a_row + segments * k_len * a_k + 1)
    a = a.astype(dtype)
    b = rng.standard_normal((n_out // out_w + 1, segments * k_len, out_w)).astype(dtype)
    stream, bias_rows = start.endswith("-streamed"), start.startswith("bias-rows")
    # (any column: y's rows are written in place from a unit's first channel; streamed, whole lines)
    o_col = out_w if stream else 3
    out = aligned_empty((n_pix, o_col + n_out + out_w), dtype)
    out[...] = rng.standard_normal(out.shape)
    bias_size = n_pix if bias_rows else n_out
    bias = rng.standard_normal(bias_size).astype(dtype) if start.startswith("bias") else out[0, :0]
    want = out.astype(np.float64)
    if start != "add":
        want[:, o_col:o_col + n_out] = (bias[:, None] if bias_rows else bias) if bias.size else 0
    for seg in range(segments):
        for k in range(seg * seg_k, seg * seg_k + k_len):
            col = a[a_start + seg * seg_step + np.arange(n_pix) * a_row + k * a_k].astype(np.float64)
            want[:, o_col:o_col + n_out] += np.outer(col, b[1:, k].reshape(-1))
    i64 = np.int64
    b_read = np.ascontiguousarray(b.transpose(1, 0, 2)) if k_major else b
    patch_gemm._tile_products(out, i64(o_col), i64(n_out), a, i64(a_start), i64(a_row), i64(a_k), b_read, i64(out_w),
                              k_major,
                              i64(0), i64(k_len), start == "add", i64(segments), i64(seg_step), i64(seg_k), bias,
                              bias_rows, stream, i64(0), i64(n_pix), i64(1), i64(0))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n_channels", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_plane_passes_over_every_count_of_channels(n_channels, dtype):
    """``_accumulate_taps`` against NumPy: pairs of channels, a last three of an odd count, one alone.

    The planes' forward sums TAPS taps per pass over the grid for two
    channels, or three to end an odd count (3, 5, 7), or one when it is the
    only channel: each count's passes must write every channel's row, from
    its own bias and weights, and nothing past ``length``. Small integers:
    every sum is exact, whatever the order.
    """
    rng = np.random.default_rng(n_channels)
    taps, length = 3 * plane_kernels.TAPS, 37
    planes = rng.integers(-4, 5, 200).astype(dtype)
    offset = rng.integers(0, planes.size - length, taps).astype(np.int64)
    weight = rng.integers(-3, 4, (n_channels, taps)).astype(dtype)
    bias = rng.integers(-9, 10, n_channels).astype(dtype)
    acc = np.full((n_channels, length + 3), 99, dtype)  # 3 columns past length: left alone
    rows = planes[offset[:, None] + np.arange(length)]  # (taps, length)
    plane_kernels._accumulate_taps(acc, bias, planes, offset, weight, np.int64(taps), np.int64(length))
    np.testing.assert_array_equal(acc[:, :length], bias[:, None] + weight @ rows)
    np.testing.assert_array_equal(acc[:, length:], 99)


@pytest.mark.parametrize("out_w, skip, p_first", [(8, 3, 0), (8, 3, 5), (5, 5, 13), (13, 2, 28)])
@pytest.mark.parametrize("n_out", [16, 48])
def test_the_register_tile_maps_padded_rows_onto_rows_of_outputs(out_w, skip, p_first, n_out):
    """``_tile_products`` with ``skip``: pixel g of rows of ``pitch = OW + skip`` goes to row g - skip * (g // pitch).

    The pixels past a row's OW outputs land on the next row's first
    ones; each real pixel stores its row after them, so every row that a
    real pixel owns holds that pixel's sums, and no row outside the
    pixels' span is touched. Tiles start mid-row (``p_first``), wrap
    within a tile, and (5 past OW = 5) carry as much padding as outputs.
    """
    rng = np.random.default_rng(out_w + skip + p_first + n_out)
    pix, out_wid = patch_gemm.PIX, patch_gemm.OUT
    pitch, k_len, n_pix = out_w + skip, 27, 4 * pix
    a = rng.standard_normal((p_first + n_pix) * k_len).astype(np.float32)
    b = rng.standard_normal((n_out // out_wid, k_len, out_wid)).astype(np.float32)
    bias = rng.standard_normal(n_out).astype(np.float32)
    rows = (p_first + n_pix - 1) // pitch * out_w + pitch  # y's rows from pixel 0's, past the last one's
    out = np.full((rows, n_out + 3), np.nan, np.float32)
    i64 = np.int64
    patch_gemm._tile_products(out, i64(0), i64(n_out), a, i64(p_first * k_len), i64(k_len), i64(1), b, i64(0), False,
                              i64(0), i64(k_len), False, i64(1), i64(0), i64(0), bias, False, False, i64(p_first),
                              i64(n_pix), i64(pitch), i64(skip))
    panels = np.concatenate(list(b), axis=1)  # (K, n_out)
    sums = a.reshape(-1, k_len)[p_first:].astype(np.float64) @ panels + bias
    g = np.arange(p_first, p_first + n_pix)
    real = g % pitch < out_w
    target = g - skip * (g // pitch)
    np.testing.assert_allclose(out[target[real], :n_out], sums[real], rtol=1e-5, atol=1e-4)
    # The rows the padding pixels land on belong to later pixels (stored after them) or lie past the last.
    assert set(target[~real]) <= set(target[real]) | set(range(target[real].max() + 1, rows))
    touched = np.zeros(rows, bool)
    touched[target] = True
    assert np.isnan(out[~touched]).all() and np.isnan(out[:, n_out:]).all()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", WIDE_CASES + CONV_CASES, ids=case_id)
def test_each_strategy_matches_the_reference(case, fmt, strategy):
    check_all_ops(case, fmt)


@pytest.mark.parametrize("case", WIDE_CASES, ids=case_id)
def test_each_strategy_in_float32(case, strategy):
    x, w, b, dy = conv_inputs(case, np.float32)
    s, p, d = case[6:9]
    kw = dict(stride=s, padding=p, dilation=d)
    want = [ref.conv2d(*(a.astype(np.float64) for a in (x, w, b)), **kw),
            *ref.conv2d_backward(*(a.astype(np.float64) for a in (dy, x, w)), **kw)]
    got = [fast.conv2d(x, w, b, **kw), *fast.conv2d_backward(dy, x, w, **kw)]
    for g, e in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, atol=tolerance(np.float32, reduction(case)), rtol=0)


# ------------------------------------------------------------------ the rule


def recorded(monkeypatch, name, what):
    """A list that gets ``what(*args)`` of every call of ``patch_gemm.<name>``, which still runs."""
    seen = []
    kernel = getattr(patch_gemm, name)

    def call(*args):
        seen.append(what(*args))
        return kernel(*args)
    monkeypatch.setattr(patch_gemm, name, call)
    return seen


class Calls:
    """Counts the calls of the direct forward kernels, the dots' transpose and the filter-gradient kernels."""

    def __init__(self, monkeypatch):
        self.counts = {}
        for module, name in ((patch_gemm, "conv2d_patch_gemm"), (plane_kernels, "conv2d_nhwc"),
                             (dots, "conv2d_dots"), (dots, "conv2d_transpose_dots"),
                             (dots, "conv2d_backward_filter_dots"),
                             (patch_gemm, "conv2d_backward_filter_patch_gemm"),
                             (plane_kernels, "conv2d_backward_filter_nhwc"),
                             (filter_taps, "conv2d_backward_filter_taps")):
            monkeypatch.setattr(module, name, self.counting(name, getattr(module, name)))

    def counting(self, name, kernel):
        def call(*args):
            self.counts[name] = self.counts.get(name, 0) + 1
            return kernel(*args)
        return call

    def used(self, *names):
        return {n for n in names if self.counts.get(n)}


def test_a_constant_of_the_rule_set_between_two_calls_changes_the_second(monkeypatch):
    """The public driver keeps each geometry's decisions (``_fast.convolution._route``); setting a constant
    of ``numbaconv._plan`` forgets them (what the forced strategies of this file rely on)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 12, 12, 32)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 32, 32)) / 17).astype(np.float32)
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    calls = Calls(monkeypatch)
    np.testing.assert_allclose(fast.conv2d(x, w, padding=1), want, rtol=1e-4, atol=1e-4)
    assert not calls.used("conv2d_patch_gemm", "conv2d_nhwc")  # 288 output pixels: Winograd
    monkeypatch.setattr(drivers, "WINOGRAD_MIN_PIXELS", 289)
    np.testing.assert_allclose(fast.conv2d(x, w, padding=1), want, rtol=1e-4, atol=1e-4)
    assert calls.used("conv2d_patch_gemm", "conv2d_nhwc")


# (c_in, c_out, k): reduction K = k * k * c_in, and the rule's conditions.
BOUNDARY = [
    (8, 15, 3, "planes"),  # C_out below a register tile
    (8, 57, 3, "patches"),  # K = 72, K * C_out = 4104
    (3, 28, 7, "patches"),  # K = 147 from 3 channels: K * C_out = 4116
    (3, 27, 7, "planes"),  # 3969 < 4096
    # Short reductions (K >= 27): into 48 channels, or from 6 with K * C_out >= 1152
    (2, 64, 3, "planes"),  # K = 18 < 27
    (3, 48, 3, "patches"),  # K = 27 into 48
    (5, 47, 3, "planes"),  # 5 input channels into 47
    (8, 16, 3, "patches"),  # K = 72 from 8 channels: 1152
    (6, 22, 3, "patches"),  # K = 54: 1188
    (6, 21, 3, "planes"),  # 1134 < 1152
    (64, 64, 1, "patches"),  # K * C_out = 4096
    # 1x1 filters: K >= 32 into >= 8 channels
    (32, 8, 1, "patches"),
    (31, 64, 1, "planes"),
    (32, 7, 1, "planes"),
]


@pytest.mark.parametrize("c_in, c_out, k, expected", BOUNDARY)
def test_the_forward_rule_at_its_boundaries(c_in, c_out, k, expected, monkeypatch):
    calls = Calls(monkeypatch)
    rng = np.random.default_rng(c_in * 100 + c_out)
    x = rng.standard_normal((2, 6, 7, c_in))
    w = rng.standard_normal((k, k, c_in, c_out))
    np.testing.assert_allclose(fast.conv2d(x, w, padding="SAME"), ref.conv2d(x, w, padding="SAME"),
                               atol=tolerance(np.float64, k * k * c_in), rtol=0)
    want = {"patches": "conv2d_patch_gemm", "planes": "conv2d_nhwc"}[expected]
    assert calls.used("conv2d_patch_gemm", "conv2d_nhwc") == {want}


# (n, h, w, c_in, c_out, (kh, kw), stride, dilation, expected): the forward goes by dots into at
# most 8 channels (unless the patch GEMM takes it), from kernel rows of 512+ values (KW * C_in),
# undilated along w, for strided or 1x1 filters or output planes of at most 16 pixels; else
# (into fewer than 16 channels) on the planes. The input and filter gradients follow the forward:
# by dots exactly where it is.
DOTS_BOUNDARY = [
    (4, 28, 46, 128, 2, (8, 16), 5, 1, "dots"),  # the seed test's 8x16 stride-5 layer
    (2, 6, 6, 171, 4, (3, 3), 1, 1, "dots"),  # 4 x 4 pixels, rows of 513 values
    (2, 6, 6, 170, 4, (3, 3), 1, 1, "planes"),  # rows of 510 values
    (2, 7, 6, 171, 4, (3, 3), 1, 1, "planes"),  # 5 x 4 pixels, stride 1
    (2, 6, 6, 171, 9, (3, 3), 1, 1, "planes"),  # into 9
    (2, 12, 12, 171, 3, (3, 3), 2, 1, "dots"),  # strided: 5 x 5 pixels
    (2, 9, 9, 512, 2, (1, 1), 1, 1, "dots"),  # 1x1 on 9 x 9 pixels
    (2, 9, 9, 512, 8, (1, 1), 1, 1, "patches"),  # 1x1 into 8: the patch GEMM's
    (2, 6, 8, 171, 4, (3, 3), 1, (1, 2), "planes"),  # dilated along w
    (3, 8, 7, 600, 1, (4, 1), (2, 3), (2, 1), "dots"),  # strided, dilated along h, one channel
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, k, stride, dilation, expected", DOTS_BOUNDARY)
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_dots_rule_at_its_boundaries(n, h, w, c_in, c_out, k, stride, dilation, expected, fmt,
                                         monkeypatch):
    calls = Calls(monkeypatch)
    rng = np.random.default_rng(h * w + c_in + c_out)
    x, wt, b = (rng.standard_normal(s) for s in ((n, h, w, c_in), (*k, c_in, c_out), (c_out,)))
    kw = dict(stride=stride, dilation=dilation)
    want = ref.conv2d(x, wt, b, **kw)
    got = fast.conv2d(to_format(x, fmt), filters_to_format(wt, fmt), b, data_format=fmt, **kw)
    np.testing.assert_allclose(got.transpose(0, 2, 3, 1) if fmt == "NCHW" else got, want,
                               atol=tolerance(np.float64, k[0] * k[1] * c_in), rtol=0)
    want = {"dots": "conv2d_dots", "planes": "conv2d_nhwc", "patches": "conv2d_patch_gemm"}[expected]
    assert calls.used("conv2d_patch_gemm", "conv2d_nhwc", "conv2d_dots") == {want}
    args = (rng.standard_normal(got.shape), to_format(x, fmt), filters_to_format(wt, fmt))
    for g, e in zip(fast.conv2d_backward(*args, data_format=fmt, **kw),
                    ref.conv2d_backward(*args, data_format=fmt, **kw)):
        np.testing.assert_allclose(g, e, atol=tolerance(np.float64, max(k[0] * k[1] * c_in, n * h * w)),
                                   rtol=0)
    by_dots = calls.used("conv2d_transpose_dots", "conv2d_backward_filter_dots")
    assert by_dots == ({"conv2d_transpose_dots", "conv2d_backward_filter_dots"} if expected == "dots" else set())


# (n, h, pitch, position_macs, rows): the plane kernels' rows a unit, MIN_UNITS blocks over the batch
# (rows_per_block) unless those would hold under PLANE_UNIT_MIN_MACS = 2^17 multiply-adds each.
PLANE_ROWS = [
    (1, 28, 30, 3 * 3 * 16 * 3, 14),  # the batch-1 seed's input gradient: 363 k an image, 2 units (not 7 of 4 rows)
    (1, 28, 30, 3 * 3 * 3 * 16, 14),  # ... and its filter gradient
    (1, 32, 32, 256, 16),  # 2^18 an image: 2 units
    (1, 32, 32, 255, 32),  # just under: 1
    (1, 32, 32, 128 * 8, 4),  # 2^20: the 8 blocks of MIN_UNITS
    (1, 32, 32, 128 * 7, 5),  # 7 units' worth: blocks of 5 rows (ceil(32 / 7))
    (2, 14, 16, 9 * 16 * 16, 5),  # 516 k an image, 3 units (4 blocks of MIN_UNITS)
    (8, 28, 30, 27, 28),  # a batch of 8: one block an image either way
    (1, 300, 300, 3, 13),  # the MAX_GRID cap (4096 positions) holds: 13 rows of 300
    (1, 7, 9, 512 * 512 * 9, 1),  # wide: MIN_UNITS blocks, 1 row each
]


@pytest.mark.parametrize("n, h, pitch, position_macs, rows", PLANE_ROWS)
def test_the_plane_units_hold_enough_work(n, h, pitch, position_macs, rows):
    assert drivers.plane_rows(n, h, pitch, position_macs) == rows
    assert drivers.plane_rows(n, h, pitch, position_macs) >= drivers.rows_per_block(n, h, pitch)


@pytest.mark.parametrize("op", ["input", "filter"])
def test_a_batch_1_plane_call_runs_in_units_of_enough_work(op, thread_counts, monkeypatch):
    """The batch-1 seed's gradients on the planes: 2 units of 14 rows, the reference's answer, any thread count."""
    seen = []
    kernel = plane_kernels.conv2d_nhwc if op == "input" else plane_kernels.conv2d_backward_filter_nhwc

    def record(*args):
        seen.append(args[4])  # rows a unit
        return kernel(*args)

    monkeypatch.setattr(plane_kernels, kernel.__name__, record)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 28, 28, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 16)).astype(np.float32)
    dy = rng.standard_normal((1, 28, 28, 16)).astype(np.float32)
    results = []
    for threads in thread_counts:
        numba.set_num_threads(threads)
        if op == "input":
            results.append(fast.conv2d_backward_input(dy, w, x.shape, padding=1))
        else:
            results.append(fast.conv2d_backward_filter(dy, x, w.shape, padding=1))
    assert set(seen) == {14}
    want = (ref.conv2d_backward_input(dy.astype(np.float64), w.astype(np.float64), x.shape, padding=1)
            if op == "input" else ref.conv2d_backward_filter(dy.astype(np.float64), x.astype(np.float64),
                                                                w.shape, padding=1))
    np.testing.assert_allclose(results[0], want, atol=tolerance(np.float32, 28 * 28), rtol=1e-5)
    assert results[0].tobytes() == results[1].tobytes()


# (n, h, w, c_in, c_out, k, padding, expected): stride-1 undilated calls with NHWC results go to
# the patch GEMM's padded-rows read when K >= 27 into 16+ channels and (KW - 1) * C_out (padded
# to 16) <= 4 * OW.
PADDED_ROWS_BOUNDARY = [
    (2, 5, 16, 3, 16, 3, 1, "rows"),  # 2 * 16 <= 4 * 16
    (2, 5, 8, 3, 16, 3, 1, "rows"),  # 32 <= 32
    (2, 5, 7, 3, 16, 3, 1, "planes"),  # 32 > 28 (and K = 27 into 16 is the planes' by by_patches)
    (2, 5, 16, 3, 15, 3, 1, "planes"),  # C_out under a register tile
    (2, 5, 16, 2, 16, 3, 1, "planes"),  # K = 18 < 27
    (2, 5, 30, 3, 16, 3, "VALID", "rows"),  # OW = 28
    (1, 9, 9, 16, 32, 7, 3, "gathered"),  # 6 * 32 > 36: by by_patches, its patches gathered
    (2, 6, 16, 8, 16, 5, ((1, 3), (4, 0)), "rows"),  # asymmetric padding: 4 * 16 <= 4 * 16
    # NCHW results from K = NCHW_SHORT_MIN_K = 128 on (below it, the planes'):
    (2, 5, 16, 14, 16, 3, 1, "rows"),  # K = 126
    (2, 5, 16, 8, 16, 4, ((1, 2), (1, 2)), "rows"),  # K = 128
    (2, 5, 16, 21, 16, 3, 1, "rows"),  # K = 189: NCHW rows copied 8 channels at a time, a last group of 5
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, k, padding, expected", PADDED_ROWS_BOUNDARY)
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_padded_rows_rule_at_its_boundaries(n, h, w, c_in, c_out, k, padding, expected, fmt,
                                                monkeypatch):
    # What the kernel reads by rows (each unit padding its rows of x itself): padded_rows, and stride
    # and dilation 1 (its arguments end with padded_rows, across_images, w_in_place).
    seen = recorded(monkeypatch, "conv2d_patch_gemm", lambda *a: a[-3] and a[8] == a[9] == a[10] == a[11] == 1)
    rng = np.random.default_rng(h * w + c_in + c_out)
    x, wt, b = (rng.standard_normal(s) for s in ((n, h, w, c_in), (k, k, c_in, c_out), (c_out,)))
    want = ref.conv2d(x, wt, b, padding=padding)
    got = fast.conv2d(to_format(x, fmt), filters_to_format(wt, fmt), b, padding=padding,
                      data_format=fmt)
    np.testing.assert_allclose(got.transpose(0, 2, 3, 1) if fmt == "NCHW" else got, want,
                               atol=tolerance(np.float64, k * k * c_in), rtol=0)
    if fmt == "NCHW" and expected == "rows" and k * k * c_in < drivers.NCHW_SHORT_MIN_K:
        expected = "planes"  # (NCHW results stay with the planes on short reductions)
    assert {"rows": [True], "gathered": [False], "planes": []}[expected] == seen


# (w, dtype, streamed, expected): 3x3 from 3 channels into 64 (K = 27), NCHW results. Where the
# patch GEMM would store them past the caches in whole lines (planes' rows of 64 bytes, and the
# call large enough: here the thresholds lowered), they take the NHWC results' rule (the patch
# GEMM, into 48+ channels); else the planes.
NCHW_STREAMED_BOUNDARY = [
    (16, np.float32, True, "patches"),  # rows of 64 bytes
    (32, np.float32, True, "patches"),
    (12, np.float32, True, "planes"),  # 48 bytes: part lines
    (20, np.float32, True, "planes"),  # 80 bytes
    (8, np.float64, True, "patches"),
    (12, np.float64, True, "planes"),  # 96 bytes
    (16, np.float32, False, "planes"),  # too small to stream
]


@pytest.mark.parametrize("w, dtype, streamed, expected", NCHW_STREAMED_BOUNDARY)
def test_short_nchw_results_that_stream_go_to_the_patch_gemm(w, dtype, streamed, expected, monkeypatch):
    from numbaconv._fast import convolution as drivers_fast
    seen = recorded(monkeypatch, "conv2d_patch_gemm", lambda *a: True)
    if streamed:
        # (Only the rule reads these; the compiled kernel keeps its own and stores as usual.)
        monkeypatch.setattr(patch_gemm, "STREAM_MIN_BYTES", 1 << 10)
        monkeypatch.setattr(patch_gemm, "STREAM_MIN_FOOTPRINT", 1 << 10)
    drivers_fast._route.cache_clear()
    try:
        rng = np.random.default_rng(w)
        x, wt, b = (rng.standard_normal(s).astype(dtype) for s in ((2, 6, w, 3), (3, 3, 3, 64), (64,)))
        want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), padding=1)
        got = fast.conv2d(to_format(x, "NCHW"), filters_to_format(wt, "NCHW"), b, padding=1, data_format="NCHW")
    finally:
        drivers_fast._route.cache_clear()
    np.testing.assert_allclose(got.transpose(0, 2, 3, 1), want, atol=tolerance(dtype, 27), rtol=0)
    assert {"patches": [True], "planes": []}[expected] == seen


# (h, w, dtype, aliased): NCHW planes a whole number of 4 KB pages apart (32 x 32 float32, 32 x 16
# float64) go to NHWC memory through planes_to_pixels (NumPy's copy and the in-place gather read
# across channels, all in one L1 set); other planes keep NumPy's copy and the gather in place.
ALIASED_PLANES = [
    (32, 32, np.float32, True),
    (32, 16, np.float64, True),
    (30, 30, np.float32, False),
    (16, 32, np.float64, True),
    (16, 16, np.float32, False),  # 1 KB
]


@pytest.mark.parametrize("h, w, dtype, aliased", ALIASED_PLANES)
def test_page_aliased_nchw_planes_are_copied_to_pixels_by_the_kernel(h, w, dtype, aliased, monkeypatch):
    from numbaconv._fast import _memory
    from numbaconv._fast import convolution as drivers_fast
    copies = []
    pixels_of = _memory.pixels_of

    def record(planes):
        copies.append(planes.shape)
        return pixels_of(planes)

    monkeypatch.setattr(_memory, "pixels_of", record)
    rng = np.random.default_rng(h * w)
    x = rng.standard_normal((2, h, w, 16)).astype(dtype)
    nchw = to_format(x, "NCHW")
    got = _memory.channels_last(nchw.transpose(0, 2, 3, 1))
    assert got.flags.c_contiguous and np.array_equal(got, x)
    assert copies == ([(2, 16, h * w)] if aliased else [])
    # The patch GEMM's gathered patches (4x4 stride 2, 16 channels in): from that NHWC copy, not
    # in place from the planes.
    copies.clear()
    seen = recorded(monkeypatch, "conv2d_patch_gemm", lambda x_img, *a: x_img.c_step)
    drivers_fast._route.cache_clear()
    wt, b = rng.standard_normal((4, 4, 16, 32)).astype(dtype), rng.standard_normal(32).astype(dtype)
    y = fast.conv2d(nchw, filters_to_format(wt, "NCHW"), b, stride=2, padding=1, data_format="NCHW")
    want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), stride=2, padding=1)
    np.testing.assert_allclose(y.transpose(0, 2, 3, 1), want, atol=tolerance(dtype, 256), rtol=0)
    assert seen == [1 if aliased else h * w]


# (n, h, w, c_in, c_out, k, stride, padding): NHWC forwards through the patch GEMM.
ONE_PANEL = [
    (1, 28, 28, 3, 16, 3, 1, "SAME"),  # the batch-1 seed layer: padded rows
    (2, 9, 11, 32, 16, 3, 2, 1),  # gathered patches
    (5, 3, 3, 64, 16, 3, 1, 1),  # tiles across images
    (3, 7, 7, 256, 16, 1, 1, 0),  # 1x1 over merged rows
    (2, 9, 11, 32, 32, 3, 2, 1),  # two panels: packed
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, k, stride, padding", ONE_PANEL)
def test_a_filter_of_one_panel_is_read_in_place(n, h, w, c_in, c_out, k, stride, padding, monkeypatch):
    """An NHWC forward's HWIO filter of OUT channels is the packed panel itself: nothing packs it."""
    packed, gemm = [], []
    pack, kernel = patch_gemm.pack_filters, patch_gemm.conv2d_patch_gemm

    def record_pack(*args):
        packed.append(args[-1].shape)
        return pack(*args)

    def record_gemm(*args):
        gemm.append(args[1].shape)
        return kernel(*args)

    monkeypatch.setattr(patch_gemm, "pack_filters", record_pack)
    monkeypatch.setattr(patch_gemm, "conv2d_patch_gemm", record_gemm)
    rng = np.random.default_rng(n * h + c_in)
    x, wt, b = (rng.standard_normal(s).astype(np.float32) for s in ((n, h, w, c_in), (k, k, c_in, c_out), (c_out,)))
    got = fast.conv2d(x, wt, b, stride=stride, padding=padding)
    np.testing.assert_allclose(got, ref.conv2d(x.astype(np.float64), wt, b, stride=stride, padding=padding),
                               atol=tolerance(np.float32, k * k * c_in), rtol=0)
    assert len(gemm) == 1  # (the patch GEMM ran)
    assert packed == ([] if c_out == patch_gemm.OUT else [(c_out // patch_gemm.OUT, k * k * c_in, patch_gemm.OUT)])
    # An input gradient's phases swap the filter's channels: those are packed still.
    dx = fast.conv2d_backward_input(got, wt, x.shape, stride=stride, padding=padding)
    np.testing.assert_allclose(dx, ref.conv2d_backward_input(got.astype(np.float64), wt, x.shape, stride=stride,
                                                             padding=padding),
                               atol=tolerance(np.float32, k * k * c_out) * np.abs(got).max(), rtol=0)


# (n, h, w, c_in, c_out, k, stride, expected): the filter gradient goes to patches when
# K >= 64, C_out >= 32 and the plane kernel's work unit (rows_per_block * pitch grid
# positions) is under 256, or the filter has fewer taps than stride phases, or is strided from
# 32 input channels; 1x1 filters from 32 channels into 64 always.
DW_BOUNDARY = [
    (8, 15, 15, 8, 32, 3, 1, "patches"),  # K = 72; 8 images: a unit is a plane, 15 * 17 = 255
    (8, 16, 14, 8, 32, 3, 1, "planes"),  # 16 * 16 = 256
    (1, 15, 15, 8, 32, 3, 1, "patches"),  # batch 1: 8 units a plane, 2 * 17
    (8, 15, 15, 7, 32, 3, 1, "planes"),  # K = 63
    (8, 15, 15, 8, 31, 3, 1, "planes"),  # C_out below 32
    (8, 16, 16, 64, 32, 1, 2, "patches"),  # 1x1 stride 2: 1 tap, 4 phases (grid 8 * 8, and:)
    (8, 40, 40, 64, 32, 1, 2, "patches"),  # grid 20 * 20 = 400: for the phases alone
    (8, 40, 40, 64, 32, 1, 1, "planes"),  # 1x1 stride 1, grid 40 * 40, into 32 channels
    (8, 40, 40, 32, 64, 1, 1, "patches"),  # 1x1 from 32 channels into 64: any grid
    (8, 40, 40, 31, 64, 1, 1, "planes"),  # K = 31
    (8, 40, 40, 16, 32, 2, 2, "planes"),  # 2x2 stride 2: 4 taps for 4 phases, grid 20 * 20
    (8, 40, 40, 32, 32, 3, 2, "patches"),  # strided, from 32 input channels: any grid
    (8, 40, 40, 31, 32, 3, 2, "planes"),  # 31
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, k, stride, expected", DW_BOUNDARY)
def test_the_filter_gradient_rule_at_its_boundaries(n, h, w, c_in, c_out, k, stride, expected,
                                                    monkeypatch):
    for name, value in NO_TAPS.items():  # (taps has its own rule, below)
        monkeypatch.setattr(drivers, name, value)
    calls = Calls(monkeypatch)
    rng = np.random.default_rng(h * w + c_in)
    x = rng.standard_normal((n, h, w, c_in))
    wt = rng.standard_normal((k, k, c_in, c_out))
    kw = dict(stride=stride, padding=k // 2)
    dy = rng.standard_normal(ref.conv2d(x, wt, **kw).shape)
    got = fast.conv2d_backward_filter(dy, x, wt.shape, **kw)
    want = ref.conv2d_backward(dy, x, wt, **kw)[1]
    np.testing.assert_allclose(got, want, atol=tolerance(np.float64, dy.size // c_out), rtol=0)
    names = ("conv2d_backward_filter_patch_gemm", "conv2d_backward_filter_nhwc", "conv2d_backward_filter_taps")
    assert calls.used(*names) == {names[("patches", "planes", "taps").index(expected)]}


# (n, h, w, c_in, c_out, k, stride, expected): the filter gradient goes by taps from 16 to 128
# input channels, for kernels of 2+ taps: where the patch GEMM would take it (see DW_BOUNDARY)
# with 25+ taps or into up to 32 channels; where the planes would, into up to 16 channels, or
# with 25+ taps on planes up to 32 wide or from 64 input channels. From 6 input channels into
# up to 32 on the plane kernel's short grids (under 256 positions a unit).
TAPS_BOUNDARY = [
    (8, 15, 15, 16, 32, 3, 1, "taps"),  # the patch GEMM's (grid 255), into 32
    (8, 15, 15, 16, 33, 3, 1, "patches"),  # into 33
    (8, 15, 15, 16, 48, 5, 1, "taps"),  # 25 taps
    (8, 40, 40, 15, 16, 3, 1, "planes"),  # 15 input channels (a long grid: 40 rows of 42)
    (2, 9, 9, 128, 32, 3, 1, "taps"),  # 128 input channels
    (2, 9, 9, 129, 32, 3, 1, "patches"),  # 129
    (8, 40, 40, 16, 16, 3, 1, "taps"),  # the planes', into 16
    (8, 40, 40, 16, 17, 3, 1, "planes"),  # into 17
    (4, 32, 32, 16, 32, 5, 1, "taps"),  # the planes', 25 taps, OW = 32
    (4, 33, 33, 16, 32, 5, 1, "planes"),  # OW = 33 ...
    (4, 33, 33, 64, 32, 5, 1, "taps"),  # ... from 64 input channels
    (4, 33, 33, 63, 32, 5, 1, "planes"),
    (4, 12, 12, 64, 16, 1, 1, "planes"),  # 1x1
    (4, 30, 30, 20, 16, 5, 2, "taps"),  # strided
    (64, 12, 12, 6, 16, 5, 1, "taps"),  # 6 channels, a short grid (12 rows of 16)
    (64, 12, 12, 5, 16, 5, 1, "planes"),  # 5 channels
    (64, 12, 12, 6, 33, 5, 1, "patches"),  # into 33
    (8, 28, 28, 8, 16, 3, 1, "planes"),  # a long grid (28 rows of 30)
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, k, stride, expected", TAPS_BOUNDARY)
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_filter_gradient_by_taps_at_its_boundaries(n, h, w, c_in, c_out, k, stride, expected, fmt,
                                                       monkeypatch):
    calls = Calls(monkeypatch)
    rng = np.random.default_rng(h * w + c_in + c_out)
    x = rng.standard_normal((n, h, w, c_in)).astype(np.float32)
    wt = rng.standard_normal((k, k, c_in, c_out)).astype(np.float32)
    kw = dict(stride=stride, padding=k // 2)
    dy = rng.standard_normal(ref.conv2d(x, wt, **kw).shape).astype(np.float32)
    want = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), wt.astype(np.float64), **kw)[1]
    got = fast.conv2d_backward_filter(to_format(dy, fmt), to_format(x, fmt), filters_to_format(wt, fmt).shape,
                                      data_format=fmt, **kw)
    got = got if fmt == "NHWC" else got.transpose(2, 3, 1, 0)
    np.testing.assert_allclose(got, want, atol=tolerance(np.float32, dy.size // c_out), rtol=0)
    names = ("conv2d_backward_filter_patch_gemm", "conv2d_backward_filter_nhwc", "conv2d_backward_filter_taps")
    assert calls.used(*names) == {names[("patches", "planes", "taps").index(expected)]}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_1x1_filter_gradient_goes_to_the_patch_gemm_on_long_grids_in_both_layouts(fmt, monkeypatch):
    """8x40x40x32 -> 64 (DW_BOUNDARY): the patch GEMM, which reads NCHW memory's wider operand in place."""
    calls = Calls(monkeypatch)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 40, 40, 32)).astype(np.float32)
    wt = rng.standard_normal((1, 1, 32, 64)).astype(np.float32)
    dy = rng.standard_normal((8, 40, 40, 64)).astype(np.float32)
    got = fast.conv2d_backward_filter(to_format(dy, fmt), to_format(x, fmt), filters_to_format(wt, fmt).shape,
                                      data_format=fmt)
    got = got if fmt == "NHWC" else got.transpose(2, 3, 1, 0)
    want = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), wt.astype(np.float64))[1]
    np.testing.assert_allclose(got, want, atol=tolerance(np.float32, 8 * 40 * 40), rtol=0)
    assert calls.used("conv2d_backward_filter_patch_gemm", "conv2d_backward_filter_nhwc") == {
        "conv2d_backward_filter_patch_gemm"}


# (n, h, w, c_in, c_out, stride, dtype): NCHW 1x1 filter gradients whose A operand (dy as dw^T,
# else x) the patch GEMM reads in place, a channel plane per row, with the rows past the last
# whole tile of PIX gathered, in chunks of whole images (an image per segment of the products)
# or of rows of one image (a product per image a chunk reaches).
IN_PLACE_1X1_CASES = [
    (3, 5, 7, 40, 75, 1, np.float32),  # 35-pixel planes, 7 to a chunk; 75 rows: a tile's rows gathered
    (2, 23, 24, 35, 64, 1, np.float32),  # 552-pixel planes in chunks of 10 rows, some across two images
    (2, 20, 20, 100, 64, 1, np.float32),  # C_in > C_out: x read in place (100 rows, 4 or 5 gathered)
    (2, 17, 15, 40, 96, 2, np.float32),  # stride 2: dy in place, x's strided pixels in the panels
    (1, 12, 11, 300, 530, 1, np.float32),  # dw^T of 159000 values: blocks of K rows, 530 rows
    (2, 9, 30, 48, 70, 1, np.float64),  # float64: one-panel tiles
    (9, 4, 4, 64, 64, 1, np.float32),  # 16-pixel planes: 16 images a chunk (segments), one chunk of 9
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, stride, dtype", IN_PLACE_1X1_CASES)
def test_an_nchw_1x1_filter_gradient_read_in_place(n, h, w, c_in, c_out, stride, dtype, monkeypatch):
    planes = recorded(monkeypatch, "conv2d_backward_filter_patch_gemm", lambda x, *a: x.w_step == 1 and x.h_step == x.w)
    rng = np.random.default_rng(n * h * w + c_in)
    x = rng.standard_normal((n, h, w, c_in)).astype(dtype)
    wt = rng.standard_normal((1, 1, c_in, c_out)).astype(dtype)
    dy = rng.standard_normal(ref.conv2d(x, wt, stride=stride).shape).astype(dtype)
    want = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), wt.astype(np.float64),
                               stride=stride)[1]
    got = fast.conv2d_backward_filter(to_format(dy, "NCHW"), to_format(x, "NCHW"), (c_out, c_in, 1, 1),
                                      stride=stride, data_format="NCHW")
    np.testing.assert_allclose(got.transpose(2, 3, 1, 0), want, atol=tolerance(dtype, dy.size // c_out), rtol=0)
    assert planes == [True]  # one call, its A operand in channel planes


# (n, h, w, c_in, c_out, dtype, in_place): NHWC 1x1 filter gradients whose x and dy the patch GEMM
# reads in place (patch_gemm.filter_gradient_rows: x's pixels as A's columns, whole tiles of PIX
# channels; dy's pixels as k-major rows of B, whole panels, no wider than x's or 4 panels), else
# gathered. Channels that are multiples of 40 make whole tiles for PIX 5 and 8 alike.
ROWS_IN_PLACE_CASES = [
    (2, 12, 10, 80, 80, np.float32, True),
    (3, 7, 9, 80, 48, np.float32, True),  # dy narrower than x
    (2, 16, 16, 40, 64, np.float32, True),  # dy wider than x, within 4 panels
    (2, 64, 48, 80, 80, np.float32, True),  # 6144 pixels: parts, each of several chunks
    (1, 5, 3, 120, 32, np.float32, True),  # 15 pixels: one short chunk
    (2, 9, 30, 80, 64, np.float64, True),  # float64: one-panel tiles
    (1, 32, 32, 64, 40, np.float32, True),  # dw^T (dy the A operand, x the B operand)
    (2, 12, 10, 40, 80, np.float32, False),  # dy wider than x and 4 panels: gathered
    (2, 12, 10, 36, 64, np.float32, False),  # C_in in no whole tiles: gathered
    (2, 12, 10, 80, 40, np.float32, False),  # C_out in no whole panels: gathered
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, dtype, in_place", ROWS_IN_PLACE_CASES)
def test_an_nhwc_1x1_filter_gradient_read_in_place(n, h, w, c_in, c_out, dtype, in_place, monkeypatch):
    if c_in % patch_gemm.PIX and c_out % patch_gemm.PIX and in_place:
        pytest.fail("a case that reads in place needs whole tiles of PIX channels")
    rows = recorded(monkeypatch, "conv2d_backward_filter_patch_gemm", lambda *args: args[-1].shape[0] > 0)
    rng = np.random.default_rng(n * h * w + c_in + c_out)
    x = rng.standard_normal((n, h, w, c_in)).astype(dtype)
    wt = rng.standard_normal((1, 1, c_in, c_out)).astype(dtype)
    dy = rng.standard_normal((n, h, w, c_out)).astype(dtype)
    want = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), wt.astype(np.float64))[1]
    got = fast.conv2d_backward_filter(dy, x, wt.shape)
    np.testing.assert_allclose(got, want, atol=tolerance(dtype, n * h * w), rtol=0)
    assert rows == [in_place]


def test_an_nhwc_1x1_filter_gradient_read_in_place_is_bit_identical_at_1_and_2_threads(thread_counts, monkeypatch):
    """6144 pixels in parts (ROWS_IN_PLACE_CASES[3]): each part's chunks in order, whatever thread runs it."""
    rows = recorded(monkeypatch, "conv2d_backward_filter_patch_gemm",
                    lambda x, dy, partial, *a: (partial.shape[0], a[-1].shape[0] > 0))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 64, 48, 80)).astype(np.float32)
    dy = rng.standard_normal((2, 64, 48, 80)).astype(np.float32)
    results = []
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results.append(fast.conv2d_backward_filter(dy, x, (1, 1, 80, 80)))
    assert results[0].tobytes() == results[1].tobytes()
    assert rows[0][0] > 1 and rows[0][1]  # parts, read in place


def test_only_pixels_in_one_run_are_read_in_place():
    """filter_gradient_rows on Images: contiguous NHWC memory only, exactly the image's values."""
    def in_place(x, dy, one_by_one):
        k = 1 if one_by_one else 3
        return patch_gemm.filter_gradient_rows(x, dy, k, k, 1, 1, 0, 0, False).shape[0] > 0

    def img(data, n, h, w, c, w_step=None):
        w_step = w_step or c
        return plane_kernels.Image(data, n, h, w, c, h * w * w_step, w * w_step, w_step, 1)
    x, dy = np.zeros(2 * 3 * 4 * 80, np.float32), np.zeros(2 * 3 * 4 * 64, np.float32)
    assert in_place(img(x, 2, 3, 4, 80), img(dy, 2, 3, 4, 64), True)
    assert not in_place(img(x, 2, 3, 4, 80), img(dy, 2, 3, 4, 64), False)
    assert not in_place(img(np.zeros(x.size + 80, np.float32), 2, 3, 4, 80),
                                            img(dy, 2, 3, 4, 64), True)  # a buffer past the image
    assert not in_place(img(x, 1, 3, 4, 40, w_step=80), img(dy[:768], 1, 3, 4, 64),
                                            True)  # every other run of 40 channels
    nchw = plane_kernels.Image(x, 2, 3, 4, 80, 960, 4, 1, 12)
    assert not in_place(nchw, img(dy, 2, 3, 4, 64), True)


# (n, h, w, c_in, c_out, stride, padding, format, swapped): a 1x1 filter gradient is computed
# as dw^T = dy^T @ x when no patch reaches padding and, NHWC, while P * (C_in - C_out) >=
# DW_SWAP_RATIO * C_in * C_out, or at stride 1 from C_in <= DW_SWAP_ROWS_MAX_IN into more
# C_out (whole tiles and panels: both read in place); NCHW when C_in < C_out.
DW_SWAP_BOUNDARY = [
    (1, 16, 16, 64, 32, 1, 0, "NHWC", True),  # 256 pixels * 32 = 4 * 64 * 32
    (1, 15, 17, 64, 32, 1, 0, "NHWC", False),  # 255 pixels
    (2, 32, 31, 64, 32, 2, 0, "NHWC", True),  # stride 2: 16 x 16 pixels of x
    (2, 32, 32, 128, 64, 1, 1, "NHWC", False),  # padding
    (1, 16, 16, 32, 64, 1, 0, "NHWC", False),  # C_in < C_out
    (1, 16, 16, 64, 80, 1, 0, "NHWC", True),  # C_in <= DW_SWAP_ROWS_MAX_IN < C_out: dw^T, both read in place
    (1, 16, 16, 64, 68, 1, 0, "NHWC", False),  # ... but C_out in no whole tiles of PIX (5 or 8)
    (1, 16, 16, 80, 160, 1, 0, "NHWC", False),  # ... or C_in past DW_SWAP_ROWS_MAX_IN
    (2, 32, 32, 64, 80, 2, 0, "NHWC", False),  # ... or strided
    (1, 9, 7, 64, 96, 1, 0, "NCHW", True),
    (2, 10, 9, 64, 96, 3, 0, "NCHW", True),  # stride 3
    (1, 16, 16, 64, 32, 1, 0, "NCHW", False),
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, stride, padding, fmt, swapped", DW_SWAP_BOUNDARY)
def test_the_1x1_filter_gradient_as_dw_transposed_at_its_boundaries(n, h, w, c_in, c_out, stride, padding,
                                                                    fmt, swapped, monkeypatch):
    firsts = recorded(monkeypatch, "conv2d_backward_filter_patch_gemm", lambda x, *a: x.c)
    rng = np.random.default_rng(h * w + c_in)
    x = rng.standard_normal((n, h, w, c_in)).astype(np.float32)
    wt = rng.standard_normal((1, 1, c_in, c_out)).astype(np.float32)
    kw = dict(stride=stride, padding=padding)
    dy = rng.standard_normal(ref.conv2d(x, wt, **kw).shape).astype(np.float32)
    want = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), wt.astype(np.float64), **kw)[1]
    got = fast.conv2d_backward_filter(to_format(dy, fmt), to_format(x, fmt),
                                      filters_to_format(wt, fmt).shape, data_format=fmt, **kw)
    got = got if fmt == "NHWC" else got.transpose(2, 3, 1, 0)
    np.testing.assert_allclose(got, want, atol=tolerance(np.float32, dy.size // c_out), rtol=0)
    assert firsts == [c_out if swapped else c_in]


# (n, h, w, c_in, c_out, (kh, kw), stride, padding, dilation, dtype): NCHW filter gradients of
# more than one tap on the patch GEMM, computed as dw^T = dy^T @ patches into OIHW memory: dy's
# channel planes read in place (the rows past the last whole tile of PIX gathered), x's patches
# gathered from its planes into blocks of columns (plan.dw_transposed_plan).
TRANSPOSED_DW_CASES = [
    (1, 7, 7, 300, 70, (3, 3), 1, 1, 1, np.float32),  # K = 2700 in blocks of columns; 70 rows
    (2, 9, 8, 24, 40, (3, 3), 2, 1, 1, np.float32),  # stride 2
    (3, 5, 6, 33, 19, (2, 4), (3, 1), (1, 2), (1, 3), np.float32),  # dilation, asymmetric taps
    (1, 2, 2, 16, 33, (3, 3), 2, 1, 1, np.float32),  # one output pixel: dy in NHWC steps, gathered
    (2, 11, 9, 16, 32, (7, 7), 1, 3, 1, np.float64),  # float64: one-panel tiles
    (2, 30, 31, 8, 24, (3, 3), 1, 1, 1, np.float32),  # 930-pixel planes: chunks of rows
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, k, stride, padding, dilation, dtype", TRANSPOSED_DW_CASES)
def test_an_nchw_filter_gradient_as_dw_transposed(n, h, w, c_in, c_out, k, stride, padding, dilation, dtype,
                                                  monkeypatch):
    for name, value in STRATEGIES["patches"].items():  # the patch GEMM for every filter gradient
        monkeypatch.setattr(drivers, name, value)
    modes = recorded(monkeypatch, "conv2d_backward_filter_patch_gemm", lambda *a: a[-2])  # transposed
    rng = np.random.default_rng(h * w + c_in + c_out)
    x = rng.standard_normal((n, h, w, c_in)).astype(dtype)
    wt = rng.standard_normal(k + (c_in, c_out)).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    dy = rng.standard_normal(ref.conv2d(x, wt, **kw).shape).astype(dtype)
    want = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), wt.astype(np.float64), **kw)[1]
    got = fast.conv2d_backward_filter(to_format(dy, "NCHW"), to_format(x, "NCHW"), filters_to_format(wt, "NCHW").shape,
                                      data_format="NCHW", **kw)
    np.testing.assert_allclose(got.transpose(2, 3, 1, 0), want, atol=tolerance(dtype, dy.size // c_out), rtol=0)
    assert modes == [True]


# (n, h, w, c_in, c_out, stride, subsampled): NCHW strided 1x1 forward calls run as W @ X over x's
# strided pixels from STRIDED_1X1_MIN_IN input channels, on output planes W @ X takes (256+ pixels).
STRIDED_1X1_CASES = [
    (2, 33, 32, 32, 40, 2, True),  # 17 x 16 outputs, the last row from x's last
    (1, 48, 50, 130, 16, (3, 2), True),  # 16 x 25
    (2, 33, 32, 31, 40, 2, False),  # one input channel fewer
    (1, 31, 32, 128, 40, 2, True),  # 16 x 16 = 256 outputs ...
    (1, 29, 32, 128, 40, 2, False),  # ... 15 x 16 = 240
    (8, 27, 28, 48, 24, 2, True),  # 14 x 14 = 196 outputs of 8 images (plan.NCHW_1X1_BATCH_MIN_PIXELS) ...
    (7, 27, 28, 48, 24, 2, False),  # ... of 7
]


@pytest.mark.parametrize("n, h, w, c_in, c_out, stride, subsampled", STRIDED_1X1_CASES)
def test_an_nchw_strided_1x1_layer_as_w_at_x_over_strided_pixels(n, h, w, c_in, c_out, stride, subsampled,
                                                                 monkeypatch):
    seen = []
    kernel = plane_kernels.subsample_planes

    def call(src, dst, *args):
        seen.append(dst.shape)
        return kernel(src, dst, *args)
    monkeypatch.setattr(plane_kernels, "subsample_planes", call)
    rng = np.random.default_rng(h * w + c_in)
    x = rng.standard_normal((n, h, w, c_in)).astype(np.float32)
    wt = rng.standard_normal((1, 1, c_in, c_out)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    got = fast.conv2d(to_format(x, "NCHW"), filters_to_format(wt, "NCHW"), b, stride=stride, data_format="NCHW")
    want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), stride=stride)
    np.testing.assert_allclose(got, to_format(want, "NCHW"), atol=tolerance(np.float32, c_in), rtol=0)
    assert seen == ([(n * c_in,) + want.shape[1:3]] if subsampled else [])


# ------------------------------------------------------------------ thread counts


def test_a_1x1_filter_gradient_as_dw_transposed_is_bit_identical_at_1_and_2_threads(thread_counts):
    """2 x 64 x 64 pixels, 96 -> 64: eight parts of dw^T (numbaconv._plan.dw_swapped), four per thread."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 64, 64, 96)).astype(np.float32)
    dy = rng.standard_normal((2, 64, 64, 64)).astype(np.float32)
    k_pad, _, parts, k_block, _ = drivers.dw_patches_plan(2, 64, 64, 1, 1, 64, 96)
    assert (parts, k_block) == (8, k_pad)  # eight parts of one block of all K rows
    results = []
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results.append(fast.conv2d_backward_filter(dy, x, (1, 1, 96, 64)))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("k, c_in, c_out", [((3, 3), 300, 70), ((1, 1), 40, 96)])
def test_an_nchw_filter_gradient_read_in_place_is_bit_identical_at_1_and_2_threads(k, c_in, c_out, thread_counts,
                                                                                   monkeypatch):
    """dw^T into OIHW memory (blocks of columns, parts of pixels), and a 1x1 one's, from the shape alone."""
    for name, value in STRATEGIES["patches"].items():
        monkeypatch.setattr(drivers, name, value)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, c_in, 30, 30)).astype(np.float32)
    dy = rng.standard_normal((4, c_out, 30, 30)).astype(np.float32)
    results = []
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results.append(fast.conv2d_backward_filter(dy, x, (c_out, c_in) + k, padding=k[0] // 2,
                                                   data_format="NCHW"))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("case", [WIDE_CASES[0], WIDE_CASES[1], WIDE_CASES[2], WIDE_CASES[4], CONV_CASES[1]],
                         ids=case_id)
def test_every_output_is_bit_identical_at_1_and_2_threads(case, thread_counts):
    """The partial sums of dw and db are split by the shape, not by the thread count."""
    x, w, b, dy = conv_inputs(case, np.float32)
    s, p, d = case[6:9]
    kw = dict(stride=s, padding=p, dilation=d)
    results = {}
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results[threads] = [fast.conv2d(x, w, b, **kw), *fast.conv2d_backward(dy, x, w, **kw)]
    for one, two in zip(*results.values()):
        assert one.tobytes() == two.tobytes()



# ------------------------------------------------------------------ 1x1 layers
#
# 1x1 stride-1 unpadded layers on the patch GEMM: NHWC memory is read in
# place as the patches (a unit whose tile padding would run past x gathers
# instead), and NCHW callers' forward pass and input gradient run as
# W @ X (plan.nchw_1x1_by_images: filters of at most 2**18 values, planes
# of at least 256 pixels, or 196 from 8 images on), with the bias per row, in units of a block of
# each image's pixels (plan.nchw_1x1_units).

ONE_BY_ONE_CASES = [
    (2, 5, 7, 40, 24, (1, 1), 1, 0, 1),  # 35 pixels: the last tile's rows run past x
    (3, 9, 30, 33, 20, (1, 1), 1, 0, 1),  # units of 8 rows
    (2, 23, 24, 35, 40, (1, 1), 1, 0, 1),  # 552 pixels: W @ X both ways; 40 rows not whole tiles
    (1, 16, 16, 48, 13, (1, 1), 1, 0, 1),  # 256 pixels: the bound; 13 outputs
    (1, 17, 15, 32, 33, (1, 1), 1, 0, 1),  # 255 pixels: the NHWC route
    (1, 16, 16, 520, 510, (1, 1), 1, 0, 1),  # 265200 filter values: past the bound
    # W @ X: 3 images of 4 blocks of 320 pixels, the last 1184 - 960 (not whole panels);
    # 72 rows in runs of W_AT_X_RUN_TILES tiles (the input gradient, into 16 channels, is
    # too little work for the patch GEMM: the planes)
    (3, 32, 37, 16, 72, (1, 1), 1, 0, 1),
    (1, 23, 23, 600, 100, (1, 1), 1, 0, 1),  # W @ X over two chunks of a 600-long reduction
    # 3x3 stride 2: an input-gradient phase of one tap is a 1x1 stride-1 layer of 529
    # pixels, stored into a phase of dx: not plain NCHW memory, so not W @ X
    (1, 46, 46, 16, 40, (3, 3), 2, 1, 1),
    # 14 x 14 planes (196 pixels, 208 columns a unit): W @ X from MIN_UNITS images, not from 7
    (8, 14, 14, 40, 48, (1, 1), 1, 0, 1),
    (7, 14, 14, 40, 48, (1, 1), 1, 0, 1),
]


# The sixth and the last case take minutes without the JIT: slow (the coverage and bounds-checked
# passes skip them).
SLOW_LAST = [*ONE_BY_ONE_CASES[:5], pytest.param(ONE_BY_ONE_CASES[5], marks=pytest.mark.slow),
             ONE_BY_ONE_CASES[6], pytest.param(ONE_BY_ONE_CASES[7], marks=pytest.mark.slow),
             *ONE_BY_ONE_CASES[8:]]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", SLOW_LAST, ids=case_id)
def test_1x1_layers_match_the_reference(case, fmt):
    check_all_ops(case, fmt)


@pytest.mark.parametrize("case", ONE_BY_ONE_CASES[:4], ids=case_id)
def test_1x1_layers_in_float32_nchw(case):
    x, w, b, dy = conv_inputs(case, np.float32)
    x, dy, w = to_format(x, "NCHW"), to_format(dy, "NCHW"), filters_to_format(w, "NCHW")
    kw = dict(data_format="NCHW")
    want = [ref.conv2d(*(a.astype(np.float64) for a in (x, w, b)), **kw),
            *ref.conv2d_backward(*(a.astype(np.float64) for a in (dy, x, w)), **kw)]
    got = [fast.conv2d(x, w, b, **kw), *fast.conv2d_backward(dy, x, w, **kw)]
    for g, e in zip(got, want):
        assert g.dtype == np.float32 and g.flags.c_contiguous
        np.testing.assert_allclose(g, e, atol=tolerance(np.float32, reduction(case)), rtol=0)


@pytest.mark.parametrize("pixels, filter_values, n, expected", [
    (552, 35 * 40, 1, True), (256, 48 * 13, 1, True), (255, 32 * 33, 1, False), (576, 520 * 510, 1, False),
    (576, 512 * 512, 1, True),
    # 14 x 14 planes from MIN_UNITS images on; not fewer images, nor smaller planes
    (196, 1024 * 256, 8, True), (196, 256 * 256, 32, True), (196, 512 * 512, 7, False), (195, 256, 8, False),
    (196, 520 * 510, 8, False)])
def test_the_nchw_1x1_rule(pixels, filter_values, n, expected):
    assert drivers.nchw_1x1_by_images(1, 1, 1, 1, 0, 0, 1, filter_values, pixels, n) is expected
    assert not drivers.nchw_1x1_by_images(1, 1, 2, 1, 0, 0, 1, filter_values, pixels, n)  # stride
    assert not drivers.nchw_1x1_by_images(1, 1, 1, 1, 0, 1, 1, filter_values, pixels, n)  # padding
    assert not drivers.nchw_1x1_by_images(3, 3, 1, 1, 0, 0, 1, filter_values, pixels, n)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 12, 16, 32])
@pytest.mark.parametrize("c_pad", [16, 512, 528, 784, 1024, 1184, 3136, 12544])
def test_the_w_at_x_units(n, c_pad):
    """Blocks of whole panels of at most NCHW_1X1_UNIT_PIXELS pixels, at least MIN_UNITS units in all."""
    rows, outs = drivers.nchw_1x1_units(n, c_pad)
    blocks = -(-c_pad // outs)
    assert rows == 1 and outs % patch_gemm.OUT == 0 and 0 < outs <= drivers.NCHW_1X1_UNIT_PIXELS
    assert (blocks - 1) * outs < c_pad  # no unit without pixels
    assert n * blocks >= min(drivers.MIN_UNITS, n * c_pad // patch_gemm.OUT)
    if c_pad % (drivers.MIN_UNITS * patch_gemm.OUT) == 0 and c_pad <= drivers.MIN_UNITS * drivers.NCHW_1X1_UNIT_PIXELS:
        assert n * blocks % drivers.MIN_UNITS == 0  # equal shares for 1, 2, 4 or 8 threads


# (rows, columns, col0, n_cols): X[n]'s rows in and past whole blocks of COLUMN_PACK_ROWS (the
# prefetches of the last block clamped to the last row), panels whole, partly past m and wholly past it.
@pytest.mark.parametrize("rows, columns, col0, n_cols", [
    (1, 40, 0, 48), (7, 32, 16, 16), (8, 64, 0, 64), (9, 50, 16, 48), (17, 100, 32, 96), (33, 16, 0, 32)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: t.__name__)
def test_the_w_at_x_pack_copies_every_column_in_panels(rows, columns, col0, n_cols, dtype):
    """``_pack_columns``: panels[j, k, i] = m[k, col0 + j * OUT + i], zero past m's columns."""
    out = patch_gemm.OUT
    m = np.arange(rows * columns, dtype=dtype).reshape(rows, columns) + 1
    padded = np.zeros((rows, col0 + n_cols), dtype)
    padded[:, :columns] = m
    expected = padded[:, col0:].reshape(rows, n_cols // out, out).transpose(1, 0, 2)
    np.testing.assert_array_equal(patch_gemm._pack_columns(m, col0, n_cols), expected)


@numba.njit
def _prefetched_sum(a, indices):
    """sum(a), after a prefetch of a[i] for each i of ``indices`` (inside a, and past its end)."""
    for i in indices:
        prefetch(a, i)
    return a.sum()


def test_a_prefetch_is_only_a_hint():
    """Past the array, or in another's memory, a prefetch neither faults nor changes anything."""
    a = np.arange(100, dtype=np.float32)
    before = a.copy()
    assert _prefetched_sum(a, np.array([0, 50, 99, 100, 1 << 20, -(1 << 40)], np.int64)) == before.sum()
    np.testing.assert_array_equal(a, before)
    assert _prefetched_sum(a[::3], np.array([0, 33, 34], np.int64)) == before[::3].sum()  # a strided view


@pytest.mark.parametrize("case, expected", [
    (ONE_BY_ONE_CASES[2], 2), (ONE_BY_ONE_CASES[3], 1), (ONE_BY_ONE_CASES[4], 0),
    pytest.param(ONE_BY_ONE_CASES[5], 0, marks=pytest.mark.slow), (ONE_BY_ONE_CASES[6], 1),
    (ONE_BY_ONE_CASES[9], 2), (ONE_BY_ONE_CASES[10], 0)],
    ids=lambda v: case_id(v) if isinstance(v, tuple) else str(v))
def test_nchw_1x1_layers_take_w_at_x_where_the_rule_says(case, expected, monkeypatch):
    """conv2d_backward: the input gradient takes it too when its reduction (C_out) is long enough."""
    from numbaconv._fast import convolution as drivers_fast
    calls = []
    real = drivers_fast._forward_1x1_nchw
    monkeypatch.setattr(drivers_fast, "_forward_1x1_nchw", lambda *a: calls.append(1) or real(*a))
    x, w, b, dy = f64_case(case, "NCHW")
    fast.conv2d(x, w, b, data_format="NCHW")
    fast.conv2d_backward(dy, x, w, data_format="NCHW")
    assert len(calls) == expected


# ------------------------------------------------------------ whole windows
#
# A window covering the whole input (one output pixel, nothing padded before
# it) runs as a 1x1 layer over one pixel of H * W * C_in channels, x and the
# filter reinterpreted in their own memory (no copy to NHWC for NCHW callers).

WHOLE_WINDOW_CASES = [
    (5, 4, 4, 24, 1, (4, 4), 1, 0, 1),  # DCGAN's last layer, small: the dots
    (2, 4, 4, 7, 3, (4, 4), 2, ((0, 1), (0, 0)), 1),  # stride 2, padded after only
    (2, 3, 5, 4, 6, (3, 5), 1, 0, 1),  # a non-square window
    (1, 1, 6, 5, 4, (1, 6), 1, 0, 1),  # one row
    (3, 7, 7, 20, 40, (7, 7), 1, 0, 1),  # a classifier as a conv: the patch GEMM
    # ... which becomes a 1x1 layer on planes of one pixel (an SE block's): NCHW memory
    # is then NHWC memory, and the kernels get NHWC steps
    (6, 1, 1, 40, 24, (1, 1), 1, 0, 1),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", WHOLE_WINDOW_CASES, ids=case_id)
def test_whole_window_layers_match_the_reference(case, fmt):
    check_all_ops(case, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_whole_window_layers_into_out_with_a_bias(fmt, dtype):
    """Results in the caller's buffers, C-contiguous in the caller's layout; the transpose's bias per channel."""
    case = WHOLE_WINDOW_CASES[2]
    x, w, b, dy = (a.astype(dtype) for a in f64_case(case, fmt))
    kw = dict(stride=case[6], padding=case[7], data_format=fmt)
    want = [ref.conv2d(x, w, b, **kw), *ref.conv2d_backward(dy, x, w, **kw)]
    outs = [np.empty_like(a) for a in want]
    got = [fast.conv2d(x, w, b, out=outs[0], **kw), *fast.conv2d_backward(dy, x, w, out=tuple(outs[1:]), **kw)]
    b_up = np.random.default_rng(2).standard_normal(x.shape[1 if fmt == "NCHW" else 3]).astype(dtype)
    want.append(ref.conv2d_transpose(dy, w, b_up, **kw))
    outs.append(np.empty_like(want[-1]))
    got.append(fast.conv2d_transpose(dy, w, b_up, out=outs[-1], **kw))
    atol = tolerance(dtype, reduction(case))
    for g, o, e in zip(got, outs, want):
        assert g is o and g.flags.c_contiguous
        np.testing.assert_allclose(g, e, atol=atol, rtol=0)


@pytest.mark.parametrize("case", [WHOLE_WINDOW_CASES[0], WHOLE_WINDOW_CASES[4]], ids=case_id)
def test_a_whole_window_reads_nchw_memory_in_place(case, monkeypatch):
    """For an NCHW caller, x reaches the forward kernel as the caller's own memory, whatever the strategy."""
    seen = []
    for module, name in ((patch_gemm, "conv2d_patch_gemm"), (plane_kernels, "conv2d_nhwc"), (dots, "conv2d_dots")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real: seen.append(a[0].data) or real(*a))
    x, w, b, _ = f64_case(case, "NCHW")
    fast.conv2d(x, w, b, data_format="NCHW")
    assert len(seen) == 1 and np.shares_memory(seen[0], x)


# Without the JIT the kernels' NumPy scalars warn on inf * 0 and inf - inf, where compiled code does not.
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_1x1_in_place_reads_keep_non_finite_values_where_the_reference_has_them():
    """The last unit's tile padding reads no further than x; other units' rows past their pixels are never stored."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 7, 40))
    x[1, 0, 0, 5] = np.inf  # the first pixel of image 1: what image 0's last unit's padding rows read
    x[2, 4, 6, 3] = np.nan
    w = rng.standard_normal((1, 1, 40, 24))
    for fmt in FORMATS:
        xf, wf = to_format(x, fmt), filters_to_format(w, fmt)
        got = fast.conv2d(xf, wf, data_format=fmt)
        with np.errstate(invalid="ignore"):  # inf - inf in the reference's matmul
            want = ref.conv2d(xf, wf, data_format=fmt)
        assert np.isnan(want).any() and np.isinf(want).any()
        np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)  # NaN and inf in the same places


@pytest.mark.parametrize("shape", [(3, 5, 7, 4), (2, 1, 1, 5), (2, 4, 4, 3), (3, 1, 17, 2), (2, 6, 11, 9),
                                   (0, 3, 3, 2), (2, 3, 3, 0)])
def test_the_bias_gradient_of_nchw_planes(shape):
    """NCHW dy: a sum per (n, c) plane in 16 running sums, plane lengths below, at and past 16."""
    dy = np.random.default_rng(len(shape) + shape[2]).standard_normal(shape).astype(np.float32)
    want = dy.astype(np.float64).sum(axis=(0, 1, 2))
    for fmt in FORMATS:
        x = np.zeros(shape[:3] + (1,), np.float32)
        w = np.zeros((1, 1, 1, shape[3]), np.float32)
        got = fast.conv2d_backward(to_format(dy, fmt), to_format(x, fmt), filters_to_format(w, fmt),
                                   data_format=fmt)[2]
        np.testing.assert_allclose(got, want, atol=1e-5 * max(1, shape[0] * shape[1] * shape[2]), rtol=0)


# 1x1 stride-1 unpadded layers on planes of fewer than MERGED_MAX_PLANE pixels,
# a multiple of PIX pixels in all (40: PIX is 8 or 5), run their work units over
# all images' pixels as rows of PIX (plan.merged_rows): units span images.
MERGED_CASES = [
    (8, 1, 5, 24, 20, (1, 1), 1, 0, 1),  # one unit of 40 pixels, its channels split; C_out not whole panels
    (80, 1, 13, 32, 16, (1, 1), 1, 0, 1),  # units of 128+ pixels summed in place
    (48, 7, 7, 32, 48, (1, 1), 1, 0, 1),  # 7 x 7 planes; one image's pixels in two units
    # more than MIN_UNITS units, rounded up to a multiple of it: the last one through the buffer
    pytest.param((96, 1, 25, 32, 16, (1, 1), 1, 0, 1), marks=pytest.mark.slow),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", MERGED_CASES, ids=case_id)
def test_1x1_layers_over_merged_images_match_the_reference(case, fmt):
    check_all_ops(case, fmt)


@pytest.mark.parametrize(("n", "h", "w", "pad", "stride", "merged"), [
    (40, 7, 7, 0, 1, True),
    (40, 127, 1, 0, 1, True),  # 127 pixels a plane
    (40, 8, 16, 0, 1, False),  # 128: the bound
    (41, 7, 7, 0, 1, False),  # 2009 pixels: not a multiple of PIX (8 or 5)
    (1, 8, 5, 0, 1, False),  # one image
    (40, 7, 7, 1, 1, False),  # padded
    (40, 7, 7, 0, 2, False),  # strided
])
def test_1x1_layers_merge_their_images_where_the_rule_says(n, h, w, pad, stride, merged, monkeypatch):
    """The forward kernel sees one image of rows of PIX pixels, or the batch as it is; NCHW results never merge.

    (The input gradient of the stride-1 layers merges too: its result is
    plain NHWC memory.)
    """
    seen = recorded(monkeypatch, "conv2d_patch_gemm", lambda *a: a[3][1:4])
    rng = np.random.default_rng(n + h)
    x = rng.standard_normal((n, h, w, 32)).astype(np.float32)
    wt = rng.standard_normal((1, 1, 32, 16)).astype(np.float32)
    for fmt in FORMATS:
        seen.clear()
        got = fast.conv2d(to_format(x, fmt), filters_to_format(wt, fmt), stride=stride, padding=pad,
                          data_format=fmt)
        want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), stride=stride, padding=pad)
        np.testing.assert_allclose(got, to_format(want, fmt), atol=tolerance(np.float32, 32), rtol=0)
        oh, ow = (h + 2 * pad - 1) // stride + 1, (w + 2 * pad - 1) // stride + 1
        if merged and fmt == "NHWC":
            assert seen == [(1, n * h * w // patch_gemm.PIX, patch_gemm.PIX)]
        else:
            assert seen == [(n, oh, ow)]


# (kh, kw, c_in, c_out, taps_h, taps_w): the forward's taps, and an input-gradient phase's (reversed,
# strided); channel counts past a block of PACK_ROWS and a panel of OUT.
PACK_CASES = [
    (3, 3, 40, 33, (0, 1, 2), (0, 1, 2)),
    (5, 5, 17, 20, (4, 2, 0), (3, 1)),
    (7, 7, 3, 64, tuple(range(7)), tuple(range(7))),
    (1, 3, 70, 9, (0,), (2, 0)),
    (3, 3, 5, 5, (1,), (1,)),  # one tap of several
]


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("kh, kw, c_in, c_out, taps_h, taps_w", PACK_CASES)
def test_packed_filters_are_the_same_from_oihw_and_hwio_memory(kh, kw, c_in, c_out, taps_h, taps_w, swap):
    """pack_filters: OIHW memory (a block of channels at every tap) gives HWIO memory's panels, and the matrix."""
    w = np.random.default_rng(kh * c_in + c_out).standard_normal((kh, kw, c_in, c_out)).astype(np.float32)
    oihw = np.ascontiguousarray(w.transpose(3, 2, 0, 1))
    th, tw = np.array(taps_h, np.int64), np.array(taps_w, np.int64)
    n_in, n_out = (c_out, c_in) if swap else (c_in, c_out)
    panels = {}
    for name, data, steps in (("hwio", w.reshape(-1), (kw * c_in * c_out, c_in * c_out, c_out, 1)),
                              ("oihw", oihw.reshape(-1), (kw, 1, kh * kw, c_in * kh * kw))):
        out = np.full(drivers.panels_shape(th.size * tw.size * n_in, n_out), np.nan, np.float32)
        patch_gemm.pack_filters(data, steps, th, tw, swap, n_out, out)
        panels[name] = out
    np.testing.assert_array_equal(panels["oihw"], panels["hwio"])
    sub = w[np.ix_(th, tw)]  # (taps_h, taps_w, c_in, c_out)
    matrix = (sub.transpose(0, 1, 3, 2) if swap else sub).reshape(-1, n_out)
    n_panels = panels["hwio"].shape[0]
    got = panels["hwio"].transpose(1, 0, 2).reshape(matrix.shape[0], n_panels * patch_gemm.OUT)
    np.testing.assert_array_equal(got[:, :n_out], matrix)
    assert not got[:, n_out:].any()


def test_an_nchw_input_of_few_channels_is_copied_by_the_kernel(planes_to_pixels_calls):
    """ResNet's first layer shape class, NCHW: x of 3 channels goes to NHWC memory through planes_to_pixels."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 23, 21, 3)).astype(np.float32)
    wt = rng.standard_normal((7, 7, 3, 64)).astype(np.float32)
    got = fast.conv2d(to_format(x, "NCHW"), filters_to_format(wt, "NCHW"), stride=2, padding=3, data_format="NCHW")
    want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), stride=2, padding=3)
    np.testing.assert_allclose(got, to_format(want, "NCHW"), atol=tolerance(np.float32, 147), rtol=0)
    assert planes_to_pixels_calls == [(2, 3, 23 * 21)]


# (kernel, source shape, the transpose's axes): NCHW planes (N, C, P) into NHWC memory (N, P, C), in
# blocks of PIXEL_BLOCK pixels and a ragged last one; HWIO filter gradients (taps, C_in, C_out) into
# the NCHW callers' OIHW memory (C_out, C_in, taps), in blocks of 16 and past their ends.
LAYOUT_COPIES = [("planes_to_pixels", shape, (0, 2, 1)) for shape in [(1, 1, 1), (2, 3, 2500), (3, 8, 1024),
                                                                      (1, 5, 1023)]]
LAYOUT_COPIES += [("filters_to_oihw", shape, (2, 1, 0)) for shape in [(1, 1, 1), (9, 3, 64), (25, 17, 33),
                                                                     (4, 40, 15)]]


@pytest.mark.parametrize(("kernel", "shape", "axes"), LAYOUT_COPIES)
def test_the_layout_copies_are_transposes(kernel, shape, axes):
    src = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    dst = np.full(tuple(shape[a] for a in axes), np.nan, np.float32)
    getattr(plane_kernels, kernel)(src, dst)
    np.testing.assert_array_equal(dst, src.transpose(axes))


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_nchw_filter_gradient_lands_in_the_callers_out(fmt):
    """out= (OIHW for NCHW callers) receives dw: the transpose writes into it, nothing else is returned."""
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((2, 6, 5, 20)), rng.standard_normal((2, 6, 5, 24))
    shape = (3, 3, 20, 24) if fmt == "NHWC" else (24, 20, 3, 3)
    out = np.zeros(shape)
    got = fast.conv2d_backward_filter(to_format(dy, fmt), to_format(x, fmt), shape, padding=1, data_format=fmt,
                                      out=out)
    want = ref.conv2d_backward_filter(to_format(dy, fmt), to_format(x, fmt), shape, padding=1, data_format=fmt)
    assert got is out
    np.testing.assert_allclose(out, want, atol=tolerance(np.float64, 2 * 6 * 5), rtol=0)


@pytest.mark.parametrize("c_in", [drivers.NCHW_GATHER_MIN_IN - 1, drivers.NCHW_GATHER_MIN_IN])
def test_nchw_patches_are_gathered_in_place_from_enough_channels(c_in, monkeypatch):
    """A strided NCHW call: x read as NCHW memory from NCHW_GATHER_MIN_IN channels on, else copied to NHWC."""
    seen = recorded(monkeypatch, "conv2d_patch_gemm", lambda *a: a[0].c_step)
    rng = np.random.default_rng(c_in)
    x = rng.standard_normal((2, 9, 11, c_in))
    w = rng.standard_normal((3, 3, c_in, 64))
    got = fast.conv2d(to_format(x, "NCHW"), filters_to_format(w, "NCHW"), stride=2, padding=1,
                      data_format="NCHW")
    want = ref.conv2d(x, w, stride=2, padding=1)
    np.testing.assert_allclose(got, to_format(want, "NCHW"), atol=tolerance(np.float64, 9 * c_in), rtol=0)
    assert seen == [9 * 11 if c_in >= drivers.NCHW_GATHER_MIN_IN else 1]


@pytest.mark.parametrize("pixels", [40, 1040, 1960, 2400, 8 * 5 * 49 * 16])
def test_merged_units_are_equal_and_a_multiple_of_min_units_when_more(pixels):
    pix, c_pad = patch_gemm.PIX, 64
    rows = pixels // pix
    per_unit, outs = drivers.merged_units(pixels, c_pad)
    units = -(-rows // per_unit)
    assert per_unit * pix <= drivers.PATCH_PIXELS
    assert units * per_unit - rows < per_unit  # the last unit holds at least one row
    fewest = -(-rows // (drivers.PATCH_PIXELS // pix))
    if fewest > drivers.MIN_UNITS:
        assert units % drivers.MIN_UNITS == 0 or rows < units * per_unit
        assert units >= fewest
    assert outs == drivers.channels_per_unit(units, c_pad)


# ------------------------------------------------------------------ issue 8: the backward of 1x1 and strided layers
#
# The patch GEMM's filter gradient splits the pixels into parts of down to
# 1024, of whole chunks, while it has fewer than 8 work units
# (plan.dw_patches_plan); the input gradient of a filter whose taps
# miss some stride phases (1x1 stride 2) starts from a zeroed result when
# there is no bias; the NHWC bias gradient sums rows of at most
# BIAS_ROW_VALUES values (plan.bias_row_pixels).

# (n, h, w, c_in, c_out, stride, parts, swapped): 1x1, unpadded, so no patch reaches padding.
DW_PARTS_CASES = [
    (2, 64, 48, 40, 72, 1, 6, False),  # 6144 pixels, K = 40: one K block, so 6 parts
    (2, 64, 48, 100, 64, 1, 6, True),  # dw^T, transposed back for NHWC
    (2, 96, 64, 100, 64, 2, 3, True),  # stride 2: 3072 pixels of x
    (2, 63, 65, 33, 70, 2, 2, False),  # odd sizes, stride 2: 2 x 32 x 33 pixels; C_out past a tile
    (1, 31, 33, 64, 64, 1, 1, False),  # 1023 pixels: one part
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("n, h, w, c_in, c_out, stride, parts, swapped", DW_PARTS_CASES)
def test_the_1x1_filter_gradient_in_parts(n, h, w, c_in, c_out, stride, parts, swapped, fmt, dtype,
                                          monkeypatch):
    seen = recorded(monkeypatch, "conv2d_backward_filter_patch_gemm", lambda x, dy, parts, *a: (parts.shape[0], x.c))
    rng = np.random.default_rng(h * w + c_in)
    x = rng.standard_normal((n, h, w, c_in)).astype(dtype)
    wt = rng.standard_normal((1, 1, c_in, c_out)).astype(dtype)
    kw = dict(stride=stride)
    dy = rng.standard_normal(ref.conv2d(x, wt, **kw).shape).astype(dtype)
    want = ref.conv2d_backward(*(a.astype(np.float64) for a in (dy, x, wt)), **kw)
    got = fast.conv2d_backward(to_format(dy, fmt), to_format(x, fmt), filters_to_format(wt, fmt),
                               data_format=fmt, **kw)
    back = (lambda a: a) if fmt == "NHWC" else (lambda a: a.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(back(got[0]), want[0], atol=tolerance(dtype, c_out), rtol=0)
    dw = got[1] if fmt == "NHWC" else got[1].transpose(2, 3, 1, 0)
    assert got[1].dtype == dtype
    np.testing.assert_allclose(dw, want[1], atol=tolerance(dtype, dy.size // c_out), rtol=0)
    np.testing.assert_allclose(got[2], want[2], atol=tolerance(dtype, dy.size // c_out), rtol=0)
    if fmt == "NHWC":  # (NCHW memory: the plane kernel on grids this long, or dw^T when C_in < C_out)
        assert seen == [(parts, c_out if swapped else c_in)]


@pytest.mark.parametrize("n, h, w, c_in, c_out, stride, parts, swapped", DW_PARTS_CASES[:4])
def test_the_1x1_filter_gradient_in_parts_is_bit_identical_at_1_and_2_threads(
        n, h, w, c_in, c_out, stride, parts, swapped, thread_counts):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, h, w, c_in)).astype(np.float32)
    dy = rng.standard_normal((n, -(-h // stride), -(-w // stride), c_out)).astype(np.float32)
    results = []
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results.append(fast.conv2d_backward_filter(dy, x, (1, 1, c_in, c_out), stride=stride))
    assert results[0].tobytes() == results[1].tobytes()


@pytest.mark.parametrize("pixels, ow, c, expected", [
    (784, 28, 16, 28),  # 28 * 16 values: rows of OW pixels
    (6272, 28, 512, 2),  # 1024 // 512
    (100352, 112, 64, 16),
    (25088, 56, 256, 4),
    (392, 7, 2048, 1),  # wider than BIAS_ROW_VALUES: a pixel a row
    (2 * 31, 31, 32, 31),  # 32 does not divide 62: 31 does
    (3 * 7, 7, 100, 7),  # 10 pixels at most: 7
    (0, 5, 8, 5), (6, 0, 8, 1), (6, 3, 0, 3),
])
def test_the_bias_gradient_rows(pixels, ow, c, expected):
    assert drivers.bias_row_pixels(pixels, ow, c) == expected


@pytest.mark.parametrize("shape", [(8, 28, 28, 512), (3, 31, 31, 64), (2, 7, 5, 1024), (5, 3, 3, 200)])
def test_the_bias_gradient_of_wide_nhwc_layers(shape, thread_counts):
    """Rows shorter than OW * C values (plan.bias_row_pixels), bit-identical at 1 and 2 threads."""
    dy = np.random.default_rng(shape[3]).standard_normal(shape).astype(np.float32)
    want = dy.astype(np.float64).sum(axis=(0, 1, 2))
    results = []
    for threads in thread_counts:
        numba.set_num_threads(threads)
        results.append(fast.conv2d_backward(dy, np.zeros(shape[:3] + (1,), np.float32),
                                            np.zeros((1, 1, 1, shape[3]), np.float32))[2])
    np.testing.assert_allclose(results[0], want, atol=tolerance(np.float32, dy.size // shape[3]), rtol=0)
    assert results[0].tobytes() == results[1].tobytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_transpose_whose_taps_miss_phases_with_a_bias_and_into_out(fmt):
    """1x1 stride 2: 3 of 4 phases hold the bias alone (a zeroed result only without bias or out=)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 5, 6, 40))
    wt = rng.standard_normal((1, 1, 24, 40))
    b = rng.standard_normal(24)
    kw = dict(stride=2, padding=0, data_format=fmt)
    for bias in (None, b):
        want = ref.conv2d_transpose(to_format(x, fmt), filters_to_format(wt, fmt), bias, **kw)
        got = fast.conv2d_transpose(to_format(x, fmt), filters_to_format(wt, fmt), bias, **kw)
        np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)
        out = np.full(want.shape, np.nan)
        got = fast.conv2d_transpose(to_format(x, fmt), filters_to_format(wt, fmt), bias, out=out, **kw)
        assert got is out
        np.testing.assert_allclose(out, want, atol=1e-12, rtol=0)
