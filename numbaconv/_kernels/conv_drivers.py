"""Convolution drivers in nopython code: strategy choice, filter packing, stride phases, partial sums.

One implementation for both entry points: the Python API's drivers
(``numbaconv._fast.convolution``) and ``numbaconv.kernels`` (callable from
users' ``@njit`` code) call these. They take :class:`~.convolution.Image`
tuples for the data (NHWC or NCHW memory), filters as flat memory plus the
element steps of their (kh, kw, ci, co) indices (HWIO and OIHW memory
alike), and write into a result the caller allocated; scratch is allocated
here. They are serial code calling the parallel kernels; their serial twins
(``_numba.serial``) call the kernels' serial twins.

Two strategies, chosen from the shape alone (never from timing or from the
thread count):

- "planes" (``convolution``): vectorizes over output positions; suits short
  reductions (few input channels and small kernels, e.g. the seed's
  3x3x3 -> 16).
- "patch GEMM" (``patch_gemm``): register-tiled matrix products over
  gathered patches; suits long reductions into many output channels (wide
  layers, large kernels) and small planes (batch 1, 7x7 to 14x14).

The input gradient and the transpose run the forward kernel of either
strategy on the stride phases of their output (:func:`transpose`).
"""
import numpy as np

from .._numba import kernel
from .convolution import Image, bias_backward_rows, conv2d_backward_filter_nhwc, conv2d_nhwc
from .patch_gemm import OUT, PIX, conv2d_backward_filter_patch_gemm, conv2d_patch_gemm, pack_filters

# Grid positions per work unit: the plane scratch of a unit stays cache-sized.
MAX_GRID = 4096
# Work units wanted per call, so that small batches still use every thread.
MIN_UNITS = 8
# Measured one-thread boundaries (perf/sweep.py checks them against the peers):
PATCH_MIN_K = 64  # the patch GEMM needs a reduction of at least this many values,
PATCH_MIN_OUT = 16  # at least one register tile's width of output channels,
PATCH_MIN_WORK = 4096  # and K * C_out at least this (below, the planes' shorter setup wins).
DW_PATCH_MAX_PLANE = 256  # filter gradient: output planes of at most this many pixels,
DW_PATCH_MAX_PIXELS = 1024  # or calls of fewer output pixels in all, go to the patch GEMM
PATCH_PIXELS = 256  # output pixels per work unit: the patch block stays in L2
PART_PIXELS = 4096  # filter gradient: pixels per partial sum, at the least
MAX_PARTS = 8
PARTIAL_BUDGET = 1 << 23  # filter gradient: elements of all partial sums together
CHUNK_PIXELS = 256  # filter gradient: pixels gathered per pass


@kernel(parallel=False)
def nhwc_image(a):
    """The Image of a C-contiguous NHWC array (a view: writes reach ``a``)."""
    n, h, w, c = a.shape
    return Image(a.reshape(-1), n, h, w, c, h * w * c, w * c, c, 1)


@kernel(parallel=False)
def rows_per_block(n, rows, pitch):
    """Rows of the output grid per work unit of the plane kernels; from shapes only, not threads."""
    blocks_per_image = -(-MIN_UNITS // n) if n else 1
    return max(1, min(rows, MAX_GRID // pitch, -(-rows // blocks_per_image)))


@kernel(parallel=False)
def by_patches(k_len, n_out):
    """The forward kernels' strategy, from the reduction length and the output channels."""
    return k_len >= PATCH_MIN_K and n_out >= PATCH_MIN_OUT and k_len * n_out >= PATCH_MIN_WORK


@kernel(parallel=False)
def dw_by_patches(n, oh, ow, k_h, k_w, c_in, c_out):
    """Whether the filter gradient goes to the patch GEMM.

    The plane kernel reads each gathered input row once for all taps
    (gathered patches copy it KH * KW times) but reduces over one block of
    rows at a time: with few output pixels its reductions are short, and
    the patch GEMM's are not.
    """
    few_pixels = oh * ow <= DW_PATCH_MAX_PLANE or n * oh * ow < DW_PATCH_MAX_PIXELS
    return few_pixels and k_h * k_w * c_in >= PATCH_MIN_K and c_out >= PATCH_MIN_OUT


@kernel(parallel=False)
def _patch_units(n, oh, ow, c_pad):
    """(rows_per_unit, out_per_unit) of the patch GEMM; from the shape alone."""
    rows = max(1, min(oh, PATCH_PIXELS // ow))
    units = n * -(-oh // rows)
    out_per_unit = c_pad
    if units < MIN_UNITS:
        # Few pixels (batch 1, small planes): split the channels too, in
        # blocks of at least 16, rather than the pixels: each unit then
        # reads its own part of the filters once.
        blocks = min(-(-MIN_UNITS // max(units, 1)), max(1, c_pad // 16))
        out_per_unit = -(-c_pad // blocks // OUT) * OUT
    return rows, out_per_unit


@kernel(parallel=False)
def _as_nhwc(x):
    """``x`` in NHWC memory: itself when it is, else a copy (patches gather runs of channels)."""
    if x.c_step == 1 and x.w_step == x.c and x.h_step == x.w * x.c and x.n_step == x.h * x.w * x.c:
        return x
    data = np.empty(x.n * x.h * x.w * x.c, x.data.dtype)
    i = 0
    for n in range(x.n):
        for h in range(x.h):
            for w in range(x.w):
                src = n * x.n_step + h * x.h_step + w * x.w_step
                for c in range(x.c):
                    data[i] = x.data[src + c * x.c_step]
                    i += 1
    return Image(data, x.n, x.h, x.w, x.c, x.h * x.w * x.c, x.w * x.c, x.c, 1)


@kernel(parallel=False)
def _sub_filter(w, w_steps, taps_h, taps_w, swap, n_in, n_out):
    """The C-contiguous HWIO filter of the taps (``W[taps_h[a], taps_w[b], i, o]``; I and O swapped when ``swap``)."""
    s_h, s_w, s_ci, s_co = w_steps
    s_i, s_o = (s_co, s_ci) if swap else (s_ci, s_co)
    out = np.empty((taps_h.size, taps_w.size, n_in, n_out), w.dtype)
    for a in range(taps_h.size):
        for b in range(taps_w.size):
            base = taps_h[a] * s_h + taps_w[b] * s_w
            for i in range(n_in):
                for o in range(n_out):
                    out[a, b, i, o] = w[base + i * s_i + o * s_o]
    return out


@kernel(parallel=False)
def forward(x, w, w_steps, n_in, n_out, b, y, taps_h, taps_w, swap, sh, sw, dh, dw, pt, pl):
    """y = correlation of x with the filter taps (+ b), by the strategy the shape calls for.

    ``x``, ``y`` are Images; ``w`` flat filter memory with steps ``w_steps``
    of (kh, kw, ci, co). ``taps_h``, ``taps_w`` (int64) and ``swap`` select a
    sub-filter (the stride phases of the input gradient: the filter with
    C_in and C_out swapped); the forward conv passes every tap. ``n_in``,
    ``n_out``: the sub-filter's input and output channels.
    """
    k_h, k_w = taps_h.size, taps_w.size
    if by_patches(k_h * k_w * n_in, n_out):
        wk = np.zeros((k_h * k_w * n_in, -(-n_out // OUT) * OUT), w.dtype)
        pack_filters(w, w_steps, taps_h, taps_w, swap, n_out, wk)
        rows, outs = _patch_units(y.n, y.h, y.w, wk.shape[1])
        conv2d_patch_gemm(_as_nhwc(x), wk, b, y, k_h, k_w, rows, outs, sh, sw, dh, dw, pt, pl)
        return
    hwio = _sub_filter(w, w_steps, taps_h, taps_w, swap, n_in, n_out)
    pitch = y.w + (k_w - 1) * dw // sw
    conv2d_nhwc(x, hwio, b, y, rows_per_block(y.n, y.h, pitch), sh, sw, dh, dw, pt, pl)


@kernel(parallel=False)
def _phases(size, pad, s):
    """The stride phases that hold some output index: at most ``size`` of them, however large the stride."""
    if s <= size:
        return np.arange(s)
    # size < s consecutive indices hold distinct phases: one run from pad % s,
    # wrapping around to 0 past s - 1. In increasing order:
    first = pad % s
    wrapped = max(0, first + size - s)
    return np.concatenate((np.arange(wrapped), np.arange(first, min(first + size, s))))


@kernel(parallel=False)
def _phase_rows(size, pad, s, r):
    """(first j, count) of the outputs ``i = j * s + r - pad`` with ``0 <= i < size``."""
    first = -((r - pad) // s)
    last = (size - 1 + pad - r) // s
    return first, max(0, last - first + 1)


@kernel(parallel=False)
def _phase_taps(k, d, s, r):
    """Taps of a kernel axis that reach the output phase r (``(t * d) % s == r``), in reverse order.

    Output index ``i + pad = j * s + r`` reads x at ``j - (t * d - r) // s``
    for each such tap t: a stride-1 correlation whose taps, reversed, are
    ``d // gcd(d, s)`` apart. Returns (taps, dilation, shift of the last tap).
    """
    count = 0
    for t in range(k):
        if (t * d) % s == r:
            count += 1
    taps = np.empty(count, np.int64)
    i = count
    for t in range(k):
        if (t * d) % s == r:
            i -= 1
            taps[i] = t
    if count == 0:
        return taps, 1, 0
    a, g = d, s  # gcd(d, s)
    while g:
        a, g = g, a % g
    return taps, d // a, (taps[0] * d - r) // s


@kernel(parallel=False)
def _fill_bias(y, b):
    """y[n, h, w, c] = b[c] for every pixel of the Image y."""
    for n in range(y.n):
        for h in range(y.h):
            for w in range(y.w):
                base = n * y.n_step + h * y.h_step + w * y.w_step
                for c in range(y.c):
                    y.data[base + c * y.c_step] = b[c]


@kernel(parallel=False)
def transpose(x, w, w_steps, k_h, k_w, b, y, sh, sw, dh, dw, pt, pl):
    """y = b + the adjoint of the forward conv applied to x (also conv2d's input gradient).

    ``x`` (an Image, C_out channels) lives on the forward conv's output
    plane, ``y`` (an Image, C_in channels) on its input plane; ``w`` is the
    forward conv's flat filter memory, (k_h, k_w, C_in, C_out) with steps
    ``w_steps``. The result splits into the stride phases ``(r, c)`` of its
    rows and columns; each phase is a stride-1 correlation of x with the
    swapped, reversed filter taps that reach it, written through a strided
    Image.
    """
    c_in, c_out = y.c, x.c
    rows_phases, cols_phases = _phases(y.h, pt, sh), _phases(y.w, pl, sw)
    unreached = False  # outputs that no tap reaches hold the bias alone
    for r in rows_phases:
        for c in cols_phases:
            if (_phase_rows(y.h, pt, sh, r)[1] and _phase_rows(y.w, pl, sw, c)[1]
                    and (_phase_taps(k_h, dh, sh, r)[0].size == 0
                         or _phase_taps(k_w, dw, sw, c)[0].size == 0)):
                unreached = True
    if unreached:
        _fill_bias(y, b)
    for r in rows_phases:
        j0, rows = _phase_rows(y.h, pt, sh, r)
        taps_h, dil_h, shift_h = _phase_taps(k_h, dh, sh, r)
        for c in cols_phases:
            i0, cols = _phase_rows(y.w, pl, sw, c)
            taps_w, dil_w, shift_w = _phase_taps(k_w, dw, sw, c)
            if rows == 0 or cols == 0 or taps_h.size == 0 or taps_w.size == 0:
                continue
            start = (j0 * sh + r - pt) * y.h_step + (i0 * sw + c - pl) * y.w_step
            phase = Image(y.data[start:], y.n, rows, cols, c_in, y.n_step,
                          sh * y.h_step, sw * y.w_step, y.c_step)
            # Non-literal constants: a literal argument would compile the
            # forward kernels a second time (Numba specializes on literals).
            one = np.int64(1)
            forward(x, w, w_steps, c_out, c_in, b, phase, taps_h, taps_w, np.bool_(True),
                    one, one, dil_h, dil_w, shift_h - j0, shift_w - i0)


@kernel(parallel=False)
def backward_filter(x, dy, dw_out, sh, sw, dh, dw, pt, pl):
    """dw_out (C-contiguous HWIO) = the filter gradient, by the plane kernel or, for few pixels, the patch GEMM.

    ``x`` and ``dy`` are Images. The number of partial sums, and so the
    order of every sum, follows from the shape alone: the result is
    bit-identical at any thread count.
    """
    k_h, k_w, c_in, c_out = dw_out.shape
    n, oh, ow = dy.n, dy.h, dy.w
    if not dw_by_patches(n, oh, ow, k_h, k_w, c_in, c_out):
        pitch = ow + (k_w - 1) * dw // sw
        rows = rows_per_block(n, oh, pitch)
        parts = max(1, min(MAX_PARTS, n * -(-oh // rows)))
        conv2d_backward_filter_nhwc(x, dy, dw_out, parts, rows, sh, sw, dh, dw, pt, pl)
        return
    k_len = k_h * k_w * c_in
    k_pad, c_pad = -(-k_len // PIX) * PIX, -(-c_out // OUT) * OUT
    parts = max(1, min(MAX_PARTS, n * oh * ow // PART_PIXELS, PARTIAL_BUDGET // (k_pad * c_pad)))
    k_blocks = max(1, min(-(-MIN_UNITS // parts), k_pad // 48))
    k_block = -(-k_pad // k_blocks // PIX) * PIX
    partial = np.empty((parts, k_pad, c_pad), dw_out.dtype)
    conv2d_backward_filter_patch_gemm(x, dy, partial, k_h, k_w, k_block, max(CHUNK_PIXELS, ow),
                                      sh, sw, dh, dw, pt, pl)
    flat = dw_out.reshape(k_len, c_out)
    for k in range(k_len):  # the partials added in order, as partial.sum(axis=0) does
        for co in range(c_out):
            total = partial[0, k, co]
            for part in range(1, parts):
                total += partial[part, k, co]
            flat[k, co] = total


@kernel(parallel=False)
def bias_backward(dy, db):
    """db[c] = dy summed over N, H, W; ``dy`` an Image in NHWC or NCHW memory."""
    if dy.c_step == 1:
        rows, channel_step = dy.data.reshape(dy.n * dy.h, dy.w * dy.c), 1
    else:
        rows, channel_step = dy.data.reshape(dy.n, dy.c * dy.h * dy.w), dy.h * dy.w
    # Parts from the shape, not the thread count: bit-identical at any thread count.
    parts = max(1, min(MAX_PARTS, rows.shape[0]))
    bias_backward_rows(rows, db, channel_step, parts)
