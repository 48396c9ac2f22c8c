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

NHWC kernels take x flat, (N * H * W * C,), and run over blocks of whole
pixels: the channel windows of a block are computed with flat, vectorized
loops over the block, each term masked to stay inside its own pixel (C is
often 16 or less, too short for a loop per pixel to vectorize). NCHW kernels
take x as (N, C, H * W) and vectorize over pixels.

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
def _add_pixel_neighbours(padded, radius, channel, c_size, sums):
    """sums[i] += sum(padded[radius + i + d] for 0 < |d| <= radius if 0 <= channel[i] + d < C).

    ``padded[radius:radius + len(sums)]`` holds whole pixels of ``c_size``
    channels (``channel[i] = i % c_size``), with ``radius`` entries of slack
    at each end so that every read is in bounds (the slack is read, and
    masked out); masked terms are never added. The caller puts the centre
    term (d = 0) into ``sums``.
    """
    length = sums.shape[0]
    zero = sums.dtype.type(0)
    # Offsets d and d + 1 in one pass: sums and channel are loaded once for
    # four terms (20% faster than a pass per offset).
    for d in range(1, radius, 2):
        e = d + 1
        above, below = padded[radius + d:radius + d + length], padded[radius - d:radius - d + length]
        above_e, below_e = padded[radius + e:radius + e + length], padded[radius - e:radius - e + length]
        top, bottom = np.int32(c_size - d), np.int32(d)
        top_e, bottom_e = np.int32(c_size - e), np.int32(e)
        for i in range(length):
            # Loads before the selects: conditional loads became masked loads (15% slower).
            ch, a, b, a_e, b_e = channel[i], above[i], below[i], above_e[i], below_e[i]
            sums[i] += (((a if ch < top else zero) + (b if ch >= bottom else zero))
                        + ((a_e if ch < top_e else zero) + (b_e if ch >= bottom_e else zero)))
    if radius % 2:
        above, below = padded[2 * radius:2 * radius + length], padded[:length]
        top, bottom = np.int32(c_size - radius), np.int32(radius)
        for i in range(length):
            ch, a, b = channel[i], above[i], below[i]
            sums[i] += (a if ch < top else zero) + (b if ch >= bottom else zero)


@kernel(parallel=False)
def _pixel_channels(length, c_size):
    """channel[i] = i % c_size for a block of whole pixels."""
    channel = np.empty(length, dtype=np.int32)
    for i in range(length):
        channel[i] = i % c_size
    return channel


@kernel
def lrn_nhwc(x, c_size, radius, bias, alpha, beta, lo, hi, block, y, outside):
    """y = lrn(x) on flat NHWC data: x and y are (N * H * W * C,), C = c_size > 0.

    One prange iteration (job) owns ``block`` whole pixels, ``y[p * C:(p + block) * C]``,
    and ``outside[job]``, the count of its scales outside [lo, hi].
    The scalars are in x's dtype.
    """
    r = min(radius, c_size - 1)
    per_job = block * c_size
    jobs = (x.shape[0] + per_job - 1) // per_job
    channel = _pixel_channels(per_job, c_size)
    for job in prange(jobs):
        start = np.int64(job) * per_job
        length = min(per_job, x.shape[0] - start)
        x_block = x[start:start + length]
        squares = np.zeros(length + 2 * r, dtype=x.dtype)
        # Written through a slice: to Numba an index r + i may be negative,
        # and its wraparound check keeps the loop from vectorizing.
        squares_block = squares[r:r + length]
        sums = np.empty(length, dtype=x.dtype)
        for i in range(length):
            square = x_block[i] * x_block[i]
            squares_block[i] = square
            sums[i] = square
        _add_pixel_neighbours(squares, r, channel, c_size, sums)
        outside[job] = _normalize(x_block, sums, bias, alpha, beta, lo, hi, y[start:start + length])


@kernel
def lrn_backward_nhwc(dy, x, c_size, radius, bias, alpha, beta, two_alpha_beta, lo, hi, block, dx,
                      outside):
    """dx = gradient of sum(lrn(x) * dy) on flat NHWC data ((N * H * W * C,), C = c_size > 0).

    One prange iteration (job) owns ``block`` whole pixels, ``dx[p * C:(p + block) * C]``,
    and ``outside[job]``: its scales outside [lo, hi] plus its non-finite dx.
    The scalars are in x's dtype; ``two_alpha_beta = 2 * alpha * beta``.
    """
    largest = np.finfo(dx.dtype).max
    r = min(radius, c_size - 1)
    per_job = block * c_size
    jobs = (x.shape[0] + per_job - 1) // per_job
    channel = _pixel_channels(per_job, c_size)
    for job in prange(jobs):
        start = np.int64(job) * per_job
        length = min(per_job, x.shape[0] - start)
        x_block = x[start:start + length]
        dy_block = dy[start:start + length]
        dx_block = dx[start:start + length]
        terms = np.zeros(length + 2 * r, dtype=x.dtype)
        terms_block = terms[r:r + length]
        sums = np.empty(length, dtype=x.dtype)
        for i in range(length):
            square = x_block[i] * x_block[i]
            terms_block[i] = square
            sums[i] = square
        _add_pixel_neighbours(terms, r, channel, c_size, sums)
        scale = np.empty(length, dtype=x.dtype)
        powered = np.empty(length, dtype=x.dtype)
        count = _scale_and_power(sums, bias, alpha, beta, lo, hi, scale, powered)
        # The backward window sum, of dy * x / scale ** (beta + 1), reuses the buffers.
        for i in range(length):
            term = dy_block[i] * x_block[i] / (powered[i] * scale[i])
            terms_block[i] = term
            sums[i] = term
        _add_pixel_neighbours(terms, r, channel, c_size, sums)
        for i in range(length):
            d = dy_block[i] / powered[i] - two_alpha_beta * x_block[i] * sums[i]
            count += not (abs(d) <= largest)
            dx_block[i] = d
        outside[job] = count


@kernel(parallel=False)
def _channel_window_sum(rows, c, radius, out):
    """out = sum(rows[c'] for c' in [c - radius, c + radius] within the rows), vectorized along out."""
    first, last = max(c - radius, 0), min(c + radius, rows.shape[0] - 1)
    row = rows[first]
    for i in range(out.shape[0]):
        out[i] = row[i]
    for other in range(first + 1, last + 1):
        row = rows[other]
        for i in range(out.shape[0]):
            out[i] += row[i]


@kernel
def lrn_nchw(x, radius, bias, alpha, beta, lo, hi, block, y, outside):
    """y = lrn(x) on channels-first data: x and y are (N, C, H * W).

    One prange iteration (job) owns ``y[n, :, p:p + block]``, a block of pixels of one
    sample, and ``outside[job]``, the count of its scales outside [lo, hi].
    The scalars are in x's dtype.
    """
    n_size, c_size, p_size = x.shape
    r = min(radius, c_size - 1)
    blocks = (p_size + block - 1) // block
    for job in prange(n_size * blocks):
        n = np.int64(job) // blocks
        start = (np.int64(job) % blocks) * block
        length = min(block, p_size - start)
        squares = np.empty((c_size, length), dtype=x.dtype)
        sums = np.empty(length, dtype=x.dtype)
        for c in range(c_size):
            x_row, squares_row = x[n, c, start:start + length], squares[c]
            for i in range(length):
                squares_row[i] = x_row[i] * x_row[i]
        count = 0
        for c in range(c_size):
            _channel_window_sum(squares, c, r, sums)
            count += _normalize(x[n, c, start:start + length], sums, bias, alpha, beta, lo, hi,
                                y[n, c, start:start + length])
        outside[job] = count


@kernel
def lrn_backward_nchw(dy, x, radius, bias, alpha, beta, two_alpha_beta, lo, hi, block, dx, outside):
    """dx = gradient of sum(lrn(x) * dy) on channels-first data: all (N, C, H * W).

    One prange iteration (job) owns ``dx[n, :, p:p + block]``, a block of pixels of one
    sample, and ``outside[job]``: its scales outside [lo, hi] plus its non-finite dx.
    The scalars are in x's dtype; ``two_alpha_beta = 2 * alpha * beta``.
    """
    largest = np.finfo(dx.dtype).max
    n_size, c_size, p_size = x.shape
    r = min(radius, c_size - 1)
    blocks = (p_size + block - 1) // block
    for job in prange(n_size * blocks):
        n = np.int64(job) // blocks
        start = (np.int64(job) % blocks) * block
        length = min(block, p_size - start)
        squares = np.empty((c_size, length), dtype=x.dtype)
        powered = np.empty((c_size, length), dtype=x.dtype)
        terms = np.empty((c_size, length), dtype=x.dtype)
        sums = np.empty(length, dtype=x.dtype)
        scale = np.empty(length, dtype=x.dtype)
        for c in range(c_size):
            x_row, squares_row = x[n, c, start:start + length], squares[c]
            for i in range(length):
                squares_row[i] = x_row[i] * x_row[i]
        count = 0
        for c in range(c_size):
            _channel_window_sum(squares, c, r, sums)
            powered_row = powered[c]
            count += _scale_and_power(sums, bias, alpha, beta, lo, hi, scale, powered_row)
            # The terms of the backward window sum: dy * x / scale ** (beta + 1).
            x_row, dy_row, terms_row = x[n, c, start:start + length], dy[n, c, start:start + length], terms[c]
            for i in range(length):
                terms_row[i] = dy_row[i] * x_row[i] / (powered_row[i] * scale[i])
        for c in range(c_size):
            _channel_window_sum(terms, c, r, sums)
            x_row, dy_row = x[n, c, start:start + length], dy[n, c, start:start + length]
            powered_row, dx_row = powered[c], dx[n, c, start:start + length]
            for i in range(length):
                d = dy_row[i] / powered_row[i] - two_alpha_beta * x_row[i] * sums[i]
                count += not (abs(d) <= largest)
                dx_row[i] = d
        outside[job] = count
