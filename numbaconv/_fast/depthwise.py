"""Drivers of the depthwise kernels: conv with ``groups = C_in`` (any channel multiplier M).

The filters arrive HWIO ``(KH, KW, 1, C_in * M)``; output channel ``c * M + m``
reads input channel c. The kernels pair channels one to one, so for M > 1
the input is repeated M times along its channels first (``np.repeat``: then
channel ``c * M + m`` of the repeated input is channel c), and the input
gradient, computed per repeated channel, is summed over m afterwards.

Both layouts run the NHWC kernels: an NCHW caller's data (``nchw`` True, NHWC
views of NCHW memory) are copied to NHWC memory once, where the channel
vectors the kernels run along are contiguous.
"""
import numpy as np

from .._kernels import depthwise as k
from ._memory import channels_last, contiguous

# Partial sums of the filter gradient: at most this many row ranges. The
# count depends on the shape only (never on the thread count), so the result
# is bit-identical with any number of threads; 64 keeps many cores busy.
MAX_PARTS = 64


def _taps(w):
    """HWIO (KH, KW, 1, C) -> the kernels' (KH, KW, C)."""
    return contiguous(w.reshape(w.shape[0], w.shape[1], w.shape[3]))


def _repeated(x, multiplier):
    """x in NHWC memory with every channel repeated ``multiplier`` times in place."""
    x = channels_last(x)
    return x if multiplier == 1 else np.repeat(x, multiplier, axis=3)


def _bias(b, c, dtype):
    return np.zeros(c, dtype) if b is None else contiguous(b)


def _forward_taps(out_size, k, stride, dilation, pad, in_size):
    """table[o, t] = o * stride - pad + t * dilation, the input index output o's tap t reads, or -1 (padding)."""
    index = np.arange(out_size)[:, None] * stride - pad + np.arange(k)[None, :] * dilation
    return np.where((index >= 0) & (index < in_size), index, -1).astype(np.int64)


def _backward_taps(in_size, k, stride, dilation, pad, out_size):
    """table[i, t] = o with o * stride - pad + t * dilation == i and 0 <= o < out_size, else -1.

    The input gradient's gather: which output reaches input i through tap t.
    """
    pos = np.arange(in_size)[:, None] + pad - np.arange(k)[None, :] * dilation
    o = pos // stride
    return np.where((pos >= 0) & (pos % stride == 0) & (o < out_size), o, -1).astype(np.int64)


def conv2d(x, w, b, g, groups, nchw):
    """The grouped-conv core with ``groups = C_in`` (x's channels)."""
    c_out = w.shape[3]
    y = np.empty((x.shape[0], g.oh, g.ow, c_out), x.dtype)
    k.depthwise_conv2d_nhwc(_repeated(x, c_out // groups), _taps(w), _bias(b, c_out, x.dtype), y,
                            _forward_taps(g.oh, g.kh, g.sh, g.dh, g.pt, g.h),
                            _forward_taps(g.ow, g.kw, g.sw, g.dw, g.pl, g.w))
    return y


def conv2d_transpose(x, w, b, g, groups, nchw):
    """x (C_in * M channels) lives on g's output plane; the result (C_in = groups channels) on its input plane."""
    n, c_out = x.shape[0], w.shape[3]
    multiplier = c_out // groups
    dx = np.empty((n, g.h, g.w, c_out), x.dtype)
    # With M > 1 the bias is added once per input channel, after the sum over m.
    kernel_bias = _bias(b if multiplier == 1 else None, c_out, x.dtype)
    k.depthwise_conv2d_nhwc(channels_last(x), _taps(w), kernel_bias, dx,
                            _backward_taps(g.h, g.kh, g.sh, g.dh, g.pt, x.shape[1]),
                            _backward_taps(g.w, g.kw, g.sw, g.dw, g.pl, x.shape[2]))
    if multiplier == 1:
        return dx
    dx = dx.reshape(n, g.h, g.w, groups, multiplier).sum(axis=4)
    if b is not None:
        dx += b
    return dx


def conv2d_backward_filter(x, dy, g, groups, nchw):
    c_out = dy.shape[3]
    dw = np.empty((g.kh, g.kw, c_out), x.dtype)
    parts = min(dy.shape[0] * g.oh, MAX_PARTS)
    k.depthwise_conv2d_backward_filter_nhwc(_repeated(x, c_out // groups), contiguous(dy), dw, parts,
                                            g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return dw.reshape(g.kh, g.kw, 1, c_out)
