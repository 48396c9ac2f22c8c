"""Depthwise convolution kernels: forward and input gradient (one kernel), filter gradient (NHWC memory).

Depthwise means every channel c is convolved with its own filter taps
``w[kh, kw, c]`` (filters ``(KH, KW, C)``, the HWIO ``(KH, KW, 1, C)`` of a
conv with ``groups = C``); a channel multiplier M > 1 reaches these kernels
as an input whose channels the driver has repeated M times, so input and
output channels always correspond one to one here.

Why these do not go through channel planes as the dense kernels do: a
depthwise tap is one multiply-add per channel, so there is no reduction over
channels to vectorize; the channel axis itself is the vector axis. In NHWC
memory a pixel's C channels are contiguous, so every innermost loop runs
over C contiguous floats of one input pixel, one filter tap and one output
pixel (LLVM vectorizes it; MobileNet-style layers have C >= 32).

All arrays are C-contiguous; x, y, dx, dy are (N, H, W, C), w is
(KH, KW, C). Padding cells read as zero: taps that fall on them are skipped.
"""
import numpy as np
from numba import prange

from .._numba import kernel


@kernel
def depthwise_conv2d_nhwc(src, w, b, dst, rows, cols):
    """dst[n, i, j, c] = b[c] + sum(src[n, rows[i, kh], cols[j, kw], c] * w[kh, kw, c]) over taps with both >= 0.

    One kernel for the forward pass and the input gradient (one
    compilation, not two), in gather form; the tables (``_fast.depthwise``) say
    which source row and column each tap of each output reads (-1: none):

    - forward, src = x, dst = y: ``rows[oh, kh] = oh * sh - pt + kh * dh``
      inside the input (padding: -1);
    - input gradient (the transposed depthwise convolution, also
      conv2d_transpose with ``groups = C``), src = dy, dst = dx:
      ``rows[ih, kh] = oh`` with ``oh * sh - pt + kh * dh == ih`` inside dy.

    Taps are added in (kh, kw) order. One prange iteration owns one row
    ``dst[n, i]``.
    """
    n_img, out_h, out_w, chans = dst.shape
    k_h, k_w = w.shape[0], w.shape[1]
    for unit in prange(n_img * out_h):
        n = np.int64(unit) // out_h
        i = np.int64(unit) - n * out_h
        for j in range(out_w):
            acc = dst[n, i, j]
            for c in range(chans):
                acc[c] = b[c]
            for kh in range(k_h):
                row_in = rows[i, kh]
                if row_in < 0:
                    continue
                for kw in range(k_w):
                    col_in = cols[j, kw]
                    if col_in < 0:
                        continue
                    source = src[n, row_in, col_in]
                    tap = w[kh, kw]
                    for c in range(chans):
                        acc[c] += source[c] * tap[c]


@kernel
def depthwise_conv2d_backward_filter_nhwc(x, dy, dw_out, n_parts, sh, sw, dh, dw, pt, pl):
    """dw_out[kh, kw, c] = sum(x[n, oh * sh - pt + kh * dh, ow * sw - pl + kw * dw, c] * dy[n, oh, ow, c]).

    The output rows (n, oh) are split into ``n_parts`` contiguous ranges; one
    prange iteration owns one range and its private partial sums. The
    partials are added in range order afterwards, so the result depends on
    ``n_parts`` (which the driver takes from the shape alone), never on the
    thread count.
    """
    n_img, out_h, out_w, chans = dy.shape
    in_h, in_w = x.shape[1], x.shape[2]
    k_h, k_w = dw_out.shape[0], dw_out.shape[1]
    rows = n_img * out_h
    partial = np.zeros((n_parts, k_h, k_w, chans), dw_out.dtype)
    for part in prange(n_parts):
        acc = partial[part]
        for unit in range(rows * np.int64(part) // n_parts, rows * (np.int64(part) + 1) // n_parts):
            n = unit // out_h
            oh = unit - n * out_h
            for kh in range(k_h):
                ih = oh * sh - pt + kh * dh
                if ih < 0 or ih >= in_h:
                    continue
                for ow in range(out_w):
                    grad = dy[n, oh, ow]
                    for kw in range(k_w):
                        iw = ow * sw - pl + kw * dw
                        if iw < 0 or iw >= in_w:
                            continue
                        src = x[n, ih, iw]
                        tap = acc[kh, kw]
                        for c in range(chans):
                            tap[c] += src[c] * grad[c]
    # Serial and in part order: KH * KW * C sums per part, and bit-identical
    # whatever thread ran which part.
    dw_out[:] = 0
    for part in range(n_parts):
        for kh in range(k_h):
            for kw in range(k_w):
                for c in range(chans):
                    dw_out[kh, kw, c] += partial[part, kh, kw, c]
