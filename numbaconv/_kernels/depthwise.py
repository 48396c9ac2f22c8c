"""Depthwise convolution kernels: forward, input gradient, filter gradient (NHWC memory).

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
def depthwise_conv2d_nhwc(x, w, b, y, sh, sw, dh, dw, pt, pl):
    """y[n, oh, ow, c] = b[c] + sum(x[n, oh * sh - pt + kh * dh, ow * sw - pl + kw * dw, c] * w[kh, kw, c]).

    One prange iteration owns one output row ``y[n, oh]``.
    """
    n_img, out_h, out_w, chans = y.shape
    in_h, in_w = x.shape[1], x.shape[2]
    k_h, k_w = w.shape[0], w.shape[1]
    for unit in prange(n_img * out_h):
        n = np.int64(unit) // out_h
        oh = np.int64(unit) - n * out_h
        for ow in range(out_w):
            acc = y[n, oh, ow]
            for c in range(chans):
                acc[c] = b[c]
            for kh in range(k_h):
                ih = oh * sh - pt + kh * dh
                if ih < 0 or ih >= in_h:
                    continue
                for kw in range(k_w):
                    iw = ow * sw - pl + kw * dw
                    if iw < 0 or iw >= in_w:
                        continue
                    src = x[n, ih, iw]
                    tap = w[kh, kw]
                    for c in range(chans):
                        acc[c] += src[c] * tap[c]


@kernel(parallel=False)
def _source_index(size, k, stride, dilation, pad, out_size):
    """table[i, t] = o with o * stride - pad + t * dilation == i and 0 <= o < out_size, else -1.

    The gather form's tap lookup along one axis, computed once per call so
    that no division runs per pixel.
    """
    table = np.full((size, k), -1, np.int64)
    for i in range(size):
        for t in range(k):
            pos = i + pad - t * dilation
            if pos >= 0 and pos % stride == 0 and pos // stride < out_size:
                table[i, t] = pos // stride
    return table


@kernel
def depthwise_conv2d_backward_input_nhwc(dy, w, b, dx, sh, sw, dh, dw, pt, pl):
    """dx[n, ih, iw, c] = b[c] + sum(dy[n, oh, ow, c] * w[kh, kw, c]) in gather form.

    The sum runs over the taps with ``oh * sh - pt + kh * dh == ih`` and
    ``ow * sw - pl + kw * dw == iw`` for (oh, ow) inside dy: the transposed
    depthwise convolution (also conv2d_transpose with ``groups = C``). One
    prange iteration owns one row ``dx[n, ih]``.
    """
    n_img, in_h, in_w, chans = dx.shape
    out_h, out_w = dy.shape[1], dy.shape[2]
    k_h, k_w = w.shape[0], w.shape[1]
    rows = _source_index(in_h, k_h, sh, dh, pt, out_h)
    cols = _source_index(in_w, k_w, sw, dw, pl, out_w)
    for unit in prange(n_img * in_h):
        n = np.int64(unit) // in_h
        ih = np.int64(unit) - n * in_h
        for iw in range(in_w):
            acc = dx[n, ih, iw]
            for c in range(chans):
                acc[c] = b[c]
            for kh in range(k_h):
                oh = rows[ih, kh]
                if oh < 0:
                    continue
                for kw in range(k_w):
                    ow = cols[iw, kw]
                    if ow < 0:
                        continue
                    src = dy[n, oh, ow]
                    tap = w[kh, kw]
                    for c in range(chans):
                        acc[c] += src[c] * tap[c]


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
