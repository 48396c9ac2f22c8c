"""Convolution as a register-tiled matrix product over gathered patches (the "patch GEMM" strategy).

For wide channels the convolution is a matrix product: output pixels x
``K = KH * KW * C_in`` taps x ``C_out`` channels. One claimed work unit (``_numba.claim_unit``) owns
a block of output pixels (whole output rows of one image) and a block of
output channels: it gathers the pixels' patches into a small buffer ``a``
(one row of K values per pixel, in (kh, kw, ci) order, zeros on padding)
and multiplies it by the filters as a (K, C_out) matrix, padded to a
multiple of OUT channels and packed in panels: ``wk[j, k, i]`` is column
``j * OUT + i`` of row k, so the OUT columns a register tile reads are one
contiguous run over k. (Read from a plain (K, C_out) matrix, those columns
are C_out apart: for C_out a power of two of 256 or more, every row of the
run falls into the same few sets of the L1 cache and evicts the last.
Measured on one Zen4 core: 1x1 forward 8x14x14x256 -> 1024 at 42 GFLOP/s,
-> 1040 at 65; the filter gradient likewise for its dy rows.)

The micro-kernel (``_tile_products``) is the register tile of GEMM
libraries: PIX pixels x OUT channels of running sums, updated once per k
with PIX broadcast patch values times one contiguous row of OUT filter
values. The OUT-long innermost loop has a constant trip count, so LLVM
turns it into vector instructions; the sums sit in a stack buffer
(``_numba.register_tile``) that LLVM keeps in vector registers for the
whole k loop. 6 x 16 measured 102-106 GFLOP/s on one Zen4 core (the
dot-product form, with horizontal sums after every chunk, 80-90).
The tile's rows (``PIX``) follow the vector registers of the code
Numba generates. With AVX-512's 32, the tile is 8 x 16: on a Zen5 core,
whose 512-bit FMAs retire two a cycle with four cycles' latency, six
rows keep at most six of the eight FMAs in flight that the units can
take (K = 512: 185 GFLOP/s at 6 rows, 195-223 at 8; 10 or 12 rows run
out of general registers and spill, 199-208; the 256-bit code LLVM makes for Ice Lake,
run on the same core: 6 and 8 rows alike, 131-133). With AVX2's 16, it
is 5 x 16: LLVM 22 loads a k step's broadcasts before its FMAs, and
6 rows (12 accumulators, 2 filter vectors, 6 broadcasts) spill three
accumulators to the stack every step (code for Zen3 and Haswell, run on
the Zen5 core: 56-58 GFLOP/s at 6 rows, 122-128 at 5, 115-124 at 4).
With AVX-512, where our kernels are compiled to 512-bit vectors on
Intel's CPUs too (``numbaconv._numba._install_code_attributes``), a
tile spans two adjacent panels (``PANELS``): 8 x 32, 16 accumulators, the same 8
broadcasts per k for twice the FMAs. At 8 x 16 the tile loads 9 values
per 8 FMAs and the loads bound it (one Zen5 core: K = 512 195-202
GFLOP/s at 8 x 16, 250-256 at 8 x 32; K = 64 177 / 217; K = 27 186 /
234). A C_out of an odd number of panels ends with a one-panel tile.
float64 keeps one panel: its 8 x 16 tile already fills 16 registers,
and two panels spill (one core, 1x1 8x28x28x256 -> 256: 79 GFLOP/s
against 118).

Stride-1 undilated calls may skip the gather: over padded rows of x
(a unit's rows, copied into a padded block of its own), the patch
entries of one kernel row for consecutive pixels are C_in apart, so the
products read them in place, a kernel row per segment of K, all of a
tile's segments summed in its registers (``padded_rows`` in
``conv2d_patch_gemm``; the seed's 3x3x3 -> 16, one core: 0.57 of the
time with the gather, before the segments shared the registers).

Gathered calls from a batch of PIX images may instead tile PIX images at
one output position (``across_images``, ``numbaconv._plan.across_images``:
where padding takes a share of the taps, or into few channels): a tile's
pixels then share the taps that read inside x, a rectangle of kernel rows
and columns, so the products skip every tap on padding and read x's NHWC
memory in place, a kernel row's taps one run per image
(``_unit_across_images``).

Where one block of rows holds every output pixel (batch 1 on small
planes: ``numbaconv._plan.filters_in_place``), each filter value is used
by one unit only, and packing the filter read and wrote every value once
more (batch-1 1x7x7x512 -> 512 3x3, 2 threads: 1.6-1.7 ms, or 3.0 for
minutes at a time when this VM's second vCPU adds little, against 1.2
for the products alone; one thread 3.3). There the products read the
filter in place instead. An HWIO
filter is (K, C_out) memory: ``_tile_products`` reads its rows of OUT
channels k-major (``b_k_major``; C_out a multiple of OUT), C_out apart
for each k (WK_HWIO). An NCHW caller's OIHW filter holds an output
channel's K values in one run, in (ci, kh, kw) order: the call runs as
Y = W @ patches with the roles of pixels and channels swapped (as the
W @ X route), the filter's rows its A operand, read in place, and the
image's patches packed into panels of 16 pixels its B operand
(``pack_patch_columns``), where they are no more values than the filter.
2 threads, fresh processes alternated, 4-5 pairs, against the packed
filter (the time with the new ``_tile_products`` indexing, which is the
same on packed panels: 8x28x28x128 -> 128 1x1 1.03, the seed 0.98,
8x14x14x256 -> 256 3x3 0.96): NHWC 1x7x7x512 -> 512 3x3 0.74-0.83,
1x14x14x256 -> 256 0.91-0.93, 1x7x7x512 -> 2048 1x1 0.65-0.78,
1x4x4x256 -> 256 0.44, 1x8x8x64 -> 128 0.60-0.69; NCHW 0.67, 0.81, 0.64,
0.70 and 0.92.

Results of ``STREAM_MIN_BYTES`` or more (4 MB: twice this machine's L2
in all), in calls whose x, filters and result hold ``STREAM_MIN_FOOTPRINT``
or more together (12 MB), are written past the caches: the tiles that go to y itself
store their last pass with the nontemporal hint (``_numba.stream_tile``),
so the lines go to memory whole, without first being read into the
cache, and without evicting the operands; their sums start at the bias,
so nothing reads y back. That needs whole 64-byte lines: y's rows
64-byte aligned where a tile starts, which fresh results are
(``_fast._memory.aligned_empty``) and an ``out=`` array may not be
(then the tiles are stored as usual). One core, a tile of K = 27 into
448 rows of 224 pixels x 64 channels (VGG's first layer): 4.8-5.1 ms
stored as usual into a 25.7 MB result, 3.8-4.0 streamed, 3.4-3.6 into
one row kept in L2. 2 threads, fresh processes alternated, 6 pairs,
streamed / as usual: 2x224x224x3 -> 64 3x3 0.64, 1x1 8x112x112x32 -> 64
0.70, 8x56x56x256 -> 64 0.92, 8x56x56x64 -> 64 0.96, 8x28x28x128 -> 512
0.92; the ResNet-50 bottleneck 8x56x56x256 -> 64 -> 64 (3x3) -> 256, the
next layer reading the streamed result, 0.89. The W @ X route's tiles
(NCHW 1x1) start at a bias per row and stream alike, where a plane is
whole lines: 8x56x56x64 -> 256 0.86, 8x112x112x32 -> 64 0.83,
8x28x28x128 -> 512 0.87, 8x56x56x256 -> 64 0.94 (its bias pass, which
read y back, is gone too: 8x14x14x256 -> 1024, 1.6 MB, 0.98). Units
that store into NCHW memory through their buffer (``_store``) stream its
runs of OUT pixels of a channel where the planes' rows are whole lines
(ResNet's first layer, 8x224x224x3 -> 64 7x7 stride 2 into 112 x 112
planes, one Zen3 core, 3 alternated pairs: fastest calls 28.4-28.8 ms
against 31.2-31.6, medians 0.73-0.96).

Smaller calls keep y in the caches: the last-level cache (32 MB on the
project's machines, shared with the VM's neighbours) holds their whole
working set, so the next call, or the next layer, finds y there, and
stores into lines already cached cost no memory traffic. One Zen3
core (AVX2), fresh processes alternated, 3 pairs, streamed / as usual
(medians): the seed's 128x28x28x3 -> 16 (6.4 MB of y, 7.6 MB in all,
tiles into y row by row) 1.29-1.51; 8x56x56x64 -> 64 1x1 (12.8 MB in
all) 0.87-1.02, 8x28x28x128 -> 512 1x1 (16 MB) 0.92-1.16, and
8x112x112x32 -> 64 1x1 (38.5 MB) 0.76-0.94.

The K axis is walked in chunks of K_CHUNK values, so that a tile's patch
rows stay in L1 and the block's patches in L2 while the channel blocks
stream past. (Shorter chunks, or runs of tiles cut so that a chunk of
their A rows holds at most 32-128 KB, measured no faster: one Zen3 core,
1x1 8x14x14x1024 -> 256, which runs at 67-70 GFLOP/s where 768 input
channels run at 81 and PyTorch at 84: K_CHUNK 128 / 192 / 256 / 512,
fastest calls 12.4 / 12.2 / 11.9-12.2 / 11.5-11.8 ms; runs cut at 16 /
32 / 64 / 128 KB or whole, 11.2-12.3 ms alike.) Gathered tiles whose
pixels all read padding for some kernel rows skip those rows of K (``_tile_kernel_rows``). A unit that owns whole
NHWC output rows of every channel sums its products into y itself, with
the bias (over padded rows, row by row); other units go through a buffer
and ``_store``.

Images are :class:`~numbaconv._kernels.convolution.Image` tuples (flat
data plus element steps), so NHWC and NCHW memory share one compiled
kernel. The same micro-kernel serves the filter gradient
(``conv2d_backward_filter_patch_gemm``): there the reduction runs over
pixels, with transposed patches times dy.
"""
import numpy as np
from numba import prange
from numba.extending import register_jitable

from .._numba import claimed_units, kernel, prefetch, register_tile, stream_tile, wide_register_file, workers
from .convolution import round_up

PIX = 8 if wide_register_file() else 5  # output pixels (rows of a) per register tile (module docstring)
OUT = 16  # output channels (columns of b) per panel: one 64-byte line of float32
PANELS = 2 if wide_register_file() else 1  # panels per register tile (module docstring)
K_CHUNK = 512  # reduction values per pass over the tiles
IN_PLACE_MIN_PIXELS = 128  # a unit's pixels, at the least, for its products to sum into y in place
ROW_DIRECT_MIN_OUT = 32  # padded-rows units into this many channels sum into y row by row, whatever OW
SPLIT_MAX_BLOCK = 1 << 17  # filter values per pass (512 KB of float32) for tiles to skip padding rows
PACK_ROWS = 16  # filter rows packed per work unit
FILL_CHANNELS = 8  # NCHW channels read together by the fills of padded rows (_fill_rows) and Winograd's blocks
STREAM_MIN_BYTES = 1 << 22  # results of this size on: tiles into y stored past the caches (module docstring),
STREAM_MIN_FOOTPRINT = 12 << 20  # in calls whose x, filters and result hold this many bytes together
# conv2d_patch_gemm's ``wk`` (its B operand): packed panels (P, K, OUT); an
# HWIO filter read in place (K, C_out / OUT, OUT); or the W @ X route's
# X[n] (N, K, columns), each unit packing its block of columns.
WK_PANELS, WK_HWIO, WK_COLUMNS = 0, 1, 2
# W @ X (conv2d_patch_gemm's w_at_x): register tiles per run over a panel
# of columns. The rows are Y[n]'s channels, a plane apart in memory, so a
# run stores into as many pages per panel as it has rows; a run of one
# tile streams the unit's panels from L2 once per tile. One core,
# 8x56x56x64 -> 256 NCHW forward time against runs of 4 tiles (32 rows):
# 1 tile 1.22, 2 tiles 1.08, 8 tiles 1.09, 16 tiles 1.29, all 32 about 2.4.
W_AT_X_RUN_TILES = max(1, 32 // PIX)
COLUMN_PACK_ROWS = 8  # rows of X[n] a block of the W @ X route's pack (_pack_columns)


@kernel(parallel=False)
def _gather_patches(a, x, n, oh0, n_pix, out_w, k_h, k_w, sh, sw, dh, dw, pt, pl):
    """a[p, (kh * KW + kw) * C + c] = x[n, ih, iw, c], or 0 where (ih, iw) is outside x.

    Pixel p is output ``(oh0 + p // out_w, p % out_w)``; it reads
    ``ih = oh * sh - pt + kh * dh``, ``iw = ow * sw - pl + kw * dw``. The
    rows of ``a`` past ``n_pix`` (the tile padding) are zeroed.
    """
    for p in range(n_pix):
        r = p // out_w
        _gather_patch(a[p], x, n, (oh0 + r) * sh - pt, (p - r * out_w) * sw - pl, k_h, k_w, dh, dw)
    for p in range(n_pix, a.shape[0]):
        for j in range(a.shape[1]):
            a[p, j] = 0


@kernel(parallel=False)
def _gather_patch(dst, x, n, ih0, iw0, k_h, k_w, dh, dw):
    """dst[(kh * KW + kw) * C + c] = x[n, ih0 + kh * dh, iw0 + kw * dw, c], or 0 outside x: one pixel's patch."""
    c_in = x.c
    run = k_w * c_in  # one kernel row of a patch
    data = x.data
    # Offsets are unsigned: a signed index carries Numba's negative-index
    # wraparound check, which keeps LLVM from vectorizing the copies (10x).
    for kh in range(k_h):
        ih = ih0 + kh * dh
        base = np.uint64(kh * run)
        if ih < 0 or ih >= x.h:
            for j in range(run):
                dst[base + np.uint64(j)] = 0
            continue
        src0 = n * x.n_step + ih * x.h_step
        if dw == 1 and iw0 >= 0 and iw0 + k_w <= x.w and x.c_step == 1 and x.w_step == c_in:
            # The whole kernel row is one contiguous run of NHWC memory.
            src = np.uint64(src0 + iw0 * c_in)
            for j in range(run):
                dst[base + np.uint64(j)] = data[src + np.uint64(j)]
            continue
        for kw in range(k_w):
            iw = iw0 + kw * dw
            col = base + np.uint64(kw * c_in)
            if iw < 0 or iw >= x.w:
                for c in range(c_in):
                    dst[col + np.uint64(c)] = 0
            else:
                src = np.uint64(src0 + iw * x.w_step)
                step = np.uint64(x.c_step)
                for c in range(c_in):
                    dst[col + np.uint64(c)] = data[src + np.uint64(c) * step]


@kernel(parallel=False)
def _tile_products(out, o_col, n_out, a, a_start, a_row, a_k, b, q_b, b_k_major, k0, k1, add, segments, seg_step,
                   seg_k, bias, bias_rows, stream, p_first, n_pix, pitch, skip):
    """out[p, o_col + q] (+)= sum(A_s[p, k] * B[k, q_b + q] for s < segments, for k0 + s * seg_k <= k < k1 + s * seg_k).

    ``a`` is flat, its rows ``a_row`` apart and its columns ``a_k``:
    segment s reads ``A_s[p, k] = a[a_start + s * seg_step + p * a_row + k
    * a_k]``. Every caller but one has ``a_k`` 1; the filter gradient of
    NHWC 1x1 layers reads x's pixels as A's columns (``a_row`` 1, ``a_k``
    C_in: ``conv2d_backward_filter_patch_gemm``). A (pixels, K) block of
    gathered patches is one segment with ``a_row = K``; rows may also
    overlap: the padded-rows forward reads padded rows of x in place, its
    pixels a few channels apart, a kernel row per segment (``seg_k`` its
    values, the next kernel row ``seg_step`` further on). All segments of a tile
    sum in its registers: three kernel rows of 3 channels, K = 9 each,
    stored and loaded back between them ran at 73 GFLOP/s against 92 for
    the tile over all 27 (one core, 228 x 64 outputs).

    Adds to ``out`` when ``add``, else overwrites it: the first pass of a
    reduction starts its sums at ``bias[q]`` (or zero, for an empty
    ``bias``) instead of loading them (and nobody zeroes ``out``).
    (Measured before the tile's loads and stores went through rows and
    unsigned columns, when loading it cost as much as 16 steps of k: one
    core, 258 x 64 x 64 products, 68 GFLOP/s loading, 81 starting at
    zero.) ``bias`` holds a value per column of ``out`` from ``o_col``
    (a slice of the layer's bias, or none), or with ``bias_rows`` a value
    per row of ``out`` (the W @ X route's bias, one per output channel).

    ``stream``: the tiles are stored past the caches (``stream_tile``;
    every row of ``out`` 64-byte aligned at ``o_col``, the tiles' columns
    whole lines).

    The tiles are ``n_pix`` pixels (a multiple of PIX), pixel i stored
    in row ``g - skip * (g // pitch)`` of ``out``, ``g = p_first + i``:
    with ``skip`` 0, row p_first + i; else the padded rows' pixels (rows
    of ``pitch`` pixels, each with ``skip`` past the outputs) land in
    y's rows of ``pitch - skip`` (``_unit_products``). A pixel past a
    row's outputs so lands on the next row's first (``skip`` at most the
    row's outputs), before that one's own value: right only when a single
    pass stores both (not ``add``), and not with ``stream`` (``pitch`` at
    least PIX: a tile wraps once at most).

    ``out`` is C-contiguous; the
    tiles write its columns ``o_col`` to ``o_col + n_out`` (``n_out`` a
    multiple of OUT: all of a buffer's, or a unit's block of the rows of
    y written in place). A holds every row of ``out``, tile padding
    included. ``b``
    holds B in panels: ``b[j, k, i] = B[k, j * OUT + i]`` (module
    docstring), so a tile's OUT columns over the k range are one
    contiguous run; ``q_b`` is a multiple of OUT. All three are
    C-contiguous arrays: a block of ``b`` is passed as its offset, because a
    sliced view would be a second array type, compiled to strided loads.
    With ``b_k_major``, ``b[k, j, i] = B[k, j * OUT + i]`` instead: an HWIO
    filter read in place (``conv2d_patch_gemm``'s WK_HWIO), a
    tile's OUT columns then one row of ``b`` apart for each k.
    """
    step = np.uint64(a_row)
    k_step = np.uint64(a_k)
    with_bias = bias.size > 0 and not bias_rows  # (a value per column; per row: row_bias)
    row_bias = bias.size > 0 and bias_rows
    # Row k of panel j is b[j, k], or b[k, j] (k-major): b[j * j0 + k * k0_, j * j1 + k * k1_].
    one, none = np.uint64(1), np.uint64(0)
    k_on_0, k_on_1 = (one, none) if b_k_major else (none, one)
    q0 = 0
    while q0 < n_out:
        j = np.uint64((q_b + q0) // OUT)
        c0 = np.uint64(o_col + q0)
        bias_1, bias_2 = bias[q0:q0 + OUT], bias[q0 + OUT:q0 + 2 * OUT]  # (empty without a bias)
        if PANELS == 2 and out.itemsize == 4 and q0 + 2 * OUT <= n_out:
            # Two panels a tile, float32 only (module docstring): the tile of one panel,
            # written out twice over the same broadcasts. (Written as one
            # (PIX, 2 * OUT) tile, its loads and stores stayed scalar: K =
            # 27 at 124 GFLOP/s against 234.)
            c2 = c0 + np.uint64(OUT)
            for p in range(0, n_pix, PIX):
                acc = register_tile(out, PIX, OUT)
                acc2 = register_tile(out, PIX, OUT)
                xs = register_tile(out, 1, PIX)[0]
                for r in range(PIX):
                    row_out = out[p_first + p + r if add else 0]  # (unmapped: add never maps)
                    for q in range(OUT):
                        acc[r, q] = (row_out[c0 + np.uint64(q)] if add else bias_1[q] if with_bias
                                     else bias[p + r] if row_bias else 0)
                for r in range(PIX):
                    row_out = out[p_first + p + r if add else 0]
                    for q in range(OUT):
                        acc2[r, q] = (row_out[c2 + np.uint64(q)] if add else bias_2[q] if with_bias
                                      else bias[p + r] if row_bias else 0)
                for seg in range(segments):
                    kb = k0 + seg * seg_k
                    i0 = j * k_on_1 + np.uint64(kb) * k_on_0
                    i1 = j * k_on_0 + np.uint64(kb) * k_on_1
                    s0 = np.uint64(a_start + seg * seg_step + p * a_row + kb * a_k)
                    for k in range(k1 - k0):
                        off = s0 + np.uint64(k) * k_step
                        for r in range(PIX):
                            xs[r] = a[off + np.uint64(r) * step]
                        u0, u1 = i0 + np.uint64(k) * k_on_0, i1 + np.uint64(k) * k_on_1
                        row = b[u0, u1]
                        for q in range(OUT):
                            v = row[q]
                            for r in range(PIX):
                                acc[r, q] += xs[r] * v
                        row = b[u0 + k_on_1, u1 + k_on_0]
                        for q in range(OUT):
                            v = row[q]
                            for r in range(PIX):
                                acc2[r, q] += xs[r] * v
                if stream:
                    stream_tile(out, p_first + p, c0, acc, PIX, OUT)
                    stream_tile(out, p_first + p, c2, acc2, PIX, OUT)
                else:
                    row0, cut = _tile_rows(p_first + p, pitch, skip)
                    for r in range(PIX):
                        row_out = out[_out_row(row0, r, cut, skip)]
                        for q in range(OUT):
                            row_out[c0 + np.uint64(q)] = acc[r, q]
                    for r in range(PIX):
                        row_out = out[_out_row(row0, r, cut, skip)]
                        for q in range(OUT):
                            row_out[c2 + np.uint64(q)] = acc2[r, q]
            q0 += 2 * OUT
            continue
        for p in range(0, n_pix, PIX):
            acc = register_tile(out, PIX, OUT)
            xs = register_tile(out, 1, PIX)[0]
            # Rows and an unsigned column: ``out[p, q0 + q]`` (a signed
            # index that might wrap around) compiled to 12 gathers here and
            # 96 scalar stores below, about 180 cycles a tile (30% of the
            # products at K = 64).
            for r in range(PIX):
                row_out = out[p_first + p + r if add else 0]
                for q in range(OUT):
                    acc[r, q] = (row_out[c0 + np.uint64(q)] if add else bias_1[q] if with_bias
                                     else bias[p + r] if row_bias else 0)
            for seg in range(segments):
                # Unsigned rows of B and offsets into a: a possibly
                # negative index keeps Numba's
                # wraparound branch in the loop, and with it a store of
                # every accumulator to the stack per iteration (measured 60
                # vs 100 GFLOP/s).
                kb = k0 + seg * seg_k
                i0 = j * k_on_1 + np.uint64(kb) * k_on_0
                i1 = j * k_on_0 + np.uint64(kb) * k_on_1
                s0 = np.uint64(a_start + seg * seg_step + p * a_row + kb * a_k)
                for k in range(k1 - k0):
                    row = b[i0 + np.uint64(k) * k_on_0, i1 + np.uint64(k) * k_on_1]
                    # The PIX values of a's column k, then the update with
                    # the loop over rows innermost: LLVM unrolls that loop
                    # and vectorizes the one over q, as if the rows were
                    # written out (same speed at 6 rows). With the rows
                    # outermost, the update stayed scalar (12 GFLOP/s).
                    off = s0 + np.uint64(k) * k_step
                    for r in range(PIX):
                        xs[r] = a[off + np.uint64(r) * step]
                    for q in range(OUT):
                        v = row[q]
                        for r in range(PIX):
                            acc[r, q] += xs[r] * v
            if stream:
                stream_tile(out, p_first + p, c0, acc, PIX, OUT)
            else:
                # One row per loop: stores to all PIX rows in one loop would need
                # more runtime alias checks than LLVM allows, and stay scalar.
                row0, cut = _tile_rows(p_first + p, pitch, skip)
                for r in range(PIX):
                    row_out = out[_out_row(row0, r, cut, skip)]
                    for q in range(OUT):
                        row_out[c0 + np.uint64(q)] = acc[r, q]
        q0 += OUT


@register_jitable
def _on_lines(data, start, step):
    """Whether every ``data[start + i * step]`` starts a 64-byte line: runs that ``stream_tile`` can store."""
    size = data.itemsize
    return (step * size) % 64 == 0 and (data.ctypes.data + start * size) % 64 == 0


@register_jitable
def streams(x_size, wk_size, y_size, itemsize):
    """Whether ``conv2d_patch_gemm`` stores its tiles into y past the caches, by its operands' sizes (module docstring).

    A large result (``STREAM_MIN_BYTES``) of a call whose x, filter
    operand and result together (``STREAM_MIN_FOOTPRINT``) would not stay
    in the last-level cache.
    """
    return (y_size * itemsize >= STREAM_MIN_BYTES
            and (x_size + wk_size + y_size) * itemsize >= STREAM_MIN_FOOTPRINT)


@register_jitable
def _tile_rows(g, pitch, skip):
    """(row0, cut) of the tile from pixel g (``_tile_products``): its rows from cut on are the next padded row's."""
    if skip == 0:
        return g, PIX
    wraps = g // pitch
    return g - skip * wraps, (wraps + 1) * pitch - g


@register_jitable
def _out_row(row0, r, cut, skip):
    """The row of ``out`` of a tile's row r (``_tile_products``): row0 + r, less skip from row ``cut`` on."""
    return row0 + r - (skip if r >= cut else 0)


@kernel
def conv2d_patch_gemm(x, wk, b, y, k_h, k_w, rows_per_unit, out_per_unit, sh, sw, dh, dw, pt, pl,
                      w_at_x, padded_rows, across_images, wk_layout):
    """y[n, oh, ow, co] = b[co] + sum(patch(n, oh, ow)[k] * wk[k, co] for k < K).

    ``x`` and ``y`` are Images; ``wk`` is the (K, round_up(C_out, OUT))
    filter matrix in panels (module docstring), zero past C_out
    (``wk_layout`` WK_PANELS); patches as ``_gather_patches``.

    ``w_at_x``: an NCHW 1x1 layer computed as Y[n] = W @ X[n] (+ b), the
    roles of pixels and channels swapped (``numbaconv._fast.convolution``).
    x is then W, one row of C_out "pixels" for every image (``n_step``
    0); y holds the Y[n], one row of C_out "pixels" of H * W "channels"
    each; b[oh * OW + ow] replaces b[co] (a bias per row of Y[n]); and
    ``wk`` holds not packed filters but the X[n] themselves, (N, C_in, H
    * W), each unit packing its block of columns of X[n] into panels
    (``_pack_columns``; WK_COLUMNS: reading X[n]'s rows in place instead,
    k-major as an HWIO filter, where the plane is whole panels, measured
    slower: 8x56x56x64 -> 64, 3 alternated pairs, fastest calls on one
    Zen3 core 3.75-4.29 ms against 3.43-3.80, on 2 threads 1.92-2.24
    against 1.57-1.71), or (WK_PANELS) the columns of one
    image already in panels: an NCHW batch-1 layer as W @ patches, x the
    OIHW filter's rows and ``wk`` the patches (``pack_patch_columns``).

    A work unit (claimed: ``_numba.claim_unit``) is the output rows
    ``oh0 <= oh < oh0 + rows_per_unit`` of image n for the channels
    ``co0 <= co < co0 + out_per_unit`` (a multiple of OUT), with its own
    scratch.

    With ``padded_rows``, a stride-1 undilated call reads its patches in
    place from padded rows of x: each unit copies the input rows it reads
    into a zero-padded NHWC block of its own (``_fill_rows``: OW + KW - 1
    pixels per row; a few KB, in parallel, where a serial padded copy of
    the whole x used to precede the kernel). Over the unit's rows taken as
    one run of pixels (of which the last KW - 1 of each row are not
    outputs), the entries of one kernel row (kw, ci) of consecutive pixels
    are C_in apart, so each kernel row is a product whose A rows are the
    block itself (see ``_tile_products``). The columns past OW are
    computed and not stored: ``(OW + KW - 1) / OW`` times the products,
    and no gather of K values per pixel (the driver's rule,
    ``numbaconv._plan.padded_rows``, weighs the two). An unpadded 1x1
    filter over NHWC memory (``x.w == OW``) reads x itself, with no copy
    and no waste.

    With WK_HWIO, ``wk`` is the HWIO filter itself, read in place
    as (K, C_out / OUT, OUT) (``_tile_products``' ``b_k_major``; C_out a
    multiple of OUT): for calls whose units each own all the pixels
    (``numbaconv._plan.filters_in_place``), which read each filter value
    once, where packing it would read and write it once more.

    With ``across_images`` (never with ``padded_rows``), ``rows_per_unit``
    counts output positions instead: a unit owns PIX images (from image
    ``PIX * i``) at that many consecutive positions ``oh * OW + ow``, a
    register tile being one position in its PIX images
    (``_unit_across_images``).
    """
    k_major = wk_layout == WK_HWIO
    k_len = wk.shape[0] if k_major else wk.shape[1]
    c_pad = (round_up(wk.shape[2], OUT) if wk_layout == WK_COLUMNS else wk.shape[1] * OUT if k_major
             else wk.shape[0] * OUT)
    row_blocks = (y.h + rows_per_unit - 1) // rows_per_unit
    images = y.n
    if across_images:  # blocks of rows_per_unit output positions, PIX images a unit
        row_blocks = (y.h * y.w + rows_per_unit - 1) // rows_per_unit
        images = (y.n + PIX - 1) // PIX
    out_blocks = (c_pad + out_per_unit - 1) // out_per_unit
    by_rows = padded_rows and sh == 1 and sw == 1 and dh == 1 and dw == 1
    # x itself is the block: an unpadded 1x1 filter over NHWC memory.
    in_x = (by_rows and k_h == 1 and k_w == 1 and pt == 0 and pl == 0 and x.c_step == 1
            and x.w_step == x.c and x.h_step == x.w * x.c and x.w == y.w)
    cols = y.w + k_w - 1  # pixels per row of a unit's padded block
    run = k_w * x.c  # one kernel row of a patch
    rows_inside = pt <= 0 and (y.h - 1) * sh - pt + (k_h - 1) * dh < x.h  # no kernel row reads padding
    stream = streams(x.data.size, wk.size, y.data.size, y.data.itemsize)
    units = images * row_blocks * out_blocks
    claims = np.zeros(1, np.int64)
    for _ in prange(workers(units)):
        for u in claimed_units(claims, units):
            ob = u % out_blocks
            rest = u // out_blocks
            n = rest // row_blocks
            co0 = ob * out_per_unit
            n_out = min(out_per_unit, c_pad - co0)
            if across_images:
                _unit_across_images(x, wk, b, y, n * PIX, (rest - n * row_blocks) * rows_per_unit, rows_per_unit, co0,
                                    n_out, k_h, k_w, sh, sw, dh, dw, pt, pl, stream)
                continue
            oh0 = (rest - n * row_blocks) * rows_per_unit
            rows = min(rows_per_unit, y.h - oh0)
            start = n * x.n_step + oh0 * x.h_step
            # By rows: the tile-padding rows past the unit's pixels read the
            # next pixels; their products are never stored. A padded block has
            # room for them (KW + PIX pixels past its rows); near the end of x
            # they would read past it, and that unit copies its rows too.
            a_rows = round_up((rows - 1) * cols + y.w, PIX)
            if in_x and start + (a_rows - 1) * x.c + run <= x.data.size:
                a, a_start, a_row, pitch = x.data, start, x.c, cols
                segments, seg_len, seg_step = k_h, run, x.h_step - run
            elif by_rows:
                block = np.zeros(((rows + k_h - 1) * cols + k_w + PIX) * x.c, wk.dtype)
                _fill_rows(block, x, n, oh0 - pt, rows + k_h - 1, cols, pl)
                a, a_start, a_row, pitch = block, np.int64(0), x.c, cols
                segments, seg_len, seg_step = k_h, run, cols * x.c - run
            else:
                a_rows = round_up(rows * y.w, PIX)
                patches = np.empty((a_rows, k_len), wk.dtype)
                _gather_patches(patches, x, n, oh0, rows * y.w, y.w, k_h, k_w, sh, sw, dh, dw, pt, pl)
                a, a_start, a_row, pitch = patches.reshape(-1), np.int64(0), k_len, y.w
                segments, seg_len, seg_step = 1, k_len, 0
            panels, q_b = (_pack_columns(wk[n], co0, n_out), np.int64(0)) if wk_layout == WK_COLUMNS else (wk, co0)
            # In place: when the unit owns whole NHWC output rows with every
            # channel (C_out a multiple of OUT, and no columns past OW), its
            # block of y is a C-contiguous (pixels, C_out) matrix: the products
            # go to y itself, with the bias, and nothing is copied out. Only
            # the last pixels past a multiple of PIX go through the buffer.
            # (One core, alternated with the buffer for every pixel: 1x1
            # 8x112x112x32 -> 64 0.85, 8x56x56x64 -> 256 0.97. Units of 64
            # pixels, LeNet's 64x12x12x6 -> 16 5x5: 1.03-1.07, the second call
            # of the products costing more than the copy saves.) The W @ X
            # route's unit owns a block of columns of every row of Y[n] (a
            # plane's pixels), which it writes in place the same way.
            whole_rows = (y.c_step == 1 and co0 + n_out <= y.c
                          and (w_at_x or (co0 == 0 and n_out == y.c and y.w_step == y.c)))
            every = by_rows or rows_inside or min(k_len, K_CHUNK) * n_out > SPLIT_MAX_BLOCK
            # Padded rows mapped onto y's rows (the else branch below).
            # (At most OW past a row's outputs, which then land within the
            # next row: a unit's last rows would put them in the next unit's.)
            mapped = by_rows and PIX <= pitch <= 2 * y.w and run <= K_CHUNK
            in_place = (whole_rows and (pitch == y.w or mapped) and y.h_step == y.w * y.w_step
                        and (w_at_x or rows * y.w >= IN_PLACE_MIN_PIXELS))
            if (whole_rows and pitch != y.w and y.w >= PIX
                    and (round_up(y.w, PIX) < pitch or n_out >= ROW_DIRECT_MIN_OUT
                         or (round_up(y.w, PIX) == pitch and not in_place))):
                # Row by row: the padded rows' columns past OW are not outputs,
                # so each output row's first OW // PIX * PIX pixels are tiles
                # into y itself, and its last OW % PIX pixels one tile through
                # the buffer (with the columns past OW, never stored). That
                # computes round_up(OW, PIX) pixels a row instead of OW + KW -
                # 1: for narrow outputs it takes no more products, or the copy
                # it saves is the larger (one core, CPU time, this / all
                # through the buffer: 2x224x224x3 -> 64 0.79, 2x112x112x3 -> 64
                # 0.89, 8x56x56x3 -> 16 0.89, 4x60x60x3 -> 64 0.95, 8x28x28x3
                # -> 64 0.98-1.01; the seed's 32x28x28x3 -> 16, 32 pixels a row
                # for 30: 1.20, so it keeps the buffer). Where it computes as
                # many pixels as the padded rows (round_up(OW, PIX) = OW + KW -
                # 1), the units whose tiles map onto y's rows take those instead,
                # with no buffer, no store pass and one call of the products
                # (the seed's layer, 5-pixel tiles, one Zen3 core, fresh
                # processes alternated, 4 pairs, mapped / row by row: 0.50-0.86).
                n_direct = y.w // PIX * PIX
                parts, part_rows = rows, PIX if n_direct < y.w else 0
                out = np.empty((rows * part_rows, n_out), wk.dtype)
                # The buffer's rows r * PIX on are row r's pixels from n_direct on.
                store_pitch, store_first, store_col0, skip = PIX, np.int64(0), n_direct, np.int64(0)
            else:
                # Padded rows in place too, when a single pass over K stores the
                # tiles: a tile's pixels past a row's outputs are stored on the
                # next row's first ones, before their own values (_tile_products).
                # 2 threads, fresh processes alternated, 5 pairs, against the
                # buffer: the seed's 128x28x28x3 -> 16 3x3 (32 pixels a row for
                # 30 row by row, a tenth more products) 0.88-0.90, at batch 1
                # 0.97.
                # (the unit's pixels before its last row's last output, in whole tiles)
                n_direct = ((rows - 1) * pitch + y.w) // PIX * PIX if in_place else 0
                skip = pitch - y.w if in_place else np.int64(0)
                out = np.empty((a_rows - n_direct, n_out), wk.dtype)
                parts, part_rows = 1, out.shape[0]
                store_pitch, store_first, store_col0 = pitch, n_direct, np.int64(0)
            # One call site of the products for both: each site is a copy of
            # the register tile's code for LLVM to optimize (this kernel's cold
            # compile, float32: 5.3 s with two sites, 4.5 s with one).
            base = n * y.n_step + oh0 * y.h_step
            for part in range(parts):
                _unit_products(y, b, base + part * y.h_step, n_direct, out[part * part_rows:(part + 1) * part_rows],
                               a, a_start + part * pitch * a_row, a_row, panels, q_b, k_major, co0, segments, seg_len,
                               seg_step, run, every, rows * y.w, oh0, sh, dh, pt, x.h, k_h, w_at_x, stream, skip)
            _store(y, out, b, n, oh0, rows, store_pitch, co0, w_at_x, store_first, store_col0, stream)


@kernel(parallel=False)
def _unit_products(y, b, base, n_direct, out, a, a_start, a_row, wk, q_b, k_major, co0, segments, seg_len, seg_step,
                   run, every, n_pix, oh0, sh, dh, pt, in_h, k_h, w_at_x, stream, skip):
    """One work unit's products in ``conv2d_patch_gemm``: A @ wk's out.shape[1] columns from q_b, to y's from co0.

    ``wk`` in panels, or (``k_major``) an HWIO filter read in place, as ``_tile_products`` takes them.

    The unit's first ``n_direct`` pixels go to y itself (from ``base``,
    pixels ``y.w_step`` apart, each a run of channels), their sums started
    at the bias (the W @ X route's, one a row of Y[n], its pixels here);
    the rest to the buffer ``out``. With ``skip``, the unit's pixels
    are padded rows' (``OW + skip`` a row, the last ``skip`` no outputs),
    and the direct tiles store them into y's rows of OW as
    ``_tile_products`` maps them (a single pass over K, never streamed).
    A as ``_tile_products``, over
    ``segments`` segments of ``seg_len`` values of K, ``seg_step`` apart in
    ``a`` (kernel rows read in place), or one segment of gathered patches.
    With ``stream`` (a result larger than the caches,
    ``STREAM_MIN_BYTES``), the tiles into y store their last pass past the
    caches, when y's rows are 64-byte aligned (module docstring).
    """
    n_out = out.shape[1]
    out_w = y.w
    pitch = out_w + skip
    n_rows = n_pix if skip > 0 else n_direct  # (rows of y the direct tiles store into: all the unit's, mapped)
    direct_out = y.data[base:base + n_rows * y.w_step].reshape(n_rows, y.w_step)
    no_bias = b[:0]
    direct_bias = b[oh0 * out_w:oh0 * out_w + n_direct] if w_at_x else b[co0:co0 + n_out]
    stream = stream and skip == 0 and _on_lines(y.data, base + co0, y.w_step)
    # Tiles go in runs that share their range of kernel rows: gathered
    # patches skip the kernel rows that fall on padding for every pixel
    # of a tile (whole rows of zeros: 7x7 pad 3 on 11 rows, 16% of the
    # products). Each run streams its block of filters again, so only
    # blocks that stay in L2 are split (one core, this rule / no runs:
    # 64x11x9x16 7x7 -> 32 0.89-0.94, 8x27x27x64 5x5 -> 192 0.96; with
    # 8x7x7x512 -> 512's 1 MB blocks split too, 1.05-1.08). A run stays
    # on one side of n_direct.
    n_tiles = (n_direct + out.shape[0]) // PIX
    t = np.int64(0)  # (a literal 0 would compile _tile_kernel_rows a second time)
    while t < n_tiles:
        kh_lo, kh_hi = _tile_kernel_rows(t, n_pix, out_w, oh0, sh, dh, pt, in_h, k_h, every)
        t_end = t + 1
        while (t_end < n_tiles and t_end * PIX != n_direct and (not w_at_x or t_end - t < W_AT_X_RUN_TILES)
               and (every or (kh_lo, kh_hi) == _tile_kernel_rows(t_end, n_pix, out_w, oh0, sh, dh, pt, in_h, k_h,
                                                                 every))):
            t_end += 1
        p0, p1 = t * PIX, t_end * PIX
        # (the tiles' first column: y's co0, or the buffer's 0)
        direct = p0 < n_direct
        tiles, col, first = ((direct_out, co0, p0) if direct
                             else (out[p0 - n_direct:p1 - n_direct], np.int64(0), np.int64(0)))
        # (The buffer's bias is added by _store. W @ X: a value per pixel of the tiles.)
        bias = (direct_bias[p0:p1] if w_at_x else direct_bias) if direct else no_bias
        k_lo, k_hi = (kh_lo * run, kh_hi * run) if segments == 1 else (0, seg_len)
        if k_lo >= k_hi:  # no tap inside x: the bias alone
            for pix in range(first, first + p1 - p0):
                row = tiles[pix - skip * (pix // pitch) if direct else pix, col:col + n_out]
                for q in range(n_out):
                    row[q] = (bias[pix - first] if w_at_x else bias[q]) if bias.size else 0
        # A segment is a kernel row (read in place) or the whole patch
        # (gathered), walked in chunks of at most K_CHUNK values; every
        # segment's chunk sums in the tile's registers (see _tile_products).
        # A's offset moves by seg_step per segment, so that k indexes wk's
        # rows throughout. (Summed onto y filled with the bias first, the
        # in-place tiles took longer: one Zen5 core, 8 x 32 tiles, 1x1
        # 8x112x112x32 -> 64 and 8x56x56x64 -> 256 1.19, 8x56x56x64 -> 64
        # 1.05, LeNet's 64x12x12x6 -> 16 5x5 1.07, 8x28x28x256 -> 256 1.02.)
        for c0 in range(k_lo, k_hi, K_CHUNK):
            _tile_products(tiles, col, n_out, a, a_start + p0 * a_row, a_row, np.int64(1), wk, q_b, k_major, c0,
                           min(c0 + K_CHUNK, k_hi), c0 > k_lo, segments, seg_step, seg_len, bias, w_at_x,
                           direct and stream and c0 + K_CHUNK >= k_hi, first, p1 - p0, pitch,
                           skip if direct else np.int64(0))
        t = t_end


@kernel(parallel=False)
def _unit_across_images(x, wk, b, y, n0, pos0, positions, co0, n_out, k_h, k_w, sh, sw, dh, dw, pt, pl, stream):
    """One work unit of ``conv2d_patch_gemm``'s ``across_images`` mode: PIX images at ``positions`` output positions.

    Output positions ``pos0 <= oh * OW + ow < pos0 + positions`` of images
    ``n0 <= n < n0 + PIX``, channels ``co0`` to ``co0 + n_out``. A register
    tile is one position in PIX images, so its pixels share their taps
    that read inside x: a rectangle of kernel rows and columns
    (``taps_inside``), whose kernel rows are the tile's segments of K,
    each a run of columns. The products skip every tap that reads padding
    (on small planes with large kernels, a third of them: 7x7 pad 3 on
    11 x 9); the rows past the last image are tile padding, zeros, not
    stored. Patches gathered as ``_gather_patches``' rows; the sums go
    through a buffer, stored with the bias.
    """
    n_img = min(PIX, y.n - n0)
    n_pos = min(positions, y.h * y.w - pos0)
    k_len = wk.shape[1]
    run = k_w * x.c  # one kernel row of a patch
    # A whole tile of NHWC images, undilated along w, is read in place: a
    # kernel row's taps inside x are one run of x[n] for every image,
    # images n_step apart (one call of the products per position).
    in_place = n_img == PIX and dw == 1 and x.c_step == 1 and x.w_step == x.c
    if in_place:
        flat = x.data
    else:
        a = np.empty((n_pos * PIX, k_len), wk.dtype)
        for i in range(n_pos):
            oh = (pos0 + i) // y.w
            ow = pos0 + i - oh * y.w
            for j in range(PIX):
                if j < n_img:
                    _gather_patch(a[i * PIX + j], x, n0 + j, oh * sh - pt, ow * sw - pl, k_h, k_w, dh, dw)
                else:
                    a[i * PIX + j, :] = 0
        flat = a.reshape(-1)
    out = np.empty((n_pos * PIX, n_out), wk.dtype)
    # Gathered, runs of positions with the same taps inside x share each call.
    i = np.int64(0)
    while i < n_pos:
        taps = _position_taps(pos0 + i, y.w, x.h, x.w, k_h, k_w, sh, sw, dh, dw, pt, pl)
        i_end = i + 1
        while not in_place and i_end < n_pos and _position_taps(pos0 + i_end, y.w, x.h, x.w, k_h, k_w, sh, sw,
                                                                dh, dw, pt, pl) == taps:
            i_end += 1
        h_lo, h_hi, w_lo, w_hi = taps
        tiles = out[i * PIX:i_end * PIX]
        k0, k1 = h_lo * run + w_lo * x.c, h_lo * run + w_hi * x.c
        if in_place:
            # Tap (kh, kw, c) of image n0 + p, at b's row k = kh * run + kw * C + c, is
            # x.data[a_start + p * n_step + (kh - h_lo) * seg_step + k].
            oh = (pos0 + i) // y.w
            seg_step = dh * x.h_step - run
            a_start = (n0 * x.n_step + (oh * sh - pt) * x.h_step + ((pos0 + i - oh * y.w) * sw - pl) * x.c
                       + h_lo * seg_step)
            a_row = x.n_step
        else:
            a_start, a_row, seg_step = i * PIX * k_len, k_len, np.int64(0)
        if h_lo >= h_hi or k0 >= k1:
            tiles[:, :] = 0  # no tap inside x: the bias alone
        else:
            for c0 in range(k0, k1, K_CHUNK):
                # (No literal 0 or False: a second compile of the tile.)
                _tile_products(tiles, np.int64(0), n_out, flat, a_start, a_row, np.int64(1), wk, co0, c0 < 0, c0,
                               min(c0 + K_CHUNK, k1), c0 > k0, h_hi - h_lo, seg_step, run, b[:0], c0 < 0, c0 < 0,
                               np.int64(0), tiles.shape[0], np.int64(1), np.int64(0))
        i = i_end
    n_valid = min(n_out, y.c - co0)
    bias = b[co0:co0 + n_valid]
    c_step = np.uint64(y.c_step)
    if y.c_step != 1 and y.w_step == 1 and y.h_step == y.w:
        # NCHW planes: the unit's positions are one run of each image's
        # plane of each channel, stored as such, and runs of whole lines
        # past the caches with ``stream``. (A position at a time, each
        # image's C values a plane apart, the 8 x 64 planes' lines written
        # in turn outgrew L1. ResNet's first layer, 8x224x224x3 -> 64 7x7
        # stride 2, NCHW, 2 threads, fresh processes alternated, 3-4 pairs:
        # 15.0-15.2 ms that way, 13.9-14.0 in runs, 12.0-12.3 streamed;
        # NHWC 9.6-9.9.)
        lines = (stream and pos0 % OUT == 0 and _on_lines(y.data, n0 * y.n_step + co0 * y.c_step + pos0, y.c_step)
                 and _on_lines(y.data, 0, y.n_step))
        streamed = n_pos // OUT * OUT if lines else 0  # (the run's first positions, whole lines)
        line = register_tile(out, 1, OUT)
        for j in range(n_img):
            for q in range(n_valid):
                start = np.uint64((n0 + j) * y.n_step + (co0 + q) * y.c_step + pos0)
                for i0 in range(0, streamed, OUT):
                    for i in range(OUT):
                        line[0, i] = out[(i0 + i) * PIX + j, q] + bias[q]
                    stream_tile(y.data, 0, start + np.uint64(i0), line, 1, OUT)
                dst = y.data[start:start + np.uint64(n_pos)]
                for i in range(streamed, n_pos):
                    dst[i] = out[i * PIX + j, q] + bias[q]
        return
    for i in range(n_pos):
        oh = (pos0 + i) // y.w
        ow = pos0 + i - oh * y.w
        for j in range(n_img):
            src = out[i * PIX + j]
            pix = np.uint64((n0 + j) * y.n_step + oh * y.h_step + ow * y.w_step + co0 * y.c_step)
            if y.c_step == 1:  # (a slice: vector stores)
                dst = y.data[pix:pix + np.uint64(n_valid)]
                for q in range(n_valid):
                    dst[q] = src[q] + bias[q]
            else:
                for q in range(n_valid):
                    y.data[pix + np.uint64(q) * c_step] = src[q] + bias[q]


@kernel(parallel=False)
def _position_taps(pos, out_w, in_h, in_w, k_h, k_w, sh, sw, dh, dw, pt, pl):
    """(kh_lo, kh_hi, kw_lo, kw_hi): the kernel rows and columns that read inside x from output position ``pos``."""
    oh = pos // out_w
    ow = pos - oh * out_w
    h_lo, h_hi = taps_inside(oh, oh, sh, dh, pt, in_h, k_h)
    w_lo, w_hi = taps_inside(ow, ow, sw, dw, pl, in_w, k_w)
    return h_lo, h_hi, w_lo, w_hi


@kernel
def pack_patch_columns(x, panels, n, out_h, out_w, k_h, k_w, sh, sw, dh, dw, pt, pl):
    """panels[p // OUT, k, p % OUT] = patch(n, p // out_w, p % out_w)[k], entries k in (ci, kh, kw) order.

    Image n's patches as the columns of a (K, OH * OW) matrix in panels,
    the B operand of ``conv2d_patch_gemm``'s W @ patches (the entries in
    an OIHW filter's order); zero on padding and past the pixels. One
    prange iteration per input channel. For a kernel tap, an output row's
    pixels are one run of x's row (strided by sw), stored as at most a
    run per panel they fall in: value by value, with the pixel's panel
    and lane found each time, the pack took 1 ns a value on one core
    (1x14x14x256 3x3: 0.5 ms, a third of the products' time).
    """
    flat = panels.reshape(-1)
    panel_step = np.uint64(panels.shape[1] * OUT)
    n_pix = out_h * out_w
    step = np.uint64(sw * x.w_step)
    for ci in prange(x.c):
        for kh in range(k_h):
            for kw in range(k_w):
                at = np.uint64(((ci * k_h + kh) * k_w + kw) * OUT)  # row k of panel 0
                off = kw * dw - pl  # iw = ow * sw + off
                ow_lo, ow_hi = outputs_inside(off, sw, x.w, out_w)
                for oh in range(out_h + 1):
                    # Pixels [p0, p1) of the row, the run [q0, q1) of them inside x;
                    # the row past the last: the panels' padding pixels.
                    ih = oh * sh - pt + kh * dh
                    p0, p1 = (oh * out_w, oh * out_w + out_w) if oh < out_h else (n_pix, panels.shape[0] * OUT)
                    q0, q1 = (p0 + ow_lo, p0 + ow_hi) if oh < out_h and 0 <= ih < x.h else (p1, p1)
                    src = np.uint64(n * x.n_step + ih * x.h_step + ci * x.c_step + (ow_lo * sw + off) * x.w_step
                                    if q0 < q1 else 0)
                    q = p0
                    while q < p1:
                        # The pixels q.. of one panel: zeros before q0, x's values up to q1, zeros after.
                        end = min(p1, (q // OUT + 1) * OUT)
                        dst = np.uint64(q // OUT) * panel_step + at + np.uint64(q % OUT)
                        a, b = min(max(q0, q), end), min(max(q1, q), end)
                        for t in range(a - q):
                            flat[dst + np.uint64(t)] = 0
                        run = np.uint64(a - q)
                        if b > a:  # (a panel wholly before q0 has a < q0)
                            first = src + np.uint64(a - q0) * step
                            if step == 1:  # (a constant step: vector copies)
                                for t in range(b - a):
                                    flat[dst + run + np.uint64(t)] = x.data[first + np.uint64(t)]
                            else:
                                for t in range(b - a):
                                    flat[dst + run + np.uint64(t)] = x.data[first + np.uint64(t) * step]
                        for t in range(b - q, end - q):
                            flat[dst + np.uint64(t)] = 0
                        q = end


@kernel(parallel=False)
def _pack_columns(m, col0, n_cols):
    """Columns col0 <= col < col0 + n_cols of the matrix ``m``, in panels: ``[j, k, i] = m[k, col0 + j * OUT + i]``.

    Zero past m's columns; ``n_cols`` is a multiple of OUT. In blocks of
    COLUMN_PACK_ROWS rows, panel by panel: each panel's rows of the block are
    one run of the result. The rows of ``m`` are X[n]'s channel planes
    (the W @ X route), so each row's block of columns is a short run far
    from the next row's, which the hardware prefetchers do not foresee:
    each read asks for the same columns COLUMN_PACK_ROWS rows further down
    (``_numba.prefetch``). One core, every unit's pack of 8 images,
    blocks of 448 columns, against row by row over all panels without
    prefetch: 256 x 3136 (8x56x56x256 -> 64) 2.07-2.11 ms against
    4.8-5.1, 512 x 784 0.96 against 2.5, 32 x 12544 1.24 against 2.08;
    blocks of 8 rows alone 3.1-3.3 ms on the first; blocks of 4, 16 or 32
    rows within 6% of 8, except 32 x 12544 at 16 rows: 1.61.
    """
    panels = np.empty((n_cols // OUT, m.shape[0], OUT), m.dtype)
    k_n = m.shape[0]
    for k0 in range(0, k_n, COLUMN_PACK_ROWS):
        for j in range(n_cols // OUT):
            c = np.uint64(col0 + j * OUT)
            cols = min(OUT, m.shape[1] - col0 - j * OUT)
            for k in range(k0, min(k0 + COLUMN_PACK_ROWS, k_n)):
                dst = panels[j, k]
                src = m[k]
                prefetch(m[min(k + COLUMN_PACK_ROWS, k_n - 1)], c)
                if cols == OUT:  # (a constant trip count: vector copies)
                    for i in range(OUT):
                        dst[i] = src[c + np.uint64(i)]
                    continue
                for i in range(cols):
                    dst[i] = src[c + np.uint64(i)]
                for i in range(max(0, cols), OUT):
                    dst[i] = 0
    return panels


@kernel(parallel=False)
def _tile_kernel_rows(t, n_pix, out_w, oh0, sh, dh, pt, in_h, k_h, every):
    """(lo, hi): the kernel rows lo <= kh < hi that read inside x for some pixel of tile t (all when ``every``).

    The tile's pixels are ``t * PIX`` on of a unit's ``n_pix`` (rows of
    ``out_w`` from output row oh0); pixel rows past n_pix are padding.
    Kernel row kh of output row oh reads input row ``oh * sh - pt + kh *
    dh``; both bounds fall as oh grows, so the first row gives hi and the
    last lo.
    """
    if every:
        return 0, k_h
    return taps_inside(oh0 + t * PIX // out_w, oh0 + (min(t * PIX + PIX, n_pix) - 1) // out_w, sh, dh, pt, in_h,
                        k_h)


@register_jitable
def taps_inside(o_first, o_last, s, d, p, size, k):
    """(lo, hi): the taps lo <= i < hi that read inside an input axis of ``size`` for some output o_first..o_last.

    Tap i of output o reads ``o * s - p + i * d``; both bounds fall as o
    grows, so the first output gives hi and the last lo. (Plain Python for
    the rules of ``numbaconv._plan``, inlined into the kernels.)
    """
    lo = max(0, -((o_last * s - p) // d))  # ceil((p - o * s) / d)
    hi = min(k, -((o_first * s - p - size) // d))  # ceil((size + p - o * s) / d)
    return lo, max(lo, hi)


@register_jitable
def outputs_inside(off, s, size, n_out):
    """(lo, hi): the outputs lo <= o < hi of ``n_out`` whose input ``o * s + off`` lies inside an axis of ``size``.

    (A kernel tap's run of outputs along w: ``off`` is the tap's offset,
    ``kw * dw - pl``.) The inputs rise with o, so the outputs inside are
    one run, empty (lo = hi) when none is.
    """
    lo = min(n_out, (-off + s - 1) // s) if off < 0 else 0  # ceil(-off / s)
    return lo, max(lo, min(n_out, (size - 1 - off) // s + 1))


@kernel(parallel=False)
def _fill_rows(block, x, n, ih0, n_rows, cols, pl):
    """Rows ih0 <= ih < ih0 + n_rows of image n of x (an Image of either memory) into block, plain NHWC.

    block is zeros, ``cols`` pixels per row: x[n, ih, iw] lands at row ih
    - ih0, column iw + pl; rows outside x and columns outside it stay
    zero (a negative padding crops x).
    """
    c = x.c
    j0, j1 = max(0, pl), min(cols, pl + x.w)
    data = x.data
    w_step, c_step = np.uint64(x.w_step), np.uint64(x.c_step)
    for r in range(max(0, -ih0), min(n_rows, x.h - ih0)):
        # Unsigned offsets: a signed index keeps Numba's wraparound
        # check in the copy loop, and the loop scalar (one core,
        # 8x28x28x128 into 29 x 29 rows: 0.40 ms, 0.11 unsigned;
        # 8x56x56x64 into 58 x 58: 0.70, 0.25; from NCHW memory 1.11,
        # 0.77; 8x56x56x16: 0.41, 0.06, where NumPy's pad takes 0.08).
        src = np.uint64(n * x.n_step + (ih0 + r) * x.h_step + (j0 - pl) * x.w_step)
        dst = np.uint64((r * cols + j0) * c)
        if x.c_step == 1 and x.w_step == c:  # NHWC: the row is one run
            for v in range((j1 - j0) * c):
                block[dst + np.uint64(v)] = data[src + np.uint64(v)]
            continue
        if x.w_step == 1:
            # NCHW: FILL_CHANNELS channels at a time, pixel by pixel: the
            # group's lines of its planes' row stay in L1 for every pixel
            # of the row, whatever the planes' spacing. (All channels
            # pixel by pixel, each read went to another plane; on planes a
            # whole number of 4 KB pages apart, 32 x 32 or 64 x 64
            # float32, all in one set of the L1 cache. Channel by channel
            # along w, the writes went C apart, 4 KB for 1024 channels.)
            # 2 threads, NCHW forward, against all channels pixel by pixel,
            # fresh processes alternated, 2 pairs: 16x32x32x32 -> 16 5x5
            # 2.35-2.39 ms against 2.88, 128x32x32x16 -> 16 3x3 3.93-3.98
            # against 4.40-4.48, 8x64x64x16 -> 32 3x3 1.94-1.96 against
            # 2.01-2.12; 8x14x14x1024 -> 256 1x1 and 8x56x56x16 -> 32 alike.
            for g0 in range(0, c, FILL_CHANNELS):
                g1 = min(c, g0 + FILL_CHANNELS)
                for j in range(j1 - j0):
                    row = src + np.uint64(j)
                    out = dst + np.uint64(j * c)
                    for ch in range(g0, g1):
                        block[out + np.uint64(ch)] = data[row + np.uint64(ch) * c_step]
            continue
        for j in range(j1 - j0):
            for ch in range(c):
                block[dst + np.uint64(j * c + ch)] = data[src + np.uint64(j) * w_step + np.uint64(ch) * c_step]


@kernel(parallel=False)
def _store(y, out, b, n, oh0, rows, pitch, co0, bias_per_pixel, first, col0, stream):
    """y[n, oh0 + r, ow, co0 + q] = out[r * pitch + ow - col0 - first, q] + b[co0 + q] for r < rows, col0 <= ow < OW.

    Only the pixels from ``r * pitch + ow - col0 = first`` on (``out``
    starts there; the products put the ones before it in y directly), and
    of each row only the columns from ``col0`` on (the others went to y
    directly too).

    (+ b[(oh0 + r) * OW + ow] instead when ``bias_per_pixel``, which only
    the W @ X route sets, always with y's channel step 1.)

    ``stream``: the call's result is stored past the caches
    (:func:`streams`); into NCHW memory, the runs of OUT pixels of a
    channel that are whole 64-byte lines are (``stream_tile``).

    A function of its own: stores through an Image's ``data`` written
    inline in a prange body were lost (Numba 0.68's parfor lowering).
    """
    base = n * y.n_step + oh0 * y.h_step + co0 * y.c_step
    n_out = min(out.shape[1], y.c - co0)
    bias = b[co0:co0 + n_out]
    if y.c_step == 1:
        # NHWC: a pixel's channels are one run, stored through a slice
        # (vector stores; indexed with a runtime step they stay scalar: 1x1
        # 8x112x112x32 -> 64 spent 3.7 of its 9.6 ms here, one core).
        for r in range(rows):
            for ow in range(col0, y.w):
                if r * pitch + ow - col0 < first:
                    continue
                pix = np.uint64(base + r * y.h_step + ow * y.w_step)
                dst = y.data[pix:pix + np.uint64(n_out)]
                src = out[r * pitch + ow - col0 - first]
                if bias_per_pixel:
                    b_p = b[(oh0 + r) * y.w + ow]
                    for q in range(n_out):
                        dst[q] = src[q] + b_p
                else:
                    for q in range(n_out):
                        dst[q] = src[q] + bias[q]
        return
    # NCHW: channel by channel, in runs along w of OUT pixels, whose rows of
    # out stay in L1 while every channel is stored. (A pixel at a time, its
    # values a plane apart, all C of them fell into a few sets of the L1
    # cache on planes like 112 x 112, 12.25 pages apart: ResNet's first layer,
    # 8x224x224x3 -> 64 7x7 stride 2, 2 threads: the kernel took 15.8 ms
    # for NCHW results, 6.5 now, 5.2 for NHWC ones. On planes of 7 x 7 to
    # 28 x 28 the two measured the same.)
    step = np.uint64(y.c_step)
    # Runs of OUT pixels along rows of y's planes (w_step 1) are whole lines
    # where the planes' rows are and y starts on one: those go past the
    # caches with ``stream``, as the tiles into NHWC memory do.
    lines = stream and y.w_step == 1 and _on_lines(y.data, base, y.h_step) and _on_lines(y.data, base, y.c_step)
    line = register_tile(out, 1, OUT)
    for r in range(rows):
        row = np.uint64(base + r * y.h_step)
        for w0 in range(max(col0, first - r * pitch + col0), y.w, OUT):
            src = out[r * pitch + w0 - col0 - first:]
            dst = row + np.uint64(w0 * y.w_step)
            whole = lines and w0 % OUT == 0 and w0 + OUT <= y.w
            for q in range(n_out):
                run = dst + np.uint64(q) * step
                if whole:
                    for i in range(OUT):
                        line[0, i] = src[i, q] + bias[q]
                    stream_tile(y.data, 0, run, line, 1, OUT)
                    continue
                for i in range(min(OUT, y.w - w0)):
                    y.data[run + np.uint64(i * y.w_step)] = src[i, q] + bias[q]


@kernel
def pack_filters(w, w_steps, taps_h, taps_w, swap, n_out, out):
    """F[(a * len(taps_w) + b) * I + i, o] = W[taps_h[a], taps_w[b], i, o] (W[.., o, i] when ``swap``).

    ``w`` is the filter's flat memory and ``w_steps`` the element steps of
    its (kh, kw, ci, co) indices, so HWIO and OIHW memory pack alike. The
    forward conv packs ``I = C_in``, ``O = C_out``; the input gradient and
    the transpose pack the swapped filter (``I = C_out``, ``O = C_in``)
    over a reversed, possibly strided subset of the taps. ``out`` is the
    (K, round_up(n_out, OUT)) matrix F in panels (module docstring),
    its columns past n_out zeroed here (the caller's np.empty saves a
    pass). One prange iteration owns PACK_ROWS rows of F; each row is one
    contiguous run of HWIO memory in the forward case.
    """
    s_h, s_w, s_ci, s_co = w_steps
    s_i, s_o = (s_co, s_ci) if swap else (s_ci, s_co)
    n_taps = taps_h.size * taps_w.size
    k_len = out.shape[1]
    n_i = k_len // n_taps if n_taps else 0
    ui, uo = np.uint64(s_i), np.uint64(s_o)
    # HWIO filters (o step 1) are copied row by row. The swapped ones (i
    # step 1) go in tiles of PACK_ROWS rows by OUT columns, whose source
    # lines stay in L1 while the tile is copied: row by row they were read
    # C_in apart, a cache miss per value (1x1 input gradient 8x7x7x512 ->
    # 2048: 5 of its 14 ms on one core). The rows' sources are found once
    # per block: two integer divisions per row and tile cost more than the
    # copy. One core, 3x3x512x512: HWIO 0.75 ms (tile by tile 1.6-2.4; a
    # plain (K, C_out) matrix, before the panels, 0.5-1.0), swapped 2.4
    # (row by row 6.1).
    #
    # In OIHW memory (a tap step of 1) a block owns PACK_ROWS values of I
    # at every tap, not PACK_ROWS rows of one tap: the taps of a filter
    # are adjacent, and a block of one tap read a line for every value it
    # took (an nth of the line for n taps; the other taps' blocks ran long
    # after). 2 threads, OIHW 3x3x512x512: 1.50 -> 0.53 ms, swapped 1.35
    # -> 0.52 (HWIO 0.46 and 0.61); NCHW forward 1x7x7x512 -> 512 3x3,
    # NCHW / NHWC time 1.59 -> 1.11, its input gradient 1.49 -> 1.05.
    taps_inner = s_w == 1 and n_taps > 1
    block_i = min(PACK_ROWS, n_i) if taps_inner else PACK_ROWS
    block_rows = block_i * n_taps if taps_inner else PACK_ROWS
    n_blocks = (n_i + block_i - 1) // block_i if taps_inner else (k_len + PACK_ROWS - 1) // PACK_ROWS
    for blk in prange(n_blocks):
        # The block's rows k: ks[r], found once with their sources.
        ks = np.empty(block_rows, np.int64)
        srcs = np.empty(block_rows, np.uint64)
        n_rows = 0
        for r in range(block_rows):
            if taps_inner:
                tap = r // block_i
                i = blk * block_i + r - tap * block_i
                if i >= n_i:
                    continue
                k = tap * n_i + i
            else:
                k = blk * PACK_ROWS + r
                if k >= k_len:
                    break
                tap = k // n_i
                i = k - tap * n_i
            a = tap // taps_w.size
            ks[n_rows] = k
            srcs[n_rows] = (np.uint64(taps_h[a] * s_h + taps_w[tap - a * taps_w.size] * s_w)
                            + np.uint64(i) * ui)
            n_rows += 1
        n_j = (n_out + OUT - 1) // OUT
        if uo == 1:  # HWIO: row by row, each row one read stream
            for r in range(n_rows):
                k = ks[r]
                src = srcs[r]
                for j in range(n_j):
                    cols = min(OUT, n_out - j * OUT)
                    dst = out[j, k]
                    col0 = src + np.uint64(j * OUT)
                    if cols == OUT:
                        # A constant trip count, as below (one core, 3x3x512x512:
                        # 1.21 ms with a cols loop, 0.62 so).
                        for q in range(OUT):
                            dst[q] = w[col0 + np.uint64(q)]
                        continue
                    for q in range(cols):
                        dst[q] = w[col0 + np.uint64(q)]
                    for q in range(cols, OUT):
                        dst[q] = 0
        else:  # strided rows: tile by tile
            for j in range(n_j):
                cols = min(OUT, n_out - j * OUT)
                col0 = np.uint64(j * OUT) * uo
                for r in range(n_rows):
                    src = srcs[r] + col0
                    dst = out[j, ks[r]]
                    if cols == OUT:
                        # A constant trip count: LLVM unrolls the copy whatever came
                        # before (its loop body optimized once, in the kernel's module:
                        # one core, swapped 3x3x512x512 4.6-5.7 ms with a cols loop,
                        # 2.9-3.6 so; 3.1-3.5 before, optimized twice).
                        for q in range(OUT):
                            dst[q] = w[src + np.uint64(q) * uo]
                        continue
                    for q in range(cols):
                        dst[q] = w[src + np.uint64(q) * uo]
                    for q in range(cols, OUT):
                        dst[q] = 0


@kernel(parallel=False)
def _gather_transposed(at, x, n, oh0, rows, out_w, p0, k0, k1, k_h, k_w, sh, sw, dh, dw, pt, pl):
    """at[k - k0, p0 + r * out_w + ow] = patch(n, oh0 + r, ow)[k] for k0 <= k < k1, r < rows, ow < out_w.

    The transpose of ``_gather_patches`` (a row per patch entry, a column
    per pixel), for the filter gradient, whose reduction runs over pixels.
    Rows for k >= KH * KW * C_in (the tile padding) are zeroed.
    """
    c_in = x.c
    k_len = k_h * k_w * c_in
    data = x.data
    step = np.uint64(sw * x.w_step)
    c_step = np.uint64(x.c_step)
    # Rows k of one kernel tap (kh, kw) are a run of channels. Where the
    # channels are the closer axis in memory (NHWC), the tap's channels in
    # [k0, k1) are copied pixel by pixel: each pixel's channels are one
    # read of adjacent values, and the pixels one stream through memory.
    # Row by row, every value would be a read C_in apart: for 1x1 filters
    # on 1024 channels, a cache miss per value (the lines 4 KB apart share
    # one L1 set). Runs of 16 channels, one pass over the pixels each, read
    # x as C_in / 16 strided streams (one core, 1x1 8x56x56x256, 258 rows:
    # 6.1-6.6 ms; 32 or 64 channels: 7.5-9.2; the whole tap: 3.8-3.9).
    channels_inside = x.c_step < x.w_step
    k = k0
    while k < k1:
        if k >= k_len:
            row = at[k - k0]
            for p in range(rows * out_w):
                row[np.uint64(p0 + p)] = 0
            k += 1
            continue
        kh = k // (k_w * c_in)
        kw = (k - kh * k_w * c_in) // c_in
        ci = k - (kh * k_w + kw) * c_in
        run = min(k1 - k, c_in - ci) if channels_inside else 1
        off = kw * dw - pl  # iw = ow * sw + off
        ow_lo, ow_hi = outputs_inside(off, sw, x.w, out_w)
        for r in range(rows):
            dst = np.uint64(p0 + r * out_w)
            ih = (oh0 + r) * sh - pt + kh * dh
            inside = 0 <= ih < x.h
            for j in range(run):
                row = at[k - k0 + j]
                for ow in range(ow_lo if inside else out_w):
                    row[dst + np.uint64(ow)] = 0
                for ow in range(ow_hi if inside else out_w, out_w):
                    row[dst + np.uint64(ow)] = 0
            if not inside:
                continue
            src = np.uint64(n * x.n_step + ih * x.h_step + ci * x.c_step + (ow_lo * sw + off) * x.w_step)
            dst_lo = dst + np.uint64(ow_lo)
            if run == 1:
                row = at[k - k0]
                for i in range(ow_hi - ow_lo):
                    row[dst_lo + np.uint64(i)] = data[src + np.uint64(i) * step]
                continue
            k_row = np.uint64(k - k0)
            for i in range(ow_hi - ow_lo):
                s_i = src + np.uint64(i) * step
                d_i = dst_lo + np.uint64(i)
                for j in range(run):
                    at[k_row + np.uint64(j), d_i] = data[s_i + np.uint64(j) * c_step]
        k += run


@kernel(parallel=False)
def _gather_panels(panels, y, n, oh0, n_pix, p0, c0):
    """panels[(c - c0) // OUT, p0 + p, (c - c0) % OUT] = y[n, oh0 + p // OW, p % OW, c] for p < n_pix, c0 <= c < C.

    The rows of image n from oh0 on (an Image's), channels from c0 on (as
    many as the panels hold), in the panels ``_tile_products`` reads as
    its B operand.
    """
    data = y.data
    base = n * y.n_step + oh0 * y.h_step + c0 * y.c_step
    step = np.uint64(y.c_step)
    for p in range(n_pix):
        r = p // y.w
        src = np.uint64(base + r * y.h_step + (p - r * y.w) * y.w_step)
        for j in range(panels.shape[0]):
            dst = panels[j, p0 + p]
            src_j = src + np.uint64(j * OUT) * step
            for i in range(min(OUT, y.c - c0 - j * OUT)):
                dst[i] = data[src_j + np.uint64(i) * step]


@kernel(parallel=False)
def _gather_patch_panels(panels, x, n, oh0, rows, out_w, p0, c0, c1, k_h, k_w, sh, sw, dh, dw, pt, pl):
    """panels[(c - c0) // OUT, p0 + r * out_w + ow, (c - c0) % OUT] = patch(n, oh0 + r, ow)[c], c0 <= c < c1.

    Patches with their entries in (ci, kh, kw) order (OIHW's), as the B
    operand of ``_tile_products``: the filter gradient transposed (dw^T =
    dy^T @ patches) of an NCHW caller. Entry by entry: for each, a row
    of the output pixels reads one row of a channel plane (a run of
    adjacent values at stride 1), and writes values OUT apart in panels
    that stay in L1 while OUT entries fill them. Zero on padding and for
    c >= KH * KW * C_in.
    """
    k_len = k_h * k_w * x.c
    data = x.data
    step = np.uint64(sw * x.w_step)
    for c in range(c0, c1):
        panel = panels[(c - c0) // OUT]
        i = (c - c0) % OUT
        if c >= k_len:
            for p in range(rows * out_w):
                panel[p0 + p, i] = 0
            continue
        ci = c // (k_h * k_w)
        kh = (c - ci * k_h * k_w) // k_w
        kw = c - (ci * k_h + kh) * k_w
        off = kw * dw - pl  # iw = ow * sw + off
        ow_lo, ow_hi = outputs_inside(off, sw, x.w, out_w)
        for r in range(rows):
            dst = p0 + r * out_w
            ih = (oh0 + r) * sh - pt + kh * dh
            inside = 0 <= ih < x.h
            for ow in range(ow_lo if inside else out_w):
                panel[dst + ow, i] = 0
            for ow in range(ow_hi if inside else out_w, out_w):
                panel[dst + ow, i] = 0
            if not inside:
                continue
            src = np.uint64(n * x.n_step + ih * x.h_step + ci * x.c_step + (ow_lo * sw + off) * x.w_step)
            for j in range(ow_hi - ow_lo):
                panel[dst + ow_lo + j, i] = data[src + np.uint64(j) * step]


@register_jitable
def filter_gradient_rows(x, dy, k_h, k_w, sh, sw, pt, pl, transposed):
    """``conv2d_backward_filter_patch_gemm``'s ``dy_rows`` for its arguments: dy as (pixels, C_out / OUT, OUT) or empty.

    Not empty where the kernel reads x's and dy's pixels in place: a 1x1,
    stride-1, unpadded filter gradient, not transposed, of contiguous NHWC
    x and dy with channels that :func:`rows_fit`. Computed by the caller:
    as the kernel's own code, the test and the reshape cost 0.7 s of its
    cold compile.
    """
    if (k_h == 1 and k_w == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0 and not transposed
            and x.h == dy.h and x.w == dy.w and rows_fit(x.c, dy.c)
            and _pixel_rows(x) and x.data.size == x.n * x.n_step
            and _pixel_rows(dy) and dy.data.size == dy.n * dy.n_step):
        return dy.data.reshape((dy.n * dy.h * dy.w, dy.c // OUT, OUT))
    return np.empty((0, 1, OUT), dy.data.dtype)


@register_jitable
def rows_fit(a_channels, b_channels):
    """Whether a filter gradient's pixels of these channels can be A's columns and B's k-major rows.

    A's in whole tiles of PIX, B's in whole panels of OUT and no wider
    than A's or 4 panels (the kernel's comment; ``plan.dw_swapped``).
    """
    return a_channels % PIX == 0 and b_channels % OUT == 0 and b_channels <= max(a_channels, 4 * OUT)


@register_jitable
def _pixel_rows(img):
    """Whether an Image's pixels are one run of rows of C values each, image after image (NHWC, contiguous)."""
    return (img.c_step == 1 and img.w_step == img.c and img.h_step == img.w * img.c
            and img.n_step == img.h * img.h_step)


@kernel
def conv2d_backward_filter_patch_gemm(x, dy, partial, k_h, k_w, k_block, col_block, chunk_pixels,
                                      sh, sw, dh, dw, pt, pl, transposed, dy_rows):
    """partial[part, k, co] = sum(patch(n, oh, ow)[k] * dy[n, oh, ow, co]) over the part's pixels.

    ``x`` and ``dy`` are Images; ``partial`` is (n_parts, round_up(K, PIX),
    round_up(C_out, OUT)); the caller sums it over parts, in order. The
    output rows ``(n, oh)`` are split into n_parts contiguous ranges (a
    number the caller derives from the shape alone, so the sums do not
    depend on the thread count). One claimed work unit (``_numba.claim_unit``) owns one range, one
    block of k_block rows of K and one block of col_block columns (a
    multiple of OUT): it gathers up to chunk_pixels pixels of transposed
    patches and of dy at a time and adds their product to its block of
    ``partial``, chunk after chunk in order.

    ``transposed``: the transpose, partial[part, co, k] = sum(dy[n, oh, ow,
    co] * patch(n, oh, ow)[k]) with K in (ci, kh, kw) order, the OIHW
    filters of an NCHW caller: ``x`` is then dy, in NCHW memory, its
    channel planes A's rows read in place (below), and ``dy`` is the input,
    whose patches go to the panels of B (``_gather_patch_panels``);
    ``partial`` is (n_parts, round_up(C_out, PIX), round_up(K, OUT)).

    ``dy_rows``: dy's pixels as (pixels, C_out / OUT, OUT) k-major rows,
    for a 1x1 filter gradient that reads both operands in place (below),
    else empty (:func:`filter_gradient_rows`).
    """
    n_parts, k_pad, c_pad = partial.shape
    k_blocks = (k_pad + k_block - 1) // k_block
    col_blocks = (c_pad + col_block - 1) // col_block
    # The output grid, whose pixels the reduction runs over: dy's, or x's
    # when transposed (x is dy then). A's operand (x) is a patch of x per
    # pixel, or (transposed) a pixel of its own.
    grid_n, grid_h, grid_w = (x.n, x.h, x.w) if transposed else (dy.n, dy.h, dy.w)
    a_kh, a_kw, a_sh, a_sw, a_pt, a_pl = (1, 1, 1, 1, 0, 0) if transposed else (k_h, k_w, sh, sw, pt, pl)
    row_units = grid_n * grid_h
    plane = grid_h * grid_w
    # A 1x1 stride-1 reduction whose x has each image's channel planes
    # contiguous (NCHW memory) reads A = x[n] as (C_in, pixels) rows in
    # place, a plane apart: no transposed gather. Copying those rows, 256
    # channels 12.5 KB apart a chunk at a time, ran at 3 GB/s (one core,
    # 8x56x56x64 -> 256 NCHW as dw^T: gathers 8.0 ms of 18.9). Only whole
    # tiles of PIX channels are read in place; the rest are gathered.
    in_place = (a_kh == 1 and a_kw == 1 and a_sh == 1 and a_sw == 1 and a_pt == 0 and a_pl == 0
                and x.w_step == 1 and x.h_step == x.w and x.h == grid_h and x.w == grid_w)
    full = x.c // PIX * PIX if in_place else 0
    # A 1x1 stride-1 reduction over NHWC memory, both operands' pixels
    # contiguous across images, reads both in place: A = x's pixels as its
    # columns (``_tile_products``' ``a_k``: C_in apart), B = dy's pixels as
    # k-major rows (dy's channels whole panels of OUT). No gather: the
    # transposed one wrote each value of x to a row of its own, and dy's
    # panels were a copy of dy. Only where dy's rows are no longer than
    # x's (or 64 values): longer ones, read in place, lost to the panels'
    # copy (one process per commit, 2 runs, NHWC dw time in place /
    # gathered: 8x56x56 64 -> 64 0.66-0.79, 8x112x112 32 -> 64 0.55-0.63,
    # 8x56x56 128 -> 128 0.84-0.93, 8x28x28 256 -> 256 0.87-0.94, 8x7x7
    # 2048 -> 512 0.96-0.98, but 64 -> 256 1.07, 128 -> 512 1.09-1.16,
    # 256 -> 1024 1.04-1.10, and as dw^T 256 -> 64 1.20-1.25).
    rows_in_place = dy_rows.shape[0] > 0  # (dy_rows: see filter_gradient_rows)
    # Chunks of whole images where an image fits in one (their products are
    # then one call, an image per segment), else of rows of one image.
    per_chunk = chunk_pixels // grid_w if grid_w else 1
    if in_place and plane <= chunk_pixels:
        per_chunk = chunk_pixels // plane * grid_h
    n_chunks = (row_units + per_chunk - 1) // per_chunk
    units = n_parts * k_blocks * col_blocks
    claims = np.zeros(1, np.int64)
    for _ in prange(workers(units)):
        for unit in claimed_units(claims, units):
            part = unit // (k_blocks * col_blocks)
            rest = unit - part * k_blocks * col_blocks
            k0 = rest // col_blocks * k_block
            k1 = min(k0 + k_block, k_pad)
            c0 = (rest % col_blocks) * col_block
            n_cols = min(col_block, c_pad - c0)
            g0 = min(k1, max(k0, full))  # rows k0..g0 read in place, g0..k1 gathered
            out = partial[part, k0:k1]
            # Rows OUT values longer than the chunk: a pitch of a power of two
            # of 1 KB or more puts a tile's rows of at, and the rows the
            # gather writes per pixel, into the same L1 sets (one core,
            # 8x56x56x256 -> 64 1x1, blocks of 132 rows: 16.7 ms with rows of
            # 256 pixels, 15.7 with 272).
            at = np.empty((0 if rows_in_place else k1 - g0, chunk_pixels + OUT), partial.dtype)
            # B's block of columns in panels, as _tile_products reads it; dy's
            # channels past C_out stay zero (only the last panel has any: the
            # others are not zeroed, 0.5 MB per unit for 512 channels).
            # One row more than the chunk: panels chunk_pixels * 64 bytes apart
            # (16 KB) put the rows a pixel's gather writes, one per panel, into
            # one L1 set (one core, 8x56x56x256 pixels into 16 panels: 4.1 ->
            # 3.5-3.7 ms of gathers; 8x28x28x512, 32 panels: 1.2-1.4 -> 1.1).
            n_panels = n_cols // OUT
            b_panels = np.empty((n_panels, 0 if rows_in_place else chunk_pixels + 1, OUT), partial.dtype)
            if not transposed and not rows_in_place and dy.c < c0 + n_cols:
                b_panels[n_panels - 1] = 0
            # Parts of whole chunks (the last chunk excepted): every chunk but
            # the last of the call then holds all the pixels it can, and each
            # chunk reloads and stores the unit's block of partial sums once.
            # Split at any row, 6 parts made up to 6 more chunks (one core,
            # 8x28x28x512 -> 128 as dw^T: 30 chunks instead of 25, its 132 x
            # 512 sums reloaded each time).
            r = min(row_units, per_chunk * (n_chunks * part // n_parts))
            r_end = min(row_units, per_chunk * (n_chunks * (part + 1) // n_parts))
            # Offsets go to the helpers as int64 values: a literal 0 would be an
            # argument type of its own, i.e. a second compile of the helper (the
            # forward kernel calls them with ints).
            zero, one = np.int64(0), np.int64(1)
            no_bias, cached = x.data[:0], zero > 0  # (sums from zero, B in panels, stores into the caches: no literal)
            r_first = r
            if r == r_end:
                out[:, c0:c0 + n_cols] = 0
            a_in_place = out[:g0 - k0]
            while r < r_end:
                # The first chunk overwrites the block of partial. (A runtime
                # bool: a literal False would compile _tile_products twice.)
                add = r > r_first
                p = zero
                n_first = r // grid_h
                r_stop = min(r_end, r + per_chunk)
                p_first = r * grid_w  # (the chunk's first pixel, counting from x's first)
                if rows_in_place:  # (nothing to gather)
                    p += (r_stop - r) * grid_w
                    r = r_stop
                while r < r_stop:
                    n = r // grid_h
                    oh0 = r - n * grid_h
                    rows = min(grid_h - oh0, r_stop - r)
                    _gather_transposed(at, x, n, oh0, rows, grid_w, p, g0, k1, a_kh, a_kw,
                                       a_sh, a_sw, dh, dw, a_pt, a_pl)
                    if transposed:
                        _gather_patch_panels(b_panels, dy, n, oh0, rows, grid_w, p, c0, c0 + n_cols, k_h, k_w,
                                             sh, sw, dh, dw, pt, pl)
                    else:
                        _gather_panels(b_panels, dy, n, oh0, rows * grid_w, p, c0)
                    if g0 > k0 and plane > chunk_pixels:
                        # A piece of rows of image n: panel rows p on are its pixels.
                        _tile_products(a_in_place, c0, n_cols, x.data, n * x.n_step + k0 * x.c_step + oh0 * grid_w - p,
                                       x.c_step, one, b_panels, zero, cached, p, p + rows * grid_w, add or p > 0, one,
                                       zero, zero, no_bias, cached, cached, zero, a_in_place.shape[0], one, zero)
                    p += rows * grid_w
                    r += rows
                if g0 > k0 and plane <= chunk_pixels:
                    # Whole images, one per segment of plane pixels.
                    _tile_products(a_in_place, c0, n_cols, x.data, n_first * x.n_step + k0 * x.c_step, x.c_step, one,
                                   b_panels, zero, cached, zero, plane, add, p // plane, x.n_step - plane, plane,
                                   no_bias, cached, cached, zero, a_in_place.shape[0], one, zero)
                # The gathered rows of A, or all of them read in place (one call site:
                # with a second one, LLVM's part of this kernel's cold compile was 0.4 s longer).
                if rows_in_place:
                    a, a_start, a_row, a_k = x.data, k0 * x.c_step, x.c_step, x.w_step  # (pixel k: x.data[k * C])
                    b, q_b, k_major, b_k0 = dy_rows, c0, zero < one, p_first
                else:
                    a, a_start, a_row, a_k = at.reshape(-1), zero, at.shape[1], one
                    b, q_b, k_major, b_k0 = b_panels, zero, cached, zero
                _tile_products(out[g0 - k0:], c0, n_cols, a, a_start, a_row, a_k, b, q_b, k_major, b_k0, b_k0 + p, add,
                               one, zero, zero, no_bias, cached, cached, zero, out.shape[0] - (g0 - k0), one, zero)
