"""Pooling kernels: max pooling (with or without argmax), the argmax scatter, average pooling.

One compiled kernel per op family, whatever the layout and direction (each
parallel kernel costs ~0.7 s to compile, per dtype): the max-pool forward
kernel serves max_pool2d and max_pool2d_argmax, the scatter serves max
pooling's backward and max_unpool2d in both layouts, and the average-pool
kernel serves the forward pass and its gradient.

The forward kernels vectorize over channels; NCHW input is transposed by the
driver (a channels-first kernel, one channel per inner loop and a branch per
window tap, ran 5x slower than that copy plus the NHWC kernel). Channels-first
kernels over (N * C, H, W) planes were measured again for few channels (one
Zen3 core, ns per output, 2x2 / 3x3 stride 2): a window loop per output,
its running maximum a chain of compares and selects, 8-26 / 12-37 without
argmax and 28-47 / 41-64 with it, against 7-13 / 13-26 and 24-29 / 46-60
for this kernel at 3 channels and 1-2 / 1-4 from 16 on; the taps outermost,
each updating a row of outputs, 4-17 / 9-33 (a stride of 2 written as a
constant included). Only a window of constant size vectorizes over outputs
(2x2 stride 2: 0.8-1.3 ns without argmax, 1.8 with it), and one compiled
body per window size costs compile time (a kernel with two took 6 s). The argmax
scatter vectorizes in neither layout: it reads channels-first data as planes
(one channel each), so NCHW needs no transposes.

Average pooling (fixed windows and adaptive bins alike) takes its windows as
per-axis arrays: output row ``oh`` reads input rows ``[h_start[oh],
h_stop[oh])`` and is scaled by ``h_scale[oh]`` (columns alike). The backward
is a gather over the outputs whose window reads each input cell.
"""
import numpy as np
from numba import prange

from .._numba import kernel


@kernel(parallel=False)
def _first_tap(top, dilation):
    """The first window tap ``top + i * dilation`` at or after 0 (``top`` is signed)."""
    return top if top >= 0 else top + ((dilation - 1 - top) // dilation) * dilation


@kernel
def max_pool2d_nhwc(x, kh, kw, sh, sw, dh, dw, pt, pl, one, y, argmax):
    """y[n, oh, ow, c] = max of the window; with a non-empty ``argmax``, also the flat h * W + w of the first maximum.

    One kernel for max_pool2d and max_pool2d_argmax (one compilation, not
    two): ``argmax`` is either y's shape or empty (size 0), the flag is
    tested outside the channel loops. One prange iteration owns the output
    row ``y[n, oh]`` (and ``argmax[n, oh]``). The window's taps are rows
    ``oh * sh - pt + i * dh`` (columns alike), clipped to the input, so
    padding never wins, and the running maximum starts from the first
    in-bounds position (an all -inf window still points at a real
    position). The output plane is ``y``'s shape.

    Without argmax: a later value replaces the maximum when greater or NaN
    (once it is NaN nothing replaces it with a number: NaN > v is False).
    ``one`` is 1 in x's dtype, unknown to the compiler: storing ``best *
    one`` instead of ``best`` keeps LLVM from turning the update into a
    masked store (vmaskmovps, slow on this CPU: 4x slower at C=16).
    With argmax: a later value replaces it when strictly greater, or when
    it is the first NaN, so argmax points at the first maximum or first NaN.
    """
    n_size, h_size, w_size, c_size = x.shape
    oh_size, ow_size = y.shape[1], y.shape[2]
    track = argmax.size != 0
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
                if track:
                    for c in range(c_size):
                        argmax[n, oh, ow, c] = -1
                continue
            for c in range(c_size):
                y[n, oh, ow, c] = x[n, h_start, w_start, c]
            # The flag is tested per output pixel, not per tap (per tap the
            # max-only loops were 9-14% slower than in a kernel of their own).
            if track:
                first = h_start * w_size + w_start
                for c in range(c_size):
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
            else:
                for h in range(h_start, h_stop, dh):
                    for w in range(w_start, w_stop, dw):
                        if h == h_start and w == w_start:
                            continue
                        for c in range(c_size):
                            value = x[n, h, w, c]
                            best = y[n, oh, ow, c]
                            take = (value > best) | (value != value)
                            y[n, oh, ow, c] = value if take else best * one


@kernel
def scatter_at_argmax(values, argmax, channels, accumulate, out):
    """out[u, argmax[u, i] * K + k] (+)= values[u, i] with k = i % K, K = ``channels``; out zeroed first.

    values and argmax are (U, Q * K): U units of Q entries of K channels
    each, channels inner; out is (U, P * K). One kernel for both layouts
    (one compilation): NHWC data are units = samples, K = C (the entry
    (q, c) goes to out[n, argmax * C + c]); NCHW data are units = planes
    (n, c), K = 1, so that no transposes are needed. ``accumulate``: add
    (max_pool2d_backward: overlapping windows sum up), or assign
    (max_unpool2d: the last entry in row-major order wins). One prange
    iteration owns the unit ``out[u]``: it zeroes it and scans
    ``values[u]`` in order, without races. (Giving iterations channel
    blocks instead, so that a batch of one uses both cores, made each block
    rescan the input: 1.5x the work for two blocks, 2.6x for four, and no
    faster on two threads; measured at (1, 112, 112, 64).) Indices must lie
    in [0, P) (validation checks it).
    """
    k_size = np.uint64(channels)
    # Q; no entries without channels (K = 0: not a division by zero, which
    # compiled code takes as 0 but Python raises).
    q_size = values.shape[1] // channels if channels > 0 else 0
    for u in prange(values.shape[0]):
        out_u, values_u, argmax_u = out[u], values[u], argmax[u]
        for i in range(out_u.shape[0]):
            out_u[i] = 0
        if channels == 1:
            # Planes: one run over the entries (the general loops below, with
            # their inner loop of one iteration, were 1.1-1.7x slower).
            for i in range(values_u.shape[0]):
                p = np.uint64(argmax_u[i])
                if accumulate:
                    out_u[p] += values_u[i]
                else:
                    out_u[p] = values_u[i]
            continue
        for q in range(q_size):
            for k in range(k_size):
                i = np.uint64(q) * k_size + k
                p = np.uint64(argmax_u[i]) * k_size + k
                if accumulate:
                    out_u[p] += values_u[i]
                else:
                    out_u[p] = values_u[i]


@kernel
def avg_pool2d_nhwc(src, h_first, h_stop, h_scale, w_first, w_stop, w_scale, gather, dst):
    """Average pooling's forward pass (``gather`` False) or its gradient (``gather`` True) into dst.

    One kernel for both directions (one compilation, not two), fixed windows
    and adaptive bins alike. Output row i sums source rows ``[h_first[i],
    h_stop[i])``, column j source columns ``[w_first[j], w_stop[j])``:

    - forward: src = x, dst = y, the windows clipped to the input (none
      empty), and ``dst[n, i, j, c] = h_scale[i] * w_scale[j] * sum(x)``,
      the scales being 1 / the divisor's factor along each axis;
    - backward, a gather: src = dy, dst = dx, the windows the outputs whose
      window reads the input cell (possibly none), and ``dst[n, i, j, c] =
      sum(h_scale[a] * w_scale[b] * dy[n, a, b, c])``.

    The flag is tested outside the channel loops (a scale per term in the
    forward pass, or a scaling pass of 1s in the backward one, made them
    12-19% slower). One prange iteration owns the row ``dst[n, i]``: no two
    iterations write one element.
    """
    n_size, c_size = src.shape[0], src.shape[3]
    i_size, j_size = dst.shape[1], dst.shape[2]
    for job in prange(n_size * i_size):
        n = np.int64(job) // i_size
        i = np.int64(job) % i_size
        for j in range(j_size):
            out = dst[n, i, j]
            for c in range(c_size):
                out[c] = 0
            if gather:
                for a in range(h_first[i], h_stop[i]):
                    for b in range(w_first[j], w_stop[j]):
                        term = h_scale[a] * w_scale[b]
                        row = src[n, a, b]
                        for c in range(c_size):
                            out[c] += term * row[c]
            else:
                for a in range(h_first[i], h_stop[i]):
                    for b in range(w_first[j], w_stop[j]):
                        row = src[n, a, b]
                        for c in range(c_size):
                            out[c] += row[c]
                scale = h_scale[i] * w_scale[j]
                for c in range(c_size):
                    out[c] *= scale
