"""Convolution into few output channels as dot products over x's own memory (the "dots" strategy).

In NHWC memory the patch values of one kernel row, ``x[n, ih, iw0:iw0 +
KW, :]`` for an undilated row, are one contiguous run of KW * C_in values,
and with the filter stored as ``wt[co, kh, kw * C_in + ci]`` the matching
weights are one contiguous run too. So an output value is a sum of KH dot
products of contiguous runs: no gathered patches, no planes. This wins
where the other strategies pay per output channel or per tap: fewer output
channels than a register tile's 16 (the patch GEMM computes 16 whatever
C_out), from long kernel rows, where the planes kernel shares little of x
between taps (strided filters, one plane per stride phase; 1x1 filters)
or runs its passes over tiny output grids, so that their set-up costs more
than their products (the seed test's 4x28x46x128 8x16 stride-5 layer into
2 channels, a GAN discriminator's last 4x4x512 -> 1 layer).
``numbaconv._plan.by_dots`` says where, with the measurements.

Each sum runs in DOT_LANES interleaved lanes (lane l holds the products at
offsets congruent to l), added up in a fixed order at the end: vector code
without "reassoc", and one order of summation for any thread count and for
the ``@njit`` drivers of ``numbaconv.kernels`` alike.
"""
import numpy as np
from numba import prange

from .._numba import FASTMATH, kernel, register_tile

# Lanes of a running dot product: four 512-bit float32 vectors, so that four
# independent FMA chains hide the FMA latency.
DOT_LANES = 64


@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"})
def _add_dot(acc, data, x0, wrow, w0, length):
    """acc[t % DOT_LANES] += data[x0 + t] * wrow[w0 + t] for t < length (lane by lane, in order)."""
    # The lanes in a stack tile: LLVM keeps it in registers (acc itself
    # might alias the operands, as far as it knows).
    lanes = register_tile(acc, 1, DOT_LANES)[0]
    for lane in range(DOT_LANES):
        lanes[lane] = acc[lane]
    xs, ws = np.uint64(x0), np.uint64(w0)
    full = length // DOT_LANES * DOT_LANES
    for t in range(0, full, DOT_LANES):
        xo, wo = xs + np.uint64(t), ws + np.uint64(t)
        for lane in range(DOT_LANES):
            lanes[lane] += data[xo + np.uint64(lane)] * wrow[wo + np.uint64(lane)]
    for t in range(full, length):
        lanes[t - full] += data[xs + np.uint64(t)] * wrow[ws + np.uint64(t)]
    for lane in range(DOT_LANES):
        acc[lane] = lanes[lane]


@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"})
def _lanes_sum(acc):
    """The sum of acc's DOT_LANES lanes, halving in a fixed order (vector adds, not 63 dependent scalar ones)."""
    half = DOT_LANES // 2
    while half > 0:
        for lane in range(half):
            acc[lane] += acc[lane + half]
        half //= 2
    return acc[0]


@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"})
def _row_dots(x, wt, b, y, n, oh, sums, sh, sw, dh, pt, pl):
    """Output row (n, oh) of ``conv2d_dots``; ``sums`` is (OW, DOT_LANES) scratch.

    Output channel by channel, kernel row by kernel row, the row's pixels
    innermost: a kernel row's weights (KW * C_in values) stay in L1 across
    the pixels, and so do the x values that neighbouring pixels share.
    """
    n_out, k_h, row_len = wt.shape
    c_in = x.c
    k_w = row_len // c_in
    ih0 = oh * sh - pt
    y0 = n * y.n_step + oh * y.h_step
    for co in range(n_out):
        for ow in range(y.w):
            for lane in range(DOT_LANES):
                sums[ow, lane] = 0
        for kh in range(k_h):
            ih = ih0 + kh * dh
            if not 0 <= ih < x.h:
                continue
            w_row = wt[co, kh]
            x_row = n * x.n_step + ih * x.h_step
            for ow in range(y.w):
                iw0 = ow * sw - pl
                kw_lo = max(0, -iw0)
                length = (min(k_w, x.w - iw0) - kw_lo) * c_in
                if length > 0:
                    _add_dot(sums[ow], x.data, x_row + (iw0 + kw_lo) * x.w_step, w_row, kw_lo * c_in, length)
        for ow in range(y.w):
            y.data[y0 + ow * y.w_step + co * y.c_step] = b[co] + _lanes_sum(sums[ow])


@kernel
def conv2d_dots(x, wt, b, y, sh, sw, dh, pt, pl):
    """y[n, oh, ow, co] = b[co] + sum over kh, and kw with iw inside x, of x[n, ih, iw, :] . w[kh, kw, :, co].

    ``x`` an Image of NHWC memory (``c_step`` 1, ``w_step`` C_in), ``y``
    an Image of either memory, ``wt`` the filter as (C_out, KH, KW * C_in)
    C-contiguous rows (``wt[co, kh, kw * C_in + ci] = w[kh, kw, ci,
    co]``); ``ih = oh * sh - pt + kh * dh``, ``iw = ow * sw - pl + kw``
    (undilated along w). One prange iteration owns one output row (n, oh).
    """
    for unit in prange(y.n * y.h):
        # (The row's work in a function of its own: written inline, the
        # parfor body computed wrong sums, the loop variables apparently
        # shared between iterations.)
        n = np.int64(unit) // y.h
        sums = np.empty((y.w, DOT_LANES), wt.dtype)
        _row_dots(x, wt, b, y, n, np.int64(unit) - n * y.h, sums, sh, sw, dh, pt, pl)
