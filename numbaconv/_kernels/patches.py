"""im2col / col2im kernels on NHWC data.

``cols`` has one row per output position, in (n, oh, ow) order, and columns
in (kh, kw, c) order; output position ``(oh, ow)`` reads input pixel
``(oh * sh - pt + kh * dh, ow * sw - pl + kw * dw)`` for tap ``(kh, kw)``.
The kernels index the image through a row-flattened ``(N, H, W * C)`` view,
so that a pixel's channels and a run of pixels are plain offsets (no views
in the loops: their reference counting costs more than copying 3 channels).
"""
import numpy as np
from numba import prange

from .._numba import kernel


@kernel
def im2col_nhwc(x, cols, out_h, out_w, k_h, k_w, sh, sw, dh, dw, pt, pl):
    """cols[(n, oh, ow), (kh, kw, c)] = x[n, ih, iw, c], or 0 where (ih, iw) is padding.

    One prange iteration owns the OW rows of cols for one (n, oh).
    """
    n_batch, h, wd, channels = x.shape
    x_rows = x.reshape(n_batch, h, wd * channels)
    tap_len = k_w * channels  # one kernel row of a patch
    for out_row in prange(n_batch * out_h):
        n = np.int64(out_row) // out_h
        oh = np.int64(out_row) - n * out_h
        for ow in range(out_w):
            r = out_row * out_w + ow
            left = ow * sw - pl
            for kh in range(k_h):
                ih = oh * sh - pt + kh * dh
                col = kh * tap_len
                if ih < 0 or ih >= h:
                    for j in range(tap_len):
                        cols[r, col + j] = 0
                elif dw == 1 and left >= 0 and left + k_w <= wd:
                    # The whole kernel row is one contiguous run of x.
                    start = left * channels
                    for j in range(tap_len):
                        cols[r, col + j] = x_rows[n, ih, start + j]
                else:
                    for kw in range(k_w):
                        iw = left + kw * dw
                        if 0 <= iw < wd:
                            for c in range(channels):
                                cols[r, col + kw * channels + c] = x_rows[n, ih, iw * channels + c]
                        else:
                            for c in range(channels):
                                cols[r, col + kw * channels + c] = 0


@kernel
def col2im_nhwc(cols, x, out_h, out_w, k_h, k_w, sh, sw, dh, dw, pt, pl):
    """The adjoint of im2col_nhwc in gather form: x[n, ih, iw, c] sums every cols entry read from it.

    Taps are added in (kh, kw) order. One prange iteration owns one row
    ``x[n, ih, :, :]`` and reads the cols rows of the outputs that see it.
    """
    n_batch, h, wd, channels = x.shape
    row_len = wd * channels
    x_rows = x.reshape(n_batch, h, row_len)
    for in_row in prange(n_batch * h):
        n = np.int64(in_row) // h
        ih = np.int64(in_row) - n * h
        for j in range(row_len):
            x_rows[n, ih, j] = 0
        for kh in range(k_h):
            oh_strided = ih + pt - kh * dh
            if oh_strided < 0:
                break  # decreases with kh
            oh = oh_strided // sh
            if oh * sh != oh_strided or oh >= out_h:
                continue
            first_row = (n * out_h + oh) * out_w
            for kw in range(k_w):
                offset = pl - kw * dw  # iw = ow * sw - offset
                ow_lo = (offset + sw - 1) // sw if offset > 0 else 0
                ow_hi = min(out_w, (wd - 1 + offset) // sw + 1) if wd - 1 + offset >= 0 else 0
                col = (kh * k_w + kw) * channels
                for ow in range(ow_lo, ow_hi):
                    start = (ow * sw - offset) * channels
                    for c in range(channels):
                        x_rows[n, ih, start + c] += cols[first_row + ow, col + c]
