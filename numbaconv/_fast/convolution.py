"""Drivers of the convolution kernels (see ``numbaconv._api`` for the core interface).

The strategy choice, filter packing, stride phases and partial sums are
nopython code in ``numbaconv._kernels.conv_drivers``, shared with
``numbaconv.kernels``. Cores get arrays indexed NHWC. An NCHW caller's arrays (``nchw`` True)
arrive as NHWC views of NCHW memory: the kernels read those in place (through
``_kernels.convolution.Image``) and the drivers allocate the result in NCHW
memory too, returned as an NHWC view, which the public layer's transpose back
to NCHW turns into a C-contiguous array without a copy. On the
benchmark shape the transposing copies would otherwise cost about as much as
the NHWC convolution itself.
"""
import numpy as np

from .._kernels import conv_drivers as d
from .._kernels import convolution as k
from .._numba import launch_threads
from ._memory import contiguous


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


def _bias(b, c, dtype):
    """The kernels always add a bias; none is a zero one (C floats, not a second kernel)."""
    return np.zeros(c, dtype) if b is None else contiguous(b)


def _filter_memory(w, nchw):
    """The filters' flat memory and the element steps of their (kh, kw, ci, co) indices.

    OIHW filters (an NCHW caller's) are read in place; nothing is transposed.
    """
    kh, kw, ci, co = w.shape
    if nchw:
        oihw = contiguous(w.transpose(3, 2, 0, 1))
        return oihw.reshape(-1), (kw, 1, kh * kw, ci * kh * kw)
    return contiguous(w).reshape(-1), (kw * ci * co, ci * co, co, 1)


def conv2d(x, w, b, g, nchw, out=None):
    launch_threads()  # the drivers are serial code calling parallel kernels
    n, c_in, c_out = x.shape[0], w.shape[2], w.shape[3]
    # ``out`` (the caller's C-contiguous buffer, NHWC-indexed) has the memory order of ``y``.
    y = empty_like_layout((n, g.oh, g.ow, c_out), x.dtype, nchw) if out is None else out
    data, steps = _filter_memory(w, nchw)
    d.forward(image(x, nchw), data, steps, c_in, c_out, _bias(b, c_out, x.dtype), image(y, nchw),
              np.arange(g.kh), np.arange(g.kw), False, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return y


def conv2d_transpose(x, w, b, g, nchw, out=None):
    """x lives on g's output plane (g.oh, g.ow); the result on its input plane (g.h, g.w)."""
    launch_threads()  # the drivers are serial code calling parallel kernels
    n, c_in = x.shape[0], w.shape[2]
    y = empty_like_layout((n, g.h, g.w, c_in), x.dtype, nchw) if out is None else out
    data, steps = _filter_memory(w, nchw)
    d.transpose(image(x, nchw), data, steps, g.kh, g.kw, _bias(b, c_in, x.dtype), image(y, nchw),
                g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return y


def conv2d_backward_filter(x, dy, g, nchw, out=None):
    launch_threads()  # the drivers are serial code calling parallel kernels
    # The kernels write C-contiguous HWIO; an OIHW buffer (an NCHW caller's) gets a copy.
    direct = out is not None and out.flags.c_contiguous
    dw = out if direct else np.empty((g.kh, g.kw, x.shape[3], dy.shape[3]), x.dtype)
    d.backward_filter(image(x, nchw), image(dy, nchw), dw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    if out is not None and not direct:
        out[...] = dw
        return out
    return dw


def bias_backward(dy, nchw, out=None):
    launch_threads()  # the drivers are serial code calling parallel kernels
    db = np.empty(dy.shape[3], dy.dtype) if out is None else out
    d.bias_backward(image(dy, nchw), db)
    return db
