"""Local response normalization drivers: contiguous inputs -> allocate -> one kernel.

The kernels run on flat memory in either layout. An NCHW caller's array
(``nchw``) arrives as an NHWC-indexed view of channels-first memory: the
kernels run on that memory (copied only if it is not C-contiguous NCHW) as
channels-first data, and the result is allocated channels-first too and
returned as an NHWC view of it (the public layer's transpose back to NCHW is
then free). Measured on (128, 16, 28, 28) float32, transposing to
NHWC and back cost more than the NHWC kernel itself.

float32 data whose scales float32 cannot hold accurately (window sums that
overflow, parameters beyond its range) are recomputed block by block in
float64 (``_lrn``): the kernels count such blocks as they go.
"""
import numpy as np
from numba.extending import register_jitable

from .._kernels import normalization as kernels
from ._memory import contiguous, deliver, nchw_planes, result

# Scratch elements per prange job: a few KB per buffer (stays in L1/L2) and
# many jobs for the threads.
_BLOCK_ELEMENTS = 2048
_MIN_NCHW_BLOCK = 64  # pixels: long enough rows for the vector loops
_TINY32 = float(np.finfo(np.float32).tiny)
_MAX32 = float(np.finfo(np.float32).max)


def _in_dtype(dtype, *values):
    """The values as scalars of dtype (inf where they overflow it)."""
    with np.errstate(over="ignore", under="ignore"):
        return tuple(dtype.type(v) for v in values)


@register_jitable
def scale_range(itemsize, radius, bias, alpha, beta):
    """[lo, hi]: the scales a block may have for its arithmetic to be accurate.

    For float32 data (``itemsize`` 4): the scale s, s ** beta and
    s ** (beta + 1) (the backward's divisor) are normal floats, and s is
    large enough that squares lost to float32's subnormal range (at most
    2**-150 each, 2r + 1 per window, times alpha) stay below its rounding
    error. A block with a scale outside is recomputed in float64 by the
    kernel. Parameters that float32 cannot hold give an empty range (every
    block in float64). For float64 data, the whole line. Plain Python for
    the drivers (``beta`` a NumPy float, so powers overflow to inf rather
    than raise); compiled into ``numbaconv.kernels``' LRN on a user's call.
    """
    if itemsize != 4:
        return -np.inf, np.inf
    for value in (bias, alpha, 2 * alpha * beta):
        if value != 0 and not _TINY32 <= abs(value) <= _MAX32:
            return np.inf, -np.inf
    lo, hi = max(_TINY32, abs(alpha) * (2 * radius + 1) * _TINY32), _MAX32
    for power in (beta, beta + 1.0):
        if power != 0:
            a, b = _TINY32 ** (1 / power), _MAX32 ** (1 / power)
            lo, hi = max(lo, min(a, b)), min(hi, max(a, b))
    return lo, hi


def _scalars(dtype, depth_radius, c, bias, alpha, beta):
    """The kernel's scalar arguments after the layout: radius, parameters and scale range in dtype."""
    # The radius is clipped here too, so that any int fits the kernel's int64.
    radius = min(depth_radius, c - 1)
    params = (bias, alpha, beta, 2 * alpha * beta)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        lo, hi = scale_range(np.dtype(dtype).itemsize, radius, bias, alpha, np.float64(beta))
    return (radius, *_in_dtype(dtype, *params, lo, hi))


def _nchw_block(c):
    return max(_BLOCK_ELEMENTS // c, _MIN_NCHW_BLOCK)


def _run(x, dy, depth_radius, bias, alpha, beta, nchw, out=None):
    """One kernel call in x's dtype: (result, mask of the entries whose block must be recomputed).

    The result has x's shape, allocated in x's memory order (an NHWC view of
    NCHW memory for channels-first data), or is ``out`` when that is such an
    array; the mask broadcasts against it, and is None when no block needs it.
    """
    n, h, w, c = x.shape
    scalars = _scalars(x.dtype, depth_radius, c, bias, alpha, beta)
    backward = dy is not None
    if nchw:
        # Blocks of pixels within each sample, one row per channel.
        block = _nchw_block(c)
        blocks = -(-(h * w) // block)
        out = result(None if out is None else out.transpose(0, 3, 1, 2), (n, c, h, w), x.dtype)
        outside = np.empty(n * blocks, dtype=np.int64)
        x_flat = nchw_planes(x).reshape(-1)
        dy_flat = nchw_planes(dy).reshape(-1) if backward else x_flat  # read by the backward pass only
        kernels.local_response_norm(dy_flat, x_flat, n, c, True, backward, *scalars, block, out.reshape(-1),
                                    outside)
        out = out.transpose(0, 2, 3, 1)
        if not outside.any():
            return out, None
        redo = np.repeat(outside.reshape(n, blocks) > 0, block, axis=1)[:, :h * w]
        return out, redo.reshape(n, h, w, 1)
    # All N * H * W pixels as one sample: blocks of whole pixels.
    block = max(_BLOCK_ELEMENTS // c, 1)
    per_job = block * c
    x = contiguous(x)
    out = result(out, x.shape, x.dtype)
    outside = np.empty(-(-x.size // per_job), dtype=np.int64)
    dy_flat = contiguous(dy).reshape(-1) if backward else x.reshape(-1)
    kernels.local_response_norm(dy_flat, x.reshape(-1), 1, c, False, backward, *scalars, block, out.reshape(-1),
                                outside)
    if not outside.any():
        return out, None
    return out, np.repeat(outside > 0, per_job)[:x.size].reshape(x.shape)


def _lrn(x, dy, depth_radius, bias, alpha, beta, nchw, target=None):
    """y (dy None) or dx, into ``target`` when given.

    Blocks that float32 cannot compute accurately are recomputed in float64.
    """
    if x.size == 0:
        return deliver(np.empty(x.shape, dtype=x.dtype), target)
    out, redo = _run(x, dy, depth_radius, bias, alpha, beta, nchw, target)
    if redo is not None and x.dtype != np.float64:
        wide = _run(x.astype(np.float64), None if dy is None else dy.astype(np.float64),
                    depth_radius, bias, alpha, beta, nchw)[0]
        with np.errstate(over="ignore", under="ignore"):
            np.copyto(out, wide, where=redo)
    return deliver(out, target)


def lrn(x, depth_radius, bias, alpha, beta, nchw, out=None):
    """y of x's shape (N, H, W, C)."""
    return _lrn(x, None, depth_radius, bias, alpha, beta, nchw, out)


def lrn_backward(dy, x, depth_radius, bias, alpha, beta, nchw, out=None):
    """dx of x's shape (N, H, W, C)."""
    return _lrn(x, dy, depth_radius, bias, alpha, beta, nchw, out)
