"""The patch GEMM's tiles across images: PIX images at one output position (``plan.across_images``).

Such a tile computes only the taps that read inside x (a rectangle of
kernel rows and columns per position) and reads x in place when it holds
PIX images of NHWC memory undilated along w; a last group of fewer images,
or a dilation along w, gathers its patches. Its corners: positions with no
tap inside x (the bias alone), kernel rows longer than one chunk of the
reduction, strides, dilations, C_out not a multiple of the register tile,
NCHW memory, float64, the input gradient and the transpose (whose phases
are forward calls of their own), and the rule's bounds.
"""
import numpy as np
import pytest

import numbaconv as fast
import numbaconv.reference as ref
from numbaconv import _plan as plan
from numbaconv._fast import convolution as fast_convolution
from numbaconv._kernels import patch_gemm

from test_kernels_conv import FORMATS, filters_to_format, random_layer, to_format, tolerance

PIX = patch_gemm.PIX

# (n, h, w, c_in, c_out, (kh, kw), stride, padding, dilation); ids that do not depend on PIX
# (tests/jit_only.txt names them).
CASES = [
    pytest.param((PIX, 2, 2, 16, 32, (3, 3), 1, 1, 1), id="2x2-k3-pad1"),  # 4 taps of 9 inside x everywhere
    pytest.param((PIX, 11, 9, 16, 32, (7, 7), 1, 3, 1), id="seed-7x7"),  # the seed test's layer on one tile of images
    # A last group of PIX - 1 images: gathered, with tile padding.
    pytest.param((2 * PIX - 1, 11, 9, 16, 20, (7, 7), 1, 3, 1), id="7x7-last-group-short"),
    pytest.param((PIX, 12, 12, 16, 16, (5, 5), 1, 0, 1), id="5x5-all-inside"),  # into few channels (as LeNet's)
    # ... on a batch one image short of whole tiles (LeNet's 64 at PIX = 5), the last tile gathered.
    pytest.param((8 * PIX - 1, 6, 5, 6, 16, (5, 5), 1, 0, 1), id="5x5-all-inside-a-tile-short"),
    # Padding past the kernel's reach: the outer positions hold the bias alone.
    pytest.param((PIX, 3, 3, 32, 32, (5, 5), 1, 5, 1), id="5x5-pad5"),
    pytest.param((PIX, 12, 10, 16, 32, (3, 3), 1, 2, (2, 1)), id="3x3-dilated-h"),  # read in place
    pytest.param((PIX, 12, 10, 16, 32, (3, 3), 1, 2, (1, 2)), id="3x3-dilated-w"),  # gathered
    pytest.param((PIX, 14, 13, 32, 40, (3, 3), 2, 1, 1), id="3x3-stride2"),  # odd plane
    pytest.param((PIX, 7, 7, 112, 24, (5, 5), 1, 2, 1), id="5x5-long-rows"),  # 560 values a kernel row: 2 chunks
    pytest.param((PIX, 9, 8, 16, 32, (3, 5), 1, ((2, 0), (1, 3)), 1), id="3x5-asymmetric"),
]


class Across:
    """Records the ``across_images`` argument of every patch-GEMM forward call."""

    def __init__(self, monkeypatch):
        self.flags = []
        kernel = patch_gemm.conv2d_patch_gemm

        def call(*args):
            self.flags.append(args[-2])  # (..., padded_rows, across_images, w_in_place)
            return kernel(*args)
        monkeypatch.setattr(patch_gemm, "conv2d_patch_gemm", call)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: t.__name__)
@pytest.mark.parametrize("case", CASES)
def test_across_images_matches_the_reference(case, dtype, fmt, monkeypatch):
    n, h, w, ci, co, k, s, p, d = case
    x, wt, b, wide, want = random_layer(n, h, w, ci, co, k, s, p, d, dtype)
    rng = np.random.default_rng(n * h * w * ci * co + 1)
    dy = rng.standard_normal(want.shape)
    X, W, DY = to_format(x, fmt), filters_to_format(wt, fmt), to_format(dy.astype(dtype), fmt)
    across = Across(monkeypatch)
    atol = tolerance(dtype, k[0] * k[1] * max(ci, co))
    got = fast.conv2d(X, W, b, stride=s, padding=p, dilation=d, data_format=fmt)
    assert got.dtype == dtype
    np.testing.assert_allclose(got if fmt == "NHWC" else got.transpose(0, 2, 3, 1), want, atol=atol, rtol=0)
    assert across.flags == [True]
    dx = fast.conv2d_backward_input(DY, W, X.shape, stride=s, padding=p, dilation=d, data_format=fmt)
    dx_want = ref.conv2d_backward_input(dy, wide[1], x.shape, stride=s, padding=p, dilation=d)
    np.testing.assert_allclose(dx if fmt == "NHWC" else dx.transpose(0, 2, 3, 1), dx_want, atol=atol, rtol=0)
    if k == (7, 7):  # one phase, the 7x7 correlation of dy padded by 3, into 16 channels: across images too
        assert across.flags[1:] == [True]


def test_bit_identical_to_the_njit_driver():
    """The ``@njit`` driver shares the rule, and so the tiles and the order of every sum."""
    from numbaconv import kernels
    rng = np.random.default_rng(3)
    x = rng.standard_normal((PIX, 11, 9, 16)).astype(np.float32)
    wt = rng.standard_normal((7, 7, 16, 32)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    got = fast.conv2d(x, wt, b, padding=3)
    y = np.empty_like(got)
    kernels.conv2d(x, wt, b, y, 1, 1, 3, 3, 1, 1)
    np.testing.assert_array_equal(y, got)


def taps_inside(o, k, s, p, d, size):
    return sum(0 <= o * s - p + i * d < size for i in range(k))


@pytest.mark.parametrize("n, hw, c_in, c_out, k, s, p, expected", [
    (PIX, (11, 9), 16, 32, 7, 1, 3, True),  # 68% of the taps inside x
    (PIX - 1, (11, 9), 16, 32, 7, 1, 3, False),  # fewer images than a tile
    (PIX + 1, (11, 9), 16, 32, 7, 1, 3, False),  # 16 rows for 9 images: more work than all taps
    (PIX, (28, 28), 128, 256, 3, 2, 1, False),  # 95% inside, 256 channels
    (PIX, (14, 14), 256, 512, 3, 2, 1, True),  # 91%
    (PIX, (12, 12), 6, 16, 5, 1, 0, True),  # all taps inside, into 16 channels
    (PIX, (12, 12), 16, 64, 5, 1, 0, True),  # ... into ACROSS_MAX_OUT
    (PIX, (12, 12), 16, 65, 5, 1, 0, False),  # ... into one tile more
    # Images rounded up to whole tiles: up to ACROSS_FEW_OUT_WORK of all taps.
    (8 * PIX - 1, (12, 12), 6, 16, 5, 1, 0, True),  # 8 / (8 - 1 / PIX): 1.026 at PIX = 5
    (2 * PIX - 1, (12, 12), 6, 16, 5, 1, 0, False),  # 2 / (2 - 1 / PIX): 1.11 at PIX = 5
])
def test_the_rule(n, hw, c_in, c_out, k, s, p, expected):
    h, w = hw
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    c_pad = plan.padded_channels(c_out)
    got = plan.across_images(k, k, s, s, 1, 1, p, p, n, oh, ow, h, w, c_pad)
    assert got == expected
    # The rule's count of taps inside x, against a direct count.
    inside = (sum(taps_inside(o, k, s, p, 1, h) for o in range(oh))
              * sum(taps_inside(o, k, s, p, 1, w) for o in range(ow)))
    share = inside * -(-n // PIX) * PIX / (oh * ow * k * k * n)
    assert expected == (n >= PIX and (share <= plan.ACROSS_MAX_WORK
                                      or (c_pad <= plan.ACROSS_MAX_OUT and share <= plan.ACROSS_FEW_OUT_WORK)))
    x_shape, y_geometry = (n, h, w, c_in), (n, oh, ow, c_out, oh * ow * c_out, ow * c_out, c_out, 1)
    route = fast_convolution._route((k, k), (s, s), (1, 1), (p, p), x_shape, y_geometry, False,
                                    tuple(range(k)), tuple(range(k)), 4)
    if route.strategy == "patches" and not route.padded_rows:
        assert route.across == expected


@pytest.mark.parametrize("n, hw, k_len, c_pad", [(8, 7, 4608, 512), (8, 27, 1600, 192), (64, 11, 784, 32),
                                                 (16, 7, 64, 1024)])
def test_a_units_filters_stay_cache_sized(n, hw, k_len, c_pad):
    positions, outs = plan.across_units(n, hw, hw, k_len, c_pad)
    assert positions * PIX <= plan.PATCH_PIXELS and outs % patch_gemm.OUT == 0 and 0 < outs <= c_pad
    # Blocks of whole two-panel tiles, no more of them than ACROSS_BLOCK_VALUES asks for.
    def ceil(a, b):
        return -(-a // b)
    blocks = ceil(k_len * c_pad, plan.ACROSS_BLOCK_VALUES)
    assert outs <= ceil(ceil(c_pad, blocks), 2 * patch_gemm.OUT) * 2 * patch_gemm.OUT
    if blocks > 1:
        assert outs * k_len < plan.ACROSS_BLOCK_VALUES + 2 * patch_gemm.OUT * k_len
