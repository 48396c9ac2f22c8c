"""How the drivers hand arrays to the kernels (shared by every driver).

The caller's layout reaches a driver as the ``nchw`` flag (decided once per
call in ``numbaconv._api``); drivers never infer it from strides. Every array
a kernel sees is C-contiguous and writable, whatever the caller passed
(read-only, Fortran-ordered, strided views): one compiled variant per kernel
and dtype.
"""
import math

import numpy as np

from .. import _plan as plan
from .._kernels import convolution as kernels
from .._numba import direct


def contiguous(a):
    """``a`` as a C-contiguous, writable array (a copy only when it is not one already).

    Read-only arrays are a separate Numba type: passing one through would
    compile every kernel a second time.
    """
    return np.ascontiguousarray(a) if a.flags.writeable else np.array(a, order="C")


def channels_last(a):
    """An NHWC-indexed array as C-contiguous NHWC memory (``contiguous``), for the kernels that read channels last.

    NCHW memory of few channels (``_plan.PIXELS_COPY_MAX_IN``: an NCHW
    caller's image, or cs231n's pools on 3 channels) is copied by a kernel,
    ``planes_to_pixels``: NumPy's transposing copy writes a pixel's few
    channels at a time. 2 threads: 100x3x32x32 0.14-0.23 ms against
    0.51-0.92 for NumPy's copy, 8x3x224x224 0.66 against 3.19; at 16
    channels the two were mixed (0.43-1.50), from 24 on NumPy's was the
    faster.
    """
    if not a.flags.c_contiguous and (few_nchw_channels(a) or (
            a.transpose(0, 3, 1, 2).flags.c_contiguous and kernels.page_aliased(a.shape[1] * a.shape[2], a.itemsize))):
        # (Planes a whole number of pages apart too: NumPy's copy of those is slow, see page_aliased.)
        return pixels_of(nchw_planes(a)).reshape(a.shape)
    return contiguous(a)


def few_nchw_channels(a):
    """Whether an NHWC-indexed array is NCHW memory of at most ``_plan.PIXELS_COPY_MAX_IN`` channels."""
    return a.shape[3] <= plan.PIXELS_COPY_MAX_IN and a.transpose(0, 3, 1, 2).flags.c_contiguous


def pixels_of(planes):
    """C-contiguous (N, C, P) planes as (N, P, C) memory, copied by the ``planes_to_pixels`` kernel."""
    n, c, p = planes.shape
    pixels = np.empty((n, p, c), planes.dtype)
    direct(kernels.planes_to_pixels, planes.dtype, planes, pixels)
    return pixels


def nchw_planes(a):
    """The NCHW array an NHWC-indexed view of NCHW data stands for, as (N, C, H * W) planes.

    C-contiguous and writable; a copy only when the NCHW form is not one already.
    """
    n, h, w, c = a.shape
    return contiguous(a.transpose(0, 3, 1, 2)).reshape(n, c, h * w)


def aligned_empty(shape, dtype):
    """``np.empty(shape, dtype)`` whose data start on a 64-byte boundary (NumPy promises 16).

    The patch GEMM stores its tiles past the caches only into whole
    64-byte lines (``_kernels.patch_gemm.STREAM_MIN_BYTES``).
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    buffer = np.empty(size + 64, np.uint8)
    start = -buffer.ctypes.data % 64
    return buffer[start:start + size].view(dtype).reshape(shape)


def result(out, shape, dtype):
    """Where a driver writes a C-contiguous NHWC result: the caller's ``out=`` view when it is one, else a fresh array.

    ``out`` (validated: of the result's shape and dtype) is an NHWC-indexed
    view of the caller's buffer; for an NCHW caller it is not C-contiguous
    in NHWC order, and the driver computes into a fresh array that
    :func:`deliver` copies.
    """
    if out is not None and out.flags.c_contiguous:
        return out
    return np.empty(shape, dtype)


def deliver(result, out):
    """A driver's return value: ``out`` (holding the result, copied into it unless written there), or the result."""
    if out is None or result is out:
        return result
    # A layout view of out (an NCHW buffer seen through a transpose) already holds it.
    same = (result.strides == out.strides and np.may_share_memory(result, out)
            and result.__array_interface__["data"][0] == out.__array_interface__["data"][0])
    if not same:
        out[...] = result
    return out
