"""Results past the caches: the patch GEMM's tiles into y stored with the nontemporal hint.

A forward call whose result holds ``patch_gemm.STREAM_MIN_BYTES`` or more,
with x, filters and result ``patch_gemm.STREAM_MIN_FOOTPRINT`` together,
stores the register tiles that go to y itself (not through a unit's
buffer) with ``_numba.stream_tile``, when y's rows are 64-byte aligned
(and a unit's buffer, into NCHW memory, its runs of OUT pixels of a
channel where the planes' rows are whole lines):
fresh results are (``_fast._memory.aligned_empty``), an ``out=`` array
may not be, and then the tiles are stored as usual. Those tiles start
their sums at the bias (for the NCHW 1x1 route, W @ X, a bias per row of
a tile). Checked here: the intrinsic itself, the aligned
allocation, and every route that writes tiles into y with a result that
large, against the reference, with fresh, aligned and misaligned results,
one and two panels a tile, and a reduction longer than one chunk (only
its last pass streams).
"""
import numba
import numpy as np
import pytest

import numbaconv as fast
import numbaconv.reference as ref
from numbaconv._fast._memory import aligned_empty
from numbaconv._kernels import patch_gemm
from numbaconv._numba import register_tile, stream_tile

from test_kernels_conv import FORMATS, filters_to_format, to_format, tolerance

PIX, OUT = patch_gemm.PIX, patch_gemm.OUT


@numba.njit
def _write_tile(dst, row, col):
    """A register tile of PIX x OUT values 1000 * r + q, streamed to dst's rows from ``row``, columns from ``col``."""
    tile = register_tile(dst, PIX, OUT)
    for r in range(PIX):
        for q in range(OUT):
            tile[r, q] = 1000 * r + q
    stream_tile(dst, row, col, tile, PIX, OUT)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: t.__name__)
def test_stream_tile_writes_the_tile_and_nothing_else(dtype):
    cols = 3 * OUT
    dst = aligned_empty((3 * PIX, cols), dtype)
    dst[...] = -1
    _write_tile(dst, PIX, np.uint64(OUT))
    expected = np.full((3 * PIX, cols), -1, dtype)
    expected[PIX:2 * PIX, OUT:2 * OUT] = 1000 * np.arange(PIX)[:, None] + np.arange(OUT)
    np.testing.assert_array_equal(dst, expected)


@numba.njit
def _write_line(dst, col):
    """A tile of one row, OUT values 7 + q, streamed to the flat dst from element ``col``."""
    tile = register_tile(dst, 1, OUT)
    for q in range(OUT):
        tile[0, q] = 7 + q
    stream_tile(dst, 0, col, tile, 1, OUT)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: t.__name__)
def test_stream_tile_writes_a_run_of_flat_memory(dtype):
    """A 1-d dst (the NCHW store's runs of OUT pixels, ``patch_gemm._store``): one row, from element col."""
    dst = aligned_empty((4 * OUT,), dtype)
    dst[...] = -1
    _write_line(dst, np.uint64(2 * OUT))
    expected = np.full(4 * OUT, -1, dtype)
    expected[2 * OUT:3 * OUT] = 7 + np.arange(OUT)
    np.testing.assert_array_equal(dst, expected)


@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5), (2, 224, 224, 3), (1 << 20,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: t.__name__)
def test_aligned_empty(shape, dtype):
    a = aligned_empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable
    assert a.size == 0 or a.ctypes.data % 64 == 0  # (an empty array's address is NumPy's to choose)
    a[...] = 1  # the whole of it is ours
    assert a.sum() == np.prod(shape)


# (n, h, w, c_in, c_out, k, padding): calls that stream in float32 too (patch_gemm.streams).
CASES = [
    # Padded rows, tiles into y row by row (VGG's first layer, narrower): two panels a tile.
    pytest.param((3, 64, 64, 3, 256, 3, 1), id="3x3-rows"),
    # An odd number of panels: the last tile of each pixel is one panel; OW not a multiple of PIX.
    pytest.param((4, 60, 61, 3, 272, 3, 1), id="3x3-rows-odd-panels"),
    # 1x1 over x in place (MobileNet's pointwise layers), its last pixels through the buffer.
    pytest.param((8, 57, 55, 32, 96, 1, 0), id="1x1-in-x"),
    # A reduction of two chunks (K = 600): the first pass stores as usual, the last streams.
    # (NCHW: W @ X, 1x1 over whole planes, each of 4096 pixels, whole lines: its tiles stream.)
    pytest.param((4, 64, 64, 600, 96, 1, 0), id="1x1-two-chunks"),
    # NCHW, W @ X: the tiles' sums start at a bias per row (an output channel);
    # C_out = 37 tiles and 4 rows, which go through the buffer with theirs.
    pytest.param((3, 64, 64, 24, 300, 1, 0), id="1x1-bias-rows"),
    # Gathered patches through the units' buffers (ResNet's first layer's class): into NCHW memory
    # whose rows are whole lines (OW = 96), the buffer's runs of OUT pixels of a channel stream.
    pytest.param((2, 96, 96, 3, 192, 5, 2), id="5x5-buffer-lines"),
    # Tiles across images (plan.across_images), into NCHW planes of whole lines: each unit's run
    # of positions of a channel's plane streams, its whole lines (32 positions a unit).
    pytest.param((16, 64, 64, 3, 64, 7, 3), id="7x7-across-images-lines"),
]


def _streams(case, dtype):
    """Whether the call streams by ``patch_gemm.streams``, its filter operand left out (so: at least)."""
    n, h, w, c_in, c_out, k, p = case
    return patch_gemm.streams(n * h * w * c_in, 0, n * (h + 2 * p - k + 1) * (w + 2 * p - k + 1) * c_out,
                              np.dtype(dtype).itemsize)


def test_calls_whose_data_stay_cached_do_not_stream():
    # The seed's 128x28x28x3 -> 16 3x3: a 6.4 MB result, 7.6 MB in all (module docstring of patch_gemm).
    seed = (128, 28, 28, 3, 16, 3, 1)
    assert not _streams(seed, np.float32)
    assert _streams(seed, np.float64)  # 15.2 MB
    assert not patch_gemm.streams(1 << 30, 0, patch_gemm.STREAM_MIN_BYTES // 4 - 1, 4)  # x alone large


@pytest.mark.parametrize("where", ["fresh", "out-aligned", "out-misaligned"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: t.__name__)
@pytest.mark.parametrize("case", CASES)
def test_large_results_match_the_reference(case, dtype, fmt, where):
    n, h, w, c_in, c_out, k, p = case
    assert _streams(case, dtype)  # the case streams its tiles
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, h, w, c_in)).astype(dtype)
    wt = rng.standard_normal((k, k, c_in, c_out)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    expected = ref.conv2d(x, wt, b, padding=p)
    out = None
    if where != "fresh":
        shape = to_format(expected, fmt).shape
        # 16 bytes past a 64-byte boundary: rows of C_out values that are not whole lines, stored as usual.
        buffer = aligned_empty((expected.size * expected.itemsize + 64,), np.uint8)
        start = 0 if where == "out-aligned" else 16
        out = buffer[start:start + expected.size * expected.itemsize].view(dtype).reshape(shape)
        out[...] = np.nan
    y = fast.conv2d(to_format(x, fmt), filters_to_format(wt, fmt), b, padding=p, data_format=fmt, out=out)
    if out is not None:
        assert y is out
    elif fmt == "NHWC":
        assert y.ctypes.data % 64 == 0
    np.testing.assert_allclose(y, to_format(expected, fmt), rtol=0, atol=tolerance(dtype, k * k * c_in) * 10)
