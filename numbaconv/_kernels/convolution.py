"""Convolution kernels of the "planes" strategy: direct forward, filter and bias gradients.

The input gradient and the transpose run ``conv2d_nhwc`` on the stride
phases of their output (``numbaconv._fast.convolution``).

Data (x, y, dy) reach the kernels as an :class:`Image`: a flat buffer plus
the element step of each NHWC index, so one compiled kernel per dtype
serves NHWC memory and NCHW memory alike (an NHWC-indexed view of an NCHW
array would be a second Numba type, i.e. a second compilation of every
kernel). Filters are HWIO and C-contiguous.

Why the kernels go through channel planes
-----------------------------------------
Numba vectorizes only innermost loops (LLVM's loop vectorizer; its SLP
vectorizer is off in Numba), and that vectorizer needs at least 32 float32
iterations before its 8-lane x 4-way body runs at all. With NHWC data the
contiguous axis is the channel axis, often 3 or 16 long: too short. So each
prange iteration copies the rows it needs into *channel planes* (one
zero-padded 2-D plane per channel and stride phase) and then runs long
contiguous loops over output positions, several taps and channels per pass
(``_accumulate_taps``, ``_correlate_taps``). At the end of the iteration the
result planes are copied into the output (a transpose for NHWC memory, row
copies for NCHW memory).

Plane geometry (forward conv, one block of output rows ``oh0 <= oh < oh0 + rows``):
the padded input row ``oh * sh + kh * dh`` is row ``oh + kh * dh // sh`` of the
stride phase ``kh * dh % sh``. A phase plane therefore holds the padded rows
``rh, rh + sh, ...`` and columns ``rw, rw + sw, ...``; output ``(oh, ow)`` sits
at grid position ``(oh - oh0) * pitch + ow`` and tap ``(kh, kw, ci)`` reads the
plane of ``(ci, kh * dh % sh, kw * dw % sw)`` at that position plus
``(kh * dh // sh) * pitch + kw * dw // sw``. Grid columns ``ow >= OW`` are
computed and thrown away (or read as zero where they feed a reduction).

Tap lists are padded to a multiple of ``TAPS`` with taps of weight 0 that read a
zero tail of the plane buffer, and dy planes (filter gradient) to a multiple
of ``CHANNELS`` with zero planes, so the vector bodies need no remainder
loops over taps.
"""
from typing import NamedTuple

import numpy as np
from numba import prange
from numba.extending import register_jitable

from .._numba import FASTMATH, claimed_units, kernel, register_tile, workers

TAPS = 4  # taps summed per pass over the grid
CHANNELS = 4  # dy planes per pass of _correlate_taps
LANES = 16  # running sums per plane of the NCHW bias gradient: one vector of float32


class Image(NamedTuple):
    """An NHWC-indexed batch in any memory order: ``[n, h, w, c]`` is ``data[n * n_step + ... + c * c_step]``."""

    data: np.ndarray  # 1-D, C-contiguous
    n: int
    h: int
    w: int
    c: int
    n_step: int
    h_step: int
    w_step: int
    c_step: int


PAGE_BYTES = 4096


@register_jitable
def page_aliased(plane_values, itemsize):
    """Whether NCHW planes of ``plane_values`` values lie a whole number of 4 KB pages apart (32 x 32, 64 x 64 float32).

    A pixel's values in every channel then map to one set of the L1 cache,
    which holds 8 or 12 lines of it: reading across the channels pixel by
    pixel misses L1 for each value. NumPy's transposing copy to NHWC memory
    reads so (2 threads, 64x32x64x64: 20.4 ms, against 6.2 for
    ``planes_to_pixels``, which reads each plane along its pixels;
    64x64x32x32 12.0 against 2.2; on planes of 56 x 56, 8x64x56x56, NumPy
    0.67, the kernel 1.12), and so do the patch GEMM's in-place gather of
    patches (whole forward, NCHW / NHWC time: 4x4 stride 2 64x32x32x64 ->
    128 2.0, 3x3 stride 2 64x64x64x32 -> 64 2.8, against 1.1 and 1.6 on
    planes of 30 x 30 and 62 x 62) and Winograd's block fill (see its
    FILL_MIN_PLANE).
    """
    return plane_values > 0 and (plane_values * itemsize) % PAGE_BYTES == 0


@register_jitable
def merged_images(img, width):
    """The pixels of ``img``, in order, as rows of ``width`` pixels of one image (``width`` divides them).

    Valid for an Image whose pixels follow each other in memory
    (``img.n_step == img.h * img.h_step`` and ``img.h_step == img.w *
    img.w_step``), as plain NHWC memory does: see
    ``numbaconv._plan.merged_rows``, which says when the patch GEMM's units
    may span images.
    """
    return Image(img.data, 1, img.n * img.h * img.w // width, width, img.c, img.n * img.n_step,
                 width * img.w_step, img.w_step, img.c_step)


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


round_up = kernel(_round_up, parallel=False)


@kernel(parallel=False)
def _copy_block(dst, dst_start, dst_steps, src, src_start, src_steps, shape):
    """dst[dst_start + r * dr + c * dc + i * di] = src[src_start + r * sr + c * sc + i * si].

    For (r, c, i) < shape = (rows, channels, count), on 1-D C-contiguous
    arrays, with steps ``(dr, dc, di)`` and ``(sr, sc, si)``. One side is
    always plane rows (element step 1) and goes through a contiguous slice;
    the other side is indexed with unsigned arithmetic (no negative-index
    check per access, and no strided slice, whose length costs a division).
    When both element steps are 1 (along w in NCHW memory) LLVM vectorizes
    the copy and each channel's rows are copied in turn; otherwise (NHWC
    memory) channels go inside rows, so that the cache lines a pixel's
    channels share are finished while they are in L1.

    Callers pass every start and step as an int64 value (``np.int64(0)``,
    ``np.int64(1)``), never a literal: a literal 0 or 1 is a type of its own
    to Numba, and each mix of them compiled another copy of this function
    (there were three, each also linked into its kernel and optimized there
    again). The branches below are taken per row, not per element.
    """
    rows, channels, count = shape
    dst_row, dst_chan, dst_step = dst_steps
    src_row, src_chan, src_step = src_steps
    # The two loop orders written out (not one nest whose indices are
    # swapped by a flag): LLVM no longer unswitches a nest of selects
    # into copies of every branch.
    if dst_step == 1 and src_step == 1:
        for c in range(channels):
            for r in range(rows):
                d0 = dst_start + r * dst_row + c * dst_chan
                s0 = src_start + r * src_row + c * src_chan
                dst_run = dst[d0:d0 + count]
                src_run = src[s0:s0 + count]
                for i in range(count):
                    dst_run[i] = src_run[i]
        return
    for r in range(rows):
        for c in range(channels):
            d0 = dst_start + r * dst_row + c * dst_chan
            s0 = src_start + r * src_row + c * src_chan
            if dst_step == 1:
                dst_run = dst[d0:d0 + count]
                s0u, stepu = np.uint64(s0), np.uint64(src_step)
                for i in range(count):
                    dst_run[i] = src[s0u + np.uint64(i) * stepu]
            else:
                src_run = src[s0:s0 + count]
                d0u, stepu = np.uint64(d0), np.uint64(dst_step)
                for i in range(count):
                    dst[d0u + np.uint64(i) * stepu] = src_run[i]


def _first_row(j0, rh, sh, pt):
    """The first ``local`` with ``(j0 + local) * sh + rh - pt >= 0``."""
    return max(0, -(-(pt - rh - j0 * sh) // sh))


first_row = kernel(_first_row, parallel=False)


@kernel(parallel=False)
def _fill_planes(planes, x, n, j0, rows, sh, sw, pt, pl, pitch, plane_len):
    """Copy the part of image n of ``x`` (an Image) that plane rows ``j0 .. j0 + rows`` hold.

    Plane ``(c * sh + rh) * sw + rw`` row ``j`` column ``k`` holds
    ``x[n, j * sh + rh - pt, k * sw + rw - pl, c]``; positions outside the
    image must already be zero. Columns past ``pitch`` are never read.
    """
    for rh in range(sh):
        lo = first_row(j0, rh, sh, pt)  # ih = (j0 + local) * sh + rh - pt in [0, h)
        hi = min(rows, (x.h - 1 + pt - rh) // sh - j0 + 1)
        if hi <= lo:
            continue
        ih = (j0 + lo) * sh + rh - pt
        for rw in range(sw):
            k_lo = (pl - rw + sw - 1) // sw if pl > rw else 0  # first k with iw >= 0
            k_hi = min(pitch, (x.w - 1 + pl - rw) // sw + 1)
            if k_hi <= k_lo:
                continue
            dst_start = (rh * sw + rw) * plane_len + lo * pitch + k_lo
            src_start = n * x.n_step + ih * x.h_step + (k_lo * sw + rw - pl) * x.w_step
            _copy_block(planes, dst_start, (pitch, sh * sw * plane_len, np.int64(1)),
                        x.data, src_start, (sh * x.h_step, x.c_step, sw * x.w_step),
                        (hi - lo, x.c, k_hi - k_lo))


@kernel(parallel=False, inline=True)
def _tap_rows(planes, offset, t):
    """The plane rows that taps ``t`` to ``t + TAPS - 1`` read, each from its offset on."""
    return planes[offset[t]:], planes[offset[t + 1]:], planes[offset[t + 2]:], planes[offset[t + 3]:]


@kernel(parallel=False, inline=True)
def _tap_weights(weight, c, t):
    """Channel c's weights of taps ``t`` to ``t + TAPS - 1``."""
    return weight[c, t], weight[c, t + 1], weight[c, t + 2], weight[c, t + 3]


@kernel(parallel=False)
def _accumulate_taps(acc, bias, planes, offset, weight, n_taps, length):
    """acc[c, p] = bias[c] + sum(weight[c, t] * planes[offset[t] + p] for t < n_taps), p < length.

    ``n_taps`` is a multiple of TAPS. Each pass over p reads TAPS shifted
    source rows once for two output channels (the loads are shared; the sum
    of the TAPS products stays in registers). An odd count of three or more
    ends with a pass over three channels, not a pair and a single: the
    single pass loads the same TAPS rows again, and its running sum, for 4
    FMAs. The input gradient into an RGB image (3 channels), fresh
    processes alternated, 3 pairs, medians of 21 rounds, triple / pair and
    single: the seed's 128x28x28x16 -> 3 on one thread 0.56-0.69, at batch
    1 (2 threads) 0.67-0.91 (Zen4, AVX-512); the AVX2 code on the same core
    (NUMBA_CPU_NAME=znver3) 0.67-0.72 and 0.93-0.97.
    One channel alone gets the single pass.
    """
    n_channels = acc.shape[0]
    odd = n_channels % 2
    tail = 3 if odd and n_channels > 1 else odd  # channels after the pairs
    # The sums start at the bias, in one loop for every channel: one loop per
    # kind of pass was more code to compile (this helper 0.92 s cold, 0.81 s).
    for c in range(n_channels):
        out0 = acc[c]
        bias0 = bias[c]
        for p in range(length):
            out0[p] = bias0
    for c in range(0, n_channels - tail, 2):
        out0 = acc[c]
        out1 = acc[c + 1]
        for t in range(0, n_taps, TAPS):
            src0, src1, src2, src3 = _tap_rows(planes, offset, t)
            a0, a1, a2, a3 = _tap_weights(weight, c, t)
            b0, b1, b2, b3 = _tap_weights(weight, c + 1, t)
            for p in range(length):
                v0, v1, v2, v3 = src0[p], src1[p], src2[p], src3[p]
                out0[p] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                out1[p] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3
    if tail == 3:
        c = n_channels - 3
        out0 = acc[c]
        out1 = acc[c + 1]
        out2 = acc[c + 2]
        for t in range(0, n_taps, TAPS):
            src0, src1, src2, src3 = _tap_rows(planes, offset, t)
            a0, a1, a2, a3 = _tap_weights(weight, c, t)
            b0, b1, b2, b3 = _tap_weights(weight, c + 1, t)
            e0, e1, e2, e3 = _tap_weights(weight, c + 2, t)
            for p in range(length):
                v0, v1, v2, v3 = src0[p], src1[p], src2[p], src3[p]
                out0[p] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                out1[p] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3
                out2[p] += e0 * v0 + e1 * v1 + e2 * v2 + e3 * v3
    elif tail == 1:
        c = n_channels - 1  # (0; not a literal 0, a type of its own to Numba and a second compile)
        out0 = acc[c]
        for t in range(0, n_taps, TAPS):
            src0, src1, src2, src3 = _tap_rows(planes, offset, t)
            a0, a1, a2, a3 = _tap_weights(weight, c, t)
            for p in range(length):
                out0[p] += a0 * src0[p] + a1 * src1[p] + a2 * src2[p] + a3 * src3[p]


# LLVM's vector width, not 512 bits on AVX-512 (numbaconv._numba._install_code_attributes):
# each pass ends with 16 horizontal sums, longer in 512-bit vectors. The kernel
# that calls it keeps the width too, as the code inlined into it takes its own.
@kernel(parallel=False, full_width=False)
def _correlate_taps(out, planes, offset, dy_planes, length):
    """out[t, c] += sum(planes[offset[t] + p] * dy_planes[c, p] for p < length).

    ``out.shape[0]`` is a multiple of TAPS and ``out.shape[1]`` of CHANNELS;
    each pass over p keeps TAPS x CHANNELS running sums in registers (the
    4 x 4 dot-product tile of ``patch_gemm``: 16 fused multiply-adds per
    8 loads).
    """
    for t in range(0, out.shape[0], TAPS):
        src0, src1, src2, src3 = _tap_rows(planes, offset, t)
        for c in range(0, out.shape[1], CHANNELS):
            g0 = dy_planes[c]
            g1 = dy_planes[c + 1]
            g2 = dy_planes[c + 2]
            g3 = dy_planes[c + 3]
            s00 = s10 = s20 = s30 = s01 = s11 = s21 = s31 = out.dtype.type(0)
            s02 = s12 = s22 = s32 = s03 = s13 = s23 = s33 = out.dtype.type(0)
            for p in range(length):
                v0, v1, v2, v3 = src0[p], src1[p], src2[p], src3[p]
                d0, d1, d2, d3 = g0[p], g1[p], g2[p], g3[p]
                s00 += v0 * d0
                s10 += v1 * d0
                s20 += v2 * d0
                s30 += v3 * d0
                s01 += v0 * d1
                s11 += v1 * d1
                s21 += v2 * d1
                s31 += v3 * d1
                s02 += v0 * d2
                s12 += v1 * d2
                s22 += v2 * d2
                s32 += v3 * d2
                s03 += v0 * d3
                s13 += v1 * d3
                s23 += v2 * d3
                s33 += v3 * d3
            out[t, c] += s00
            out[t + 1, c] += s10
            out[t + 2, c] += s20
            out[t + 3, c] += s30
            out[t, c + 1] += s01
            out[t + 1, c + 1] += s11
            out[t + 2, c + 1] += s21
            out[t + 3, c + 1] += s31
            out[t, c + 2] += s02
            out[t + 1, c + 2] += s12
            out[t + 2, c + 2] += s22
            out[t + 3, c + 2] += s32
            out[t, c + 3] += s03
            out[t + 1, c + 3] += s13
            out[t + 2, c + 3] += s23
            out[t + 3, c + 3] += s33


@kernel(parallel=False)
def _forward_taps(k_h, k_w, c_in, sh, sw, dh, dw, pitch, plane_len, zero_tail):
    """Plane offsets of the forward taps (kh, kw, ci), padded to TAPS with the zero tail."""
    n_taps = k_h * k_w * c_in
    # np.empty and a loop, not np.full: np.full is an implementation of its
    # own to compile, and nothing else in the kernels uses it.
    offset = np.empty(round_up(max(n_taps, 1), TAPS), np.int64)
    for t in range(n_taps, offset.size):
        offset[t] = zero_tail
    for kh in range(k_h):
        for kw in range(k_w):
            phase = (kh * dh % sh) * sw + kw * dw % sw
            shift = (kh * dh // sh) * pitch + kw * dw // sw
            for ci in range(c_in):
                offset[(kh * k_w + kw) * c_in + ci] = (ci * sh * sw + phase) * plane_len + shift
    return offset


@kernel
def conv2d_nhwc(x, w, b, y, rows_per_block, sh, sw, dh, dw, pt, pl):
    """y[n, oh, ow, co] = b[co] + sum(x[n, ih, iw, ci] * w[kh, kw, ci, co]), direct (no im2col).

    ``x`` and ``y`` are Images; ``ih = oh * sh - pt + kh * dh``,
    ``iw = ow * sw - pl + kw * dw``; taps on padding add nothing. A work unit
    (claimed: ``_numba.claim_unit``) is one block of output rows
    ``y[n, oh0:oh0 + rows_per_block]``, with its own plane scratch.
    """
    k_h, k_w, c_in, c_out = w.shape
    extra_rows = (k_h - 1) * dh // sh
    pitch = y.w + (k_w - 1) * dw // sw
    plane_len = (rows_per_block + extra_rows) * pitch + (k_w - 1) * dw // sw
    length = rows_per_block * pitch
    zero_tail = c_in * sh * sw * plane_len
    offset = _forward_taps(k_h, k_w, c_in, sh, sw, dh, dw, pitch, plane_len, zero_tail)
    n_taps = k_h * k_w * c_in
    weight = np.zeros((c_out, offset.size), w.dtype)
    # Tap (kh, kw, ci) is row (kh * k_w + kw) * c_in + ci of the C-contiguous
    # HWIO filter seen as (taps, C_out): one loop nest of two, not four
    # (less code for LLVM to optimize, same copies).
    w_taps = w.reshape((n_taps, c_out))
    for t in range(n_taps):
        for co in range(c_out):
            weight[co, t] = w_taps[t, co]
    blocks = (y.h + rows_per_block - 1) // rows_per_block
    units = y.n * blocks
    claims = np.zeros(1, np.int64)
    for _ in prange(workers(units)):
        for unit in claimed_units(claims, units):
            n = unit // blocks
            oh0 = (unit - n * blocks) * rows_per_block
            rows = min(rows_per_block, y.h - oh0)
            planes = np.zeros(zero_tail + length, w.dtype)
            _fill_planes(planes, x, n, oh0, rows + extra_rows, sh, sw, pt, pl, pitch, plane_len)
            acc = np.empty((c_out, length), w.dtype)
            _accumulate_taps(acc, b, planes, offset, weight, offset.size, rows * pitch)
            _copy_block(y.data, n * y.n_step + oh0 * y.h_step, (y.h_step, y.c_step, y.w_step),
                        acc.reshape(-1), np.int64(0), (pitch, length, np.int64(1)), (rows, c_out, y.w))


@kernel(full_width=False)  # (see _correlate_taps)
def conv2d_backward_filter_nhwc(x, dy, dw_out, n_parts, rows_per_block, sh, sw, dh, dw, pt, pl):
    """dw_out[kh, kw, ci, co] = sum(x[n, ih, iw, ci] * dy[n, oh, ow, co]) over n, oh, ow.

    ``x`` and ``dy`` are Images. The work units (image n, block of output
    rows) are split into n_parts contiguous ranges, claimed one at a time
    (``_numba.claim_unit``); a range owns its partial sums and scratch; the partials are then
    added in range order, so repeated calls with the same n_parts give
    bit-identical results.
    """
    k_h, k_w, c_in, c_out = dw_out.shape
    extra_rows = (k_h - 1) * dh // sh
    pitch = dy.w + (k_w - 1) * dw // sw
    plane_len = (rows_per_block + extra_rows) * pitch + (k_w - 1) * dw // sw
    length = rows_per_block * pitch
    zero_tail = c_in * sh * sw * plane_len
    offset = _forward_taps(k_h, k_w, c_in, sh, sw, dh, dw, pitch, plane_len, zero_tail)
    c_pad = round_up(c_out, CHANNELS)
    blocks = (dy.h + rows_per_block - 1) // rows_per_block
    units = dy.n * blocks
    partial = np.zeros((n_parts, offset.size, c_pad), dw_out.dtype)
    claims = np.zeros(1, np.int64)
    for _ in prange(workers(n_parts)):
        for part in claimed_units(claims, n_parts):
            planes = np.empty(zero_tail + length, dw_out.dtype)
            # Only columns < OW of dy's rows are ever written: the grid columns
            # past OW and the padding planes stay zero, so they add nothing.
            dy_planes = np.zeros((c_pad, length), dw_out.dtype)
            for unit in range(units * part // n_parts, units * (part + 1) // n_parts):
                n = unit // blocks
                oh0 = (unit - n * blocks) * rows_per_block
                rows = min(rows_per_block, dy.h - oh0)
                planes[:] = 0
                _fill_planes(planes, x, n, oh0, rows + extra_rows, sh, sw, pt, pl, pitch, plane_len)
                _copy_block(dy_planes.reshape(-1), np.int64(0), (pitch, length, np.int64(1)),
                            dy.data, n * dy.n_step + oh0 * dy.h_step, (dy.h_step, dy.c_step, dy.w_step),
                            (rows, c_out, dy.w))
                _correlate_taps(partial[part], planes, offset, dy_planes, rows * pitch)
    # Serial: a few thousand additions do not pay for a second parallel
    # region (each is a barrier where a descheduled thread stalls the call).
    # dw_out (C-contiguous HWIO) as (taps, C_out): row (kh * k_w + kw) * c_in
    # + ci is tap (kh, kw, ci), the tap order of ``partial``. One loop over
    # taps instead of a nest over kh, kw, ci: the same additions in the same
    # order, in less code.
    dw_taps = dw_out.reshape((k_h * k_w * c_in, c_out))
    for tap in range(k_h * k_w * c_in):
        dst = dw_taps[tap]
        src = partial[0, tap]
        for co in range(c_out):
            dst[co] = src[co]
        for part in range(1, n_parts):
            src = partial[part, tap]
            for co in range(c_out):
                dst[co] += src[co]


@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"})
def _plane_sum(src, like):
    """sum(src), in LANES interleaved running sums (a vector register), then across them in order.

    Without ``reassoc``: allowed to reassociate, LLVM rewrote the lanes'
    updates into a slower form (one core, 8 x 64 x 112 x 112 float32
    planes: 7.3 ms against 1.0), and the order of the sums is ours.
    """
    lanes = register_tile(like, 1, LANES)
    for i in range(LANES):
        lanes[0, i] = 0
    size = np.uint64(src.size)
    body = size - size % np.uint64(LANES)
    for j in range(np.uint64(0), body, np.uint64(LANES)):
        for i in range(LANES):
            lanes[0, i] += src[j + np.uint64(i)]
    for j in range(np.uint64(0), size - body):
        lanes[0, j] += src[body + j]
    total = lanes[0, 0]
    for i in range(1, LANES):
        total += lanes[0, i]
    return total


PIXEL_BLOCK = 1024  # pixels per work unit of planes_to_pixels


@kernel
def planes_to_pixels(src, dst):
    """dst[n, p, c] = src[n, c, p]: an NCHW batch's (N, C, H * W) planes into NHWC memory, (N, H * W, C).

    For inputs of few channels (an NCHW caller's first layer, 3 channels,
    which the patch GEMM reads from NHWC memory; the pooling, im2col and
    depthwise drivers' NCHW inputs: ``_fast._memory.channels_last``). One prange iteration
    owns PIXEL_BLOCK pixels of one image: C read streams, one write
    stream. 2 threads, 8x3x224x224: 0.34 ms, against 1.30 for NumPy's
    transposing copy; from 64 channels on NumPy's is the faster (8x64x56x56:
    1.05 against 1.57), its writes being runs.
    """
    n_img, c, pixels = src.shape
    blocks = (pixels + PIXEL_BLOCK - 1) // PIXEL_BLOCK
    for unit in prange(n_img * blocks):
        n = np.int64(unit) // blocks
        p0 = (np.int64(unit) - n * blocks) * PIXEL_BLOCK
        p1 = min(pixels, p0 + PIXEL_BLOCK)
        out = dst[n]
        for ch in range(c):
            row = src[n, ch]
            for p in range(p0, p1):
                out[p, ch] = row[p]


@kernel
def subsample_planes(src, dst, sh, sw):
    """dst[p, i, j] = src[p, i * sh, j * sw]: every sh-th row and sw-th column of (N * C, H, W) planes.

    The pixels a strided 1x1 filter reads, for NCHW callers (the public
    driver then runs the layer as a stride-1 one, ``W @ X``). One prange
    iteration per plane.
    """
    for p in prange(dst.shape[0]):
        for i in range(dst.shape[1]):
            row = src[p, i * sh]
            out = dst[p, i]
            for j in range(dst.shape[2]):
                out[j] = row[j * sw]


@kernel
def filters_to_oihw(w, out):
    """out[o, i, t] = w[t, i, o]: (taps, C_in, C_out) HWIO filters into OIHW memory (C_out, C_in, taps).

    For NCHW callers' filter gradients, which the kernels compute HWIO.
    One prange iteration owns LANES input channels: for each block of
    LANES output channels it reads runs of LANES values of w and writes
    LANES rows of ``taps`` values of out, all in L1, through one tile.
    (NumPy's transposing copy of 3x3x512x512 float32 filters took 5.7 ms,
    where the gradient itself takes 0.7 on 2 threads. With a prange
    iteration per block of inputs and of outputs, 1.19-1.25 ms on 2
    threads, 0.93-1.02 so; NumPy's plain copy of the same bytes, one
    thread, 0.63.)
    """
    taps, n_in, n_out = w.shape
    for unit in prange((n_in + LANES - 1) // LANES):
        i0 = np.int64(unit) * LANES
        n_i = min(LANES, n_in - i0)
        tile = np.empty((LANES, n_i * taps), w.dtype)
        for o0 in range(0, n_out, LANES):
            n_o = min(LANES, n_out - o0)
            for t in range(taps):
                for i in range(n_i):
                    row = w[t, i0 + i, o0:o0 + n_o]
                    for o in range(n_o):
                        tile[o, i * taps + t] = row[o]
            for o in range(n_o):
                dst = out[o0 + o].reshape(-1)[i0 * taps:(i0 + n_i) * taps]
                src = tile[o]
                for v in range(n_i * taps):
                    dst[v] = src[v]


@kernel
def bias_backward_rows(rows, db, channel_step, n_parts):
    """db[c] = sum of the entries of ``rows`` whose channel is c: ``q // channel_step % C`` for column q.

    ``rows`` is dy's memory as (R, L): (N * OH, OW * C) for NHWC memory
    (channel_step 1), (N, C * OH * OW) for NCHW memory (channel_step
    OH * OW).

    NHWC: one prange iteration owns one contiguous range of rows and its
    private partial column sums (a long contiguous loop, unlike one over
    C); they are folded into db in range order afterwards (bit-identical
    across calls with the same n_parts).

    NCHW: one prange iteration owns one (n, c) plane, a contiguous run
    (``_plane_sum``); the planes' sums are folded over n in order. (The NHWC scheme here
    kept n_parts partial rows of C * OH * OW values and folded them with an
    integer division per value: 8 x 64 x 112 x 112 took 37 ms on one core,
    against 1.6 ms for NHWC memory.)
    """
    n_rows, row_len = rows.shape
    c_out = db.shape[0]
    planes = channel_step > 1
    # One prange for both layouts (one parfor to lower and compile, not
    # two): its units are the (n, c) planes, or the ranges of rows. The
    # scratch holds the planes' sums, or the ranges' partial column sums.
    units = n_rows * c_out if planes else n_parts
    scratch = np.zeros((n_rows, c_out) if planes else (n_parts, row_len), db.dtype)
    for unit in prange(units):
        if planes:
            r = np.int64(unit) // c_out
            c = np.int64(unit) - r * c_out
            scratch[r, c] = _plane_sum(rows[r, c * channel_step:(c + 1) * channel_step], db)
        else:
            acc = scratch[unit]
            for r in range(n_rows * np.int64(unit) // n_parts, n_rows * (np.int64(unit) + 1) // n_parts):
                src = rows[r]
                for q in range(row_len):
                    acc[q] += src[q]
    if planes:
        for c in range(c_out):
            db[c] = scratch[0, c] if n_rows else 0
            for r in range(1, n_rows):
                db[c] += scratch[r, c]
        return
    # Here channel_step is 1 (NCHW planes of one pixel included): column q's
    # channel is q % C, and a row is OW whole pixels. Pixel by pixel, each
    # db[c] gets the same additions in the same order as
    # ``db[q % C] += partial[part, q]``, without an integer division per
    # column (batch-1 28 x 28 x 16 dy, one thread: 16.7 us that way, 7.3
    # with counters tracking the channel, 5.4 like this).
    db[:] = 0
    if c_out == 0:  # (no channels, no columns: nothing to fold, and no step for the range)
        return
    for part in range(n_parts):
        for q0 in range(0, row_len, c_out):
            for c in range(c_out):
                db[c] += scratch[part, q0 + c]
