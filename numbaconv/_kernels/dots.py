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
``numbaconv._plan.by_dots`` says where, with the measurements; where the
forward goes by dots, so do its gradients (below).

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


# ------------------------------------------------------------ the gradients
#
# The same rows, read the other way: the input gradient adds each filter
# row, scaled by the dy value that reaches it, into a run of dx's own
# memory, and the filter gradient adds each run of x, scaled by dy, into a
# filter row. Both are sums of scaled runs (axpys) in a fixed order: over
# (kernel row, output column, output channel) for a dx value, over pixels
# for a dw value, whatever the thread count.


@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"})
def _add_scaled(acc, a0, scale, src, s0, length):
    """acc[a0 + t] += scale * src[s0 + t] for t < length."""
    acs, srs = np.uint64(a0), np.uint64(s0)
    for t in range(length):
        ut = np.uint64(t)
        acc[acs + ut] += scale * src[srs + ut]


@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"})
def _row_scaled_rows(dy, wt, b, y, n, h, sh, sw, dh, pt, pl):
    """Row (n, h) of ``conv2d_transpose_dots``: the bias, then every filter row that reaches it, scaled by dy."""
    n_out, k_h, row_len = wt.shape
    c = y.c
    k_w = row_len // c
    y0 = n * y.n_step + h * y.h_step
    for iw in range(y.w):
        for ci in range(c):
            y.data[y0 + iw * c + ci] = b[ci]
    for kh in range(k_h):
        t = h + pt - kh * dh  # = oh * sh for the dy row that reaches row h through kernel row kh
        if t < 0 or t % sh != 0 or t // sh >= dy.h:
            continue
        d_row = n * dy.n_step + t // sh * dy.h_step
        for ow in range(dy.w):
            iw0 = ow * sw - pl
            kw_lo = max(0, -iw0)
            length = (min(k_w, y.w - iw0) - kw_lo) * c
            if length <= 0:
                continue
            for co in range(n_out):
                _add_scaled(y.data, y0 + (iw0 + kw_lo) * c, dy.data[d_row + ow * dy.w_step + co * dy.c_step],
                            wt[co, kh], kw_lo * c, length)


@kernel
def conv2d_transpose_dots(dy, wt, b, y, sh, sw, dh, pt, pl):
    """y = b + the transpose of ``conv2d_dots`` applied to dy (the input gradient when b is zero).

    ``y`` an Image of NHWC memory (the forward's x plane), ``dy`` an Image
    of either memory (the forward's output plane), ``wt`` the filter rows
    of ``conv2d_dots``. One prange iteration owns one row (n, h) of y.
    """
    for unit in prange(y.n * y.h):
        n = np.int64(unit) // y.h
        _row_scaled_rows(dy, wt, b, y, n, np.int64(unit) - n * y.h, sh, sw, dh, pt, pl)


@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"})
def _filter_row_part(x, dy, dwt, kh, lo, hi, sh, sw, dh, pt, pl):
    """dwt[:, kh, lo:hi] of ``conv2d_backward_filter_dots``: runs of x scaled by dy, pixel by pixel in order."""
    n_out, k_h, row_len = dwt.shape
    c = x.c
    k_w = row_len // c
    for co in range(n_out):
        for t in range(lo, hi):
            dwt[co, kh, t] = 0
    for n in range(dy.n):
        for oh in range(dy.h):
            ih = oh * sh - pt + kh * dh
            if not 0 <= ih < x.h:
                continue
            x_row = n * x.n_step + ih * x.h_step
            d_row = n * dy.n_step + oh * dy.h_step
            for ow in range(dy.w):
                iw0 = ow * sw - pl
                start = max(lo, max(0, -iw0) * c)
                stop = min(hi, min(k_w, x.w - iw0) * c)
                if stop <= start:
                    continue
                for co in range(n_out):
                    _add_scaled(dwt[co, kh], start, dy.data[d_row + ow * dy.w_step + co * dy.c_step],
                                x.data, x_row + iw0 * c + start, stop - start)


@kernel
def conv2d_backward_filter_dots(x, dy, dwt, part, sh, sw, dh, pt, pl):
    """dwt[co, kh, kw * C_in + ci] = dw[kh, kw, ci, co]: the filter gradient in ``conv2d_dots``' rows.

    ``x`` an Image of NHWC memory, ``dy`` one of either memory. One prange
    iteration owns a part of ``part`` values of one kernel row (for every
    output channel); each value sums over the pixels in the same order
    whatever the parts.
    """
    n_out, k_h, row_len = dwt.shape
    parts = -(-row_len // part)
    for unit in prange(k_h * parts):
        kh = np.int64(unit) // parts
        lo = (np.int64(unit) - kh * parts) * part
        _filter_row_part(x, dy, dwt, kh, lo, min(lo + part, row_len), sh, sw, dh, pt, pl)
