"""Local response normalization drivers: contiguous inputs -> allocate -> one kernel.

NHWC data runs the NHWC kernels on its flat memory. An NCHW caller's array
(``nchw``) arrives as an NHWC-indexed view of channels-first memory: it runs
the channels-first kernels on that memory (copied only if it is not
C-contiguous NCHW), and the result is allocated channels-first too and
returned as an NHWC view of it (the public layer's transpose back to NCHW is
then free). Measured on (128, 16, 28, 28) float32, transposing to
NHWC and back cost more than the NHWC kernel itself.
"""
import numpy as np

from .._kernels import normalization as kernels
from .._kernels.normalization import BLOCK_ELEMENTS as _BLOCK_ELEMENTS
from ._memory import contiguous, nchw_planes

_MIN_NCHW_BLOCK = 64  # pixels: long enough rows for the vector loops


def _scalars(dtype, depth_radius, c, bias, alpha, beta):
    t = dtype.type
    # The radius is clipped here too, so that any int fits the kernel's int64.
    return min(depth_radius, c - 1), t(bias), t(alpha), t(beta)


def _nchw_block(c):
    return max(_BLOCK_ELEMENTS // c, _MIN_NCHW_BLOCK)


def lrn(x, depth_radius, bias, alpha, beta, nchw, out=None):
    """y of x's shape (N, H, W, C); ``out`` (NHWC-indexed, C-contiguous in the caller's layout) is written in place."""
    n, h, w, c = x.shape
    if x.size == 0:
        return np.empty(x.shape, dtype=x.dtype) if out is None else out
    scalars = _scalars(x.dtype, depth_radius, c, bias, alpha, beta)
    if nchw:
        y = np.empty((n, c, h, w), dtype=x.dtype) if out is None else out.transpose(0, 3, 1, 2)
        kernels.lrn_nchw(nchw_planes(x), *scalars, _nchw_block(c), y.reshape(n, c, h * w))
        return y.transpose(0, 2, 3, 1)
    x = contiguous(x)
    y = np.empty_like(x) if out is None else out
    kernels.lrn_nhwc(x.reshape(-1), c, *scalars, max(_BLOCK_ELEMENTS // c, 1), y.reshape(-1))
    return y


def lrn_backward(dy, x, depth_radius, bias, alpha, beta, nchw, out=None):
    """dx of x's shape (N, H, W, C); ``out`` as in :func:`lrn`."""
    n, h, w, c = x.shape
    if x.size == 0:
        return np.empty(x.shape, dtype=x.dtype) if out is None else out
    scalars = _scalars(x.dtype, depth_radius, c, bias, alpha, beta)
    two_alpha_beta = x.dtype.type(2 * alpha * beta)
    if nchw:
        dx = np.empty((n, c, h, w), dtype=x.dtype) if out is None else out.transpose(0, 3, 1, 2)
        kernels.lrn_backward_nchw(nchw_planes(dy), nchw_planes(x), *scalars, two_alpha_beta,
                                  _nchw_block(c), dx.reshape(n, c, h * w))
        return dx.transpose(0, 2, 3, 1)
    x, dy = contiguous(x), contiguous(dy)
    dx = np.empty_like(x) if out is None else out
    kernels.lrn_backward_nhwc(dy.reshape(-1), x.reshape(-1), c, *scalars, two_alpha_beta,
                              max(_BLOCK_ELEMENTS // c, 1), dx.reshape(-1))
    return dx
