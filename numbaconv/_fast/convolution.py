"""Drivers of the convolution kernels (see ``numbaconv._api`` for the core interface).

Cores get arrays indexed NHWC. An NCHW caller's arrays (``nchw`` True)
arrive as NHWC views of NCHW memory: the kernels read those in place (through
``_kernels.convolution.Image``) and the drivers allocate the result in NCHW
memory too, returned as an NHWC view, which the public layer's transpose back
to NCHW turns into a C-contiguous array without a copy. On the
benchmark shape the transposing copies would otherwise cost about as much as
the NHWC convolution itself.
"""
import math

import numpy as np

from .._kernels import convolution as k
from .._kernels import patch_gemm as pg
from ._memory import contiguous

# Grid positions per work unit: the plane scratch of a unit stays cache-sized.
MAX_GRID = 4096
# Work units wanted per call, so that small batches still use every thread.
MIN_UNITS = 8


def image(a, nchw):
    """The kernels' view of an NHWC-indexed array: its NHWC or NCHW memory, flat, with element steps.

    The order is NCHW when ``nchw``; an array not C-contiguous in it is copied first.
    """
    if nchw:
        flat = contiguous(a.transpose(0, 3, 1, 2)).reshape(-1)
        n, h, w, c = a.shape
        return k.Image(flat, n, h, w, c, c * h * w, w, 1, h * w)
    a = contiguous(a)
    n, h, w, c = a.shape
    return k.Image(a.reshape(-1), n, h, w, c, h * w * c, w * c, c, 1)


def empty_like_layout(shape, dtype, nchw):
    """An NHWC-indexed result of ``shape``, in NCHW memory when ``nchw``."""
    if nchw:
        n, h, w, c = shape
        return np.empty((n, c, h, w), dtype).transpose(0, 2, 3, 1)
    return np.empty(shape, dtype)


def rows_per_block(n, rows, pitch):
    """Rows of the output grid per work unit; depends on shapes only, not on threads."""
    blocks_per_image = -(-MIN_UNITS // n) if n else 1
    return max(1, min(rows, MAX_GRID // pitch, -(-rows // blocks_per_image)))


def _bias(b, c, dtype):
    """The kernels always add a bias; none is a zero one (C floats, not a second kernel)."""
    return np.zeros(c, dtype) if b is None else contiguous(b)


# ------------------------------------------------------------------ strategies
#
# Two strategies, chosen from the shape alone (never from timing or from
# the thread count):
# - "planes" (``_kernels.convolution``): vectorizes over output positions;
#   suits short reductions (few input channels and small kernels, e.g. the
#   seed's 3x3x3 -> 16).
# - "patch GEMM" (``_kernels.patch_gemm``): register-tiled matrix products
#   over gathered patches; suits long reductions into many output channels
#   (wide layers, large kernels) and small planes (batch 1, 7x7 to 14x14).
# The input gradient and the transpose run the forward kernel of either
# strategy on the stride phases of their output (see ``_phases``).

# Measured one-thread boundaries (perf/sweep.py checks them against the peers):
PATCH_MIN_K = 64  # the patch GEMM needs a reduction of at least this many values,
PATCH_MIN_OUT = 16  # at least one register tile's width of output channels,
PATCH_MIN_WORK = 4096  # and K * C_out at least this (below, the planes' shorter setup wins).
DW_PATCH_MAX_PLANE = 256  # filter gradient: output planes of at most this many pixels,
DW_PATCH_MAX_PIXELS = 1024  # or calls of fewer output pixels in all, go to the patch GEMM
# The plane kernels hold a plane per stride phase and reach (K - 1) * d // s
# rows and columns past their block: beyond these bounds their scratch would
# grow with the stride or dilation, not with the data, and the patch GEMM
# (whose scratch is a block of patches) takes the call whatever the channels.
PLANE_MAX_PHASES = 64  # strides up to 8 x 8: their planes still tile the padded input block
PLANE_MAX_REACH = 256
PATCH_PIXELS = 256  # output pixels per work unit: the patch block stays in L2
PART_PIXELS = 4096  # filter gradient: pixels per partial sum, at the least
MAX_PARTS = 8
PARTIAL_BUDGET = 1 << 23  # filter gradient: elements of all partial sums together
CHUNK_PIXELS = 256  # filter gradient: pixels gathered per pass


def _filter_memory(w, nchw):
    """The filters' flat memory and the element steps of their (kh, kw, ci, co) indices.

    OIHW filters (an NCHW caller's) are read in place; nothing is transposed.
    """
    kh, kw, ci, co = w.shape
    if nchw:
        oihw = contiguous(w.transpose(3, 2, 0, 1))
        return oihw.reshape(-1), (kw, 1, kh * kw, ci * kh * kw)
    return contiguous(w).reshape(-1), (kw * ci * co, ci * co, co, 1)


def _packed(w, nchw, taps_h, taps_w, swap):
    """Filters as the patch GEMM's (K, C_out) matrix, zero-padded to a multiple of OUT columns."""
    n_out = w.shape[2] if swap else w.shape[3]
    n_in = w.shape[3] if swap else w.shape[2]
    out = np.zeros((len(taps_h) * len(taps_w) * n_in, -(-n_out // pg.OUT) * pg.OUT), w.dtype)
    data, steps = _filter_memory(w, nchw)
    pg.pack_filters(data, steps, np.asarray(taps_h, np.int64), np.asarray(taps_w, np.int64),
                    swap, n_out, out)
    return out


def _patch_units(n, oh, ow, c_pad):
    """(rows_per_unit, out_per_unit) of the patch GEMM; from the shape alone."""
    rows = max(1, min(oh, PATCH_PIXELS // ow))
    units = n * -(-oh // rows)
    out_per_unit = c_pad
    if 0 < units < MIN_UNITS:  # (no units at all: an empty batch)
        # Few pixels (batch 1, small planes): split the channels too, in
        # blocks of at least 16, rather than the pixels: each unit then
        # reads its own part of the filters once.
        blocks = min(-(-MIN_UNITS // units), max(1, c_pad // 16))
        out_per_unit = -(-c_pad // blocks // pg.OUT) * pg.OUT
    return rows, out_per_unit


def _by_patches(k_len, n_out):
    """The forward kernels' strategy, from the reduction length and the output channels."""
    return k_len >= PATCH_MIN_K and n_out >= PATCH_MIN_OUT and k_len * n_out >= PATCH_MIN_WORK


def _planes_fit(kernel_size, stride, dilation):
    """Whether the plane kernels' scratch stays proportional to the data for this geometry."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    return (sh * sw <= PLANE_MAX_PHASES and (kh - 1) * dh // sh <= PLANE_MAX_REACH
            and (kw - 1) * dw // sw <= PLANE_MAX_REACH)


def _forward(x, w, b, y_img, kernel_size, stride, dilation, pad, nchw, taps=None, swap=False):
    """y_img = correlation of x with w (+ b) by the strategy the shape calls for.

    ``x`` is NHWC-indexed (a view of NCHW memory when ``nchw``). ``taps``
    (rows, cols) and ``swap`` select a sub-filter (the stride phases of
    the input gradient); ``kernel_size`` is its size.
    """
    (kh, kw), (sh, sw), (dh, dw), (pt, pl) = kernel_size, stride, dilation, pad
    taps_h, taps_w = taps if taps is not None else (range(kh), range(kw))
    if _by_patches(kh * kw * x.shape[3], y_img.c) or not _planes_fit(kernel_size, stride, dilation):
        # Patches gather runs of channels: NCHW data are copied to NHWC once
        # (a strided gather from NCHW memory measured 15-30% slower).
        wk = _packed(w, nchw, taps_h, taps_w, swap)
        rows, outs = _patch_units(y_img.n, y_img.h, y_img.w, wk.shape[1])
        pg.conv2d_patch_gemm(image(x, False), wk, b, y_img, kh, kw, rows, outs,
                             sh, sw, dh, dw, pt, pl)
        return
    # Planes: the kernel reads a C-contiguous HWIO filter.
    hwio = w[np.ix_(np.asarray(taps_h, np.int64), np.asarray(taps_w, np.int64))]
    hwio = np.ascontiguousarray(hwio.transpose(0, 1, 3, 2) if swap else hwio)
    pitch = y_img.w + (kw - 1) * dw // sw
    k.conv2d_nhwc(image(x, nchw), hwio, b, y_img, rows_per_block(y_img.n, y_img.h, pitch),
                  sh, sw, dh, dw, pt, pl)


def conv2d(x, w, b, g, nchw):
    n, c_out = x.shape[0], w.shape[3]
    y = empty_like_layout((n, g.oh, g.ow, c_out), x.dtype, nchw)
    _forward(x, w, _bias(b, c_out, x.dtype), image(y, nchw), (g.kh, g.kw), (g.sh, g.sw),
             (g.dh, g.dw), (g.pt, g.pl), nchw)
    return y


def _phase_taps(k, d, s, r):
    """Taps of a kernel axis that reach the output phase r (``(t * d) % s == r``), in reverse order.

    Output index ``i + pad = j * s + r`` reads x at ``j - (t * d - r) // s``
    for each such tap t: a stride-1 correlation whose taps, reversed, are
    ``d // gcd(d, s)`` apart. Returns (taps, dilation, shift of the last tap).
    """
    taps = [t for t in range(k) if (t * d) % s == r]
    if not taps:
        return [], 1, 0
    step = d // math.gcd(d, s)
    return taps[::-1], step, (taps[-1] * d - r) // s


def _phase_rows(size, pad, s, r):
    """(first j, count) of the outputs ``i = j * s + r - pad`` with ``0 <= i < size``."""
    first = -((r - pad) // s)
    last = (size - 1 + pad - r) // s
    return first, max(0, last - first + 1)


def _phases(size, pad, s):
    """The phases that hold some output index: at most ``size`` of them, however large the stride."""
    if s <= size:
        return range(s)
    return sorted({(i + pad) % s for i in range(size)})


def conv2d_transpose(x, w, b, g, nchw):
    """x lives on g's output plane (g.oh, g.ow); the result on its input plane (g.h, g.w).

    The result splits into the stride phases ``(r, c)`` of its rows and
    columns; each phase is a stride-1 correlation of x with the swapped,
    reversed filter taps that reach it, written through a strided Image.
    """
    n, c_in = x.shape[0], w.shape[2]
    y = empty_like_layout((n, g.h, g.w, c_in), x.dtype, nchw)
    bias = _bias(b, c_in, x.dtype)
    y_img = image(y, nchw)
    phases = []
    for r in _phases(g.h, g.pt, g.sh):
        j0, rows = _phase_rows(g.h, g.pt, g.sh, r)
        taps_h, dil_h, shift_h = _phase_taps(g.kh, g.dh, g.sh, r)
        for c in _phases(g.w, g.pl, g.sw):
            i0, cols = _phase_rows(g.w, g.pl, g.sw, c)
            taps_w, dil_w, shift_w = _phase_taps(g.kw, g.dw, g.sw, c)
            if rows and cols:
                phases.append((r, j0, rows, taps_h, dil_h, shift_h, c, i0, cols, taps_w, dil_w, shift_w))
    if any(not p[3] or not p[9] for p in phases):
        y[...] = bias  # outputs that no tap reaches hold the bias alone
    for r, j0, rows, taps_h, dil_h, shift_h, c, i0, cols, taps_w, dil_w, shift_w in phases:
        if not taps_h or not taps_w:
            continue
        start = (j0 * g.sh + r - g.pt) * y_img.h_step + (i0 * g.sw + c - g.pl) * y_img.w_step
        phase = k.Image(y_img.data[start:], n, rows, cols, c_in, y_img.n_step,
                        g.sh * y_img.h_step, g.sw * y_img.w_step, y_img.c_step)
        _forward(x, w, bias, phase, (len(taps_h), len(taps_w)), (1, 1), (dil_h, dil_w),
                 (shift_h - j0, shift_w - i0), nchw, (taps_h, taps_w), swap=True)
    return y


def conv2d_backward_filter(x, dy, g, nchw):
    """Compute dw by the plane kernel, or by the patch GEMM for few pixels (``_dw_by_patches``)."""
    if (_dw_by_patches(g, x.shape[0], x.shape[3], dy.shape[3])
            or not _planes_fit((g.kh, g.kw), (g.sh, g.sw), (g.dh, g.dw))):
        return _backward_filter_patches(x, dy, g, nchw)
    return _backward_filter_planes(x, dy, g, nchw)


def _dw_by_patches(g, n, c_in, c_out):
    """Whether the filter gradient goes to the patch GEMM.

    The plane kernel reads each gathered input row once for all taps
    (gathered patches copy it KH * KW times) but reduces over one block of
    rows at a time: with few output pixels its reductions are short, and
    the patch GEMM's are not.
    """
    few_pixels = g.oh * g.ow <= DW_PATCH_MAX_PLANE or n * g.oh * g.ow < DW_PATCH_MAX_PIXELS
    return few_pixels and g.kh * g.kw * c_in >= PATCH_MIN_K and c_out >= PATCH_MIN_OUT


def _backward_filter_planes(x, dy, g, nchw):
    n = x.shape[0]
    dw = np.empty((g.kh, g.kw, x.shape[3], dy.shape[3]), x.dtype)
    pitch = g.ow + (g.kw - 1) * g.dw // g.sw
    rows = rows_per_block(n, g.oh, pitch)
    # The parts, and so the order of every sum, follow from the shape alone:
    # the result is bit-identical at any thread count.
    parts = max(1, min(MAX_PARTS, n * -(-g.oh // rows)))
    k.conv2d_backward_filter_nhwc(image(x, nchw), image(dy, nchw), dw, parts, rows,
                                  g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return dw


def _backward_filter_patches(x, dy, g, nchw):
    n, c_in, c_out = x.shape[0], x.shape[3], dy.shape[3]
    k_len = g.kh * g.kw * c_in
    k_pad, c_pad = -(-k_len // pg.PIX) * pg.PIX, -(-c_out // pg.OUT) * pg.OUT
    pixels = n * g.oh * g.ow
    # Parts from the shape alone (bit-identical at any thread count).
    parts = max(1, min(MAX_PARTS, pixels // PART_PIXELS, PARTIAL_BUDGET // (k_pad * c_pad)))
    k_blocks = max(1, min(-(-MIN_UNITS // parts), k_pad // 48))
    k_block = -(-k_pad // k_blocks // pg.PIX) * pg.PIX
    partial = np.empty((parts, k_pad, c_pad), x.dtype)
    pg.conv2d_backward_filter_patch_gemm(image(x, nchw), image(dy, nchw), partial, g.kh, g.kw, k_block,
                                         max(CHUNK_PIXELS, g.ow), g.sh, g.sw, g.dh, g.dw,
                                         g.pt, g.pl)
    dw = partial[0] if parts == 1 else partial.sum(axis=0)
    return np.ascontiguousarray(dw[:k_len, :c_out]).reshape(g.kh, g.kw, c_in, c_out)


def bias_backward(dy, nchw):
    n, oh, ow, c = dy.shape
    db = np.empty(c, dy.dtype)
    if nchw:
        rows, channel_step = contiguous(dy.transpose(0, 3, 1, 2)).reshape(n, c * oh * ow), oh * ow
    else:
        rows, channel_step = contiguous(dy).reshape(n * oh, ow * c), 1
    # Parts from the shape, not the thread count: bit-identical at any thread count.
    parts = max(1, min(MAX_PARTS, rows.shape[0]))
    k.bias_backward_rows(rows, db, channel_step, parts)
    return db
