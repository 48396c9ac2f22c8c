"""Pooling kernels: max pooling with and without argmax, the argmax scatter, average pooling.

The forward kernels vectorize over channels; NCHW input is transposed by the
driver (a channels-first kernel, one channel per inner loop and a branch per
window tap, ran 5x slower than that copy plus the NHWC kernel). The argmax
scatter (max pooling's backward, and max_unpool2d) has an NHWC and a
channels-first (planes) kernel: it vectorizes in neither layout, and the
planes form needs no transposes.

Average pooling (fixed windows and adaptive bins alike) takes its windows as
per-axis arrays: output row ``oh`` reads input rows ``[h_start[oh],
h_stop[oh])`` and is scaled by ``h_scale[oh]`` (columns alike), so one
forward and one backward kernel serve both ops. The backward is a gather
over the outputs whose window reads each input cell.
"""
import numpy as np
from numba import prange

from .._numba import kernel


@kernel(parallel=False)
def _first_tap(top, dilation):
    """The first window tap ``top + i * dilation`` at or after 0 (``top`` is signed)."""
    return top if top >= 0 else top + ((dilation - 1 - top) // dilation) * dilation


@kernel
def max_pool2d_argmax_nhwc(x, kh, kw, sh, sw, dh, dw, pt, pl, y, argmax):
    """y[n, oh, ow, c] = max of the window, argmax = flat h * W + w of the first maximum.

    One prange iteration owns the output row ``y[n, oh]`` and ``argmax[n, oh]``.
    The window's taps are rows ``oh * sh - pt + i * dh`` (columns alike),
    clipped to the input, so padding never wins, and the running
    maximum starts from the first in-bounds position (an all -inf window still
    points at a real position). A later value replaces it when strictly
    greater, or when it is the first NaN. The output plane is ``y``'s shape.
    """
    n_size, h_size, w_size, c_size = x.shape
    oh_size, ow_size = y.shape[1], y.shape[2]
    for job in prange(n_size * oh_size):
        n = np.int64(job) // oh_size
        oh = np.int64(job) % oh_size
        top = oh * sh - pt
        h_start, h_stop = _first_tap(top, dh), min(top + (kh - 1) * dh + 1, h_size)
        for ow in range(ow_size):
            left = ow * sw - pl
            w_start, w_stop = _first_tap(left, dw), min(left + (kw - 1) * dw + 1, w_size)
            if h_start >= h_stop or w_start >= w_stop:
                # Unreachable for validated input (no window is all padding).
                for c in range(c_size):
                    y[n, oh, ow, c] = -np.inf
                    argmax[n, oh, ow, c] = -1
                continue
            first = h_start * w_size + w_start
            for c in range(c_size):
                y[n, oh, ow, c] = x[n, h_start, w_start, c]
                argmax[n, oh, ow, c] = first
            for h in range(h_start, h_stop, dh):
                for w in range(w_start, w_stop, dw):
                    position = h * w_size + w
                    if position == first:
                        continue
                    for c in range(c_size):
                        value = x[n, h, w, c]
                        best = y[n, oh, ow, c]
                        wins = (value > best) | ((value != value) & (best == best))
                        y[n, oh, ow, c] = value if wins else best
                        argmax[n, oh, ow, c] = position if wins else argmax[n, oh, ow, c]


@kernel
def max_pool2d_nhwc(x, kh, kw, sh, sw, dh, dw, pt, pl, one, y):
    """y[n, oh, ow, c] = max of the window (NaN if the window holds one).

    One prange iteration owns the output row ``y[n, oh]``. The window is
    clipped to the input, so padding never wins. The output plane is ``y``'s
    shape; taps as in :func:`max_pool2d_argmax_nhwc`. ``one`` is 1 in x's dtype, unknown to the compiler: storing
    ``best * one`` instead of ``best`` keeps LLVM from turning the update into
    a masked store (vmaskmovps, slow on this CPU: 4x slower at C=16).
    """
    n_size, h_size, w_size, c_size = x.shape
    oh_size, ow_size = y.shape[1], y.shape[2]
    for job in prange(n_size * oh_size):
        n = np.int64(job) // oh_size
        oh = np.int64(job) % oh_size
        top = oh * sh - pt
        h_start, h_stop = _first_tap(top, dh), min(top + (kh - 1) * dh + 1, h_size)
        for ow in range(ow_size):
            left = ow * sw - pl
            w_start, w_stop = _first_tap(left, dw), min(left + (kw - 1) * dw + 1, w_size)
            if h_start >= h_stop or w_start >= w_stop:
                for c in range(c_size):  # unreachable for validated input
                    y[n, oh, ow, c] = -np.inf
                continue
            for c in range(c_size):
                y[n, oh, ow, c] = x[n, h_start, w_start, c]
            for h in range(h_start, h_stop, dh):
                for w in range(w_start, w_stop, dw):
                    if h == h_start and w == w_start:
                        continue
                    for c in range(c_size):
                        value = x[n, h, w, c]
                        best = y[n, oh, ow, c]
                        # Once best is NaN nothing replaces it: NaN > v is False.
                        take = (value > best) | (value != value)
                        y[n, oh, ow, c] = value if take else best * one


@kernel
def scatter_at_argmax_nhwc(values, argmax, accumulate, out):
    """out[n, argmax[n, oh, ow, c], c] (+)= values[n, oh, ow, c]; out is (N, H * W, C), zeroed first.

    ``accumulate``: add (max_pool2d_backward: overlapping windows sum up), or
    assign (max_unpool2d: the last entry in row-major order of ``values``
    wins). One prange iteration owns the sample ``out[n]``: it zeroes it and
    scans ``values[n]`` in order, without races. (Giving iterations channel
    blocks instead, so that a batch of one uses both cores, made each block
    rescan the input: 1.5x the work for two blocks, 2.6x for four, and no
    faster on two threads; measured at (1, 112, 112, 64).) Indices must lie
    in [0, H * W) (validation checks it).
    """
    for n in prange(values.shape[0]):
        out_n, values_n, argmax_n = out[n], values[n], argmax[n]
        for p in range(out_n.shape[0]):
            for c in range(out_n.shape[1]):
                out_n[p, c] = 0
        for oh in range(values_n.shape[0]):
            for ow in range(values_n.shape[1]):
                for c in range(values_n.shape[2]):
                    p = np.uint64(argmax_n[oh, ow, c])
                    if accumulate:
                        out_n[p, c] += values_n[oh, ow, c]
                    else:
                        out_n[p, c] = values_n[oh, ow, c]


@kernel
def scatter_at_argmax_nchw(values, argmax, accumulate, out):
    """out[p, argmax[p, q]] (+)= values[p, q] over planes p = (n, c); values is (N * C, OH * OW), out (N * C, H * W).

    ``accumulate`` as in :func:`scatter_at_argmax_nhwc`. One prange iteration
    owns the plane ``out[p]``: it zeroes it and scans ``values[p]`` in
    order, without races.
    """
    for p in prange(values.shape[0]):
        out_p, values_p, argmax_p = out[p], values[p], argmax[p]
        for i in range(out_p.shape[0]):
            out_p[i] = 0
        for q in range(values_p.shape[0]):
            i = np.uint64(argmax_p[q])
            if accumulate:
                out_p[i] += values_p[q]
            else:
                out_p[i] = values_p[q]


@kernel
def avg_pool2d_nhwc(x, h_start, h_stop, h_scale, w_start, w_stop, w_scale, y):
    """y[n, oh, ow, c] = h_scale[oh] * w_scale[ow] * sum(x[n, h_start[oh]:h_stop[oh], w_start[ow]:w_stop[ow], c]).

    One prange iteration owns the output row ``y[n, oh]``. The windows are
    already clipped to the input (validation guarantees none is empty); the
    scales are 1 / the divisor's factor along each axis.
    """
    n_size, c_size = x.shape[0], x.shape[3]
    oh_size, ow_size = y.shape[1], y.shape[2]
    for job in prange(n_size * oh_size):
        n = np.int64(job) // oh_size
        oh = np.int64(job) % oh_size
        for ow in range(ow_size):
            out = y[n, oh, ow]
            for c in range(c_size):
                out[c] = 0
            for h in range(h_start[oh], h_stop[oh]):
                for w in range(w_start[ow], w_stop[ow]):
                    row = x[n, h, w]
                    for c in range(c_size):
                        out[c] += row[c]
            scale = h_scale[oh] * w_scale[ow]
            for c in range(c_size):
                out[c] *= scale


@kernel
def avg_pool2d_backward_nhwc(dy, oh_first, oh_stop, h_scale, ow_first, ow_stop, w_scale, dx):
    """dx[n, h, w, c] = sum of h_scale[oh] * w_scale[ow] * dy[n, oh, ow, c] over the windows reading (h, w).

    Those windows are rows ``[oh_first[h], oh_stop[h])`` times columns
    ``[ow_first[w], ow_stop[w])`` of the output (possibly none). One prange
    iteration owns the input row ``dx[n, h]`` and gathers into it: no two
    iterations write one element.
    """
    n_size, h_size, w_size, c_size = dx.shape
    for job in prange(n_size * h_size):
        n = np.int64(job) // h_size
        h = np.int64(job) % h_size
        for w in range(w_size):
            out = dx[n, h, w]
            for c in range(c_size):
                out[c] = 0
            for oh in range(oh_first[h], oh_stop[h]):
                for ow in range(ow_first[w], ow_stop[w]):
                    scale = h_scale[oh] * w_scale[ow]
                    row = dy[n, oh, ow]
                    for c in range(c_size):
                        out[c] += scale * row[c]
