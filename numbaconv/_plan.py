"""The convolution drivers' plan arithmetic: strategy, work units, partial sums, stride phases.

Plain integer functions of the shape (never of timing or of the thread
count), shared by the two kinds of driver: the public API's Python drivers
(``numbaconv._fast.convolution``) call them as ordinary Python, which
compiles nothing, and the ``@njit`` drivers of ``numbaconv.kernels`` compile
them into their own code (``register_jitable``) when a user first calls one.
Each returns ints (or an int64 array) in both worlds.

Four strategies:

- "planes" (``_kernels.convolution``): vectorizes over output positions;
  suits short reductions (few input channels and small kernels, e.g. the
  seed's 3x3x3 -> 16).
- "patch GEMM" (``_kernels.patch_gemm``): register-tiled matrix products
  over gathered patches; suits long reductions into many output channels
  (wide layers, large kernels), 1x1 filters from 32 input channels, and
  small planes (batch 1, 7x7 to 14x14; 1x1 layers on small planes over the
  pixels of all images, :func:`merged_rows`); for NHWC results also short ones
  into 48+ channels (VGG's 3 -> 64) and, read in place from padded rows of
  x, stride-1 ones into 16+ (the seed's); from a batch of PIX, tiles of
  PIX images at one position skip the taps on padding
  (:func:`across_images`). The filter gradient goes there
  on short plane grids (:func:`dw_by_patches`).
- "dots" (``_kernels.dots``): dot products of kernel rows read in place;
  few output channels from long kernel rows, strided or 1x1 filters or
  tiny output planes (:func:`by_dots`), e.g. a strided layer into 2
  channels or a GAN discriminator's last 4x4 layer; the same calls'
  input and filter gradients (and transposes) go by dots too.
- "Winograd" (``_kernels.winograd``): F(2x2, 3x3), 2.25x fewer
  multiplications, the same register-tiled products; 3x3 stride-1
  undilated calls with enough channels and pixels (:func:`by_winograd`,
  :func:`dw_by_winograd`).

Otherwise the input gradient and the transpose run the forward kernel of
any strategy on the stride phases of their output (:func:`phases`,
:func:`phase_rows`, :func:`phase_taps`).
"""
import math
import sys
import types

import numpy as np
from numba.extending import register_jitable

from ._kernels.filter_taps import TAP_CHANNELS
from ._kernels.patch_gemm import OUT, PIX, rows_fit, taps_inside

# Grid positions per work unit: the plane scratch of a unit stays cache-sized.
MAX_GRID = 4096
# Work units wanted per call, so that small batches still use every thread.
MIN_UNITS = 8
# ... but the plane kernels' units hold at least this many multiply-adds (plane_rows).
PLANE_UNIT_MIN_MACS = 1 << 17
# Measured one-thread boundaries (perf/sweep.py checks them against the peers):
PATCH_MIN_K = 64  # the patch GEMM needs a reduction of at least this many values,
PATCH_MIN_OUT = 16  # at least one register tile's width of output channels,
PATCH_MIN_WORK = 4096  # and K * C_out at least this (below, the planes' shorter setup wins).
PATCH_MIN_K_1X1 = 32  # 1x1 filters: the patch GEMM from this reduction on (see by_patches),
PATCH_MIN_OUT_1X1 = 8  # into at least this many channels (the fewest measured)
# Shorter reductions (filters of several taps, NHWC results) also go to
# the patch GEMM from PATCH_MIN_K_SHORT values on (see short_by_patches,
# by_padded_rows): into at least
# PATCH_MIN_OUT_SHORT channels, or from PATCH_MIN_IN_SHORT input channels
# (a patch's runs then are long enough to gather) with K * C_out at least
# PATCH_MIN_WORK_SHORT.
PATCH_MIN_K_SHORT = 27
PATCH_MIN_OUT_SHORT = 48
PATCH_MIN_IN_SHORT = 6
PATCH_MIN_WORK_SHORT = 1152
# NCHW results take the short reductions' rules (short_by_patches,
# by_padded_rows) from this K on: their units store through a buffer, a
# plane per channel (_kernels.patch_gemm._store), which the longer
# reductions repay. One Zen3 core, 3 alternated rounds, patches / planes by
# the fastest call: 5x5x8 -> 16 (32x28x28) 0.77, 3x3x16 -> 16 (8x56x56)
# 0.80, LeNet's 5x5x6 -> 16 (64x12x12) 0.84, 3x3x8 -> 16 (8x56x56) 0.91,
# 5x5x3 -> 32 (8x32x32) 1.02, 3x3x6 -> 24 (16x28x28) 1.35, 3x3x3 -> 32 or
# 64 (32x32x32, VGG's 2x224x224) 1.2-1.35. Except where those stores go past
# the caches in whole lines (the public driver's ``_nchw_stores_stream``;
# Zen4, 2 threads: VGG's first layer 0.77-0.80 by patches).
NCHW_SHORT_MIN_K = 128
DW_PATCH_MIN_OUT = 32  # filter gradient: C_out below this stays with the planes (see dw_by_patches)
DW_PATCH_MIN_OUT_1X1 = 64  # filter gradient, 1x1 filters: the patch GEMM on any grid from this C_out on
DW_STRIDED_MIN_IN = 32  # filter gradient, strided: the patch GEMM on any grid from this C_in on (see dw_by_patches)
DW_MIN_K_BLOCK = 128  # filter gradient: rows of K per patch-GEMM work unit, at the least (dw_patches_plan)
DW_SWAP_RATIO = 4  # filter gradient, 1x1: pixels * (C_in - C_out) per C_in * C_out to compute dw^T (dw_swapped)
DW_SWAP_NCHW_MIN_FILTER = 1 << 16  # ... and for NCHW callers, filter values from which it always does
DW_SWAP_ROWS_MAX_IN = 4 * OUT  # ... and for NHWC ones, 1x1 stride 1, from at most this C_in into more C_out
DW_PATCH_MAX_LENGTH = 256  # filter gradient: plane-kernel work units shorter than this go to the patch GEMM
# The filter gradient by taps (dw_by_taps): input channels from TAPS_MIN_IN
# to TAPS_MAX_IN (from TAPS_MIN_IN_SHORT on the plane kernel's short grids);
# kernels of TAPS_LARGE_KERNEL taps or more count as large, and on planes
# wider than TAPS_MAX_PLANE_W need TAPS_WIDE_IN input channels.
TAPS_MIN_IN = 16
TAPS_MIN_IN_SHORT = 6
TAPS_MAX_IN = 128
TAPS_LARGE_KERNEL = 25
TAPS_MAX_PLANE_W = 32
TAPS_WIDE_IN = 64
# The plane kernels hold a plane per stride phase and reach (K - 1) * d // s
# rows and columns past their block: beyond these bounds their scratch would
# grow with the stride or dilation, not with the data, and the patch GEMM
# (whose scratch is a block of patches) takes the call whatever the channels.
PLANE_MAX_PHASES = 64  # strides up to 8 x 8: their planes still tile the padded input block
PLANE_MAX_REACH = 256
PATCH_PIXELS = 256  # output pixels per work unit: the patch block stays in L2
# 1x1 stride-1 layers on planes of fewer pixels than this run their units
# over merged images (merged_rows): per image, such a plane is one unit,
# summed through a buffer (fewer than IN_PLACE_MIN_PIXELS). Measured (one
# core, merged / per-image time, forward kernel, float32): 8x7x7 512 ->
# 2048 0.88, 2048 -> 512 0.87, 1024 -> 1024 0.86, 64x7x7x256 -> 256 0.84,
# 32x10x10x128 -> 128 0.93; on larger planes no gain: 8x13x13x256 -> 256
# 0.98, 8x14x14x256 -> 1024 1.03, 1024 -> 256 0.98, 8x28x28x128 -> 512 0.96.
MERGED_MAX_PLANE = 128
# Gathered patch-GEMM calls tile PIX images at one output position
# (across_images) where that computes at most ACROSS_MAX_WORK of all taps,
# or, into at most ACROSS_MAX_OUT channels, ACROSS_FEW_OUT_WORK of them.
# Measured: 2 threads, 7 interleaved rounds, float32 NHWC, across / rows of
# pixels, forward / input gradient (the share of taps inside x in
# brackets): 64x11x9x16 -> 32 7x7 pad 3 (0.68) 0.63 / 0.57, 16x7x7x64 ->
# 64 5x5 pad 2 (0.69) 0.66 / 0.66, 32x14x14x32 -> 64 5x5 pad 2 (0.84) 0.82 /
# 0.78, 8x7x7x512 -> 512 3x3 pad 1 (0.82) 0.94 / 0.94, 8x27x27x64 -> 192
# 5x5 pad 2 (0.91) 0.95-0.97 / 0.90, 8x14x14x256 -> 512 3x3 stride 2
# (0.91) 0.97 / 0.96; but 8x28x28x128 -> 256 3x3 stride 2 (0.95) 1.00 /
# 1.06. With every tap inside x, the gather costs more than the products
# into few channels: 64x12x12x6 -> 16 5x5 (LeNet) 0.66, 64x12x12x16 -> 16
# 0.77, 16x14x14x32 -> 32 5x5 0.87, -> 64 0.90; into more it is the
# other way round: 8x27x27x64 -> 192 5x5 1.05, 8x14x14x256 -> 512 1x1
# stride 2 1.14.
ACROSS_MAX_WORK = 0.92
ACROSS_MAX_OUT = 64
# Into few channels with every tap inside x, the tiles' work is all taps
# times the images rounded up to whole tiles: LeNet's batch of 64 is 65
# images at PIX = 5 (AVX2), a share of 1.016, which the gather costs more
# than. 2 threads, fresh processes alternated, 3 rounds, across / rows of
# pixels by the fastest call, 5x5 VALID (the share in brackets):
# 64x12x12x6 -> 16 (1.016) 0.69, 64x12x12x16 -> 16 (1.016) 0.83,
# 24x14x14x32 -> 64 (1.04) 0.90; 14x14x32 -> 32 on 19 images (1.05) 0.93,
# 32 (1.09) 0.99, 18 (1.11) 1.02, 9 (1.11) 1.08, 16 (1.25) 1.13.
ACROSS_FEW_OUT_WORK = 1.05
# ... and their units' blocks of filters hold at most about this many values
# (1 MB of float32, half an L2; across_units). 2 threads, 7 interleaved
# rounds, this / the channel blocks of channels_per_unit alone, forward and
# input gradient: 8x27x27x64 -> 192 5x5 (192 -> 96 channels a unit) 0.95
# and 0.95, 8x7x7x512 -> 512 3x3 0.99 and 0.99; half the values, against
# this: 0.97-1.01.
ACROSS_BLOCK_VALUES = 1 << 18
WINOGRAD_TILES = 64  # 2x2 tiles per work unit (as many outputs as PATCH_PIXELS)
# Measured boundaries of Winograd against the direct strategies (float32,
# 3x3 stride 1; channels and the filter gradient's on one thread, the
# forward's pixels on two: by_winograd; perf/sweep.py checks them against the peers):
WINOGRAD_MIN_IN = 24  # input channels, at least (16 -> 16: 1.19x slower, 24 -> 24: 0.91x),
WINOGRAD_MIN_OUT = 24  # output channels, at least,
WINOGRAD_MIN_PIXELS = 256  # and output pixels in all,
WINOGRAD_MIN_PLANE = 8  # planes of 8 x 8 at least (Winograd's 2 x 2 tiles compute 64 outputs of a 7x7 plane's 49),
WINOGRAD_NARROW_MIN_PIXELS = 512  # or, on narrower planes, these output pixels at least;
WINOGRAD_DW_MIN_PIXELS = 512  # the filter gradient, more (256 channels: 2 x 14 x 14 1.00x, 1 x 28 x 28 0.78x),
# and WINOGRAD_MIN_PLANE whatever its pixels (16 x 7 x 7 x 512: 1.12x; 4 x 14 x 14: 0.98x)
# NCHW 1x1 stride-1 layers as W @ X (nchw_1x1_by_images): filter values
# at most, and output pixels per image at least. Measured (2 threads, a
# 2-core Intel AVX-512 machine, float32, medians of 11, W @ X time /
# NHWC-route time, forward and input gradient): 8x56x56 64 -> 64 0.71 /
# 0.72; 65536 values: 1x28x28 128 -> 512 0.76 / 0.87; 262144: 8x28x28 512
# -> 512 0.87-0.90, 4x32x32 0.81 / 0.80, 8x16x16 256 -> 1024 0.84 / 0.84;
# 524288: 8x28x28 512 -> 1024 0.92 / 0.97, 1024 -> 512 0.95 / 0.87;
# 2**20 on 49 pixels: 0.92-0.99 / 1.29-2.20. 256 pixels: 32x16x16x64 0.78 /
# 0.75, 8x16x16x128 0.73 / 0.73; 196: 1x14x14 256 -> 256 0.99 / 1.12,
# 8x14x14 256 -> 1024 0.84-0.89 / 1.03-1.08.
NCHW_1X1_MAX_FILTER = 1 << 18
NCHW_1X1_MIN_PIXELS = 256
# ... or planes of this many pixels from MIN_UNITS images on (a unit then
# holds a whole image's 208 columns; fewer images split them, and each unit
# reads the filter for fewer pixels). Measured once the pack prefetched
# (_kernels.patch_gemm._pack_columns) and the input gradient's W^T became a
# kernel's copy: 2 threads, fresh processes, 2 runs each, 9 rounds, NCHW
# time NHWC route -> W @ X (ms), forward / input gradient: 8x14x14 1024 ->
# 256 7.2, 5.8 -> 5.0, 4.8 / 5.5, 5.3 -> 4.8, 4.9; 256 -> 1024 6.8, 5.4 ->
# 5.2, 4.5 / 5.7, 7.2 -> 5.0, 5.1; 512 -> 512 5.1, 5.3 -> 4.6, 4.7 / 6.6,
# 5.2 -> 5.9, 5.9; 32x14x14 256 -> 256 7.0, 6.4 -> 5.1, 4.8 / 6.7, 6.4 ->
# 5.0, 4.9; but 2x14x14 512 -> 512 1.3, 1.8 -> 1.7, 1.3 / 1.6, 2.1 -> 2.3,
# 2.2 (units of 64 columns), and on 7 x 7 planes (49 pixels) 8 images lost
# as well (2048 -> 512 5.9 -> 6.6, 512 -> 2048 5.7 -> 7.2).
NCHW_1X1_BATCH_MIN_PIXELS = 196
# Pixels per work unit of that route, about: the unit packs C_in x this
# many values of X[n] (one core, CPU time, NCHW / NHWC forward time,
# units of 256 / 512 / 1024 / whole planes, with runs of one register
# tile: 8x56x56 64 -> 256 1.07 / 0.91 / 0.90 / 1.03, 256 -> 64 1.40 /
# 1.20 / 1.23 / 2.15, 8x112x112 32 -> 64 1.01 / 0.91 / 0.92 / 1.29).
NCHW_1X1_UNIT_PIXELS = 512
# NCHW data reach the patch GEMM's gather in place from this many input
# channels on; fewer are copied to NHWC memory first (NumPy's transposing
# copy), where each kernel row of a patch is one run. Measured (2 threads,
# whole forward call, copy / in place, ms): 8x56x56x64 -> 128 1x1 stride 2
# 1.19 / 0.52, 3x3 stride 2 3.19 / 2.44; 8x28x28x128 -> 256 3x3 stride 2
# 2.37 / 2.30; 8x7x7x1024 -> 1024 1x1 2.63 / 2.47; 64x28x28x64 -> 128 5x5
# stride 2 14.1 / 13.6; 8x112x112x16 -> 32 3x3 stride 2 1.69 / 1.31; but
# 8x224x224x3 -> 64 7x7 stride 2 8.0 / 10.4.
NCHW_GATHER_MIN_IN = 16
STRIDED_1X1_MIN_IN = 32  # NCHW strided 1x1 layers from this many input channels: W @ X over x's strided pixels
PIXELS_COPY_MAX_IN = 8  # NCHW x of at most this many channels: copied to NHWC memory by a kernel, not NumPy
# Stride-1 patch-GEMM calls read padded rows of x in place while (KW - 1)
# * C_out (padded) <= this * OW (plan.padded_rows). Measured (one core, CPU
# time, 3 rounds, padded rows / gathered time): 128x28x28x3 -> 16 3x3
# (2 * 16 vs 28) 0.57, 64x28x28x1 -> 6 5x5 VALID (4 * 16 vs 24) 0.59,
# 8x56x56x16 -> 32 0.87, 2x224x224x3 -> 64 1.01, 8x56x56x64 -> 64 1.01,
# 64x12x12x6 -> 16 5x5 VALID (4 * 16 vs 8) 0.96; 64x11x9 7x7 into 16 (6 *
# 16 vs 9, the input gradient) 1.28, into 32 1.35; 8x27x27x64 -> 192 5x5
# 1.10, 8x13x13x256 3x3 1.12, 8x14x14x512 1.10.
PADDED_ROWS_WASTE = 4
PART_PIXELS = 4096  # filter gradient: pixels per partial sum, at the least
# ... except that the patch GEMM's filter gradient takes parts of down to
# this many pixels while it has fewer than MIN_UNITS work units (see
# dw_patches_plan).
DW_PART_MIN_PIXELS = 1024
MAX_PARTS = 8
PARTIAL_BUDGET = 1 << 23  # filter gradient: elements of all partial sums together
CHUNK_PIXELS = 256  # filter gradient: pixels gathered per pass
IN_PLACE_PANEL_VALUES = 1 << 18  # ... and panel values per pass where A is read in place (dw_in_place_chunk)
BIAS_ROW_VALUES = 1024  # bias gradient, NHWC: values per row of its partial sums, at most (bias_row_pixels)
# The dots (by_dots): into at most DOTS_MAX_OUT channels (unless the patch
# GEMM takes the call), from kernel rows of at least DOTS_MIN_RUN values (KW *
# C_in), undilated along w, and where the planes share little: strided and
# 1x1 filters, or output planes of at most DOTS_MAX_PLANE pixels. Measured
# (one core, CPU time, float32, 7 interleaved rounds, dots / the planes):
# 4x28x46x128 8x16 stride 5 -> 2 0.31, -> 8 0.47; 8x28x28x128 5x5 stride 5
# -> 2 0.35; 8x64x64x512 3x3 stride 2 -> 2 0.20, 8x32x32x256 0.57,
# 8x16x16x256 0.64; 1x1: 1x128x128x512 -> 2 0.23, 8x8x8x512 0.75,
# 8x14x14x2048 -> 4 0.40; tiny planes: 16x4x4x512 4x4 -> 1 (one pixel) 0.08,
# 1x4x4x512 0.34, 16x3x3x256 3x3 -> 8 0.15, 16x5x5x256 -> 4 (3x3 pixels)
# 0.40, 16x6x6x512 -> 4 (4x4) 0.65, 16x6x6x172 0.98. Where the planes win:
# shorter rows (8x10x10x128 3x3 -> 4 2.1, 8x32x32x128 3x3 stride 2 -> 2
# 1.4, 1x1 from 256 channels 1.1, from 64 2.4-4.2) and stride-1 filters of
# several taps on larger planes (8x10x10x512 3x3 -> 4, 8x8 pixels, 1.20).
DOTS_MAX_OUT = 8
DOTS_MIN_RUN = 512
DOTS_MAX_PLANE = 16
DOTS_MIN_PART = 128  # filter gradient by dots: values of a kernel row per work unit, at the least


@register_jitable
def _rows_in_blocks(rows, pitch, blocks_per_image):
    """Rows of the output grid per block, for ``blocks_per_image`` blocks of an image of ``rows`` (within MAX_GRID)."""
    return max(1, min(rows, MAX_GRID // pitch, -(-rows // blocks_per_image)))


@register_jitable
def _blocks_per_image(n):
    return -(-MIN_UNITS // n) if n else 1


@register_jitable
def rows_per_block(n, rows, pitch):
    """Rows of the output grid per block of an image, for MIN_UNITS blocks over the batch; shapes only, not threads."""
    return _rows_in_blocks(rows, pitch, _blocks_per_image(n))


@register_jitable
def plane_rows(n, rows, pitch, position_macs):
    """Rows of the output grid per work unit of the plane kernels (forward and filter gradient).

    :func:`rows_per_block`'s, in fewer and longer blocks where those would
    hold under PLANE_UNIT_MIN_MACS multiply-adds each (``position_macs`` a
    grid position: taps x output channels). A unit costs about a
    microsecond of its own on a Zen4 core (its plane fill, its tap
    offsets, and in the filter gradient 16 horizontal sums per tile of
    running sums), which the MIN_UNITS split of a batch-1 image paid 7
    times over: the seed's layer at batch 1 (1x28x28x3 -> 16, 363 k
    multiply-adds an image), one thread, fresh processes alternated, 2
    each, the 3rd-fastest of 21 rounds, rows a unit 4 (7 units) / 7 / 14 /
    28: input gradient 0.038 / 0.036 / 0.034 / 0.033 ms, filter gradient
    0.036 / 0.031 / 0.029 / 0.028; run in parallel on 2 threads, 14 rows
    were the fastest (0.026 and 0.021). Units of 2^17 multiply-adds (about
    8 us) give it 2 units of 14 rows. Shapes only, not threads.
    """
    # Units of the image worth their cost (position_macs capped: no int64 overflow in @njit code).
    worth = max(1, rows * pitch * min(position_macs, PLANE_UNIT_MIN_MACS) // PLANE_UNIT_MIN_MACS)
    return _rows_in_blocks(rows, pitch, min(_blocks_per_image(n), worth))


@register_jitable
def by_patches(k_len, n_out, taps):
    """The forward kernels' strategy, from the reduction length, the output channels and the filter taps.

    A 1x1 filter (``taps`` 1) shares no input between taps, which is what
    the planes are for: its patch GEMM wins from K = PATCH_MIN_K_1X1 on
    whatever C_out (one core, CPU time, 7 interleaved rounds, 8 x 56 x 56
    or 8 x 112 x 112 pixels, planes/patches time: K = 32 -> 64 1.16-1.20,
    32 -> 32 1.08-1.31, 48 -> 64 1.28, 64 -> 16 1.37, 96 -> 16 1.78, 128 -> 8
    1.63, 64 -> 64 1.48; K = 16: 0.85-0.95, K = 8 -> 128: 1.01).
    Shorter reductions: :func:`short_by_patches`, :func:`by_padded_rows`.
    """
    if taps == 1 and k_len >= PATCH_MIN_K_1X1 and n_out >= PATCH_MIN_OUT_1X1:
        return True
    return k_len >= PATCH_MIN_K and n_out >= PATCH_MIN_OUT and k_len * n_out >= PATCH_MIN_WORK


@register_jitable
def short_by_patches(k_len, n_out, taps):
    """Whether a short reduction (K from PATCH_MIN_K_SHORT) goes to the patch GEMM too, for NHWC results.

    Into PATCH_MIN_OUT_SHORT channels or more, or from PATCH_MIN_IN_SHORT
    input channels with K * C_out >= PATCH_MIN_WORK_SHORT. NCHW results
    below K = NCHW_SHORT_MIN_K stay with the planes: the patch GEMM stores
    them a plane per channel (see ``_kernels.patch_gemm._store``).

    Filters of several taps: the planes keep what the patch GEMM pads
    (C_out to whole 16-channel tiles) or gathers in short runs (3 input
    channels). Measured (one core, CPU time, 3 interleaved rounds, stride
    1, SAME, on 8 x 56 x 56, 64 x 14 x 14 and 2 x 160 x 160 inputs;
    patches/planes time, patches gathered): 3x3x3 -> 16 1.40-1.69, -> 32
    1.02-1.07, -> 48 0.71-0.85, -> 64 0.71-0.80 (VGG's first layer, 2 x
    224 x 224: 0.62); 5x5x3 and 7x7x3 -> 16 1.19-1.43, -> 32 0.87-1.07;
    3x3x6 -> 16 0.91-1.12, -> 24 0.97-1.10, -> 32 0.73-0.87; 3x3x8 -> 16
    0.71-0.87; 3x3x16 -> 16 0.73-0.83; 5x5x8 -> 16 0.75-0.81 (LeNet's
    5x5x6 -> 16 on 64 x 12 x 12: 0.62); any K -> 8: 1.3-3.2.
    """
    if taps == 1 or k_len < PATCH_MIN_K_SHORT:
        return False
    return n_out >= PATCH_MIN_OUT_SHORT or (k_len // taps >= PATCH_MIN_IN_SHORT and n_out >= PATCH_MIN_OUT
                                            and k_len * n_out >= PATCH_MIN_WORK_SHORT)


@register_jitable
def forward_by_patches(kh, kw, sh, sw, dh, dw, c_in, n_out, oh, ow, nchw):
    """Whether a forward call (or input-gradient phase) that Winograd does not take goes to the patch GEMM.

    The one rule both drivers (``numbaconv._fast.convolution`` and the
    njit ``numbaconv.kernels``) apply: :func:`by_patches`, geometries the
    planes cannot hold (:func:`planes_fit`), and for NHWC results
    :func:`short_by_patches` and :func:`by_padded_rows`, for NCHW results
    only from K = NCHW_SHORT_MIN_K on. (NCHW results of VGG's first layer,
    2x224x224x3 -> 64, 2 threads: 2.4 ms on the planes, 2.65 by patches
    stored a row at a time; since those stores stream, the public driver
    asks for NHWC results' rules there: ``_fast.convolution._nchw_stores_stream``.)
    """
    k_len = kh * kw * c_in
    if by_patches(k_len, n_out, kh * kw) or not planes_fit(kh, kw, sh, sw, dh, dw):
        return True
    return ((not nchw or k_len >= NCHW_SHORT_MIN_K)
            and (short_by_patches(k_len, n_out, kh * kw) or by_padded_rows(kh, kw, sh, sw, dh, dw, c_in, n_out, ow)))


@register_jitable
def by_dots(kh, kw, sh, sw, dw, c_in, n_out, oh, ow):
    """Whether a forward call (or input-gradient phase) goes to the dots (``_kernels.dots``).

    Asked of the forward's geometry, it also sends the call's input
    gradient (and a transpose of that geometry) and its filter gradient to
    the dots' own kernels, ahead of the stride phases and the other
    filter-gradient strategies. One core, CPU time, 3 alternated runs,
    backward with dots / before (the phases, and planes or taps for dw):
    64x4x4x512 4x4 -> 1 0.06, the 4x28x46x128 8x16 stride-5 layer -> 2
    0.21, -> 8 0.62, 3x3 stride 2 from 512 and 256 into 2 0.26-0.41, 1x1
    512 -> 2 on 128x128 and 8x8x8 0.53 and 0.75, 2048 -> 4 0.52, 3x3 on
    planes of 16 or fewer pixels into 4 or 8 0.28-0.68.

    Few output channels from long kernel rows, where the planes kernel
    shares little between taps (strided or 1x1 filters, or tiny output
    planes): its set-up per pass then outweighs its products, and the
    patch GEMM would compute 16 channels for each few (see DOTS_MAX_OUT).
    Checked before the other strategies. The kernel reads NHWC memory: an
    NCHW caller's x is copied to it first.
    """
    return (dw == 1 and n_out <= DOTS_MAX_OUT and kw * c_in >= DOTS_MIN_RUN
            and not by_patches(kh * kw * c_in, n_out, kh * kw)
            and (sh * sw > 1 or kh * kw == 1 or oh * ow <= DOTS_MAX_PLANE))


@register_jitable
def dots_filter_part(kh, row_len):
    """Values of a kernel row per work unit of the filter gradient by dots (a multiple of 16).

    Enough units for MIN_UNITS (a 1x1 filter has one kernel row), none
    shorter than DOTS_MIN_PART. The parts change no sum's order.
    """
    parts = max(1, min(-(-MIN_UNITS // kh), row_len // DOTS_MIN_PART))
    per_part = -(-row_len // parts)
    return -(-per_part // 16) * 16


@register_jitable
def by_winograd(kh, kw, sh, sw, dh, dw, n_in, n_out, n, oh, ow):
    """Whether a forward call (or a stride phase of the input gradient) goes to the Winograd kernel.

    Below the bounds the transforms (per pixel, and of the filters) cost
    more than the 2.25x fewer products save. The filters' transform is a
    fixed cost, as large as the products of about 200 output pixels, and
    Winograd's 2 x 2 tiles cover an odd plane's last row and column twice
    over (7x7 planes: 64 outputs computed for 49). Measured (float32, 3x3
    SAME, C_in = C_out, 2 threads, 9 interleaved rounds, this rule's time /
    the rule before's, which sent 192 pixels and more to Winograd, forward
    / input gradient): NHWC 1x14x14x256 0.77 /
    0.69, 1x14x14x512 0.77 / 0.63, 1x14x14x128 0.63 / 0.57, 1x15x15x256
    0.87 / 0.72, 4x7x7x512 0.88 / 0.66, 4x7x7x256 0.75 / 0.65, 8x7x7x512
    0.96 / 0.85, 8x7x7x256 0.99 / 0.91; NCHW 0.66-0.88 / 0.67-0.86 on the
    same layers. Winograd stays ahead from 256 pixels on planes of 8 or
    more (direct / Winograd: 1x16x16x256 NCHW 1.22 / 1.30 though NHWC 0.93
    / 0.80, 1x18x18x256 1.24 / 1.10, 2x14x14x256 1.13 / 0.91, 1x24x24x256
    1.35 / 1.22) and from 512 on 7x7 planes (16x7x7x512 1.24 / 1.02,
    32x7x7x512 1.41 / 1.22, 16x7x7x256 1.24 / 1.16). One thread agrees
    (4x7x7x512 0.69 / 0.54, 8x7x7x512 0.89 / 0.73).
    """
    pixels = n * oh * ow
    return (kh == 3 and kw == 3 and sh == 1 and sw == 1 and dh == 1 and dw == 1
            and n_in >= WINOGRAD_MIN_IN and n_out >= WINOGRAD_MIN_OUT and pixels >= WINOGRAD_MIN_PIXELS
            and (min(oh, ow) >= WINOGRAD_MIN_PLANE or pixels >= WINOGRAD_NARROW_MIN_PIXELS))


@register_jitable
def dw_by_winograd(kh, kw, sh, sw, dh, dw, n_in, n_out, n, oh, ow):
    """Whether the filter gradient goes to Winograd: as :func:`by_winograd`, over more pixels.

    Its fixed costs (the transform of 16 partial sums per channel pair back
    to 3x3, a channel block's redone input transforms) need more pixels to
    pay off than the forward's filter transform, and 7x7 planes waste a
    quarter of their tiles. Measured (one thread, float32) against the
    patch GEMM's filter gradient with B operands in panels.
    """
    return (by_winograd(kh, kw, sh, sw, dh, dw, n_in, n_out, n, oh, ow)
            and n * oh * ow >= WINOGRAD_DW_MIN_PIXELS and min(oh, ow) >= WINOGRAD_MIN_PLANE)


def nchw_1x1_by_images(kh, kw, sh, sw, pt, pl, n_in, n_out, pixels, n):
    """Whether an NCHW forward call (or input-gradient phase) of ``n`` images on the patch GEMM runs as W @ X.

    A 1x1 stride-1 unpadded filter, small enough for the L2 cache (it is
    read once per work unit), on planes of enough pixels (the panels are
    16 pixels wide, and a unit is a block of one image's pixels), fewer
    from MIN_UNITS images on. The bounds were measured: see
    NCHW_1X1_MAX_FILTER.
    """
    return (kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
            and n_in * n_out <= NCHW_1X1_MAX_FILTER
            and (pixels >= NCHW_1X1_MIN_PIXELS or (n >= MIN_UNITS and pixels >= NCHW_1X1_BATCH_MIN_PIXELS)))


@register_jitable
def nchw_1x1_units(n, c_pad):
    """(rows_per_unit, out_per_unit) of the W @ X route (:func:`nchw_1x1_by_images`) over ``n`` images.

    A unit is a block of whole panels, at most NCHW_1X1_UNIT_PIXELS
    columns (pixels), of one image's Y[n], every row (channel). Each
    image splits into a multiple of MIN_UNITS / gcd(n, MIN_UNITS) blocks,
    so that the units number a multiple of MIN_UNITS where the panels
    divide evenly (threads get equal shares whatever their number
    divides). Where they do not, the blocks round up to whole panels, and
    so may be fewer, unless that leaves fewer than MIN_UNITS units: then
    they round down (and the last block of an image holds the remainder).
    From the shape alone.
    """
    step = MIN_UNITS // math.gcd(n, MIN_UNITS)  # (gcd(0, 8) = 8: no images, one block)
    panels = -(-c_pad // OUT)
    blocks = -(-max(1, -(-c_pad // NCHW_1X1_UNIT_PIXELS)) // step) * step
    per = -(-panels // blocks)
    if n * -(-panels // per) < MIN_UNITS:
        per = max(1, panels // blocks)
    return 1, per * OUT


@register_jitable
def padded_rows(kh, kw, sh, sw, dh, dw, ow, c_pad):
    """Whether a patch-GEMM forward call reads its patches in place from padded rows of x.

    Stride 1, undilated: ``_kernels.patch_gemm.conv2d_patch_gemm``
    computes OW + KW - 1 columns per output row instead of gathering KH *
    KW * C_in values per pixel. The products grow by (KW - 1) / OW, which
    costs more than the gather saves once ``(KW - 1) * C_out`` passes
    PADDED_ROWS_WASTE * OW (see the constant's measurements).
    """
    return (sh == 1 and sw == 1 and dh == 1 and dw == 1
            and (kw - 1) * c_pad <= PADDED_ROWS_WASTE * ow)


@register_jitable
def by_padded_rows(kh, kw, sh, sw, dh, dw, c_in, n_out, ow):
    """Whether a forward call goes to the patch GEMM's padded-rows read, whatever :func:`by_patches` says.

    For NHWC results (as :func:`short_by_patches`). Without the gather,
    the patch GEMM beats the planes on short reductions too (K >=
    PATCH_MIN_K_SHORT into PATCH_MIN_OUT channels or more): one core, CPU
    time, 3 interleaved rounds, 8 x 56 x 56 inputs,
    patches/planes time: 3x3x3 -> 16 0.84 (the seed, 128 x 28 x 28:
    0.88), -> 32 0.72; 3x3x6 -> 16 0.62; 5x5x3 and 7x7x3 -> 16 0.68-0.74;
    -> 24 (a third of the tile padding) 0.75-1.07; -> 8: 1.1-1.8.
    """
    return (kh * kw > 1 and kh * kw * c_in >= PATCH_MIN_K_SHORT and n_out >= PATCH_MIN_OUT
            and padded_rows(kh, kw, sh, sw, dh, dw, ow, padded_channels(n_out)))


@register_jitable
def planes_fit(kh, kw, sh, sw, dh, dw):
    """Whether the plane kernels' scratch stays proportional to the data for this geometry."""
    return (sh * sw <= PLANE_MAX_PHASES and (kh - 1) * dh // sh <= PLANE_MAX_REACH
            and (kw - 1) * dw // sw <= PLANE_MAX_REACH)


@register_jitable
def padded_channels(n_out):
    """C_out rounded up to whole register tiles (the packed filters' columns)."""
    return -(-n_out // OUT) * OUT


@register_jitable
def panels_shape(k_len, n_out):
    """The shape of a (k_len, n_out) matrix in the patch GEMM's panels (``_kernels.patch_gemm``)."""
    return -(-n_out // OUT), k_len, OUT


@register_jitable
def channels_per_unit(units, c_pad):
    """Output channels per work unit, when ``units`` blocks of pixels leave threads idle.

    Few pixels (batch 1, small planes): split the channels too, in blocks
    of at least 16, rather than the pixels: each unit then reads its own
    part of the filters once.
    """
    if not 0 < units < MIN_UNITS:  # (no units at all: an empty batch)
        return c_pad
    blocks = min(-(-MIN_UNITS // units), max(1, c_pad // 16))
    return -(-c_pad // blocks // OUT) * OUT


@register_jitable
def patch_units(n, oh, ow, c_pad):
    """(rows_per_unit, out_per_unit) of the patch GEMM; from the shape alone."""
    rows = max(1, min(oh, PATCH_PIXELS // ow))
    return rows, channels_per_unit(n * -(-oh // rows), c_pad)


@register_jitable
def filters_in_place(n, oh, ow, c_out, across, rows_per_unit, nchw):
    """Whether a patch-GEMM forward call reads its filter in place, unpacked.

    ``n``, ``oh``, ``ow``: of the result Image the kernel runs over
    (merged calls: one image of rows of PIX pixels). When one block of rows holds
    every output pixel (batch 1 on small planes), each unit reads its
    channels' filter values once: packing them first reads and writes
    every value once more. An HWIO filter is read as k-major rows of C_out values,
    which must fill whole panels (OUT); an NCHW caller's OIHW filter is
    the A operand of W @ patches (``numbaconv._fast.convolution``), its
    rows in whole register tiles (PIX), and the patches are packed
    instead, K values per pixel: only where they are no more than the
    filter's K per output channel (pixels, in whole panels, at most
    C_out; 2 threads, NCHW 1x14x14x32 -> 64 3x3, 208 pixels for 64
    channels: 1.22x the time of the packed filter, 1x8x8x64 -> 128
    0.92x). 2 threads, fresh processes alternated, against the packed
    filters: see ``_kernels.patch_gemm``.
    """
    whole = c_out % PIX == 0 and -(-(oh * ow) // OUT) * OUT <= c_out if nchw else c_out % OUT == 0
    return not across and whole and n * -(-oh // rows_per_unit) == 1


@register_jitable
def across_images(kh, kw, sh, sw, dh, dw, pt, pl, n, oh, ow, h, w, c_pad):
    """Whether a gathered patch-GEMM forward call (not :func:`padded_rows`) tiles PIX images at one position.

    Such a tile skips every tap that reads padding, and reads x in place
    (``_kernels.patch_gemm._unit_across_images``); a tile of PIX pixels
    along a row gathers every tap and skips only the kernel rows that fall
    on padding for all of its pixels. Where the taps inside x, summed over
    the positions, times the images rounded up to whole tiles, come to at
    most ACROSS_MAX_WORK of all taps, or into at most ACROSS_MAX_OUT
    channels at most ACROSS_FEW_OUT_WORK of all taps (see the constants).
    """
    if n < PIX or padded_rows(kh, kw, sh, sw, dh, dw, ow, c_pad):
        return False
    inside_h = 0
    for o in range(oh):
        lo, hi = taps_inside(o, o, sh, dh, pt, h, kh)
        inside_h += hi - lo
    inside_w = 0
    for o in range(ow):
        lo, hi = taps_inside(o, o, sw, dw, pl, w, kw)
        inside_w += hi - lo
    work, taps = inside_h * inside_w * (-(-n // PIX) * PIX), (oh * kh) * (ow * kw) * n
    return work <= ACROSS_MAX_WORK * taps or (c_pad <= ACROSS_MAX_OUT and work <= ACROSS_FEW_OUT_WORK * taps)


@register_jitable
def across_units(n, oh, ow, k_len, c_pad):
    """(positions_per_unit, out_per_unit) of the patch GEMM's ``across_images`` mode; from the shape alone.

    A unit's block of filters (K x out_per_unit) holds at most about
    ACROSS_BLOCK_VALUES values, so that it stays in L2 from one position's
    tile to the next (each tile takes its own range of K).
    """
    positions = max(1, PATCH_PIXELS // PIX)
    outs = channels_per_unit(-(-n // PIX) * -(-(oh * ow) // positions), c_pad)
    per_block = -(-c_pad // -(-(k_len * c_pad) // ACROSS_BLOCK_VALUES))
    return positions, min(outs, -(-per_block // (2 * OUT)) * 2 * OUT)  # (whole two-panel tiles)


@register_jitable
def merged_rows(kh, kw, sh, sw, pt, pl, n, oh, ow, h, w):
    """Whether a patch-GEMM forward call runs over all N * OH * OW output pixels as rows of PIX pixels.

    A 1x1 stride-1 unpadded filter reads x in place, a pixel's patch being
    the pixel itself, so a work unit's pixels may run on into the next
    image (``_kernels.convolution.merged_images``). Per image, a small
    plane is one unit of its own: 7 x 7 pixels padded to 56 (whole
    register tiles) and summed through a buffer. Merged, units hold up to
    PATCH_PIXELS pixels whatever the plane (:func:`merged_units`), and
    start and end on whole tiles: the pixels must be a multiple of PIX.
    (Rows of OW pixels otherwise: the last unit's tile padding would read
    past x, and that unit copies its pixels instead; one core, merged /
    per-image time, 9x7x7x512 -> 512 0.93, but 5x10x10x256 -> 256 1.05,
    2x7x7x512 -> 512 1.01.) Measured: see MERGED_MAX_PLANE.
    """
    return (kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0 and oh == h and ow == w
            and n > 1 and oh * ow < MERGED_MAX_PLANE and n * oh * ow % PIX == 0)


@register_jitable
def merged_units(pixels, c_pad):
    """(rows_per_unit, out_per_unit) of the patch GEMM over ``pixels`` merged pixels in rows of PIX.

    Units of equal rows, at most PATCH_PIXELS pixels each, and as many as
    a multiple of MIN_UNITS once there are more than MIN_UNITS of them:
    threads get equal work whatever their number divides (fewer units
    split the channels too, :func:`channels_per_unit`).
    """
    rows = pixels // PIX
    units = -(-rows // max(1, PATCH_PIXELS // PIX))
    if units > MIN_UNITS:
        units = -(-units // MIN_UNITS) * MIN_UNITS
    per_unit = -(-rows // units)
    return per_unit, channels_per_unit(-(-rows // per_unit), c_pad)


@register_jitable
def winograd_units(n, oh, ow, c_pad):
    """(tile_rows, tile_cols, out_per_unit, units) of the Winograd kernel; from the shape alone."""
    t_h, t_w = -(-oh // 2), -(-ow // 2)
    cols = max(1, min(t_w, WINOGRAD_TILES))
    rows = max(1, min(n * t_h, WINOGRAD_TILES // cols))  # rows of tiles, over all images
    # As few blocks of rows, and as equal, as that allows: with the rest in
    # a last block, 8 x 7 x 7 tiles of 14x14 planes ran as blocks of 9, 9,
    # 9 and 1 rows, one thread getting twice the other's tiles (2 threads,
    # 7 interleaved rounds, 3x3 forward, equal / remainder: 4x14x14x512
    # 0.88, 8x14x14x512 0.85, 8x14x14x256 0.88, 2x14x14x512 0.94; input
    # gradient 0.89-0.99).
    rows = max(1, -(-(n * t_h) // max(1, -(-(n * t_h) // rows))))  # (an empty batch: one row, no units)
    units = -(-(n * t_h) // rows) * -(-t_w // cols)
    outs = channels_per_unit(units, c_pad)
    return rows, cols, outs, units * -(-c_pad // outs)


@register_jitable
def dw_by_patches(n, oh, ow, kh, kw, sh, sw, dw, c_in, c_out):
    """Whether the filter gradient goes to the patch GEMM rather than the plane kernel.

    The plane kernel reduces over one work unit's grid (``dw_planes_plan``:
    rows_per_block * pitch positions) at a time with 4 x 4 dot-product
    tiles, whose horizontal sums and partial-sum updates are paid once per
    unit: on short grids they dominate. It also fills one plane per stride
    phase, all of them wasted but one when the filter has fewer taps than
    there are phases (1x1 stride 2). The patch GEMM's reductions run over
    up to CHUNK_PIXELS pixels whatever the plane, but its tiles are OUT
    channels wide: it needs a reduction K >= PATCH_MIN_K and C_out >= 32.

    Measured basis (one Zen4 core, CPU time, 7 interleaved rounds, float32
    NHWC, planes/patches time): grids under 256 go to patches: VGG
    2x28x28x256 -> 512 (grid 210) 1.61, 2x14x14x512 -> 512 (64) 3.2,
    ResNet-18 8x14x14x256 (224) 1.17, ResNet-50 1x1 8x14x14 (196) 1.18-1.28,
    8x7x7 (49) 3.2-3.6, AlexNet 8x13x13x192 -> 384 (195) 1.35, 64x11x9x16
    7x7 -> 32 (165) 1.29; from 288 up the planes: 8x16x16x256 3x3 (288)
    0.93, 8x18x18x64 (360) 0.85, 4x28x28x256 (420) 1.01, 1x64x64x128 (528)
    0.81, ResNet-18 8x28x28x128 (840) 0.80, 56x56 and wider planes
    0.75-0.9. C_out 16 keeps the planes at any grid (64x12x12x6 5x5 -> 16:
    0.76, 4x17x17x16 -> 16: 0.78; -> 32 there: 1.02); 1x1 stride 2
    (ResNet-18 8x56x56x64 -> 128, grid 784): 1.54.

    1x1 filters from PATCH_MIN_K_1X1 input channels into
    DW_PATCH_MIN_OUT_1X1 output channels go to the patch GEMM on any grid
    (a 1x1 reduction is a plain matrix product; its gathers read x and dy
    once, see dw_swapped). Measured after that (5 interleaved rounds, one
    core, loaded machine): 8x56x56x64 -> 64 1.21, 8x112x112x32 -> 64 1.15,
    1x56x56x64 -> 64 1.19; into 32 channels 8x56x56x32 1.04, 8x28x28x32
    1.11, 8x40x40x64 0.94: those keep the rule above. NCHW memory too,
    since the patch GEMM reads the operand of more channels there in place
    (``dw_in_place_chunk``), as the plane kernel reads both (2 threads, 7
    interleaved calls, NCHW, patches / planes: 8x56x56x64 -> 64 0.90,
    -> 128 0.67, -> 256 0.49, 256 -> 64 0.69, 8x40x40x32 -> 64 0.69,
    8x112x112x32 -> 64 0.61, 1x56x56x64 -> 64 0.89, 8x28x28x128 -> 128
    0.69; before, when it gathered one of them transposed, planes /
    patches was 0.47-0.61).

    Strided filters from DW_STRIDED_MIN_IN input channels go to the patch
    GEMM on any grid too: the plane kernel fills a plane per stride phase
    and reduces each tap over one of them. One Zen3 core, 3 alternated
    processes, patches / planes time (medians), 3x3 stride 2: NHWC
    8x56x56x64 -> 128 (ResNet-18's downsampling layer, grid 28 rows of 29)
    0.49-0.63, 8x56x56x128 -> 128 0.63-1.00, 2x112x112x64 -> 64
    0.59-0.73, 8x56x56x32 -> 64 0.58-0.90; NCHW 8x56x56x64 -> 128
    0.66-0.80, 2x112x112x64 -> 64 0.79-0.85. (The first layers, 3 input
    channels, 7x7 stride 2 and 11x11 stride 4, measured no clear
    difference, and stay.)
    """
    if kh == 1 and kw == 1 and c_in >= PATCH_MIN_K_1X1 and c_out >= DW_PATCH_MIN_OUT_1X1:
        return True
    if kh * kw * c_in < PATCH_MIN_K or c_out < DW_PATCH_MIN_OUT:
        return False
    return (dw_planes_short(n, oh, ow, kw, sw, dw) or kh * kw < sh * sw
            or (sh * sw > 1 and c_in >= DW_STRIDED_MIN_IN))


@register_jitable
def dw_planes_short(n, oh, ow, kw, sw, dw):
    """Whether the plane kernel's filter-gradient blocks are short grids (under DW_PATCH_MAX_LENGTH).

    The blocks of :func:`rows_per_block`, which the rule was measured on,
    not :func:`plane_rows`' longer ones on small calls.
    """
    pitch = ow + (kw - 1) * dw // sw
    return rows_per_block(n, oh, pitch) * pitch < DW_PATCH_MAX_LENGTH


@register_jitable
def dw_by_taps(n, oh, ow, kh, kw, sh, sw, dh, dw, c_in, c_out):
    """Whether the filter gradient goes to the taps kernel (``_kernels.filter_taps``), x read in place.

    Its products skip every tap on padding and copy nothing but dy's
    panels, where the patch GEMM copies each x value once per tap into
    transposed patches; but each of its reductions runs over one output
    row's valid range only, and it pads C_in to a multiple of TAP_CHANNELS. Measured
    basis (one Zen4 core, CPU time, 7 alternated calls, float32 NHWC,
    stride 1 SAME, taps / the path taken before; 216 shapes of batch and
    plane 64x12x12, 8x28x28, 8x56x56, 1x14x14, C_in 3-128, 3x3-7x7, C_out
    16-64, in ``perf/sweep.py``'s terms):

    - Where the patch GEMM took the call (short plane grids): 5x5 and 7x7
      kernels 0.28-0.93 from 16 input channels (64x11x9x16 7x7 -> 32:
      0.62; AlexNet's 8x27x27x64 5x5 -> 192: 0.78); 3x3 ones into up to 32
      channels 0.53-0.86, into 64 0.82-0.93 and wider 1.14-1.41 (8x28x28x128
      -> 256 stride 2, 8x13x13x384 -> 256, 512 -> 512 on 7x7 and 14x14
      planes); 8 input channels into 64, 1.09-1.32.
    - Where the plane kernel took it: into 16 channels 0.46-1.03 from 16
      input channels; 5x5 and 7x7 kernels
      on 28x28 planes 0.71-0.95, on 56x56 planes 0.87-0.96 from 64 input
      channels, 0.99-1.10 with 16 and 32; 3x3 into 32 or more 1.0-1.9.
    - Fewer than 16 input channels: on the plane kernel's short grids
      (``dw_planes_short``: 64x12x12, 1x14x14) 6-8 channels into up to 32
      0.44-0.94 (LeNet's 64x12x12x6 5x5 -> 16, VALID: 0.56), into 64
      0.98-1.32; 3 channels 0.59-1.18; on 28x28 and 56x56 planes 1.02-2.4.
    - Beyond TAPS_MAX_IN input channels the patch GEMM's reductions over
      long rows of K win; 1x1 filters have no padding to skip and stay
      where they were.
    """
    if kh * kw < 2 or c_in > TAPS_MAX_IN:
        return False
    if c_in < TAPS_MIN_IN:
        return (c_in >= TAPS_MIN_IN_SHORT and c_out <= 2 * OUT
                and dw_planes_short(n, oh, ow, kw, sw, dw))
    large = kh * kw >= TAPS_LARGE_KERNEL
    if (dw_by_patches(n, oh, ow, kh, kw, sh, sw, dw, c_in, c_out)
            or not planes_fit(kh, kw, sh, sw, dh, dw)):  # the patch GEMM's calls
        return large or c_out <= 2 * OUT
    return c_out <= OUT or (large and (ow <= TAPS_MAX_PLANE_W or c_in >= TAPS_WIDE_IN))


@register_jitable
def dw_taps_plan(n, oh, ow, kh, kw, c_in, c_out):
    """(k_pad, c_pad, parts, chunk_rows) of the taps kernel's filter gradient (shape alone).

    Work units are (part, panel of OUT output channels) pairs: parts of the
    output rows, as many as MIN_UNITS units need (each part has its own
    partial sums, added up in order by the driver), and chunks of about
    CHUNK_PIXELS pixels, whose dy panel stays in L1 while every tap reads it.
    """
    c_tap = -(-c_in // TAP_CHANNELS) * TAP_CHANNELS
    k_pad, c_pad = kh * kw * c_tap, -(-c_out // OUT) * OUT
    parts = min(MAX_PARTS, n * oh, -(-MIN_UNITS // (c_pad // OUT)), PARTIAL_BUDGET // (k_pad * c_pad))
    return k_pad, c_pad, max(1, parts), max(1, CHUNK_PIXELS // max(1, ow))


@register_jitable
def dw_planes_plan(n, oh, ow, kw, sw, dw, position_macs):
    """(parts, rows_per_unit) of the plane kernel's filter gradient (:func:`plane_rows`).

    The parts, and so the order of every sum, follow from the shape alone:
    the result is bit-identical at any thread count.
    """
    pitch = ow + (kw - 1) * dw // sw
    rows = plane_rows(n, oh, pitch, position_macs)
    return max(1, min(MAX_PARTS, n * -(-oh // rows))), rows


@register_jitable
def dw_patches_plan(n, oh, ow, kh, kw, c_in, c_out):
    """(k_pad, c_pad, parts, k_block, chunk_pixels) of the patch GEMM's filter gradient (shape alone).

    Work units are (part, block of K rows) pairs. A part is a range of
    pixels with its own partial sums, which the driver adds up in order
    (NumPy, over parts x k_pad x c_pad values: 0.05 ms for 6 x 132 x 512
    on one core); a block
    of K rows gathers all of its part's dy panels again. Parts of
    PART_PIXELS pixels, and more of them, down to DW_PART_MIN_PIXELS, while
    there are fewer than MIN_UNITS units: with one part of one block (1x1
    filters on up to 8191 pixels: ResNet-50's 8x28x28 layers, the 1x1
    stride-2 8x56x56x64 -> 128) the whole filter gradient ran on one
    thread. The price on one core (CPU time, 40 interleaved calls, load
    2.0, these parts / parts of PART_PIXELS only, 6 parts against 1):
    8x56x56x64 -> 128 1x1 stride 2 1.04, 8x28x28x512 -> 128 (as dw^T)
    1.03, 8x28x28x128 -> 512 1.05 (with the parts added by a pass of the
    kernel instead, at load 2.9: 1.01, 1.09-1.13, 1.00-1.01); two threads
    run 6 units where one ran alone.
    """
    k_len = kh * kw * c_in
    k_pad, c_pad = -(-k_len // PIX) * PIX, -(-c_out // OUT) * OUT
    pixels = n * oh * ow
    most_blocks = max(1, k_pad // DW_MIN_K_BLOCK)
    parts = max(pixels // PART_PIXELS, min(-(-MIN_UNITS // most_blocks), pixels // DW_PART_MIN_PIXELS))
    parts = max(1, min(MAX_PARTS, parts, PARTIAL_BUDGET // (k_pad * c_pad)))
    # Each block of K rows gathers all of its part's dy panels again: blocks
    # of DW_MIN_K_BLOCK rows at least (one core, 1x1, kernel time, in blocks
    # of 54 / 132 / all 258 rows: 8x14x14x256 -> 1024 12.3 / 10.7-11.1 /
    # 9.1-9.9 ms, 1024 -> 256 computed as dw^T 12.6-13.6 / 10.0-10.4 /
    # 9.1-13.2; 8x56x56x128 -> 128, 6 parts: 66 rows 14.3-15.5, 132 rows
    # 13.1).
    k_blocks = max(1, min(-(-MIN_UNITS // parts), most_blocks))
    k_block = -(-k_pad // k_blocks // PIX) * PIX
    return k_pad, c_pad, parts, k_block, max(CHUNK_PIXELS, ow)


@register_jitable
def dw_transposed_plan(n, oh, ow, c_out, k_len):
    """(k_pad, c_pad, parts, k_block, col_block, chunk_pixels) of an NCHW filter gradient computed as dw^T.

    dw^T = dy^T @ patches (``_kernels.patch_gemm``, ``transposed``): C_out
    rows, K = KH * KW * C_in columns, as ``dw_patches_plan`` plans a 1x1
    one of C_out input channels into K. Its columns go in blocks whose
    panels of a chunk hold at most IN_PLACE_PANEL_VALUES (K runs to 4608
    for 3x3 filters of 512 channels, 4.7 MB of panels per chunk of 256
    pixels), the chunks as ``dw_in_place_chunk`` makes them for a block.
    """
    k_pad, c_pad, parts, _, _ = dw_patches_plan(n, oh, ow, 1, 1, c_out, k_len)  # (its chunks: below)
    # Every row in each unit: a block of rows gathers its patches again.
    blocks = -(-MIN_UNITS // parts)
    col_block = -(-c_pad // blocks // (2 * OUT)) * 2 * OUT
    col_block = min(c_pad, max(OUT, min(col_block, IN_PLACE_PANEL_VALUES // max(CHUNK_PIXELS, ow) // OUT * OUT)))
    return k_pad, c_pad, parts, k_pad, col_block, dw_in_place_chunk(n * oh * ow, ow, col_block)


@register_jitable
def dw_in_place_chunk(pixels, ow, c_pad):
    """Pixels per pass of the patch GEMM's filter gradient where it reads A in place (1x1, NCHW memory).

    No transposed gather then: the products stream A's rows, a channel
    plane apart, from memory, and longer runs of each suit the hardware
    prefetchers (one core, 8x56x56x64 -> 256 NCHW as dw^T, gathers and
    products: chunks of 256 pixels 10.8 ms, 512 8.9, a whole image 7.9).
    The dy panels of a pass stay within IN_PLACE_PANEL_VALUES (2 threads,
    whole call, chunks of 256 / 1024 / 4096 pixels: 8x56x56x64 -> 256 7.2 /
    6.4 / 6.1 ms with 64 panel channels; 8x28x28x512 -> 128 as dw^T, 512
    panel channels, 5.3 / 6.4 / 8.7), and every part has a chunk of its
    own (MAX_PARTS: 8x14x14x256 -> 1024 in chunks of 1024 pixels, two for
    the call, 4.4 -> 4.9 ms).
    """
    return max(CHUNK_PIXELS, ow, min(IN_PLACE_PANEL_VALUES // c_pad, pixels // MAX_PARTS))


@register_jitable
def dw_swapped(n, kh, kw, sh, sw, pt, pl, h, w, oh, ow, c_in, c_out, nchw):
    """Whether the patch GEMM computes a 1x1 filter gradient transposed: dw^T = dy^T @ x.

    Its transposed gather (A) copies channels to rows a value at a time in
    NHWC memory (a scalar store each), while the panels of B are copies of
    OUT adjacent values; in NCHW memory the other way round. A 1x1 filter
    whose every patch is a pixel of x (no padding reached) is symmetric in
    x and dy, so the operand transposed value by value can be the one with
    fewer channels. One core, NHWC, kernel time: 8x56x56x256 -> 64 15.7
    ms -> 11.8 (its gathers 11.5 -> 4.2 ms), 8x28x28x512 -> 128 18.6 ->
    9.6.

    The NHWC caller then transposes dw^T (C_out x C_in, about 3.5 ns a
    value: 2048 x 512 3.7 ms) for gathers that save about 0.8 ns per pixel
    and channel of difference, so it swaps only while P * (C_in - C_out)
    >= DW_SWAP_RATIO * C_in * C_out (8x7x7x2048 -> 512: no). The NCHW
    caller wants dw^T (OIHW) as it is, and dw itself costs it a transposing
    copy (``_kernels.convolution.filters_to_oihw``): it swaps when C_in <
    C_out, and for filters of DW_SWAP_NCHW_MIN_FILTER values or more.
    (Measured, 2 threads, NCHW, whole call, swapped / not: 8x7x7x1024 ->
    1024 3.18 / 5.71 ms, 8x14x14x512 -> 512 2.45 / 2.75, 8x28x28x256 -> 256
    2.29 / 2.90, 8x7x7x2048 -> 512 2.73 / 3.07, 8x28x28x512 -> 128 2.95 /
    3.02; but 8x56x56x64 -> 64 1.06 / 0.97. With dy's planes read in place
    and the columns in blocks, ``dw_transposed_plan``, swapping at 2**16 /
    2**17 values: 8x28x28x256 -> 256 4.00 / 4.60 ms, 384 -> 192 4.70 /
    5.15, 512 -> 128 4.66 / 4.64.)

    Where the patch GEMM reads both operands in place (NHWC, stride 1:
    ``_kernels.patch_gemm.rows_fit``, B's rows no wider than A's
    or 4 panels), an NHWC caller also swaps from at most
    DW_SWAP_ROWS_MAX_IN input channels into more output channels: x is
    then B, 4 panels at most. (2 threads, NHWC, filter gradient, swapped /
    not, 2 runs: 8x56x56 64 -> 256 0.86-0.87, 8x56x56 64 -> 128 0.81,
    8x28x28 64 -> 256 0.81-0.83, 8x14x14 64 -> 256 0.46, 2x112x112 64 ->
    128 0.78-0.81, 8x56x56 48 -> 192 0.86-0.88, 8x56x56 32 -> 128
    0.73-0.76; but from 128 channels no faster: 128 -> 512 1.03-1.07,
    256 -> 1024 0.98-1.00, 8x7x7 512 -> 2048 1.6.)
    """
    if kh != 1 or kw != 1 or pt != 0 or pl != 0 or (oh - 1) * sh >= h or (ow - 1) * sw >= w:
        return False
    if nchw:
        return c_in < c_out or c_in * c_out >= DW_SWAP_NCHW_MIN_FILTER
    if sh == 1 and sw == 1 and c_in <= DW_SWAP_ROWS_MAX_IN < c_out and rows_fit(c_out, c_in):
        return True  # (both read in place, x the narrower B: see the docstring)
    return n * oh * ow * (c_in - c_out) >= DW_SWAP_RATIO * c_in * c_out


@register_jitable
def dw_winograd_plan(n, oh, ow, c_in, c_out):
    """(tile_rows, tile_cols, parts, out_blocks, block_co, c_pad) of the Winograd filter gradient (shape alone).

    Each product reduces over about WINOGRAD_TILES tiles (whole rows of
    tiles, several when rows are short); the partial sums (16 x block_co x
    c_pad each) are split into parts of at least PART_PIXELS outputs within
    PARTIAL_BUDGET, and the output channels into blocks of at least 64
    when there are fewer parts than MIN_UNITS.
    """
    cols = max(1, min(-(-ow // 2), WINOGRAD_TILES))
    rows = max(1, WINOGRAD_TILES // cols)
    c_pad = -(-c_in // OUT) * OUT
    co_pad = -(-c_out // PIX) * PIX
    parts = max(1, min(MAX_PARTS, n * oh * ow // PART_PIXELS, PARTIAL_BUDGET // (16 * co_pad * c_pad)))
    out_blocks = max(1, min(-(-MIN_UNITS // parts), c_out // 64))
    block_co = -(-c_out // out_blocks // PIX) * PIX
    return rows, cols, parts, -(-c_out // block_co), block_co, c_pad


@register_jitable
def bias_parts(rows):
    """Partial sums of the bias gradient over ``rows`` rows (shape, not threads: bit-identical)."""
    return max(1, min(MAX_PARTS, rows))


@register_jitable
def bias_row_pixels(pixels, ow, c):
    """Pixels per row of the (rows, pixels_per_row * C) view of NHWC dy that the bias gradient sums.

    Whole pixels, the most that divide the pixel count within
    BIAS_ROW_VALUES values and one output row (OW): each work unit adds
    its rows into one partial row, which then stays in L1, and the serial
    fold of the parts' rows is no longer than with rows of OW pixels.
    Rows of OW * C values overflowed L1 on wide layers: one core, CPU
    time, the bias gradient, 5 interleaved rounds (load 2.8-3.2), rows of
    OW * C values / rows of this: 8x28x28x512 0.37-0.55 ms / 0.21-0.28,
    8x112x112x64 1.30-1.62 / 0.78-1.05, 8x56x56x256 1.43-1.85 / 0.63-0.89,
    8x56x56x128 0.34-0.80 / 0.19-0.30, 8x14x14x1024 0.21-0.25 / 0.08-0.14,
    8x28x28x128 0.07-0.10 / 0.05-0.06, 8x56x56x64 0.10-0.16 / 0.08-0.12.
    """
    m = max(1, min(ow, BIAS_ROW_VALUES // max(1, c)))
    while m > 1 and pixels % m:
        m -= 1
    return m


@register_jitable
def phases(size, pad, s):
    """The stride phases that hold some output index, increasing (int64): at most ``size`` of them."""
    if s <= size:
        return np.arange(s)
    # size < s consecutive indices (i + pad) % s: one run from pad % s,
    # wrapping around to 0 past s - 1.
    first = pad % s
    wrapped = max(0, first + size - s)
    out = np.empty(wrapped + min(first + size, s) - first, np.int64)
    for i in range(wrapped):
        out[i] = i
    for i in range(first, min(first + size, s)):
        out[wrapped + i - first] = i
    return out


@register_jitable
def phase_rows(size, pad, s, r):
    """(first j, count) of the outputs ``i = j * s + r - pad`` with ``0 <= i < size``."""
    first = -((r - pad) // s)
    last = (size - 1 + pad - r) // s
    return first, max(0, last - first + 1)


@register_jitable
def phase_taps(k, d, s, r):
    """Taps of a kernel axis that reach the output phase r (``(t * d) % s == r``), in reverse order.

    Output index ``i + pad = j * s + r`` reads x at ``j - (t * d - r) // s``
    for each such tap t: a stride-1 correlation whose taps, reversed, are
    ``d // gcd(d, s)`` apart. Returns (taps as int64, dilation, shift of the
    last tap).
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
    return taps, d // a, (int(taps[0]) * d - r) // s


# ------------------------------------------------------------ kept decisions
#
# The public driver keeps each geometry's decisions (``numbaconv._fast.
# convolution``: a few microseconds of these rules per call). They follow
# this module's constants, which the test suite sets to force a strategy:
# setting any name here forgets every kept decision.

_FORGET: list = []  # the cache_clear of every cache that keeps results of these rules


def kept(cache):
    """Register an ``functools.lru_cache`` of these rules' results: it is cleared when a name here is set."""
    _FORGET.append(cache.cache_clear)
    return cache


class _Rules(types.ModuleType):
    """The class of this module: setting a name (a constant of the rules) forgets the kept decisions."""

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        for forget in _FORGET:
            forget()


sys.modules[__name__].__class__ = _Rules
