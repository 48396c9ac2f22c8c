"""Max pooling kernels: forward with and without argmax (NHWC), and the argmax routing.

The forward kernels vectorize over channels; NCHW input is transposed by the
driver (a channels-first kernel, one channel per inner loop and a branch per
window tap, ran 5x slower than that copy plus the NHWC kernel). The
backward scatter has an NHWC and a channels-first (planes) kernel: it
vectorizes in neither layout, and the planes form needs no transposes.
"""
import numpy as np
from numba import prange

from .._numba import kernel


@kernel
def max_pool2d_argmax_nhwc(x, kh, kw, sh, sw, pt, pl, y, argmax):
    """y[n, oh, ow, c] = max of the window, argmax = flat h * W + w of the first maximum.

    One prange iteration owns the output row ``y[n, oh]`` and ``argmax[n, oh]``.
    The window is clipped to the input, so padding never wins, and the running
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
        h_start, h_stop = max(top, 0), min(top + kh, h_size)
        for ow in range(ow_size):
            left = ow * sw - pl
            w_start, w_stop = max(left, 0), min(left + kw, w_size)
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
            for h in range(h_start, h_stop):
                for w in range(w_start, w_stop):
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
def max_pool2d_nhwc(x, kh, kw, sh, sw, pt, pl, one, y):
    """y[n, oh, ow, c] = max of the window (NaN if the window holds one).

    One prange iteration owns the output row ``y[n, oh]``. The window is
    clipped to the input, so padding never wins. The output plane is ``y``'s
    shape. ``one`` is 1 in x's dtype, unknown to the compiler: storing
    ``best * one`` instead of ``best`` keeps LLVM from turning the update into
    a masked store (vmaskmovps, slow on this CPU: 4x slower at C=16).
    """
    n_size, h_size, w_size, c_size = x.shape
    oh_size, ow_size = y.shape[1], y.shape[2]
    for job in prange(n_size * oh_size):
        n = np.int64(job) // oh_size
        oh = np.int64(job) % oh_size
        top = oh * sh - pt
        h_start, h_stop = max(top, 0), min(top + kh, h_size)
        for ow in range(ow_size):
            left = ow * sw - pl
            w_start, w_stop = max(left, 0), min(left + kw, w_size)
            if h_start >= h_stop or w_start >= w_stop:
                for c in range(c_size):  # unreachable for validated input
                    y[n, oh, ow, c] = -np.inf
                continue
            for c in range(c_size):
                y[n, oh, ow, c] = x[n, h_start, w_start, c]
            for h in range(h_start, h_stop):
                for w in range(w_start, w_stop):
                    if h == h_start and w == w_start:
                        continue
                    for c in range(c_size):
                        value = x[n, h, w, c]
                        best = y[n, oh, ow, c]
                        # Once best is NaN nothing replaces it: NaN > v is False.
                        take = (value > best) | (value != value)
                        y[n, oh, ow, c] = value if take else best * one


@kernel
def max_pool2d_backward_nhwc(dy, argmax, dx):
    """dx[n, argmax[n, oh, ow, c], c] += dy[n, oh, ow, c]; dx is (N, H * W, C).

    One prange iteration owns the sample ``dx[n]``: it zeroes it and scans
    ``dy[n]`` in order, so overlapping windows add up without races. (Giving
    iterations channel blocks instead, so that a batch of one uses both
    cores, made each block rescan dy: 1.5x the work for two blocks, 2.6x for
    four, and no faster on two threads; measured at (1, 112, 112, 64).)
    Indices must lie in [0, H * W) (validation checks it).
    """
    for n in prange(dy.shape[0]):
        dx_n, dy_n, argmax_n = dx[n], dy[n], argmax[n]
        for p in range(dx_n.shape[0]):
            for c in range(dx_n.shape[1]):
                dx_n[p, c] = 0
        for oh in range(dy_n.shape[0]):
            for ow in range(dy_n.shape[1]):
                for c in range(dy_n.shape[2]):
                    dx_n[np.uint64(argmax_n[oh, ow, c]), c] += dy_n[oh, ow, c]


@kernel
def max_pool2d_backward_nchw(dy, argmax, dx):
    """dx[p, argmax[p, q]] += dy[p, q] over planes p = (n, c); dy is (N * C, OH * OW), dx (N * C, H * W).

    One prange iteration owns the plane ``dx[p]``: it zeroes it and scans
    ``dy[p]`` in order, so overlapping windows add up without races.
    """
    for p in prange(dy.shape[0]):
        dx_p, dy_p, argmax_p = dx[p], dy[p], argmax[p]
        for i in range(dx_p.shape[0]):
            dx_p[i] = 0
        for q in range(dy_p.shape[0]):
            dx_p[np.uint64(argmax_p[q])] += dy_p[q]
