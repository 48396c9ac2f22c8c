"""The patch GEMM reading the filter in place, unpacked (``plan.filters_in_place``).

Where one block of rows holds every output pixel (batch 1 on small planes),
NHWC calls whose C_out fills whole panels read the caller's HWIO filter as
(K, C_out / 16, 16) rows instead of packing it, and NCHW calls whose C_out
fills whole register tiles run as W @ patches: the OIHW filter's rows are
read in place, the image's patches packed into panels
(``pack_patch_columns``). Their corners: the rule's bounds (a second image,
a second block of rows, C_out not a multiple of the panel or tile width),
gathered, padded-rows and in-x 1x1 calls, strides and dilations, padding,
a reduction of several chunks, a non-contiguous filter, float64; the
input gradient's phases (swapped filters) are never read in place.
"""
import numpy as np
import pytest

import numbaconv as fast
import numbaconv.reference as ref
from numbaconv import _plan as plan
from numbaconv._kernels import patch_gemm

from test_kernels_conv import FORMATS, filters_to_format, random_layer, to_format, tolerance

OUT, PIX = patch_gemm.OUT, patch_gemm.PIX

# (n, h, w, c_in, c_out, (kh, kw), stride, padding, dilation, one block of rows holds every pixel)
CASES = [
    pytest.param((1, 7, 7, 64, 80, (3, 3), 1, 1, 1, True), id="7x7-3x3"),  # 5 panels: two-panel and one-panel tiles
    pytest.param((1, 7, 7, 64, 48, (3, 3), 1, 1, 1, True), id="c_out-48"),  # fewer channels than pixels: NCHW packs
    pytest.param((1, 7, 7, 64, 72, (3, 3), 1, 1, 1, True), id="c_out-72"),  # not whole panels: NHWC packs
    pytest.param((1, 7, 7, 64, 44, (3, 3), 1, 1, 1, True), id="c_out-44"),  # nor whole tiles: both pack
    pytest.param((2, 7, 7, 64, 80, (3, 3), 1, 1, 1, False), id="two-images"),  # a block per image: packed
    pytest.param((1, 16, 16, 16, 256, (5, 5), 1, 2, 1, True), id="256-pixels"),  # PATCH_PIXELS: one block
    pytest.param((1, 17, 17, 16, 288, (5, 5), 1, 2, 1, False), id="289-pixels"),  # two blocks of rows: packed
    pytest.param((1, 9, 9, 16, 32, (3, 3), 2, 1, 1, True), id="stride2"),  # gathered patches
    pytest.param((1, 10, 9, 24, 64, (3, 2), (1, 2), ((2, 2), (2, 1)), (2, 1), True), id="dilated-asymmetric"),
    pytest.param((1, 4, 5, 16, 112, (3, 3), 1, 4, 1, True), id="padding-past-the-kernel"),  # rows of bias alone
    pytest.param((1, 7, 7, 96, 64, (1, 1), 1, 0, 1, True), id="1x1"),  # NHWC: read in x itself
    pytest.param((1, 5, 6, 600, 32, (3, 3), 1, 1, 1, True), id="long-k"),  # K = 5400: several chunks
    pytest.param((1, 6, 5, 40, 80, (5, 5), 1, 2, 1, True), id="5x5-5-panels"),
]


class Layouts:
    """Records (``w_at_x``, ``wk_layout``) of every patch-GEMM forward call."""

    def __init__(self, monkeypatch):
        self.calls = []
        kernel = patch_gemm.conv2d_patch_gemm

        def call(*args):
            self.calls.append((args[-4], args[-1]))
            return kernel(*args)
        monkeypatch.setattr(patch_gemm, "conv2d_patch_gemm", call)


def expected_call(fmt, c_out, pixels, one_block):
    """(w_at_x, wk_layout): HWIO read in place; W @ patches where the patches, in whole panels, are no more."""
    if fmt == "NHWC":
        return False, patch_gemm.WK_HWIO if one_block and c_out % OUT == 0 else patch_gemm.WK_PANELS
    w_at_patches = one_block and c_out % PIX == 0 and -(-pixels // OUT) * OUT <= c_out
    return w_at_patches, patch_gemm.WK_PANELS


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: t.__name__)
@pytest.mark.parametrize("case", CASES)
def test_filters_in_place_match_the_reference(case, dtype, fmt, monkeypatch):
    n, h, w, ci, co, k, s, p, d, one_block = case
    x, wt, b, wide, want = random_layer(n, h, w, ci, co, k, s, p, d, dtype)
    rng = np.random.default_rng(n * h * w * ci * co + 1)
    X, W = to_format(x, fmt), filters_to_format(wt, fmt)
    seen = Layouts(monkeypatch)
    atol = tolerance(dtype, k[0] * k[1] * max(ci, co))
    got = fast.conv2d(X, W, b, stride=s, padding=p, dilation=d, data_format=fmt)
    assert got.dtype == dtype
    np.testing.assert_allclose(got if fmt == "NHWC" else got.transpose(0, 2, 3, 1), want, atol=atol, rtol=0)
    assert seen.calls == [expected_call(fmt, co, want.shape[1] * want.shape[2], one_block)]
    # The input gradient's phases swap the filter: packed, whatever the shape.
    dy = rng.standard_normal(want.shape)
    seen.calls.clear()
    dx = fast.conv2d_backward_input(to_format(dy.astype(dtype), fmt), W, X.shape, stride=s, padding=p, dilation=d,
                                    data_format=fmt)
    dx_want = ref.conv2d_backward_input(dy, wide[1], x.shape, stride=s, padding=p, dilation=d)
    np.testing.assert_allclose(dx if fmt == "NHWC" else dx.transpose(0, 2, 3, 1), dx_want, atol=atol, rtol=0)
    assert all(layout == patch_gemm.WK_PANELS for _, layout in seen.calls)


def test_a_non_contiguous_filter_is_read_from_a_contiguous_copy(monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 7, 7, 64)).astype(np.float32)
    whole = rng.standard_normal((3, 3, 64, 96)).astype(np.float32)
    wt = whole[:, :, :, ::2]  # 48 channels, every other one of the caller's array
    seen = Layouts(monkeypatch)
    got = fast.conv2d(x, wt, padding=1)
    assert seen.calls == [(False, patch_gemm.WK_HWIO)]
    want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), padding=1)
    np.testing.assert_allclose(got, want, atol=tolerance(np.float32, 9 * 64), rtol=0)
    assert np.array_equal(got, fast.conv2d(x, np.ascontiguousarray(wt), padding=1))


@pytest.mark.parametrize("n, oh, ow, c_out, across, rows, nhwc, nchw", [
    (1, 7, 7, 512, False, 7, True, True),
    (1, 7, 7, 512, True, 7, False, False),  # tiles across images own no block of rows
    (1, 7, 7, 520, False, 7, False, True),  # not whole panels (PIX divides 520)
    (1, 7, 7, 516, False, 7, False, False),  # nor whole tiles of 4, 5 or 8
    (1, 7, 7, 48, False, 7, True, False),  # W @ patches: 64 pixels in whole panels, more than 48 channels
    (1, 8, 8, 64, False, 8, True, True),  # 64 pixels for 64 channels: the bound
    (1, 8, 9, 64, False, 8, True, False),  # 72 pixels, 80 in whole panels
    (2, 7, 7, 512, False, 7, False, False),
    (1, 15, 17, 256, False, 15, True, True),  # 255 pixels: 256 in whole panels
    (1, 16, 17, 512, False, 15, False, False),  # a second block of rows
    (1, 0, 7, 32, False, 1, False, False),  # no pixels at all
])
def test_the_rule_at_its_bounds(n, oh, ow, c_out, across, rows, nhwc, nchw):
    assert plan.filters_in_place(n, oh, ow, c_out, across, rows, False) == nhwc
    assert plan.filters_in_place(n, oh, ow, c_out, across, rows, True) == (nchw and c_out % PIX == 0)
