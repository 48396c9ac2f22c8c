"""Drivers of the im2col / col2im kernels.

The kernels are NHWC: an NCHW caller's image (``nchw``) is copied to NHWC
(``cols`` has one layout for both formats), and col2im's NHWC result is
transposed back by the public layer.
"""
import numpy as np

from .._kernels import patches as k
from ._memory import contiguous


def im2col(x, g, nchw, out=None):
    x = contiguous(x)
    n, c = x.shape[0], x.shape[3]
    cols = np.empty((n * g.oh * g.ow, g.kh * g.kw * c), x.dtype) if out is None else out
    k.im2col_nhwc(x, cols, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return cols


def col2im(cols, n, c, g, nchw, out=None):
    # The kernel writes NHWC memory: an NCHW caller's buffer gets a copy.
    direct = out is not None and not nchw
    x = out if direct else np.empty((n, g.h, g.w, c), cols.dtype)
    k.col2im_nhwc(contiguous(cols), x, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    if out is not None and not direct:
        out[...] = x
        return out
    return x
