"""Drivers of the im2col / col2im kernels.

The kernels are NHWC: an NCHW caller's image (``nchw``) is copied to NHWC
(``cols`` has one layout for both formats), and col2im's NHWC result is
transposed back by the public layer.
"""

from .._kernels import patches as k
from ._memory import channels_last, contiguous, deliver, result


def im2col(x, g, nchw, out=None):
    x = channels_last(x)
    n, c = x.shape[0], x.shape[3]
    cols = result(out, (n * g.oh * g.ow, g.kh * g.kw * c), x.dtype)
    k.im2col_nhwc(x, cols, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return deliver(cols, out)


def col2im(cols, n, c, g, nchw, out=None):
    x = result(out, (n, g.h, g.w, c), cols.dtype)
    k.col2im_nhwc(contiguous(cols), x, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)
    return deliver(x, out)
