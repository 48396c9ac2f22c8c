"""How the drivers hand arrays to the kernels (shared by every driver).

The caller's layout reaches a driver as the ``nchw`` flag (decided once per
call in ``numbaconv._api``); drivers never infer it from strides. Every array
a kernel sees is C-contiguous and writable, whatever the caller passed
(read-only, Fortran-ordered, strided views): one compiled variant per kernel
and dtype.
"""
import numpy as np


def contiguous(a):
    """``a`` as a C-contiguous, writable array (a copy only when it is not one already).

    Read-only arrays are a separate Numba type: passing one through would
    compile every kernel a second time.
    """
    return np.ascontiguousarray(a) if a.flags.writeable else np.array(a, order="C")


def nchw_planes(a):
    """The NCHW array an NHWC-indexed view of NCHW data stands for, as (N, C, H * W) planes.

    C-contiguous and writable; a copy only when the NCHW form is not one already.
    """
    n, h, w, c = a.shape
    return contiguous(a.transpose(0, 3, 1, 2)).reshape(n, c, h * w)
