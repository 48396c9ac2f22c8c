"""Local response normalization kernels (TensorFlow's semantics).

    s[c] = bias + alpha * sum(x[c'] ** 2 for c' in [c - r, c + r] within the channels)
    y[c] = x[c] / s[c] ** beta
    dx[j] = dy[j] / s[j] ** beta
            - 2 * alpha * beta * x[j] * sum(dy[c] * x[c] / s[c] ** (beta + 1) for c in j's window)

Window sums add the 2r + 1 terms directly (no running add-and-subtract, whose
float32 error grows with the channel count and which cancels badly in the
backward's signed sums); the radius is clipped to C - 1, so a sum costs
O(min(r, C)). ``s ** beta`` goes through square roots for beta in
{0.5, 0.75, 1}: Numba has no vector ``pow`` here, and a generic beta makes
the whole op ~8x slower (scalar ``powf`` per element).

One kernel serves both layouts and both directions (each parallel kernel
costs about a second to compile, per dtype). It takes x flat and runs over
blocks of pixels, copying a block's squares into a scratch buffer laid out
as the block lies in memory: channels last (NHWC, all N * H * W pixels in a
row), the block's whole pixels, whose channels are 1 apart; channels first
(NCHW, blocks within a sample), a row of the block's pixels per channel,
the rows back to back (channels a block's length apart: a sample's short
last block is as compact as the others). The channel windows of a block are
then computed with flat, vectorized loops over the whole scratch buffer,
each term masked to stay inside its own pixel (C is often 16 or less, too
short for a loop per pixel to vectorize), so both layouts sum each window
in the same order. Every scratch entry those loops read, the zeroed slack
at the ends included, is written first: nothing depends on what
``np.empty`` returns.

Overflow (float32 data)
-----------------------
The contract's answer is the float64 math rounded to x's dtype: x ** 2
overflows float32 from |x| ~ 1.8e19, the scale from bias or alpha ~ 3.4e38,
and a scale that overflows (or one that is subnormal) turns outputs that
should be finite into 0 or NaN. Each prange iteration counts, into
``outside[job]``, its scales outside ``[lo, hi]``, the range in which the
scale, its powers and the squares behind it are accurate normal floats (the
driver derives it); the backward also counts non-finite dx. The driver
recomputes the blocks with a nonzero count with the float64 kernel. (Doing
that inside the kernel compiled every float64 helper into each float32
kernel: 1.7x the cold compile time.)
"""
import numpy as np
from numba import prange

from .._numba import kernel


@kernel(parallel=False)
def _normalize(x, window_sums, bias, alpha, beta, lo, hi, y):
    """y = x / (bias + alpha * window_sums) ** beta, through square roots for beta in {0.5, 0.75, 1}.

    Returns how many scales lie outside [lo, hi] (NaN counts).
    """
    outside = 0
    if beta == 0.5:
        for i in range(x.shape[0]):
            s = bias + alpha * window_sums[i]
            outside += not (lo <= s <= hi)
            y[i] = x[i] / np.sqrt(s)
    elif beta == 0.75:
        for i in range(x.shape[0]):
            s = bias + alpha * window_sums[i]
            outside += not (lo <= s <= hi)
            root = np.sqrt(s)
            y[i] = x[i] / (root * np.sqrt(root))
    elif beta == 1.0:
        for i in range(x.shape[0]):
            s = bias + alpha * window_sums[i]
            outside += not (lo <= s <= hi)
            y[i] = x[i] / s
    else:
        for i in range(x.shape[0]):
            s = bias + alpha * window_sums[i]
            outside += not (lo <= s <= hi)
            y[i] = x[i] / s ** beta
    return outside


@kernel(parallel=False)
def _scale_and_power(window_sums, bias, alpha, beta, lo, hi, scale, powered):
    """scale = bias + alpha * window_sums and powered = scale ** beta (square roots as in _normalize).

    Returns how many scales lie outside [lo, hi] (NaN counts).
    """
    outside = 0
    if beta == 0.5:
        for i in range(scale.shape[0]):
            s = bias + alpha * window_sums[i]
            outside += not (lo <= s <= hi)
            scale[i] = s
            powered[i] = np.sqrt(s)
    elif beta == 0.75:
        for i in range(scale.shape[0]):
            s = bias + alpha * window_sums[i]
            outside += not (lo <= s <= hi)
            root = np.sqrt(s)
            scale[i] = s
            powered[i] = root * np.sqrt(root)
    elif beta == 1.0:
        for i in range(scale.shape[0]):
            s = bias + alpha * window_sums[i]
            outside += not (lo <= s <= hi)
            scale[i] = s
            powered[i] = s
    else:
        for i in range(scale.shape[0]):
            s = bias + alpha * window_sums[i]
            outside += not (lo <= s <= hi)
            scale[i] = s
            powered[i] = s ** beta
    return outside


@kernel(parallel=False)
def _add_neighbours(padded, radius, step, channel, c_size, sums):
    """sums[i] += sum(padded[o + i + d * step] for 0 < |d| <= radius if 0 <= channel[i] + d < C), o = radius * step.

    ``padded`` is ``len(sums) + 2 * o`` long: ``padded[o:o + len(sums)]``
    holds a block of scratch in which channel c + d of an element of
    channel c lies ``d * step`` further (``channel[i]`` is the channel of
    element i), with ``o`` entries of slack at each end so that every read
    is in bounds (the slack is read, and masked out: the caller zeroes it);
    masked terms are never added. The caller puts the centre term (d = 0)
    into ``sums``.
    """
    length = sums.shape[0]
    zero = sums.dtype.type(0)
    o = radius * step
    # Offsets d and d + 1 in one pass: sums and channel are loaded once for
    # four terms (20% faster than a pass per offset).
    for d in range(1, radius, 2):
        e = d + 1
        above, below = padded[o + d * step:o + d * step + length], padded[o - d * step:o - d * step + length]
        above_e = padded[o + e * step:o + e * step + length]
        below_e = padded[o - e * step:o - e * step + length]
        top, bottom = np.int32(c_size - d), np.int32(d)
        top_e, bottom_e = np.int32(c_size - e), np.int32(e)
        for i in range(length):
            # Loads before the selects: conditional loads became masked loads (15% slower).
            ch, a, b, a_e, b_e = channel[i], above[i], below[i], above_e[i], below_e[i]
            sums[i] += (((a if ch < top else zero) + (b if ch >= bottom else zero))
                        + ((a_e if ch < top_e else zero) + (b_e if ch >= bottom_e else zero)))
    if radius % 2:
        above, below = padded[2 * o:2 * o + length], padded[:length]
        top, bottom = np.int32(c_size - radius), np.int32(radius)
        for i in range(length):
            ch, a, b = channel[i], above[i], below[i]
            sums[i] += (a if ch < top else zero) + (b if ch >= bottom else zero)


@kernel(parallel=False)
def _block_channels(c_size, length, channels_first):
    """The channel of each element of a block's scratch (``length`` pixels of ``c_size`` channels)."""
    channel = np.empty(length * c_size, dtype=np.int32)
    # Counters, not i // length or i % c_size per entry: LLVM vectorized that
    # loop and scalarized its integer divisions into much code; this scalar
    # loop is little code, and runs once per call (a block's worth of entries).
    run = length if channels_first else 1  # entries of one channel in a row
    c = k = 0
    for i in range(channel.shape[0]):
        channel[i] = c
        k += 1
        if k == run:
            k = 0
            c = c + 1 if c + 1 < c_size else 0
    return channel


@kernel(parallel=False)
def _block_rows(job, blocks, block, pixels, c_size, channels_first):
    """Where a job's block lies: (rows, row length, x offset of row 0, x step between rows).

    Channels last: one row of the block's pixels times channels. Channels
    first: a row of the block's pixels per channel. In the scratch, the rows
    lie back to back (row i at ``i * row length``).
    """
    n = np.int64(job) // blocks
    start = (np.int64(job) % blocks) * block
    length = min(block, pixels - start)
    if channels_first:
        return c_size, length, (n * c_size) * pixels + start, pixels
    return 1, length * c_size, start * c_size, 0


@kernel
def local_response_norm(dy, x, samples, c_size, channels_first, backward, radius, bias, alpha, beta,
                        two_alpha_beta, lo, hi, block, out, outside):
    """out = lrn(x), or with ``backward`` the gradient of sum(lrn(x) * dy), on flat data.

    One kernel for both directions (one compilation: the forward pass is
    the backward's first half). x, dy (ignored by the forward pass: pass
    x) and out are ``samples`` blocks of C = c_size > 0 channels times P
    pixels: channels last (NHWC), one sample of N * H * W pixels; channels
    first (NCHW), N samples of H * W pixels, each channel's pixels
    contiguous. One prange iteration (job) owns ``block`` pixels of one
    sample (fewer at its end) and ``outside[job]``: the count of its scales
    outside [lo, hi], plus (backward) its non-finite dx. The scalars are in
    x's dtype; ``two_alpha_beta = 2 * alpha * beta``.
    """
    largest = np.finfo(out.dtype).max
    pixels = x.shape[0] // (samples * c_size)
    r = min(radius, c_size - 1)
    blocks = (pixels + block - 1) // block
    # The channels of a full block's scratch, and of a sample's last block
    # (channels first, its rows are as long as the block: pixels - its start).
    channel = _block_channels(c_size, block, channels_first)
    last = _block_channels(c_size, pixels - (blocks - 1) * block, channels_first) if channels_first else channel
    for job in prange(samples * blocks):
        # job as int64: the prange index is typed int64, then uint64 in the
        # parfor body, and each type compiled _block_rows once more.
        rows, row_len, start, x_step = _block_rows(np.int64(job), blocks, block, pixels, c_size,
                                                   channels_first)
        span = rows * row_len  # the block's scratch entries, rows back to back
        step = row_len if channels_first else 1  # between a channel and the next in the scratch
        slack = r * step
        # The block's terms with r channels' worth of zero slack at each end
        # (zeroing only the slack: the whole buffer cost 10% with channels first).
        # Every entry is written before it is read (a short block's rows lie
        # back to back too): no result depends on what np.empty returned.
        terms = np.empty(span + 2 * slack, dtype=x.dtype)
        for i in range(slack):
            terms[i] = 0
            terms[slack + span + i] = 0
        # Written through a slice: to Numba an index slack + i may be
        # negative, and its wraparound check keeps the loop from vectorizing.
        terms_block = terms[slack:slack + span]
        sums = np.empty(span, dtype=x.dtype)
        job_channel = last if np.int64(job) % blocks == blocks - 1 else channel
        for row in range(rows):
            first, at = start + row * x_step, row * row_len
            x_row = x[first:first + row_len]
            terms_row, sums_row = terms_block[at:at + row_len], sums[at:at + row_len]
            for i in range(row_len):
                square = x_row[i] * x_row[i]
                terms_row[i] = square
                sums_row[i] = square
        _add_neighbours(terms, r, step, job_channel, c_size, sums)
        # Backward only (empty for the forward pass).
        scale = np.empty(span * backward, dtype=x.dtype)
        powered = np.empty(span * backward, dtype=x.dtype)
        count = 0
        for row in range(rows):
            first, at = start + row * x_step, row * row_len
            x_row = x[first:first + row_len]
            if not backward:
                # In one pass (y = x / powered from the buffer would round
                # differently: LLVM rewrites x / s ** beta as x * s ** -beta).
                count += _normalize(x_row, sums[at:at + row_len], bias, alpha, beta, lo, hi,
                                    out[first:first + row_len])
                continue
            count += _scale_and_power(sums[at:at + row_len], bias, alpha, beta, lo, hi,
                                      scale[at:at + row_len], powered[at:at + row_len])
            # The backward window sum, of dy * x / scale ** (beta + 1), reuses the buffers.
            dy_row, scale_row = dy[first:first + row_len], scale[at:at + row_len]
            powered_row = powered[at:at + row_len]
            terms_row, sums_row = terms_block[at:at + row_len], sums[at:at + row_len]
            for i in range(row_len):
                term = dy_row[i] * x_row[i] / (powered_row[i] * scale_row[i])
                terms_row[i] = term
                sums_row[i] = term
        if backward:
            _add_neighbours(terms, r, step, job_channel, c_size, sums)
            for row in range(rows):
                first, at = start + row * x_step, row * row_len
                x_row, dy_row, dx_row = x[first:first + row_len], dy[first:first + row_len], out[first:first + row_len]
                sums_row, powered_row = sums[at:at + row_len], powered[at:at + row_len]
                for i in range(row_len):
                    d = dy_row[i] / powered_row[i] - two_alpha_beta * x_row[i] * sums_row[i]
                    count += not (abs(d) <= largest)
                    dx_row[i] = d
        outside[job] = count
