"""The filter gradient tap by tap, with x read in place (the "taps" strategy).

For one kernel tap (kh, kw) the filter gradient is a matrix product over
the output pixels: ``dw[kh, kw, ci, co] = sum(x[n, ih, iw, ci] * dy[n, oh,
ow, co])`` with ``ih = oh * sh - pt + kh * dh``, ``iw = ow * sw - pl + kw *
dw``. Over one output row, the pixels whose tap falls inside x are one
range of ow, the same for every row (it depends on kw only), and the x
values they read are one strided run of x's own memory. So the products
need no gathered patches: the register tile (``_tap_tile``) holds TAP_CHANNELS
input channels x OUT output channels of sums, and each step of its
reduction broadcasts TAP_CHANNELS adjacent channels of one x pixel (read in place)
against one row of dy in panels (as ``patch_gemm``'s B operand). Taps on
padding are skipped whole, rows and columns alike. Where the patch GEMM's
tile spans two panels (AVX-512, float32), a unit owns two panels
and ``_tap_tile`` updates both from the same broadcasts (one Zen5
core, filter gradient, two panels / one: AlexNet's 8x27x27x64 5x5 -> 192
0.76, the seed's 7x7 test shape 64x11x9x16 -> 32 0.77). The second
panel is a branch of the one tile function, not a second function: as
two, the tiles cost 1.2-1.3 s of cold compile per dtype, as one 0.7-0.9 s
(Zen4, ``perf/compile_times.py``), at the same speed.

The patch GEMM's filter gradient (``patch_gemm``) instead copies every
patch value into a transposed block first: KH * KW copies of each x value,
as much memory traffic as the products on layers with few input channels
and large kernels (one core, 64x11x9x16 7x7 -> 32: 3.5 of its 5.9 ms).
This kernel pays for its in-place reads with short reductions (one output
row's valid range at a time) and input channels padded to a multiple of
TAP_CHANNELS; ``numbaconv._plan.dw_by_taps`` says where it wins.
"""
import numpy as np
from numba import prange

from .._numba import FASTMATH, claimed_units, kernel, register_tile, wide_register_file, workers
from .convolution import Image
from .patch_gemm import OUT, PANELS, _gather_panels, outputs_inside

# Input channels (rows of the register tile) per tile: 6 with AVX-512's 32
# vector registers, 5 with AVX2's 16, where 6 rows of two-register sums
# (OUT float32) plus the panel row and a broadcast spill accumulators to the
# stack every step (perf/compare.py, one Zen3 core, CPU time, 5 rows / 6,
# whole backward: AlexNet's 8x27x27x64 5x5 -> 192 0.70 (CI 0.66-0.74, 6
# rounds), the seed's 7x7 test shape 64x11x9x16 -> 32 0.79 (0.75-0.99, 12
# rounds)). Not the patch GEMM's PIX (8 with AVX-512): as a loop over 8
# rows this tile ran slower there (one Zen5 core, filter gradients:
# AlexNet's 1.24, the 7x7 shape 1.15), and the loop form of 6 rows 1.03 and
# 1.08 of this written-out one; the 5-row tile is this same code with its
# sixth row dropped at compile time, as fast on Zen3 as the loop form.
TAP_CHANNELS = 6 if wide_register_file() else 5


# Without "reassoc": the order of each sum is the loop's, however LLVM
# unrolls it in the caller it is compiled into (numbaconv.kernels' drivers
# must equal the public API's bit for bit). Inlined: in its own library the
# two-panel tile kept its sums on the stack, and the process that compiled
# the kernel ran that code (numbaconv._numba._install_code_attributes).
@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"}, inline=True)
def _tap_tile(out, o_row, o_col, data, x_start, c_step, c_left, k_step, n_k, rows, x_row_step,
              panel, panel2, pair, p_start, p_row):
    """out[o_row + r, o_col + q] += sum over the rows and ks of data[x(row, k) + r * c_step] * panel[p(row, k), q].

    ``r < TAP_CHANNELS``, ``q < OUT``. Row i < ``rows`` of the reduction starts at
    ``x_start + i * x_row_step`` in ``data`` and at ``p_start + i * p_row``
    in ``panel`` (a (pixels, OUT) block); its ``n_k`` steps are ``k_step``
    apart in data and one row apart in panel. Only ``c_left`` channels
    remain from the tile's first: the tile rows past them read the last
    channel again (in bounds), and their sums are never used.

    With ``pair``, where the patch GEMM's tile spans two panels
    (``patch_gemm.PANELS``, float32), the tile also updates the next OUT
    columns from ``panel2``, with the same broadcasts: 12 FMAs per 8 loads
    instead of 6 per 7. Each element's sum runs in the same order either
    way. Elsewhere ``two`` is a constant False, and LLVM drops the second
    half (float64 and AVX2 tiles hold one panel's sums).
    """
    two = PANELS == 2 and out.itemsize == 4 and pair
    acc = register_tile(out, TAP_CHANNELS, OUT)
    acc2 = register_tile(out, TAP_CHANNELS, OUT)
    c0 = np.uint64(o_col)
    c2 = c0 + np.uint64(OUT)
    for r in range(TAP_CHANNELS):
        row_out = out[o_row + r]
        for q in range(OUT):
            acc[r, q] = row_out[c0 + np.uint64(q)]
    if two:
        for r in range(TAP_CHANNELS):
            row_out = out[o_row + r]
            for q in range(OUT):
                acc2[r, q] = row_out[c2 + np.uint64(q)]
    # Unsigned offsets: a signed index carries Numba's wraparound check,
    # and with it the accumulators to the stack every step.
    step = np.uint64(c_step)
    last = c_left - 1
    o1, o2, o3 = np.uint64(min(1, last)) * step, np.uint64(min(2, last)) * step, np.uint64(min(3, last)) * step
    o4, o5 = np.uint64(min(4, last)) * step, np.uint64(min(5, last)) * step
    ks = np.uint64(k_step)
    for i in range(rows):
        base = np.uint64(x_start + i * x_row_step)
        p0 = np.uint64(p_start + i * p_row)
        for k in range(n_k):
            off = base + np.uint64(k) * ks
            x0, x1, x2 = data[off], data[off + o1], data[off + o2]
            x3, x4, x5 = data[off + o3], data[off + o4], data[off + o5]
            # (The update and the store below are those of
            # patch_gemm._tile_products, written out: shared as an inlined
            # helper, they made both kernels 2-8% slower, one core, 24
            # alternated calls; as its loop over rows, see TAP_CHANNELS.)
            row = panel[p0 + np.uint64(k)]
            for q in range(OUT):
                v = row[q]
                acc[0, q] += x0 * v
                acc[1, q] += x1 * v
                acc[2, q] += x2 * v
                acc[3, q] += x3 * v
                acc[4, q] += x4 * v
                if TAP_CHANNELS > 5:  # a global constant: dropped at compile time where it is 5
                    acc[5, q] += x5 * v
            if two:
                row = panel2[p0 + np.uint64(k)]
                for q in range(OUT):
                    v = row[q]
                    acc2[0, q] += x0 * v
                    acc2[1, q] += x1 * v
                    acc2[2, q] += x2 * v
                    acc2[3, q] += x3 * v
                    acc2[4, q] += x4 * v
                    if TAP_CHANNELS > 5:
                        acc2[5, q] += x5 * v
    # One row per loop (as patch_gemm._tile_products: all rows in one loop
    # need more runtime alias checks than LLVM allows, and stay scalar).
    for r in range(TAP_CHANNELS):
        row_out = out[o_row + r]
        for q in range(OUT):
            row_out[c0 + np.uint64(q)] = acc[r, q]
    if two:
        for r in range(TAP_CHANNELS):
            row_out = out[o_row + r]
            for q in range(OUT):
                row_out[c2 + np.uint64(q)] = acc2[r, q]


@kernel
def conv2d_backward_filter_taps(x, dy, partial, k_h, k_w, chunk_rows, sh, sw, dh, dw, pt, pl):
    """partial[part, (kh * KW + kw) * C_pad + ci, co] = sum(x[n, ih, iw, ci] * dy[n, oh, ow, co]) over a part.

    ``x`` and ``dy`` are Images of either memory; ``partial`` is (n_parts,
    KH * KW * C_pad, round_up(C_out, OUT)) with ``C_pad = round_up(C_in,
    TAP_CHANNELS)``; the caller sums it over parts, in order, and drops the padding
    rows and columns. The output rows ``(n, oh)`` are split into n_parts
    contiguous ranges (a number the caller derives from the shape alone, so
    the sums do not depend on the thread count). One claimed work unit (``_numba.claim_unit``) owns
    one range and the panels of OUT output channels a tile spans (one or
    two, see ``_tap_tile``): it zeroes its block of
    ``partial`` and, for chunks of ``chunk_rows`` output rows in order,
    gathers the chunk's dy panel and adds every tap's products to the block.
    """
    n_parts, k_pad, c_pad = partial.shape
    n_panels = c_pad // OUT
    # Panels per unit: as many as a tile spans (_tap_tile), the last unit's maybe one fewer.
    per_unit = PANELS if partial.itemsize == 4 else 1
    n_blocks = (n_panels + per_unit - 1) // per_unit
    c_in, out_w = x.c, dy.w
    c_tap = k_pad // (k_h * k_w)  # rows of partial per tap: C_in padded to TAP_CHANNELS
    row_units = dy.n * dy.h
    units = n_parts * n_blocks
    claims = np.zeros(1, np.int64)
    for _ in prange(workers(units)):
        for unit in claimed_units(claims, units):
            part = unit // n_blocks
            j = unit - part * n_blocks
            out = partial[part]
            co0 = j * per_unit * OUT
            n_cols = min(per_unit, n_panels - j * per_unit) * OUT
            # (A slice: with a loop over q < n_cols instead, the seed test's
            # 8x16 stride-5 filter gradient, 16896 rows of partial, took 1.2x
            # as long, one core.)
            out[:, co0:co0 + n_cols] = 0
            # The unit's dy channels as an Image of their own (its first
            # channel at the data's start), for the panel gather of patch_gemm.
            dy_j = Image(dy.data[co0 * dy.c_step:], dy.n, dy.h, dy.w, min(n_cols, dy.c - co0), dy.n_step,
                         dy.h_step, dy.w_step, dy.c_step)
            panel = np.zeros((n_cols // OUT, chunk_rows * out_w, OUT), partial.dtype)
            pair = n_cols == 2 * OUT
            panel_rows, panel_rows2 = panel[0], panel[n_cols // OUT - 1]
            r = row_units * part // n_parts
            r_end = row_units * (part + 1) // n_parts
            while r < r_end:
                rows = min(chunk_rows, r_end - r)
                # The chunk's rows, one image's run at a time.
                i = np.int64(0)
                while i < rows:
                    n = (r + i) // dy.h
                    oh = r + i - n * dy.h
                    run = min(rows - i, dy.h - oh)
                    _gather_panels(panel, dy_j, n, oh, run * out_w, i * out_w, np.int64(0))
                    i += run
                for kh in range(k_h):
                    top = kh * dh - pt  # ih = oh * sh + top
                    for kw in range(k_w):
                        left = kw * dw - pl  # iw = ow * sw + left
                        ow_lo, ow_hi = outputs_inside(left, sw, x.w, out_w)
                        if ow_lo == ow_hi:
                            continue
                        t_row = (kh * k_w + kw) * c_tap
                        i = np.int64(0)
                        while i < rows:
                            n = (r + i) // dy.h
                            oh = r + i - n * dy.h
                            run = min(rows - i, dy.h - oh)
                            # The run's rows whose ih is inside x: oh_lo <= oh < oh_hi.
                            oh_lo = max(oh, -(top // sh) if top < 0 else 0)
                            oh_hi = min(oh + run, (x.h - 1 - top) // sh + 1)
                            if oh_lo < oh_hi:
                                x_start = (n * x.n_step + (oh_lo * sh + top) * x.h_step
                                           + (ow_lo * sw + left) * x.w_step)
                                p_start = (i + oh_lo - oh) * out_w + ow_lo
                                for ci in range(0, c_in, TAP_CHANNELS):
                                    _tap_tile(out, t_row + ci, co0, x.data, x_start + ci * x.c_step, x.c_step,
                                              c_in - ci, sw * x.w_step, ow_hi - ow_lo, oh_hi - oh_lo,
                                              sh * x.h_step, panel_rows, panel_rows2, pair, p_start, out_w)
                            i += run
                r += rows
