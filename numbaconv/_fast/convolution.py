"""Drivers of the convolution kernels (see ``numbaconv._api`` for the core interface).

Cores get arrays indexed NHWC. An NCHW caller's arrays (``nchw`` True)
arrive as NHWC views of NCHW memory: the kernels read those in place (through
``_kernels.convolution.Image``) and the drivers allocate the result in NCHW
memory too, returned as an NHWC view, which the public layer's transpose back
to NCHW turns into a C-contiguous array without a copy. On the
benchmark shape the transposing copies would otherwise cost about as much as
the NHWC convolution itself.
"""
import numba
import numpy as np

from .._kernels import convolution as k
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


def conv2d(x, w, b, g, nchw):
    w = contiguous(w)
    n, c_out = x.shape[0], w.shape[3]
    y = empty_like_layout((n, g.oh, g.ow, c_out), x.dtype, nchw)
    pitch = g.ow + (g.kw - 1) * g.dw // g.sw
    k.conv2d_nhwc(image(x, nchw), w, _bias(b, c_out, x.dtype), image(y, nchw), rows_per_block(n, g.oh, pitch),
                  g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return y


def conv2d_transpose(x, w, b, g, nchw):
    """x lives on g's output plane (g.oh, g.ow); the result on its input plane (g.h, g.w)."""
    w = contiguous(w)
    n, c_in = x.shape[0], w.shape[2]
    y = empty_like_layout((n, g.h, g.w, c_in), x.dtype, nchw)
    grid_rows = (g.h - 1 + g.pt) // g.sh + 1
    pitch = (g.w - 1 + g.pl) // g.sw + 1 + (g.kw - 1) * g.dw // g.sw
    k.conv2d_transpose_nhwc(image(x, nchw), w, _bias(b, c_in, x.dtype), image(y, nchw),
                            rows_per_block(n, grid_rows, pitch), g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return y


def conv2d_backward_filter(x, dy, g, nchw):
    n = x.shape[0]
    dw = np.empty((g.kh, g.kw, x.shape[3], dy.shape[3]), x.dtype)
    pitch = g.ow + (g.kw - 1) * g.dw // g.sw
    k.conv2d_backward_filter_nhwc(image(x, nchw), image(dy, nchw), dw, numba.get_num_threads(),
                                  rows_per_block(n, g.oh, pitch), g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return dw


def bias_backward(dy, nchw):
    n, oh, ow, c = dy.shape
    db = np.empty(c, dy.dtype)
    if nchw:
        rows, channel_step = contiguous(dy.transpose(0, 3, 1, 2)).reshape(n, c * oh * ow), oh * ow
    else:
        rows, channel_step = contiguous(dy).reshape(n * oh, ow * c), 1
    k.bias_backward_rows(rows, db, channel_step, numba.get_num_threads())
    return db
