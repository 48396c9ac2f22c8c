"""Max pooling drivers: contiguous inputs -> allocate -> one kernel.

The cores receive NHWC-indexed arrays and the caller's layout (``nchw``). The
forward kernels vectorize over channels, so the forward drivers copy NCHW
input to NHWC (measured on (128, 16, 28, 28) float32, one thread: a
channels-first forward kernel, one channel per inner loop, took 11.4 ms
against 2.1 ms for this copy, the NHWC kernel and the copies back). The
backward scatter does not vectorize in either layout, so it has a
channels-first kernel: with ``nchw`` it reads dy and argmax as NCHW planes
(copied only if they are not C-contiguous NCHW) and allocates dx
channels-first, returned as an NHWC view of it (the public layer's transpose
back to NCHW is then free).
"""
import numpy as np

from .._kernels import pooling as kernels
from ._memory import contiguous, nchw_planes


def _pool(x, g, with_argmax, nchw, out):
    x = contiguous(x)
    shape = (x.shape[0], g.oh, g.ow, x.shape[3])
    # The kernels write NHWC memory: an NCHW caller's buffers get a copy.
    outs = [] if out is None else (list(out) if with_argmax else [out])
    direct = out is not None and not nchw
    y = outs[0] if direct else np.empty(shape, dtype=x.dtype)
    geometry = (g.kh, g.kw, g.sh, g.sw, g.pt, g.pl)
    if with_argmax:
        argmax = outs[1] if direct else np.empty(shape, dtype=np.int64)
        kernels.max_pool2d_argmax_nhwc(x, *geometry, y, argmax)
        results = [y, argmax]
    else:
        kernels.max_pool2d_nhwc(x, *geometry, x.dtype.type(1), y)
        results = [y]
    if outs and not direct:
        for o, r in zip(outs, results, strict=True):
            o[...] = r
    if outs:
        return out
    return tuple(results) if with_argmax else y


def max_pool2d_argmax(x, g, nchw, out=None):
    """(y, argmax) of shape (N, OH, OW, C); argmax is int64, flat h * W + w. NHWC in either layout."""
    return _pool(x, g, True, nchw, out)


def max_pool2d(x, g, nchw, out=None):
    """y of shape (N, OH, OW, C). NHWC in either layout."""
    return _pool(x, g, False, nchw, out)


def max_pool2d_backward(dy, argmax, h, w, nchw, out=None):
    """dx of shape (N, H, W, C): each dy entry added at its argmax.

    ``out`` (NHWC-indexed, C-contiguous in the caller's layout) is written in place.
    """
    n, oh, ow, c = dy.shape
    if nchw:
        dx = np.empty((n, c, h * w), dtype=dy.dtype) if out is None else out.transpose(0, 3, 1, 2).reshape(n, c, h * w)
        kernels.max_pool2d_backward_nchw(nchw_planes(dy).reshape(n * c, oh * ow),
                                         nchw_planes(argmax).reshape(n * c, oh * ow),
                                         dx.reshape(n * c, h * w))
        return dx.reshape(n, c, h, w).transpose(0, 2, 3, 1)
    dy, argmax = contiguous(dy), contiguous(argmax)
    dx = np.empty((n, h * w, c), dtype=dy.dtype) if out is None else out.reshape(n, h * w, c)
    kernels.max_pool2d_backward_nhwc(dy, argmax, dx)
    return dx.reshape(n, h, w, c)
