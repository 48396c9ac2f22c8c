"""Compile the common kernel signatures ahead of the first real call."""
import time
from collections.abc import Iterable

import numpy as np
from numpy.typing import DTypeLike

from ._api import public


@public("numbaconv")
def warmup(dtypes: Iterable[DTypeLike] = (np.float32, np.float64)) -> float:
    """Compile (or load from the on-disk cache) every kernel for ``dtypes``.

    Nothing is compiled at import time, and the first call of each op and
    dtype compiles its kernel (seconds). Call this once at start-up when the
    first real call must not pay that.

    Parameters
    ----------
    dtypes : iterable of dtypes, default (float32, float64)
        The compute dtypes to compile for.

    Returns
    -------
    seconds : float
        The wall-clock time it took (small when every kernel was cached).

    Raises
    ------
    TypeError
        If a dtype is complex, object or string.

    Notes
    -----
    Each public op runs once on a tiny input in each data format. TensorFlow
    and PyTorch have no equivalent: their kernels are compiled ahead of time.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> seconds = nc.warmup([np.float64])
    >>> seconds > 0
    True
    """
    import numbaconv as nc

    start = time.perf_counter()
    for dtype in dtypes:
        x = np.ones((1, 4, 4, 2), dtype)
        w = np.ones((3, 3, 2, 2), dtype)
        b = np.ones(2, dtype)
        y = nc.conv2d(x, w, b, padding=1)
        nc.conv2d_backward(y, x, w, padding=1)
        nc.conv2d_transpose(y, w, b, padding=1)
        nc.conv2d_transpose_backward(x, y, w, padding=1)
        # Depthwise kernels (groups = C_in); other groups run the kernels above.
        w_depthwise = np.ones((3, 3, 1, 2), dtype)
        nc.conv2d_backward(y, x, w_depthwise, padding=1, groups=2)
        nc.conv2d(x, w_depthwise, b, padding=1, groups=2)
        nc.col2im(nc.im2col(x, 3, padding=1), x.shape, 3, padding=1)
        pooled, argmax = nc.max_pool2d_argmax(x, 2)
        nc.max_pool2d(x, 2)
        nc.max_pool2d_backward(pooled, argmax, x.shape)
        nc.max_unpool2d(pooled, argmax, x.shape)
        nc.avg_pool2d_backward(nc.avg_pool2d(x, 2), x.shape, 2)
        nc.adaptive_avg_pool2d_backward(nc.adaptive_avg_pool2d(x, 1), x.shape)
        nc.lrn_backward(x, x, depth_radius=1)
        nc.lrn(x, depth_radius=1)
        # Channels-first kernels (argmax scatter, LRN) that NCHW calls reach.
        x_nchw = x.transpose(0, 3, 1, 2)
        pooled, argmax = nc.max_pool2d_argmax(x_nchw, 2, data_format="NCHW")
        nc.max_pool2d_backward(pooled, argmax, x_nchw.shape, data_format="NCHW")
        nc.max_unpool2d(pooled, argmax, x_nchw.shape, data_format="NCHW")
        nc.lrn_backward(x_nchw, x_nchw, depth_radius=1, data_format="NCHW")
        nc.lrn(x_nchw, depth_radius=1, data_format="NCHW")
    return time.perf_counter() - start
