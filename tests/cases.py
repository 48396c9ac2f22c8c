"""Shape grids shared by the test suite, each case with a readable id.

A case is a frozen dataclass; ``case.id`` reads like
``n2-7x6-k3x2-c3to4-s2x1-SAME-d1-nhwc-f32-bias`` (batch, input plane, kernel,
channels, stride, padding, dilation, data format, dtype, bias). Padding ids:
``SAME``, ``VALID``, ``pad1`` (int), ``pad1x2`` (pair), ``pad0+2x3+1``
(``((top, bottom), (left, right))``).

Inputs are drawn from a generator seeded by the case id, so every test (and
the TensorFlow oracle) sees the same arrays for the same case. Geometry here
is the contract's arithmetic written out independently of ``numbaconv``.

Comments naming a "seed" (000 to 004) credit the notebook a case came from;
the notebooks are not in this repository, and each case is complete here.

TensorFlow has no dilated convolution with a stride > 1, so no conv case
combines them (the grids are built that way, nothing is skipped).
"""
import itertools
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMATS = ("NHWC", "NCHW")
DTYPES = (np.float32, np.float64)
DTYPE_IDS = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


# -------------------------------------------------------------- id pieces


def _dims(pair):
    a, b = pair
    return f"{a}" if a == b else f"{a}x{b}"


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def padding_id(padding):
    if isinstance(padding, str):
        return padding.upper()
    if isinstance(padding, int):
        return f"pad{padding}"
    a, b = padding
    if isinstance(a, int):
        return f"pad{a}x{b}"
    return f"pad{a[0]}+{a[1]}x{b[0]}+{b[1]}"


def explicit_pads(padding):
    """(top, bottom, left, right) of an int / pair / pairs padding."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    a, b = padding
    if isinstance(a, int):
        return a, a, b, b
    return (*a, *b)


def same_pads(size, k, stride, dilation):
    """TensorFlow's SAME: (before, after), the odd cell after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_pads(padding, h, w, kh, kw, stride, dilation):
    """(top, bottom, left, right) for any padding form on an (h, w) input."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if padding == "SAME":
        return same_pads(h, kh, sh, dh) + same_pads(w, kw, sw, dw)
    if padding == "VALID":
        return 0, 0, 0, 0
    return explicit_pads(padding)


def out_size(size, k, stride, dilation, before, after):
    return (size + before + after - dilation * (k - 1) - 1) // stride + 1


def seed_of(text):
    return zlib.crc32(text.encode())


def rng_for(case_id):
    return np.random.default_rng(seed_of(case_id))


def nhwc_to(a, fmt):
    """An NHWC array in data format fmt."""
    return a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def hwio_to(w, fmt):
    """An HWIO filter array in the layout that goes with fmt (OIHW for NCHW)."""
    return w if fmt == "NHWC" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


# ------------------------------------------------------------- tolerances


def rtol_for(dtype, terms):
    """float32: scaled to the reduction length (sqrt(terms)); float64: tight."""
    if np.dtype(dtype) == np.float32:
        return 1e-5 * math.sqrt(max(terms, 1))
    return 1e-10


def assert_close(actual, expected, dtype, terms, name):
    """|actual - expected| <= rtol * (|expected| + max|expected|), rtol from rtol_for.

    The absolute part (rtol times the largest magnitude) covers entries that
    cancel to near zero, where float32 sums keep only absolute accuracy.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape}, expected {expected.shape}"
    rtol = rtol_for(dtype, terms)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    err = float(np.max(np.abs(actual.astype(np.float64) - expected))) if expected.size else 0.0
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=rtol * scale,
        err_msg=f"{name}: max abs error {err:.3g}, max |expected| {scale:.3g}, rtol {rtol:.3g} "
                f"({terms} terms)",
    )


# ------------------------------------------------------------------ conv2d


@dataclass(frozen=True)
class ConvCase:
    """conv2d on x of (n, h, w, ci) with a (kh, kw, ci, co) filter, in data_format."""

    n: int
    h: int
    w: int
    ci: int
    co: int
    kh: int
    kw: int
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    bias: bool = True
    data_format: str = "NHWC"
    dtype: Any = np.float32

    @property
    def id(self):
        return (
            f"n{self.n}-{self.h}x{self.w}-k{self.kh}x{self.kw}-c{self.ci}to{self.co}"
            f"-s{_dims(pair(self.stride))}-{padding_id(self.padding)}-d{_dims(pair(self.dilation))}"
            f"-{self.data_format.lower()}-{DTYPE_IDS[np.dtype(self.dtype)]}"
            + ("-bias" if self.bias else "")
        )

    @property
    def pads(self):
        return resolve_pads(self.padding, self.h, self.w, self.kh, self.kw, self.stride, self.dilation)

    @property
    def out_hw(self):
        (sh, sw), (dh, dw) = pair(self.stride), pair(self.dilation)
        t, b, l, r = self.pads
        return out_size(self.h, self.kh, sh, dh, t, b), out_size(self.w, self.kw, sw, dw, l, r)

    @property
    def terms(self):
        """Reduction lengths: y and dx sum over a window, dw and db over n * oh * ow."""
        oh, ow = self.out_hw
        return {"y": self.kh * self.kw * self.ci + 1, "dx": self.kh * self.kw * self.co,
                "dw": self.n * oh * ow, "db": self.n * oh * ow}

    def kwargs(self):
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "data_format": self.data_format}

    def inputs(self):
        """x, w, b (or None), dy in the case's layout and dtype; dy is random, never ones."""
        rng = rng_for(self.id)
        oh, ow = self.out_hw
        x = rng.standard_normal((self.n, self.h, self.w, self.ci))
        w = rng.standard_normal((self.kh, self.kw, self.ci, self.co))
        b = rng.standard_normal(self.co) if self.bias else None
        dy = rng.standard_normal((self.n, oh, ow, self.co))
        t = self.dtype
        return (nhwc_to(x.astype(t), self.data_format), hwio_to(w.astype(t), self.data_format),
                None if b is None else b.astype(t), nhwc_to(dy.astype(t), self.data_format))


def _with_layouts(geometries, make):
    return [make(g, fmt, dt) for g in geometries for fmt in FORMATS for dt in DTYPES]


# (n, h, w, ci, co, kh, kw, stride, padding, dilation, bias)
CONV_GEOMETRIES = [
    (1, 5, 5, 1, 1, 3, 3, 1, "VALID", 1, False),
    (2, 7, 6, 3, 4, 3, 3, 1, "SAME", 1, True),
    (2, 8, 8, 2, 3, 3, 3, 2, "SAME", 1, True),  # even: the extra padding row goes at the bottom
    (3, 7, 7, 3, 4, 3, 3, 2, "SAME", 1, True),  # the seed's (3, 7, 7, 3) * (3, 3, 3, 4), P=1, S=2
    (1, 9, 10, 2, 3, 5, 8, 1, "SAME", 1, False),
    (2, 11, 13, 2, 2, 5, 8, 3, "VALID", 1, True),
    (2, 6, 9, 3, 2, 2, 3, (2, 3), "SAME", 1, True),
    (1, 10, 7, 2, 4, 4, 2, (3, 1), 1, 1, False),
    (2, 6, 7, 2, 3, 3, 5, (1, 2), (1, 2), 1, True),
    (2, 8, 9, 3, 2, 3, 3, 1, ((0, 2), (3, 1)), 1, True),
    (1, 7, 8, 2, 2, 4, 5, (2, 3), ((2, 0), (1, 3)), 1, False),
    (1, 13, 20, 2, 3, 5, 8, (2, 3), ((1, 2), (3, 0)), 1, True),
    (3, 4, 5, 2, 2, 3, 3, 3, 4, 1, True),  # padding > kernel: windows of padding only
    (1, 3, 4, 2, 3, 5, 8, 1, "SAME", 1, True),  # kernel larger than the input
    (2, 5, 8, 3, 2, 5, 8, 1, "VALID", 1, False),  # a 1x1 output
    (2, 5, 6, 4, 3, 1, 1, 2, "SAME", 1, True),  # 1x1 kernel
    (2, 9, 11, 2, 2, 2, 2, 3, "VALID", 1, True),  # stride > kernel: skipped pixels
    (1, 10, 11, 3, 2, 3, 4, 3, "SAME", 1, False),
    (1, 12, 12, 8, 16, 3, 3, 1, 1, 1, True),  # longer reductions
    (2, 9, 8, 2, 3, 3, 3, 1, "SAME", 2, True),
    (1, 10, 11, 3, 2, 3, 2, 1, "VALID", (2, 1), False),
    (2, 9, 10, 2, 2, 2, 3, 1, ((1, 3), (2, 0)), (1, 2), True),
    (1, 8, 8, 1, 2, 3, 3, 1, 2, 2, True),
    (2, 7, 12, 2, 2, 3, 4, 1, (2, 3), 2, False),
    (3, 4, 5, 2, 2, 3, 3, 1, "SAME", 2, True),  # dilated kernel larger than the input
    # seed 003 (PyTorch-checked): stride (3, 4) on a partial plane, padding larger than the kernel
    (2, 17, 23, 3, 4, 5, 8, 1, 0, 1, False),
    (2, 19, 26, 3, 4, 5, 8, (3, 4), 0, 1, False),
    (2, 19, 26, 3, 4, 5, 8, (3, 4), (7, 10), 1, True),
]

CONV_CASES = _with_layouts(
    CONV_GEOMETRIES,
    lambda g, fmt, dt: ConvCase(*g[:7], stride=g[7], padding=g[8], dilation=g[9], bias=g[10],
                                data_format=fmt, dtype=dt),
)

# The seeds' shape tests and the benchmark shape: large, marked slow where used.
SEED_SHAPE_CASES = [
    ConvCase(64, 11, 9, 16, 32, 7, 7, 1, 3, 1, True, "NHWC", dt) for dt in DTYPES
] + [
    ConvCase(4, 28, 46, 128, 2, 8, 16, 5, "VALID", 1, True, "NHWC", dt) for dt in DTYPES
] + [
    # seed 004: NCHW (256, 1, 36, 47), OIHW (2, 1, 5, 8), stride (7, 4), SAME
    ConvCase(256, 36, 47, 1, 2, 5, 8, (7, 4), "SAME", 1, True, "NCHW", dt) for dt in DTYPES
] + [
    # the benchmark: (128, 28, 28, 3) * (3, 3, 3, 16), SAME
    ConvCase(128, 28, 28, 3, 16, 3, 3, 1, "SAME", 1, True, "NHWC", dt) for dt in DTYPES
]


# -------------------------------------------------------- conv2d_transpose


@dataclass(frozen=True)
class TransposeCase:
    """conv2d_transpose of x (n, h, w, cx) with the forward filter (kh, kw, cy, cx) -> y (n, oh, ow, cy)."""

    n: int
    h: int
    w: int
    cx: int
    cy: int
    kh: int
    kw: int
    stride: Any = 1
    padding: Any = 0
    output_padding: Any = 0
    dilation: Any = 1
    bias: bool = True
    data_format: str = "NHWC"
    dtype: Any = np.float32

    @property
    def out_hw(self):
        """The contract: (in - 1) * s - top - bottom + d * (k - 1) + 1 + output_padding;
        'SAME' gives in * stride (TensorFlow's rule)."""
        (sh, sw), (dh, dw), (oph, opw) = pair(self.stride), pair(self.dilation), pair(self.output_padding)
        if self.padding == "SAME":
            return self.h * sh, self.w * sw
        t, b, l, r = (0, 0, 0, 0) if self.padding == "VALID" else explicit_pads(self.padding)
        return ((self.h - 1) * sh - t - b + dh * (self.kh - 1) + 1 + oph,
                (self.w - 1) * sw - l - r + dw * (self.kw - 1) + 1 + opw)

    @property
    def id(self):
        oh, ow = self.out_hw
        return (
            f"n{self.n}-{self.h}x{self.w}-k{self.kh}x{self.kw}-c{self.cx}to{self.cy}"
            f"-s{_dims(pair(self.stride))}-{padding_id(self.padding)}"
            f"-op{_dims(pair(self.output_padding))}-d{_dims(pair(self.dilation))}-out{oh}x{ow}"
            f"-{self.data_format.lower()}-{DTYPE_IDS[np.dtype(self.dtype)]}"
            + ("-bias" if self.bias else "")
        )

    @property
    def terms(self):
        oh, ow = self.out_hw
        return {"y": self.kh * self.kw * self.cx + 1, "dx": self.kh * self.kw * self.cy,
                "dw": self.n * self.h * self.w, "db": self.n * oh * ow}

    def kwargs(self):
        return {"stride": self.stride, "padding": self.padding, "output_padding": self.output_padding,
                "dilation": self.dilation, "data_format": self.data_format}

    def inputs(self):
        """x, w, b (or None), dy in the case's layout and dtype."""
        rng = rng_for(self.id)
        oh, ow = self.out_hw
        x = rng.standard_normal((self.n, self.h, self.w, self.cx))
        w = rng.standard_normal((self.kh, self.kw, self.cy, self.cx))
        b = rng.standard_normal(self.cy) if self.bias else None
        dy = rng.standard_normal((self.n, oh, ow, self.cy))
        t = self.dtype
        return (nhwc_to(x.astype(t), self.data_format), hwio_to(w.astype(t), self.data_format),
                None if b is None else b.astype(t), nhwc_to(dy.astype(t), self.data_format))


# (n, h, w, cx, cy, kh, kw, stride, padding, output_padding, dilation, bias)
TRANSPOSE_GEOMETRIES = [
    (1, 2, 2, 1, 1, 3, 3, 1, 0, 0, 1, False),
    (2, 3, 4, 3, 2, 3, 3, 2, 1, 1, 1, True),
    (2, 4, 3, 2, 3, 4, 2, (2, 3), ((1, 0), (0, 1)), (1, 2), 1, True),
    (1, 5, 4, 2, 2, 5, 8, 3, (1, 2), (2, 0), 1, False),
    (2, 4, 5, 3, 2, 3, 3, 1, ((0, 2), (1, 1)), 0, 2, True),
    (1, 4, 4, 2, 3, 3, 2, 1, 1, 1, 2, True),  # output_padding >= stride, < dilation
    (2, 3, 3, 2, 2, 3, 3, 2, "SAME", 0, 1, True),
    (1, 3, 4, 2, 2, 2, 3, 3, "VALID", (2, 1), 1, False),
    (3, 2, 3, 2, 2, 3, 5, (3, 2), "SAME", 0, 1, True),
    (1, 5, 5, 2, 2, 3, 3, 1, 2, 0, 1, True),
    (2, 3, 5, 4, 3, 1, 1, 2, 0, 1, 1, True),  # 1x1 kernel: output_padding rows get only the bias
    (1, 3, 3, 2, 2, 2, 2, 3, 0, 2, 1, True),  # stride > kernel
    (2, 4, 6, 2, 3, 3, 3, 1, ((0, 1), (2, 1)), 0, (2, 1), False),
    # seed 003: the adjoint of (2, 3, 17, 24) * (4, 3, 5, 8), stride (3, 4), padding (6, 8)
    (2, 9, 9, 4, 3, 5, 8, (3, 4), (6, 8), 0, 1, True),
]

TRANSPOSE_CASES = _with_layouts(
    TRANSPOSE_GEOMETRIES,
    lambda g, fmt, dt: TransposeCase(*g[:7], stride=g[7], padding=g[8], output_padding=g[9],
                                     dilation=g[10], bias=g[11], data_format=fmt, dtype=dt),
)


# ------------------------------------------------------------- max pooling


@dataclass(frozen=True)
class PoolCase:
    n: int
    h: int
    w: int
    c: int
    pool_size: Any
    stride: Any = None
    padding: Any = "VALID"
    data_format: str = "NHWC"
    dtype: Any = np.float32

    @property
    def id(self):
        stride = "none" if self.stride is None else _dims(pair(self.stride))
        return (f"n{self.n}-{self.h}x{self.w}-c{self.c}-k{_dims(pair(self.pool_size))}-s{stride}"
                f"-{padding_id(self.padding)}-{self.data_format.lower()}-{DTYPE_IDS[np.dtype(self.dtype)]}")

    @property
    def out_hw(self):
        kh, kw = pair(self.pool_size)
        sh, sw = (kh, kw) if self.stride is None else pair(self.stride)
        t, b, l, r = resolve_pads(self.padding, self.h, self.w, kh, kw, (sh, sw), 1)
        return out_size(self.h, kh, sh, 1, t, b), out_size(self.w, kw, sw, 1, l, r)

    @property
    def window(self):
        return math.prod(pair(self.pool_size))

    @property
    def overlap(self):
        """The most windows one input can fall in (terms summed by the backward)."""
        kh, kw = pair(self.pool_size)
        sh, sw = (kh, kw) if self.stride is None else pair(self.stride)
        return -(-kh // sh) * -(-kw // sw)

    def kwargs(self):
        return {"stride": self.stride, "padding": self.padding, "data_format": self.data_format}

    def inputs(self):
        """x tie-free (a shuffled linspace), dy random; in the case's layout and dtype."""
        rng = rng_for(self.id)
        size = self.n * self.h * self.w * self.c
        x = rng.permutation(np.linspace(-1.0, 1.0, size)).reshape(self.n, self.h, self.w, self.c)
        oh, ow = self.out_hw
        dy = rng.standard_normal((self.n, oh, ow, self.c))
        return nhwc_to(x.astype(self.dtype), self.data_format), nhwc_to(dy.astype(self.dtype), self.data_format)


# (n, h, w, c, pool_size, stride, padding)
POOL_GEOMETRIES = [
    (1, 4, 4, 1, 2, None, "VALID"),
    (2, 7, 6, 3, 2, 2, "SAME"),  # odd height: padding at the bottom
    (2, 7, 7, 2, 3, 2, "VALID"),  # overlapping windows
    (2, 8, 9, 3, 3, 2, "SAME"),
    (1, 9, 8, 2, (2, 3), (1, 2), "SAME"),
    (3, 6, 10, 2, (3, 2), (2, 3), "VALID"),
    (2, 7, 8, 2, 3, 1, "SAME"),
    (1, 3, 3, 2, 5, 1, "SAME"),  # window larger than the input
    (2, 10, 10, 3, 2, 3, "VALID"),  # stride > window
    (1, 5, 7, 4, (2, 4), (3, 1), ((1, 0), (2, 1))),
    (2, 6, 6, 3, 3, 3, 1),
    (2, 5, 9, 2, 3, 2, (1, 2)),
    # seed 003 (PyTorch-checked shapes)
    (2, 18, 17, 3, (2, 3), (4, 5), "VALID"),
    (1, 6, 6, 1, 2, 2, "VALID"),
    (1, 5, 5, 1, 2, 1, "VALID"),
    (2, 9, 7, 3, (3, 2), (2, 1), "VALID"),
]

POOL_CASES = _with_layouts(
    POOL_GEOMETRIES,
    lambda g, fmt, dt: PoolCase(*g, data_format=fmt, dtype=dt),
)


# --------------------------------------------------------------------- LRN


@dataclass(frozen=True)
class LRNCase:
    n: int
    h: int
    w: int
    c: int
    depth_radius: int
    bias: float = 1.0
    alpha: float = 0.5
    beta: float = 0.75
    data_format: str = "NHWC"
    dtype: Any = np.float32

    @property
    def id(self):
        return (f"n{self.n}-{self.h}x{self.w}-c{self.c}-r{self.depth_radius}-bias{self.bias:g}"
                f"-alpha{self.alpha:g}-beta{self.beta:g}-{self.data_format.lower()}"
                f"-{DTYPE_IDS[np.dtype(self.dtype)]}")

    @property
    def window(self):
        return min(2 * self.depth_radius + 1, self.c)

    def kwargs(self):
        return {"depth_radius": self.depth_radius, "bias": self.bias, "alpha": self.alpha,
                "beta": self.beta, "data_format": self.data_format}

    def inputs(self):
        """x, dy drawn in float32 (TensorFlow's LRN dtype), then cast to the case dtype."""
        rng = rng_for(self.id)
        x = rng.standard_normal((self.n, self.h, self.w, self.c)).astype(np.float32)
        dy = rng.standard_normal((self.n, self.h, self.w, self.c)).astype(np.float32)
        return nhwc_to(x.astype(self.dtype), self.data_format), nhwc_to(dy.astype(self.dtype), self.data_format)


# (n, h, w, c, depth_radius, bias, alpha, beta). alpha is large (0.5, 1) so
# that a window one channel short changes the result far beyond tolerance.
LRN_GEOMETRIES = [
    (2, 3, 4, 7, 0, 1.0, 0.5, 0.75),
    (2, 3, 4, 7, 1, 1.0, 0.5, 0.75),
    (2, 3, 4, 7, 2, 1.0, 0.5, 0.75),
    (2, 3, 4, 7, 2, 2.0, 0.5, 0.5),
    (2, 3, 4, 7, 2, 1.0, 1.0, 1.0),
    (1, 4, 3, 16, 5, 1.0, 0.5, 0.75),
    (1, 4, 3, 16, 5, 0.5, 0.5, 1.0),
    (2, 3, 4, 7, 5, 1.0, 0.5, 0.5),
    (2, 3, 4, 7, 7, 1.0, 0.5, 0.75),  # radius >= C
    (2, 3, 4, 7, 6, 1.0, 0.5, 1.0),  # radius = C - 1: the window is every channel
    (1, 3, 3, 1, 0, 1.0, 0.5, 0.75),
    (1, 3, 3, 1, 2, 2.0, 1.0, 0.75),
    (1, 5, 4, 16, 2, 2.0, 1e-4, 0.75),  # AlexNet's parameters (small alpha: a smoke test)
    (1, 3, 4, 9, 3, 1.0, 0.5, 0.6),  # a generic exponent
    (2, 9, 7, 14, 2, 1.0, 0.5, 0.75),  # seed 003's (2, 14, 9, 7) shape
]

LRN_CASES = _with_layouts(
    LRN_GEOMETRIES,
    lambda g, fmt, dt: LRNCase(*g, data_format=fmt, dtype=dt),
)


# ------------------------------------------------ pooling beyond the seeds
#
# PyTorch's pooling options (dilation, ceil_mode, count_include_pad) with
# PyTorch's padding: symmetric, at most half the window. Odd sizes
# whose last window is partial, strides larger than the window, windows
# reaching past the bottom/right padding with ceil_mode.


def pool_out_size(size, k, stride, dilation, before, after, ceil_mode):
    """floor or ceil of the span / stride, + 1; with ceil_mode a last window
    starting in the after-padding is dropped (PyTorch)."""
    span = size + before + after - dilation * (k - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    return out


@dataclass(frozen=True)
class PoolOptCase:
    """max_pool2d (dilation, ceil_mode) or avg_pool2d (ceil_mode, count_include_pad)."""

    n: int
    h: int
    w: int
    c: int
    pool_size: Any
    stride: Any
    padding: Any = 0  # int or (ph, pw): symmetric
    dilation: Any = 1
    ceil_mode: bool = False
    count_include_pad: bool = False
    data_format: str = "NHWC"
    dtype: Any = np.float32

    @property
    def id(self):
        return (f"n{self.n}-{self.h}x{self.w}-c{self.c}-k{_dims(pair(self.pool_size))}"
                f"-s{_dims(pair(self.stride))}-{padding_id(self.padding)}-d{_dims(pair(self.dilation))}"
                + ("-ceil" if self.ceil_mode else "") + ("-incpad" if self.count_include_pad else "")
                + f"-{self.data_format.lower()}-{DTYPE_IDS[np.dtype(self.dtype)]}")

    @property
    def out_hw(self):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (pair(v) for v in (
            self.pool_size, self.stride, self.padding, self.dilation))
        return (pool_out_size(self.h, kh, sh, dh, ph, ph, self.ceil_mode),
                pool_out_size(self.w, kw, sw, dw, pw, pw, self.ceil_mode))

    @property
    def window(self):
        return math.prod(pair(self.pool_size))

    def max_kwargs(self):
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "ceil_mode": self.ceil_mode, "data_format": self.data_format}

    def avg_kwargs(self):
        return {"stride": self.stride, "padding": self.padding, "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad, "data_format": self.data_format}

    def inputs(self):
        """x tie-free (a shuffled linspace), dy random; in the case's layout and dtype."""
        rng = rng_for(self.id)
        size = self.n * self.h * self.w * self.c
        x = rng.permutation(np.linspace(-1.0, 1.0, size)).reshape(self.n, self.h, self.w, self.c)
        dy = rng.standard_normal((self.n, *self.out_hw, self.c))
        return nhwc_to(x.astype(self.dtype), self.data_format), nhwc_to(dy.astype(self.dtype), self.data_format)


# (n, h, w, c, pool_size, stride, padding, dilation, ceil_mode)
MAX_POOL_OPT_GEOMETRIES = [
    (2, 7, 7, 3, 3, 2, 1, 1, True),  # odd: the last window is partial
    (2, 8, 9, 2, 3, 2, 0, 1, True),
    (2, 5, 5, 2, 2, 2, 0, 1, True),
    (1, 5, 6, 3, 2, 3, 1, 1, True),  # stride > window: a last window in the padding is dropped
    (2, 11, 4, 2, (4, 2), (3, 2), (2, 1), 1, True),
    (2, 7, 7, 3, 3, 2, 1, 1, False),
    (1, 9, 8, 2, 3, 1, 1, 2, False),  # dilation
    (2, 10, 9, 3, 3, 2, 1, 2, True),
    (1, 6, 7, 4, (2, 3), (2, 1), (1, 1), (2, 1), True),
    (1, 4, 4, 16, 2, 1, 0, 3, False),  # dilated window as large as the input
    (2, 9, 6, 3, (3, 2), (2, 1), 0, (3, 2), True),
]

MAX_POOL_OPT_CASES = _with_layouts(
    MAX_POOL_OPT_GEOMETRIES,
    lambda g, fmt, dt: PoolOptCase(*g[:7], dilation=g[7], ceil_mode=g[8], data_format=fmt, dtype=dt),
)

# (n, h, w, c, pool_size, stride, padding, ceil_mode), each with count_include_pad both ways
AVG_POOL_GEOMETRIES = [
    (2, 7, 7, 3, 3, 2, 1, True),
    (2, 7, 7, 3, 3, 2, 1, False),
    (2, 8, 9, 2, 3, 2, 0, True),
    (2, 6, 6, 2, 3, 2, 1, True),  # the last window reaches past the bottom/right padding
    (2, 7, 6, 3, 2, 2, 1, True),
    (1, 5, 8, 4, (2, 3), (1, 2), (1, 1), False),
    (2, 9, 5, 2, (3, 2), (2, 3), (1, 0), True),
    (1, 3, 3, 2, 3, 1, 1, False),
    (2, 10, 10, 3, 2, 3, 0, True),  # stride > window
    (3, 4, 5, 16, 4, 4, 2, True),
    (1, 1, 1, 2, 1, 1, 0, False),
]

AVG_POOL_CASES = [
    PoolOptCase(*g[:7], ceil_mode=g[7], count_include_pad=include, data_format=fmt, dtype=dt)
    for g in AVG_POOL_GEOMETRIES for include in (False, True) for fmt in FORMATS for dt in DTYPES
]


@dataclass(frozen=True)
class AdaptiveCase:
    n: int
    h: int
    w: int
    c: int
    output_size: Any
    data_format: str = "NHWC"
    dtype: Any = np.float32

    @property
    def id(self):
        return (f"n{self.n}-{self.h}x{self.w}-c{self.c}-to{_dims(pair(self.output_size))}"
                f"-{self.data_format.lower()}-{DTYPE_IDS[np.dtype(self.dtype)]}")

    @property
    def window(self):
        """The largest bin (terms in one mean)."""
        oh, ow = pair(self.output_size)
        return (-(-self.h // oh) + 1) * (-(-self.w // ow) + 1)

    def inputs(self):
        rng = rng_for(self.id)
        x = rng.standard_normal((self.n, self.h, self.w, self.c))
        dy = rng.standard_normal((self.n, *pair(self.output_size), self.c))
        return nhwc_to(x.astype(self.dtype), self.data_format), nhwc_to(dy.astype(self.dtype), self.data_format)


# (n, h, w, c, output_size)
ADAPTIVE_GEOMETRIES = [
    (2, 7, 7, 3, 1),  # global average pooling
    (2, 7, 5, 3, (3, 2)),  # sizes that do not divide the input
    (1, 10, 9, 2, (4, 5)),
    (2, 5, 5, 2, 5),  # identity
    (1, 3, 4, 2, (5, 7)),  # larger than the input: bins repeat cells
    (2, 8, 6, 16, (3, 4)),
    (1, 1, 1, 3, (2, 1)),
    (2, 6, 6, 4, 4),
    (1, 9, 1, 2, (2, 1)),
]

ADAPTIVE_CASES = _with_layouts(
    ADAPTIVE_GEOMETRIES, lambda g, fmt, dt: AdaptiveCase(*g, data_format=fmt, dtype=dt),
)


def ids(cases):
    return [c.id for c in cases]


def _check_grids():
    for grid in (CONV_CASES, SEED_SHAPE_CASES, TRANSPOSE_CASES, POOL_CASES, LRN_CASES,
                 MAX_POOL_OPT_CASES, AVG_POOL_CASES, ADAPTIVE_CASES):
        names = ids(grid)
        dup = [k for k, g in itertools.groupby(sorted(names)) if len(list(g)) > 1]
        assert not dup, f"duplicate case ids: {dup}"
    for case in CONV_CASES + SEED_SHAPE_CASES + TRANSPOSE_CASES:
        assert pair(case.stride) == (1, 1) or pair(case.dilation) == (1, 1), (
            f"{case.id}: TensorFlow has no dilated conv with stride > 1"
        )


_check_grids()
