"""Pooling drivers: contiguous inputs -> allocate -> one kernel.

The cores receive NHWC-indexed arrays and the caller's layout (``nchw``). The
forward kernels vectorize over channels, so the forward drivers copy NCHW
input to NHWC (measured on (128, 16, 28, 28) float32, one thread: a
channels-first forward kernel, one channel per inner loop, took 11.4 ms
against 2.1 ms for this copy, the NHWC kernel and the copies back), by a
kernel where there are few channels (``_memory.channels_last``: cs231n's
100x3x32x32 pool forward, 2 threads, 1.40-1.69 ms against 1.82-2.30); on
planes of enough rows such a batch goes instead as one image whose
channels are its N * C planes (:func:`_kernel_input`). The
average-pooling backward is a gather that vectorizes over channels too, so
it takes the same copy. The argmax scatter (max pooling's backward,
max_unpool2d) does not vectorize in either layout, so it runs
channels-first: with ``nchw`` the kernel reads its inputs as NCHW planes, one
channel each (copied only if they are not C-contiguous NCHW), and the driver
allocates the result
channels-first, returned as an NHWC view of it (the public layer's transpose
back to NCHW is then free).
"""
import numpy as np

from .. import _geometry
from .. import _plan as plan
from .._kernels import pooling as kernels
from ._memory import channels_last, contiguous, deliver, few_nchw_channels, nchw_planes, pixels_of, result

# max_pool2d's argmax argument: empty, so the kernel tracks no argmax.
_NO_ARGMAX = np.empty((0, 0, 0, 0), np.int64)

# ------------------------------------------------------- the kernels' inputs


def _kernel_input(x, rows, nchw, out):
    """(x as the kernel's NHWC input, the ``out`` it writes into, how its result reads as the batch's).

    Pooling treats every plane alike, and the kernels vectorize over
    channels: an NCHW caller's batch of few channels
    (``plan.PIXELS_COPY_MAX_IN``, in NCHW memory) becomes one image of N * C
    channels, its planes (copied by ``planes_to_pixels``), where the
    result has ``rows`` >= MIN_UNITS rows for the kernel's work units (one
    per row of one image); the kernel then writes a fresh result (None
    for ``out``), which the returned function indexes as (N, OH, OW, C).
    Max pool with argmax through the public API, 2 threads, fresh
    processes alternated, 3 pairs, against the NHWC copy (3 channels: 25
    ns an output): cs231n's 100x3x32x32 2x2 0.53-0.79 ms against
    1.39-1.54, 8x3x224x224 3.6-3.7 against 6.3-6.7, 64x1x28x28 0.14-0.24
    against 0.33-0.36. Otherwise x in NHWC memory (``channels_last``),
    ``out`` as given, the result as it is.
    """
    n, h, w, c = x.shape
    if nchw and rows >= plan.MIN_UNITS and few_nchw_channels(x):
        merged = pixels_of(nchw_planes(x).reshape(1, n * c, h * w)).reshape(1, h, w, n * c)
        return merged, None, lambda y: y.reshape(y.shape[1], y.shape[2], n, c).transpose(2, 0, 1, 3)
    return channels_last(x), out, lambda y: y


# ----------------------------------------------------------------- max pooling


def max_pool2d_argmax(x, g, nchw, out=None):
    """(y, argmax) of shape (N, OH, OW, C); argmax is int64, flat h * W + w. NHWC in either layout."""
    x, into, as_batch = _kernel_input(x, g.oh, nchw, out)
    shape = (x.shape[0], g.oh, g.ow, x.shape[3])
    y_into, argmax_into = (None, None) if into is None else into
    y, argmax = result(y_into, shape, x.dtype), result(argmax_into, shape, np.int64)
    kernels.max_pool2d_nhwc(x, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, x.dtype.type(1), y, argmax)
    y_out, argmax_out = (None, None) if out is None else out
    return deliver(as_batch(y), y_out), deliver(as_batch(argmax), argmax_out)


def max_pool2d(x, g, nchw, out=None):
    """y of shape (N, OH, OW, C). NHWC in either layout."""
    x, into, as_batch = _kernel_input(x, g.oh, nchw, out)
    y = result(into, (x.shape[0], g.oh, g.ow, x.shape[3]), x.dtype)
    kernels.max_pool2d_nhwc(x, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, x.dtype.type(1), y,
                            _NO_ARGMAX)
    return deliver(as_batch(y), out)


def _scatter(values, argmax, h, w, nchw, accumulate, out):
    """(N, H, W, C): each entry of ``values`` added (or assigned) at its argmax; into ``out`` when given."""
    n, oh, ow, c = values.shape
    if nchw:
        planes = result(None if out is None else out.transpose(0, 3, 1, 2), (n, c, h, w), values.dtype)
        kernels.scatter_at_argmax(nchw_planes(values).reshape(n * c, oh * ow),
                                  nchw_planes(argmax).reshape(n * c, oh * ow), 1,
                                  accumulate, planes.reshape(n * c, h * w))
        return deliver(planes.transpose(0, 2, 3, 1), out)
    values, argmax = contiguous(values), contiguous(argmax)
    dx = result(out, (n, h, w, c), values.dtype)
    kernels.scatter_at_argmax(values.reshape(n, oh * ow * c), argmax.reshape(n, oh * ow * c), c, accumulate,
                              dx.reshape(n, h * w * c))
    return deliver(dx, out)


def max_pool2d_backward(dy, argmax, h, w, nchw, out=None):
    """dx of shape (N, H, W, C): each dy entry added at its argmax."""
    return _scatter(dy, argmax, h, w, nchw, True, out)


def max_unpool2d(y, argmax, h, w, nchw, out=None):
    """x of shape (N, H, W, C): zeros, each y entry written at its argmax (the last one wins)."""
    return _scatter(y, argmax, h, w, nchw, False, out)


# ------------------------------------------------------------- average pooling


def _scaled(axis, dtype):
    """(start, stop, divisor) of ``_geometry`` as (start, stop, 1 / divisor in dtype)."""
    start, stop, divisor = axis
    return start, stop, (1 / divisor).astype(dtype)


def _readers(axis, size):
    """Per input index: the outputs [first, stop) whose window reads it, and their scales."""
    start, stop, scale = axis
    return (*_geometry.window_readers(start, stop, size), scale)


def _average(x, rows, cols, nchw, out):
    x, into, as_batch = _kernel_input(x, rows[0].size, nchw, out)
    y = result(into, (x.shape[0], rows[0].size, cols[0].size, x.shape[3]), x.dtype)
    kernels.avg_pool2d_nhwc(x, *rows, *cols, False, y)
    return deliver(as_batch(y), out)


def _average_backward(dy, rows, cols, h, w, nchw, out):
    dy, into, as_batch = _kernel_input(dy, h, nchw, out)
    dx = result(into, (dy.shape[0], h, w, dy.shape[3]), dy.dtype)
    kernels.avg_pool2d_nhwc(dy, *_readers(rows, h), *_readers(cols, w), True, dx)
    return deliver(as_batch(dx), out)


def _windows(g, count_include_pad, dtype):
    return (_scaled(_geometry.pool_windows(g.h, g.oh, g.kh, g.sh, g.pt, g.pb, count_include_pad), dtype),
            _scaled(_geometry.pool_windows(g.w, g.ow, g.kw, g.sw, g.pl, g.pr, count_include_pad), dtype))


def _bins(size, out, dtype):
    return _scaled(_geometry.adaptive_bins(size, out), dtype)


def avg_pool2d(x, g, count_include_pad, nchw, out=None):
    """y of shape (N, OH, OW, C): window means. NHWC in either layout."""
    rows, cols = _windows(g, count_include_pad, x.dtype)
    return _average(x, rows, cols, nchw, out)


def avg_pool2d_backward(dy, g, count_include_pad, nchw, out=None):
    """dx of shape (N, H, W, C). NHWC in either layout."""
    rows, cols = _windows(g, count_include_pad, dy.dtype)
    return _average_backward(dy, rows, cols, g.h, g.w, nchw, out)


def adaptive_avg_pool2d(x, oh, ow, nchw, out=None):
    """y of shape (N, OH, OW, C): bin means. NHWC in either layout."""
    _, h, w, _ = x.shape
    return _average(x, _bins(h, oh, x.dtype), _bins(w, ow, x.dtype), nchw, out)


def adaptive_avg_pool2d_backward(dy, h, w, nchw, out=None):
    """dx of shape (N, H, W, C). NHWC in either layout."""
    _, oh, ow, _ = dy.shape
    return _average_backward(dy, _bins(h, oh, dy.dtype), _bins(w, ow, dy.dtype), h, w, nchw, out)
