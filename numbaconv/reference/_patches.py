"""im2col / col2im: the patch view every reference convolution is built on (NHWC).

The cores take the caller's layout (``nchw``) and ignore it.
"""
import numpy as np


def pad(x, g, value=0.0):
    """x (N, H, W, C) padded by the geometry's (top, bottom, left, right)."""
    return np.pad(x, ((0, 0), (g.pt, g.pb), (g.pl, g.pr), (0, 0)), constant_values=value)


def tap(padded, kh, kw, g):
    """The (N, OH, OW, C) view of what window tap (kh, kw) sees at every output position.

    With the caller's stride and dilation (not the kernels' normalized ones),
    so that comparing the kernels with the reference also checks that
    normalization.
    """
    (sh, sw), (dh, dw) = g.stride, g.dilation
    top, left = kh * dh, kw * dw
    return padded[:, top:top + (g.oh - 1) * sh + 1:sh, left:left + (g.ow - 1) * sw + 1:sw, :]


def windows(padded, g):
    """(N, OH, OW, KH * KW, C): every window, taps in row-major (kh, kw) order."""
    return np.stack([tap(padded, kh, kw, g) for kh in range(g.kh) for kw in range(g.kw)], axis=3)


def im2col(x, g, nchw):
    """Rows (n, oh, ow), columns (kh, kw, c); padded positions read as zero."""
    n, c = x.shape[0], x.shape[3]
    return windows(pad(x, g), g).reshape(n * g.oh * g.ow, g.kh * g.kw * c)


def col2im(cols, n, c, g, nchw):
    """The adjoint of im2col: every patch entry is added back where it was read from."""
    patches = cols.reshape(n, g.oh, g.ow, g.kh, g.kw, c)
    padded = np.zeros((n, g.h + g.pt + g.pb, g.w + g.pl + g.pr, c), dtype=cols.dtype)
    for kh in range(g.kh):
        for kw in range(g.kw):
            tap(padded, kh, kw, g)[...] += patches[:, :, :, kh, kw, :]
    return padded[:, g.pt:g.pt + g.h, g.pl:g.pl + g.w, :].copy()
