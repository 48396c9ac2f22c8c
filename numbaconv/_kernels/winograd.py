"""3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (the "Winograd" strategy).

A direct 3x3 convolution spends 36 multiply-adds per input channel and
output channel on a 2x2 block of outputs; F(2x2, 3x3) spends 16
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015):

    Y = A^T [ (G g G^T) * (B^T d B) ] A

for a 4x4 input tile d and the 3x3 filter g, where ``*`` is elementwise.
Summed over input channels, each of the 16 elements ``e`` of the
transformed tiles is a matrix product (tiles x C_in) @ (C_in x C_out): the
register-tiled micro-kernel of the patch GEMM (``patch_gemm._tile_products``)
does those, so the transforms are the only new code. With 2.25x fewer
multiplications than the direct method this is how a loop kernel can beat
oneDNN's direct convolution on the 3x3 layers that dominate VGG, ResNet
and U-Net (``numbaconv._plan.by_winograd`` says where it is used).

The filter gradient is the same algebra transposed (``dL/dg = G^T [sum
over tiles of (A dy A^T) * (B^T d B)] G``): 16 products (C_out x tiles) @
(tiles x C_in), reduced over tiles (the section at the end).

Numerics: the transforms use the points 0, 1, -1 (and 1/2 in G), the
best-conditioned choice: float32 results differ from the direct sum by
rounding only, and were measured closer to a float64 reference than the
direct kernels' (shorter sums). A non-finite input (inf or NaN) would come
out as NaN where the direct sum gives +-inf (the transforms subtract it
from itself), so every forward unit counts the non-finite outputs it
stores (the filter gradient's driver checks its result) and the drivers
recompute such a call by a direct method, whose results then equal the
reference's.

One claimed work unit (``_numba.claim_unit``) owns a block of tiles (``tile_rows`` rows of tiles,
from one image or several when planes are small, ``tile_cols`` tiles
each) and a block of output channels; it copies the input rows the block
reads into zero-padded scratch (so no tap needs a bounds test), transforms
them, multiplies, transforms back and stores. Every transform loop runs
over a whole row of tiles (or all tiles) and their channels, with one
store stream and at most four load streams, so that it vectorizes (LLVM's
runtime alias checks stay within its limit) and its set-up is paid once
per row, not per tile (measured: per-tile loops took a third of the
time at 64 channels).

NCHW memory is read and written in place, transposed on the way: the
block fill gathers a pixel's channels, and ``_store_rows`` scatters each
tile's channels into scratch rows, then copies y's rows out as runs. One
Zen3 core, 32x56x56x64 -> 64, NCHW / NHWC time 1.11-1.13 (2 threads
1.10-1.16), 1.17-1.23 when that store wrote y's rows a channel at a
time. The products by rows, M^T = U^T V^T (a register tile over 16
tiles, so that the fill copies x's rows and the store writes y's rows
from runs, never across channels), measured no faster than the latter:
1.22-1.24 on one core, 32.4-32.9 ms against 31.6-31.8 at 2 threads. Its
rows of tiles carry a place no output reads (cols + 1 per row, so that
one transform runs over all channels and tiles) and its products 8%
more columns; its fill, runs of 29 values from rows of x a plane apart,
took 6 ms (its 448 units alone), and its store 5-9 ms, where NHWC's
took 2-4. (A fill by channels, each row of x a run and the block's
writes a pixel apart, took 67-70 ms in all against 59-61.)
"""
import numpy as np
from numba import prange

from .._numba import claimed_units, kernel, store_transposed, workers
from .convolution import _copy_block, page_aliased, round_up
from .patch_gemm import FILL_CHANNELS, K_CHUNK, OUT, PIX, _tile_products

# B^T's rows as (index, sign) pairs: (B^T d)[i] = sign0 * d[index0] + sign1 * d[index1].
_BT_INDEX = np.array([[0, 2], [1, 2], [2, 1], [1, 3]], np.int64)
_BT_SIGN = np.array([[1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [1.0, -1.0]])

FILTER_BLOCK = 16  # input channels per work unit of the filter transform
# NCHW block fill (_fill_block): on planes of FILL_MIN_PLANE pixels or more,
# the gather over a pixel's channels goes FILL_CHANNELS at a time, so that a
# row's cache lines of those channels serve every column before the next
# channels'. (Planes of 224 x 224 float32 are 49 pages apart: all C lines of
# one pixel fall into one set of the L1 cache, and evict each other before
# the next column reads them.) Measured, one Zen5 core, the kernel's time
# for NCHW x less its time for NHWC x, all channels at once / 8 at a time:
# 2x224x224x64 -> 64 +17.8 / +2.4 ms (of 23), 1x256x256x32 -> 32 +2.8 /
# +0.6 (of 6), 2x112x112x64 -> 128 +0.93 / +0.59 (of 9); on smaller planes
# 8 at a time costs more: 32x56x56x64 -> 64 +1.5 / +1.8 (of 22),
# 8x28x28x128 -> 128 +0.23 / +0.40 (of 4), 8x14x14x256 -> 256 +0.24 /
# +0.40 (of 3.8). Smaller planes a whole number of pages apart (64 x 64,
# 32 x 32 float32) put a pixel's channels into one set
# too, and go 8 at a time as well: 2 threads, Zen4, the kernel alone, NCHW
# x / NHWC x time, 1x64x64x128 -> 128 1.43 -> 1.04, 4x64x64x128 -> 128
# 1.48 -> 1.04, 8x32x32x256 -> 256 1.27 -> 1.03 (8x28x28x128, not
# aliased, 1.06 both).
STORE_RUN = OUT  # pixels and channels a block of the NCHW store (_store_rows)
FILL_MIN_PLANE = 8192  # (FILL_CHANNELS: patch_gemm's, whose padded rows fill alike)
# G, the filter transform: u = G g G^T.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GT = np.ascontiguousarray(_G.T)  # G's columns as rows, for the filter gradient's G^T S G


@kernel
def transform_filters(w, w_steps, taps_h, taps_w, swap, n_out, u):
    """u[e, i, o] = (G g G^T)[e // 4, e % 4] for g[a, b] = W[taps_h[a], taps_w[b], i, o] (W[.., o, i] if ``swap``).

    ``w`` is the filter's flat memory and ``w_steps`` the element steps of
    its (kh, kw, ci, co) indices, as in ``patch_gemm.pack_filters`` (three
    taps per axis: the forward's, or the input gradient's reversed ones).
    ``u`` is (16, panels, I, OUT): per element, the (I, n_out) matrix in
    the patch GEMM's panels (``u[e, j, i, q]`` is column ``j * OUT + q``);
    the caller zeroes it (columns past n_out are not written). One prange iteration owns FILTER_BLOCK
    input channels: it copies their g into scratch, reading along
    whichever of i and o is contiguous in memory (a strided read of the
    swapped filter took 14 ms at 512 x 512 channels), then computes G g and
    (G g) G^T in loops over o (one store, at most three loads: they
    vectorize). Coefficients come from ``_G`` in plain loops (not written
    out term by term), which halves the kernel's compile time.
    """
    s_h, s_w, s_ci, s_co = w_steps
    s_i, s_o = (s_co, s_ci) if swap else (s_ci, s_co)
    n_i = u.shape[2]
    for blk in prange((n_i + FILTER_BLOCK - 1) // FILTER_BLOCK):
        i0 = np.int64(blk) * FILTER_BLOCK
        block = min(FILTER_BLOCK, n_i - i0)
        # g's rows are n_out + OUT long: the copy along i stores a value in
        # each of FILTER_BLOCK rows in turn, 9 * n_out apart, which for a
        # power of two of n_out fell into two sets of the L1 cache (2
        # threads, in-process alternated, 7 rounds: OIHW 3x3x512x512 0.90
        # of the time, 3x3x256x512 0.74; HWIO alike).
        g = np.empty((FILTER_BLOCK, 9, n_out + OUT), u.dtype)
        # (Bounded by the tap arrays' lengths, 3 but unknown to LLVM: with constant
        # bounds it unrolled the nest into nine copies of both vectorized copy loops.)
        for a in range(taps_h.size):
            for b in range(taps_w.size):
                tap = np.uint64(i0 * s_i + taps_h[a] * s_h + taps_w[b] * s_w)
                if s_o == 1:  # runs along o
                    for ii in range(block):
                        src = tap + np.uint64(ii * s_i)
                        dst = g[ii, a * 3 + b]
                        for o in range(n_out):
                            dst[o] = w[src + np.uint64(o)]
                else:  # runs along i (or neither)
                    for o in range(n_out):
                        src = tap + np.uint64(o * s_o)
                        for ii in range(block):
                            g[ii, a * 3 + b, o] = w[src + np.uint64(ii * s_i)]
        t = np.empty((12, n_out), u.dtype)  # t[a * 3 + b] = (G g)[a, b]
        row = np.empty(n_out, u.dtype)
        one, three = np.int64(1), np.int64(3)  # (int64s: literals would compile _combine once per value)
        # (Here too bounds from shapes, where they are at hand: LLVM unrolled the
        # constant ones, a copy of the call's set-up or of the panel store each.)
        for ii in range(block):
            gi = g[ii]
            for a in range(4):
                for b in range(taps_w.size):
                    _combine(t[a * 3 + b], gi, b, three, _G[a])
            for e in range(u.shape[0]):  # the 16 elements (a, b) of G g G^T
                a, b = e // 4, e % 4
                _combine(row, t, a * 3, one, _G[b])
                for j in range(u.shape[1]):  # into the panels
                    dst = u[e, j, i0 + ii]
                    for q in range(min(OUT, n_out - j * OUT)):
                        dst[q] = row[j * OUT + q]


@kernel(parallel=False)
def _combine(dst, rows, first, step, coefs):
    """dst = sum over k of coefs[k] * rows[first + k * step], in order of k, terms of weight 0 left out.

    (Left out, not multiplied by zero: a zero weight times inf would be
    NaN.) One term per pass: a small function to compile, for the
    transforms of filters, which run once per call. The terms come as
    rows of one matrix and their count as ``coefs.size``, unknown to LLVM
    where this compiles, so the loop over them stays a loop (over four
    arguments LLVM unrolled it: seven vector loops, optimized and compiled
    again in each kernel that links this one).
    """
    started = False
    for k in range(coefs.size):
        if coefs[k] == 0:
            continue
        a = dst.dtype.type(coefs[k])
        row = rows[first + k * step]
        if started:
            for q in range(dst.size):
                dst[q] += a * row[q]
        else:
            for q in range(dst.size):
                dst[q] = a * row[q]
            started = True
    if not started:
        dst[:] = 0


@kernel(parallel=False)
def _fill_block(block, x, n, ih0, iw0, c0):
    """block[p, r, c, ci] = x[n, ih0 + r, iw0 + 2 * c + p, c0 + ci] where inside x; the caller zeroes the rest.

    ``block`` is (2, rows, cols, C): the even (p = 0) and odd (p = 1)
    columns apart, so that the same input column of consecutive tiles (2
    apart) is one contiguous run.
    """
    rows, cols, c = block.shape[1], block.shape[2], block.shape[3]  # (channels past x's stay zero)
    flat = block.reshape(-1)
    r_lo, r_hi = max(0, -ih0), min(rows, x.h - ih0)
    n_ch = min(c, x.c - c0)
    # From NCHW memory, a pixel's channels are a plane apart; on large planes
    # the gather takes FILL_CHANNELS of them at a time (see the constant).
    # (Also on planes a whole number of 4 KB pages apart: see FILL_MIN_PLANE.)
    grouped = x.c_step != 1 and (x.h * x.w >= FILL_MIN_PLANE or page_aliased(x.c_step, x.data.itemsize))
    group = FILL_CHANNELS if grouped else n_ch
    for p in range(2):
        # Columns c with 0 <= iw0 + 2 * c + p < x.w.
        c_lo = max(0, -((iw0 + p) // 2))
        c_hi = min(cols, (x.w - iw0 - p + 1) // 2)
        if r_hi <= r_lo or c_hi <= c_lo:
            continue
        src = n * x.n_step + (ih0 + r_lo) * x.h_step + (iw0 + 2 * c_lo + p) * x.w_step + c0 * x.c_step
        dst = ((p * rows + r_lo) * cols + c_lo) * c
        # Runs of channels on the block's side (element step 1): contiguous
        # copies from NHWC memory, a gather over channels from NCHW memory.
        # (An int64 element step, not a literal 1: the argument types of every
        # other _copy_block call, so that it is compiled once.)
        for g0 in range(0, n_ch, group):
            _copy_block(flat, dst + g0, (cols * c, c, np.int64(1)), x.data, src + g0 * x.c_step,
                        (x.h_step, 2 * x.w_step, x.c_step), (r_hi - r_lo, c_hi - c_lo, min(group, n_ch - g0)))


@kernel(parallel=False)
def _transform_row(dst, base, e_step, block):
    """dst[base + e * e_step + c * C + ci] = (B^T d B)[e // 4, e % 4] for channel ci of tile c < cols - 1.

    ``block`` (2, 4, cols, C) holds one row of tiles' four input rows, even
    and odd columns apart (``_fill_block``): tile c reads (parity, column)
    (0, c), (1, c), (0, c + 1), (1, c + 1). ``dst`` is flat; the row's
    tiles and channels are one run of (cols - 1) * C per element (rows of
    the forward's (16, tiles, C_in) products, or one panel of the filter
    gradient's). Each of the 16 outputs is a signed sum of four input runs
    (B^T has two entries per row), one loop over the whole run.
    """
    cols, c_in = block.shape[2], block.shape[3]
    length = (cols - 1) * c_in
    flat = block.reshape(-1)
    for i in range(4):
        k0, k1 = _BT_INDEX[i, 0], _BT_INDEX[i, 1]
        sk0, sk1 = _BT_SIGN[i, 0], _BT_SIGN[i, 1]
        for j in range(4):
            l0, l1 = _BT_INDEX[j, 0], _BT_INDEX[j, 1]
            a0 = dst.dtype.type(sk0 * _BT_SIGN[j, 0])
            a1 = dst.dtype.type(sk0 * _BT_SIGN[j, 1])
            a2 = dst.dtype.type(sk1 * _BT_SIGN[j, 0])
            a3 = dst.dtype.type(sk1 * _BT_SIGN[j, 1])
            # Input column l of a tile: parity l % 2, column offset l // 2.
            o0 = (((l0 % 2) * 4 + k0) * cols + l0 // 2) * c_in
            o1 = (((l1 % 2) * 4 + k0) * cols + l1 // 2) * c_in
            o2 = (((l0 % 2) * 4 + k1) * cols + l0 // 2) * c_in
            o3 = (((l1 % 2) * 4 + k1) * cols + l1 // 2) * c_in
            s0, s1 = flat[o0:o0 + length], flat[o1:o1 + length]
            s2, s3 = flat[o2:o2 + length], flat[o3:o3 + length]
            start = base + (i * 4 + j) * e_step
            out = dst[start:start + length]
            for c in range(length):
                out[c] = a0 * s0[c] + a1 * s1[c] + a2 * s2[c] + a3 * s3[c]


@kernel(parallel=False)
def _untransform(m):
    """m[4 + k] = (A^T M A)[k // 2, k % 2] for k < 4, elementwise over the tiles and channels of ``m`` (16, L).

    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]. In place, in two steps: A^T M
    (its top row into m[0..3], its bottom row into m[12..15]), then the
    outputs into m[4..7]. Column c of the first step reads rows c, 4 + c,
    8 + c and 12 + c: the four columns together are the contiguous
    quarters m[0:4], ..., m[12:16], so the step is one loop over 4 L.
    Every loop stores both of its values from one set of loads (as eight
    loops over L, a column loop LLVM unrolled, and four in the second
    step, the function's IR was 2.7 times as long, and every kernel that
    links it optimizes and compiles it again). The four loads come first,
    in order: so the sums associate as they did in separate loops, bit for
    bit (under the kernels' reassociation flag, loads in order of first
    use changed float32 results in the last bit).
    """
    length = m.shape[1]
    quarters = m.reshape(4, 4 * length)
    m0, m1, m2, m3 = quarters[0], quarters[1], quarters[2], quarters[3]
    for q in range(4 * length):
        a0, a1, a2, a3 = m0[q], m1[q], m2[q], m3[q]
        m3[q] = a1 - a2 - a3
        m0[q] = a0 + a1 + a2
    for row in range(2):
        s0, s1, s2, s3 = m[12 * row], m[12 * row + 1], m[12 * row + 2], m[12 * row + 3]
        left, right = m[4 + 2 * row], m[5 + 2 * row]
        for q in range(length):
            a0, a1, a2, a3 = s0[q], s1[q], s2[q], s3[q]
            left[q] = a0 + a1 + a2
            right[q] = a1 - a2 - a3


@kernel(parallel=False)
def _store_pixel(y, pix, src, bias):
    """y.data[pix + q * c_step] = src[q] + bias[q] for q < len(bias); returns how many are not finite."""
    bad = 0
    inf = src.dtype.type(np.inf)
    # (A comparison, not ``value - value != 0``: under the kernels'
    # reassociation LLVM may fold that difference to zero.)
    if y.c_step == 1:  # NHWC memory: one contiguous run, a vector loop
        dst = y.data[pix:pix + bias.size]
        for q in range(bias.size):
            value = src[q] + bias[q]
            dst[q] = value
            bad += not abs(value) < inf
        return bad
    step = np.uint64(y.c_step)
    start = np.uint64(pix)
    for q in range(bias.size):
        value = src[q] + bias[q]
        y.data[start + np.uint64(q) * step] = value
        bad += not abs(value) < inf
    return bad


@kernel(parallel=False)
def _store_rows(y, m, t0, cols, n, oh, ow0, co0, bias):
    """One row of tiles' outputs into y of NCHW memory; returns how many are not finite.

    y[n, oh + k // 2, ow0 + 2 * t + k % 2, co0 + q] = m[4 + k, t0 + t, q] +
    bias[q] for t < cols. Runs of STORE_RUN pixels of STORE_RUN channels
    at a time (y's rows in runs of memory): blocks of m transposed in
    registers (``_numba.store_transposed``, which also counts the
    non-finite values). The rest (narrower planes, the last
    pixels of a row, the last channels) in two steps: the outputs into
    scratch as y's rows hold them (each tile's channels, one run of ``m``,
    scattered into the rows of its 2 x 2 outputs), then each channel's
    two output rows copied out as runs. (Pixel by pixel, each pixel's C
    values a plane apart, as ``_store_pixel`` has them: 2x224x224x64 ->
    64 on 2 threads took 29.1 ms, against 11.4 into NHWC memory; channel
    by channel, each output two columns apart, 12.5; on 56 x 56 planes
    that store took 9 of the 62 ms of 32x56x56x64 -> 64 on one core.
    All by scratch, against blocks where a row holds two or more: one
    core, the store alone, 2x112x112 -> 128 3.0 ms against 1.48 (into NHWC
    memory 1.21), 8x56x56 -> 64 1.60 against 1.36 (0.78); the kernel,
    NCHW / NHWC time, 2 threads, fresh processes, 2 pairs: 2x112x112x64 ->
    128 1.20 -> 1.08, 8x56x56x64 -> 64 1.17 -> 1.07-1.09, 8x28x28x128 ->
    128 1.14-1.16 both, 8x14x14x256 -> 256 1.00-1.05 both.)
    """
    bad = 0
    inf = m.dtype.type(np.inf)
    n_ch = bias.size
    width = min(2 * cols, y.w - ow0)
    q_end = n_ch // STORE_RUN * STORE_RUN
    # (From two blocks a row on: 28-wide planes, one block and 12 pixels by scratch, took 1.04x all by scratch.)
    blocks = width // STORE_RUN if y.w_step == 1 and q_end > 0 and width >= 2 * STORE_RUN else 0
    half = STORE_RUN // 2  # tiles a block
    for kr in range(min(2, y.h - oh)):
        even, odd = m[4 + 2 * kr], m[5 + 2 * kr]
        start = n * y.n_step + (oh + kr) * y.h_step + co0 * y.c_step + ow0
        for blk in range(blocks):
            for q0 in range(0, q_end, STORE_RUN):
                bad += store_transposed(y.data, start + q0 * y.c_step + blk * STORE_RUN, y.c_step, even, odd,
                                        t0 + blk * half, q0, bias, q0, STORE_RUN)
    # By scratch: the channels from q_end of the blocks' tiles, every channel of the tiles after them.
    done = blocks * half  # tiles whose channels below q_end the blocks stored
    rows = np.empty((2, n_ch, 2 * cols), m.dtype)  # [output row, channel, column]
    for t in range(cols):
        q_lo = q_end if t < done else 0
        part_bias = bias[q_lo:]
        for k in range(4):
            src, dst = m[4 + k, t0 + t, q_lo:n_ch], rows[k // 2, q_lo:]
            col = 2 * t + k % 2
            for q in range(src.size):
                dst[q, col] = src[q] + part_bias[q]
    w_step = np.uint64(y.w_step)
    for q in range(n_ch):
        first = 2 * done if q < q_end else 0
        for kr in range(min(2, y.h - oh)):
            start = n * y.n_step + (oh + kr) * y.h_step + (co0 + q) * y.c_step + (ow0 + first) * y.w_step
            src = rows[kr, q, first:width]
            if y.w_step == 1:  # a run of memory
                dst = y.data[start:start + src.size]
                for i in range(src.size):
                    value = src[i]
                    dst[i] = value
                    bad += not abs(value) < inf
                continue
            for i in range(src.size):
                value = src[i]
                y.data[np.uint64(start) + np.uint64(i) * w_step] = value
                bad += not abs(value) < inf
    return bad


@kernel
def conv2d_winograd(x, u, b, y, tile_rows, tile_cols, out_per_unit, pt, pl, bad):
    """y[n, oh, ow, co] = b[co] + sum(x[n, oh - pt + kh, ow - pl + kw, ci] * g[kh, kw, ci, co]) (3x3, stride 1).

    ``x`` and ``y`` are Images; ``u`` is the transformed filter (16,
    panels, C_in, OUT) of ``transform_filters``; ``b`` has C_out
    entries. The rows of tiles (2x2 outputs each) of all images form one
    sequence; one claimed work unit (``_numba.claim_unit``) owns ``tile_rows`` consecutive ones of
    them (from one or more images: small planes share the filters'
    passes), ``tile_cols`` tiles of each, and ``out_per_unit`` output
    channels, and writes into ``bad[unit]`` how many outputs it stored
    that are not finite (the driver then recomputes the call by a direct
    method).
    """
    c_in, c_pad = u.shape[2], u.shape[1] * OUT
    t_h, t_w = (y.h + 1) // 2, (y.w + 1) // 2
    row_blocks = (y.n * t_h + tile_rows - 1) // tile_rows
    col_blocks = (t_w + tile_cols - 1) // tile_cols
    out_blocks = (c_pad + out_per_unit - 1) // out_per_unit
    units = row_blocks * col_blocks * out_blocks
    claims = np.zeros(1, np.int64)
    for _ in prange(workers(units)):
        for unit in claimed_units(claims, units):
            rest = unit
            ob = rest % out_blocks
            rest //= out_blocks
            cb = rest % col_blocks
            g0 = (rest // col_blocks) * tile_rows  # the first row of tiles, counted over all images
            tc0 = cb * tile_cols
            rows, cols = min(tile_rows, y.n * t_h - g0), min(tile_cols, t_w - tc0)
            n_tiles = rows * cols
            co0 = ob * out_per_unit
            n_out = min(out_per_unit, c_pad - co0)
            tiles_pad = round_up(n_tiles, PIX)
            v = np.empty((16, tiles_pad, c_in), u.dtype)
            v[:, n_tiles:, :] = 0  # the register tiles' padding rows
            v_flat = v.reshape(-1)
            zero, one = np.int64(0), np.int64(1)  # (int64s, not literals: see _fill_dy)
            for r in range(rows):
                n, tr = (g0 + r) // t_h, (g0 + r) % t_h
                # The row of tiles reads 4 padded input rows (2 shared with the next):
                # a 4-d block per row, as in the filter gradient (one 5-d block for all
                # rows compiled NumPy's allocation for 5-d arrays as well).
                block = np.zeros((2, 4, cols + 1, c_in), u.dtype)
                _fill_block(block, x, n, 2 * tr - pt, 2 * tc0 - pl, zero)
                _transform_row(v_flat, r * cols * c_in, tiles_pad * c_in, block)
            m = np.empty((16, tiles_pad, n_out), u.dtype)
            for e in range(16):
                for k0 in range(0, c_in, K_CHUNK):
                    _tile_products(m[e], zero, n_out, v_flat, e * tiles_pad * c_in, c_in, one, u[e], co0, k0 < 0, k0,
                                   min(k0 + K_CHUNK, c_in), k0 > 0, one, zero, zero, v_flat[:0], k0 < 0, k0 < 0, zero,
                                   tiles_pad, one, zero)
            _untransform(m.reshape(16, tiles_pad * n_out))
            bias = b[co0:min(co0 + n_out, y.c)]
            bad_outputs = 0
            for r in range(rows):
                n, tr = (g0 + r) // t_h, (g0 + r) % t_h
                if y.c_step != 1:
                    bad_outputs += _store_rows(y, m, r * cols, cols, n, 2 * tr, 2 * tc0, co0, bias)
                    continue
                for tc in range(cols):
                    oh, ow = 2 * tr, 2 * (tc0 + tc)
                    for k in range(4):
                        if oh + k // 2 < y.h and ow + k % 2 < y.w:
                            pix = n * y.n_step + (oh + k // 2) * y.h_step + (ow + k % 2) * y.w_step + co0 * y.c_step
                            bad_outputs += _store_pixel(y, pix, m[4 + k, r * cols + tc], bias)
            bad[unit] = bad_outputs


# ------------------------------------------------------------------ filter gradient
#
# dL/dg = G^T [ sum over tiles of (A dy A^T) * (B^T d B) ] G: per element e of
# the 4x4 transformed tiles, a product (C_out x tiles) @ (tiles x C_in)
# reduced over tiles, the long axis, by the same micro-kernel.

# A's rows as (index, sign) pairs: (A dy)[i] = sign0 * dy[index0] (+ sign1 * dy[index1] when sign1).
_A_INDEX = np.array([[0, 0], [0, 1], [0, 1], [1, 1]], np.int64)
_A_SIGN = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [-1.0, 0.0]])


@kernel(parallel=False)
def _fill_dy(block, dy, n, oh0, ow0, t0, count, co0):
    """block[k, p, co, t0 + c] = dy[n, oh0 + k, ow0 + 2 * c + p, co0 + co] for c < count, where inside dy.

    ``block`` is (2, 2, channels, tiles): per output row k and column
    parity p, one channel-major plane over tiles, so that each transformed
    element is one loop over all channels and tiles. The caller zeroes it.
    """
    flat = block.reshape(-1)
    n_co, tiles = block.shape[2], block.shape[3]
    channels = min(n_co, dy.c - co0)
    for k in range(2):
        oh = oh0 + k
        if oh >= dy.h:
            continue
        for p in range(2):
            c_hi = min(count, (dy.w - ow0 - p + 1) // 2)  # columns with ow0 + 2 * c + p < OW
            if c_hi <= 0:
                continue
            src = n * dy.n_step + oh * dy.h_step + (ow0 + p) * dy.w_step + co0 * dy.c_step
            # int64 zeros and ones, not literals: the argument types of
            # every other _copy_block call, so no second compile.
            zero, one = np.int64(0), np.int64(1)
            _copy_block(flat, ((k * 2 + p) * n_co) * tiles + t0, (zero, tiles, one),
                        dy.data, src, (zero, dy.c_step, 2 * dy.w_step), (one, channels, c_hi))


@kernel(parallel=False)
def _transform_dy(yt, block):
    """yt[e] = (A dy A^T)[e // 4, e % 4] over every channel and tile of ``block`` (2, 2, C, T).

    A = [[1, 0], [1, 1], [1, -1], [0, -1]]: each output is a signed sum of
    one, two or four planes; terms of weight 0 are multiplied in (a
    non-finite dy gives a non-finite result either way, and the driver
    redoes such calls).
    """
    length = block.shape[2] * block.shape[3]
    planes = block.reshape(4, length)
    for i in range(4):
        for j in range(4):
            k0, k1 = _A_INDEX[i, 0], _A_INDEX[i, 1]
            l0, l1 = _A_INDEX[j, 0], _A_INDEX[j, 1]
            a0 = yt.dtype.type(_A_SIGN[i, 0] * _A_SIGN[j, 0])
            a1 = yt.dtype.type(_A_SIGN[i, 0] * _A_SIGN[j, 1])
            a2 = yt.dtype.type(_A_SIGN[i, 1] * _A_SIGN[j, 0])
            a3 = yt.dtype.type(_A_SIGN[i, 1] * _A_SIGN[j, 1])
            s0, s1 = planes[k0 * 2 + l0], planes[k0 * 2 + l1]
            s2, s3 = planes[k1 * 2 + l0], planes[k1 * 2 + l1]
            dst = yt[i * 4 + j].reshape(-1)
            for q in range(length):
                dst[q] = a0 * s0[q] + a1 * s1[q] + a2 * s2[q] + a3 * s3[q]


@kernel
def conv2d_backward_filter_winograd(x, dy, partial, tile_rows, tile_cols, pt, pl):
    """partial[part, cb, e, co, ci] = sum over the part's tiles of (A dy A^T)[e][co] * (B^T d B)[e][ci].

    3x3, stride 1. ``x`` and ``dy`` are Images; ``partial`` is (parts,
    channel blocks, 16, block, round_up(C_in, OUT)) with ``block`` a
    multiple of PIX. The products' B operands (transformed input tiles)
    are built in the patch GEMM's panels of OUT input channels. The rows of tiles of all images (``tile_cols`` tiles
    of each, in blocks along the row when it is longer) are split into
    ``parts`` contiguous ranges by the shape alone, so the sums do not
    depend on the thread count; one claimed work unit (``_numba.claim_unit``) owns one range and
    one block of output channels, and reduces ``tile_rows`` rows of tiles
    per product.
    """
    n_parts, out_blocks, _, block_co, c_pad = partial.shape
    panels = c_pad // OUT
    t_h, t_w = (dy.h + 1) // 2, (dy.w + 1) // 2
    col_blocks = (t_w + tile_cols - 1) // tile_cols
    jobs = dy.n * t_h * col_blocks  # (row of tiles, block of columns) pairs, in order
    units = n_parts * out_blocks
    claims = np.zeros(1, np.int64)
    for _ in prange(workers(units)):
        for unit in claimed_units(claims, units):
            part = unit // out_blocks
            cb = unit - part * out_blocks
            co0 = cb * block_co
            out = partial[part, cb]
            out[:] = 0
            tiles = tile_rows * tile_cols
            v = np.empty((16, panels, tiles, OUT), x.data.dtype)  # B operands: panels of 16 input channels
            v_flat = v.reshape(-1)
            dblock = np.empty((2, 2, block_co, tile_rows * tile_cols), x.data.dtype)
            yt = np.empty((16, block_co, tile_rows * tile_cols), x.data.dtype)
            yt_flat = yt.reshape(-1)
            zero, one = np.int64(0), np.int64(1)
            job = jobs * part // n_parts
            job_end = jobs * (part + 1) // n_parts
            while job < job_end:
                dblock[:] = 0
                t = np.int64(0)  # (a literal 0 would compile the helpers it reaches a second time)
                for r in range(tile_rows):
                    if job + r >= job_end:
                        break
                    g, cbk = (job + r) // col_blocks, (job + r) % col_blocks
                    n, tr = g // t_h, g % t_h
                    tc0 = cbk * tile_cols
                    cols = min(tile_cols, t_w - tc0)
                    for j in range(panels):
                        xblock = np.zeros((2, 4, cols + 1, OUT), x.data.dtype)
                        _fill_block(xblock, x, n, 2 * tr - pt, 2 * tc0 - pl, j * OUT)
                        _transform_row(v_flat, (j * tiles + t) * OUT, panels * tiles * OUT, xblock)
                    _fill_dy(dblock, dy, n, 2 * tr, 2 * tc0, t, cols, co0)
                    t += cols
                job += tile_rows
                _transform_dy(yt, dblock)
                for e in range(16):
                    _tile_products(out[e], zero, out.shape[2], yt_flat, e * yt[0].size, yt.shape[2], one, v[e], zero,
                                   t < 0, zero, t, t > 0, one, zero, zero, yt_flat[:0], t < 0, t < 0, zero,
                                   out.shape[1], one, zero)  # (t < 0: a bool that is no literal)


@kernel
def filter_gradient_from_winograd(partial, dw_out, k_size, c_in, c_out, dw_steps):
    """dw[a, b, ci, co] = (G^T S G)[a, b], S[e] = the sum over parts of partial[part, cb, e, co - co0, ci].

    (cb is co's block of output channels, co0 its first.) ``dw_out`` is
    the filter's flat memory and ``dw_steps`` the element steps of its
    (a, b, ci, co) indices: HWIO memory, or the OIHW memory an NCHW caller
    gets, written in place (a copy transposing 3x3x512x512 filters took
    1.0-1.2 ms on 2 threads). ``k_size`` is 3, as an argument.

    The parts are added in order (bit-identical at any thread count). One
    prange iteration owns one block of output channels.
    """
    n_parts, out_blocks, _, block_co, c_pad = partial.shape
    s_a, s_b, s_ci, s_co = dw_steps
    for cb in prange(out_blocks):
        s = partial[0, cb].copy()
        total = s.reshape(-1)
        rows = s.reshape(16 * block_co, c_pad)  # S[e][co] is row e * block_co + co
        for part in range(1, n_parts):
            add = partial[part, cb].reshape(-1)
            for q in range(total.size):
                total[q] += add[q]
        t = np.empty((12, c_pad), partial.dtype)  # t[a * 4 + j] = (G^T S)[a, j]
        row = np.empty(c_pad, partial.dtype)  # (G^T S G)[a, b]
        one = np.int64(1)  # (not a literal: see transform_filters)
        # The filter's 3 x 3 from an argument, not constants: LLVM unrolled
        # constant bounds (nine vector loops of the store, a call's set-up per term).
        for co in range(min(block_co, c_out - cb * block_co)):
            for a in range(k_size):
                for j in range(4):
                    _combine(t[a * 4 + j], rows, j * block_co + co, 4 * block_co, _GT[a])
            o = cb * block_co + co
            for a in range(k_size):
                for b in range(k_size):
                    _combine(row, t, a * 4, one, _GT[b])
                    base = np.uint64(a * s_a + b * s_b + o * s_co)
                    for ci in range(c_in):
                        dw_out[base + np.uint64(ci * s_ci)] = row[ci]
